"""Rendering of Flagger's query templates: ``{{ namespace }}``, ``{{ variables.key }}`` and their kin.

Flagger renders MetricTemplate queries with Go templates; manifests only ever use the placeholders below, so
canaryflow substitutes exactly those and reports anything else as an error naming the placeholder and listing
what is available. A template is parsed once and kept, because the same few queries run on every tick.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from canaryflow.metrics.base import MetricError

PLACEHOLDERS = ("name", "namespace", "target", "service", "ingress", "interval")

_ACTION = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_NAME = re.compile(r"(?:(" + "|".join(PLACEHOLDERS) + r")|variables\.([A-Za-z0-9_][A-Za-z0-9_-]*))")


class TemplateError(MetricError):
    """A query template cannot be rendered: an unknown placeholder, a missing variable, an unclosed ``{{``."""


@dataclass(frozen=True)
class QueryVariables:
    """The values a query template may refer to (``ingress`` is None when the canary has no ingressRef)."""

    name: str
    namespace: str
    target: str
    service: str
    interval: str
    ingress: str | None = None
    variables: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Slot:
    """A placeholder in a parsed template: a fixed field, or ``variables.<key>``."""

    text: str
    field: str | None
    variable: str | None


def render(template: str, values: QueryVariables) -> str:
    """The template with every placeholder replaced; raises TemplateError naming the first one that fails."""
    out: list[str] = []
    for part in _parse(template):
        if isinstance(part, str):
            out.append(part)
        elif part.variable is not None:
            if part.variable not in values.variables:
                raise TemplateError(
                    f"query template uses {part.text} but templateVariables has no key {part.variable!r}; "
                    f"defined keys: {_listing(values.variables)}"
                )
            out.append(values.variables[part.variable])
        else:
            value = getattr(values, part.field or "")
            if value is None:
                raise TemplateError(f"query template uses {part.text} but the canary has no ingressRef")
            out.append(value)
    return "".join(out)


@functools.lru_cache(maxsize=512)
def _parse(template: str) -> tuple[str | _Slot, ...]:
    parts: list[str | _Slot] = []
    pos = 0
    for action in _ACTION.finditer(template):
        parts.append(template[pos : action.start()])
        pos = action.end()
        inner = action.group(1).strip()
        known = _NAME.fullmatch(inner)
        if known is None:
            raise TemplateError(
                f"query template has an unknown placeholder {action.group(0)!r}; available: "
                + ", ".join(f"{{{{ {p} }}}}" for p in PLACEHOLDERS)
                + ", {{ variables.<key> }} (keys from the canary's templateVariables)"
            )
        parts.append(_Slot(f"{{{{ {inner} }}}}", known.group(1), known.group(2)))
    parts.append(template[pos:])
    for part in parts:
        if isinstance(part, str) and "{{" in part:
            raise TemplateError("query template has a '{{' without a matching '}}'")
    return tuple(p for p in parts if p != "")


def _listing(keys: Mapping[str, str]) -> str:
    return ", ".join(sorted(keys)) if keys else "none (the metric has no templateVariables)"
