"""ImagePolicy: choose the latest tag from a repository's tags, as Flux's image-reflector-controller does.

The order of operations matters and follows Flux exactly:

1. ``filterTags.pattern`` (a regular expression *searched* in each tag, not anchored) keeps matching tags;
2. ``filterTags.extract`` (``$1``, ``${name}``…, Go's ``Regexp.Expand`` syntax) turns each kept tag into the
   value that is ordered; without it the tag itself is ordered;
3. the policy orders the values (``semver`` range, ``alphabetical`` or ``numerical`` with ``asc``/``desc``);
4. the answer is the *original* tag whose value won, so ``main-42-abc`` can be chosen by its number ``42``.

A spec that Flux would reject (two policies, an unknown order, a bad range or regex, a value that is not a
number under ``numerical``) raises PolicyError with the reason, so a status can show it.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable

from canaryflow.api.flux.image import ImagePolicySpec
from canaryflow.gitops.semver import SemverError, highest, parse_range

__all__ = ["PolicyError", "PolicySpec", "expand", "latest"]


class PolicyError(ValueError):
    """An ImagePolicy that cannot be evaluated; the message says which field and why."""


_ORDERS = ("asc", "desc")


@dataclasses.dataclass(frozen=True)
class PolicySpec:
    """One of ``semver`` (a range), ``alphabetical`` or ``numerical`` (an order), plus the tag filter."""

    semver: str | None = None
    alphabetical: str | None = None
    numerical: str | None = None
    pattern: str | None = None
    extract: str | None = None

    @classmethod
    def of(cls, spec: ImagePolicySpec) -> PolicySpec:
        """From an ImagePolicy's typed ``spec`` (``policy`` and ``filterTags``)."""
        kind, argument = spec.policy.chosen
        tags = spec.filter_tags
        return cls(
            **{kind: argument},
            pattern=tags.pattern or None if tags else None,
            extract=tags.extract or None if tags else None,
        )

    def validate(self) -> None:
        """Raise PolicyError if Flux would refuse this policy (called by ``latest`` too)."""
        chosen = [n for n in ("semver", "alphabetical", "numerical") if getattr(self, n) is not None]
        if len(chosen) != 1:
            raise PolicyError(
                "spec.policy: exactly one of semver, alphabetical, numerical is required"
                + (f" (got {', '.join(chosen)})" if chosen else "")
            )
        for name in ("alphabetical", "numerical"):
            order = getattr(self, name)
            if order is not None and order.lower() not in _ORDERS:
                raise PolicyError(f"spec.policy.{name}.order: {order!r} is not one of asc, desc")
        if self.semver is not None:
            try:
                parse_range(self.semver)
            except SemverError as e:
                raise PolicyError(f"spec.policy.semver.range: {e}") from None
        if self.extract and not self.pattern:
            raise PolicyError("spec.filterTags.extract: needs spec.filterTags.pattern")
        self._regex()

    def _regex(self) -> re.Pattern[str] | None:
        if self.pattern is None:
            return None
        # Go's RE2 accepts (?<name>...) for a named group; Python spells it (?P<name>...).
        source = re.sub(r"\(\?<(?![=!])", "(?P<", self.pattern)
        try:
            return re.compile(source)
        except re.error as e:
            raise PolicyError(f"spec.filterTags.pattern: invalid regular expression {self.pattern!r}: {e}") from None


_TEMPLATE = re.compile(r"\$(?:\$|\{(\w+)\}|(\w+))")


def expand(template: str, match: re.Match[str]) -> str:
    """Go's ``Regexp.Expand``: ``$1``, ``${1}``, ``$name``, ``${name}``, ``$$``; unknown groups expand to "".

    Go takes the longest run of word characters after ``$`` as the name, so ``$1x`` is the (absent)
    group ``1x``, not group 1 followed by "x"; we do the same so a template means what it means in Flux.
    """

    def group(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name is None:
            return "$"
        try:  # re raises IndexError for unknown group numbers and names alike
            value = match.group(int(name)) if name.isdigit() else match.group(name)
        except IndexError:
            return ""
        return value or ""

    return _TEMPLATE.sub(group, template)


_FLOAT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]?(?i:inf|infinity|nan)")


def _number(value: str, tag: str) -> float:
    if not _FLOAT.fullmatch(value):
        shown = f"'{value}'" if value == tag else f"'{value}' (extracted from tag '{tag}')"
        raise PolicyError(f"spec.policy.numerical: failed to parse invalid numeric value {shown}")
    return float(value)


def latest(tags: Iterable[str], spec: PolicySpec) -> str | None:
    """The tag the policy selects, or None when no tag qualifies."""
    spec.validate()
    regex = spec._regex()
    candidates: dict[str, str] = {}  # ordered value -> original tag (a later tag with the same value wins)
    for tag in tags:
        if regex is None:
            candidates[tag] = tag
            continue
        m = regex.search(tag)
        if m is not None:
            candidates[expand(spec.extract, m) if spec.extract else tag] = tag
    if not candidates:
        return None
    values = list(candidates)
    if spec.semver is not None:
        chosen = highest(values, spec.semver)
    elif spec.alphabetical is not None:
        chosen = min(values) if spec.alphabetical.lower() == "desc" else max(values)
    else:
        assert spec.numerical is not None
        numbers = [(_number(v, candidates[v]), v) for v in values]
        comparable = [(n, v) for n, v in numbers if not math.isnan(n)]
        if not comparable:
            return None
        pick = min if spec.numerical.lower() == "desc" else max
        chosen = pick(comparable, key=lambda nv: nv[0])[1]
    return candidates[chosen] if chosen is not None else None
