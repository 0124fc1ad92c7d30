"""Label and field selectors, parsed and matched the way the API server does.

Labels (kubernetes.io, "Labels and Selectors"): equality-based ``=``, ``==``, ``!=`` and set-based ``in``,
``notin``, ``key`` (exists), ``!key`` (does not exist); requirements are comma-separated and ANDed; ``!=`` and
``notin`` also match objects without the label. Fields ("Field Selectors"): ``=``, ``==``, ``!=`` on the fields a
resource supports (``metadata.name`` and ``metadata.namespace`` everywhere); any other field is a 400.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

Json = dict[str, Any]
Predicate = Callable[[Json], bool]

_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_SET = re.compile(rf"^\s*(?P<key>{_KEY})\s+(?P<op>in|notin)\s+\((?P<values>[^)]*)\)\s*$")
_EQ = re.compile(rf"^\s*(?P<key>{_KEY})\s*(?P<op>==|=|!=)\s*(?P<value>{_VALUE})\s*$")
_EXISTS = re.compile(rf"^\s*(?P<neg>!?)\s*(?P<key>{_KEY})\s*$")
_VALUE_ONLY = re.compile(rf"^{_VALUE}$")

EVENT_FIELDS = frozenset(
    {
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    }
)


class SelectorError(ValueError):
    """A selector the API server would reject with 400 BadRequest."""


def _split(selector: str) -> list[str]:
    """Split on commas that are not inside ``( )``."""
    parts, depth, current = [], 0, ""
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [part for part in parts if part.strip()]


def _label_requirement(text: str) -> Predicate:
    if match := _SET.match(text):
        key, op = match["key"], match["op"]
        values = {v.strip() for v in match["values"].split(",") if v.strip()}
        if not values or not all(_VALUE_ONLY.match(v) for v in values):
            raise SelectorError(f"invalid label selector {text.strip()!r}: bad value set")
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if match := _EQ.match(text):
        key, op, value = match["key"], match["op"], match["value"]
        if op == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if match := _EXISTS.match(text):
        key, negated = match["key"], bool(match["neg"])
        return lambda labels: (key in labels) != negated
    raise SelectorError(f"unable to parse requirement: {text.strip()!r}")


def label_selector(selector: str | None) -> Predicate:
    """A predicate over whole objects; raises ``SelectorError`` for what the server would refuse."""
    requirements = [_label_requirement(part) for part in _split(selector or "")]

    def matches(obj: Json) -> bool:
        labels: Mapping[str, str] = (obj.get("metadata") or {}).get("labels") or {}
        return all(requirement(labels) for requirement in requirements)

    return matches


def _field(obj: Json, path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, dict) and path == "source":  # events: source is {component, host}
        value = value.get("component")
    return "" if value is None else str(value)


def field_selector(selector: str | None, *, allowed: frozenset[str] = frozenset()) -> Predicate:
    fields = {"metadata.name", "metadata.namespace"} | allowed
    requirements: list[Predicate] = []
    for part in _split(selector or ""):
        match = re.match(r"^\s*(?P<field>[A-Za-z0-9.]+)\s*(?P<op>==|=|!=)\s*(?P<value>[^,]*?)\s*$", part)
        if not match:
            raise SelectorError(f"invalid field selector: {part.strip()!r}")
        if match["field"] not in fields:
            raise SelectorError(f"field label not supported: {match['field']}")
        field, value, negated = match["field"], match["value"], match["op"] == "!="
        requirements.append(lambda obj, f=field, v=value, n=negated: (_field(obj, f) == v) != n)
    return lambda obj: all(requirement(obj) for requirement in requirements)
