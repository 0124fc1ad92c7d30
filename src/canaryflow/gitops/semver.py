"""Semantic versions and version ranges, with the grammar Flux users write.

Flux resolves both a GitRepository's ``ref.semver`` and an ImagePolicy's ``semver.range`` with the
Masterminds ``semver/v3`` library, so a range that selects a tag in Flux must select the same tag here.
That means reproducing its rules, including the ones that differ from npm:

* candidate versions are *strict* SemVer 2.0 (``MAJOR.MINOR.PATCH``, no leading zeros) with an optional
  ``v`` prefix, as Flux's ``version.ParseVersion`` accepts them; ``1.2`` or ``01.2.3`` are not versions;
* ranges are ``||``-separated groups of comparators joined by ``,`` or whitespace; operators ``=`` (or
  none), ``!=``, ``>``, ``<``, ``>=``/``=>``, ``<=``/``=<``, ``~``/``~>``, ``^``; hyphen ranges
  ``1.2 - 1.4.5``; wildcards ``x``, ``X``, ``*`` and missing parts (``1.2`` in a range means ``1.2.x``);
* a pre-release version only matches a group in which some comparator itself names a pre-release (put
  ``-0`` in a range to opt in), and then it is compared by SemVer precedence, not only within the same
  ``MAJOR.MINOR.PATCH`` as npm would;
* build metadata never takes part in ordering.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Iterable

__all__ = ["Range", "SemverError", "Version", "highest", "parse_range", "parse_version"]


class SemverError(ValueError):
    """A version range that does not parse; the message quotes the offending part."""


_IDENT = r"[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*"
_STRICT = re.compile(
    r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
    rf"(?:-({_IDENT}))?(?:\+({_IDENT}))?$"
)


@functools.total_ordering
@dataclasses.dataclass(frozen=True, eq=False)
class Version:
    """A parsed version; ``original`` is the text it came from (Flux reports the original tag)."""

    major: int
    minor: int
    patch: int
    prerelease: tuple[str, ...] = ()
    build: str = ""
    original: str = ""

    def _key(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)

    def compare(self, other: Version) -> int:
        """SemVer precedence: -1, 0 or 1. Build metadata is ignored."""
        if self._key() != other._key():
            return -1 if self._key() < other._key() else 1
        return _compare_prerelease(self.prerelease, other.prerelease)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Version) and self.compare(other) == 0

    def __lt__(self, other: Version) -> bool:
        return self.compare(other) < 0

    def __hash__(self) -> int:
        return hash((self._key(), self.prerelease))

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(self.prerelease)
        if self.build:
            text += "+" + self.build
        return text


def _compare_prerelease(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    # A version without a pre-release has higher precedence than one with.
    if not a or not b:
        return (not a) - (not b)
    for x, y in zip(a, b, strict=False):
        if x == y:
            continue
        xn, yn = x.isdigit(), y.isdigit()
        if xn and yn:
            return -1 if int(x) < int(y) else 1
        if xn != yn:  # numeric identifiers sort before alphanumeric ones
            return -1 if xn else 1
        return -1 if x < y else 1
    return (len(a) > len(b)) - (len(a) < len(b))


def parse_version(text: str) -> Version | None:
    """A strict SemVer version with an optional leading ``v``, or None when ``text`` is not one.

    None rather than an error because callers scan lists of tags where most entries (``latest``,
    ``main-abc123``) are simply not versions.
    """
    m = _STRICT.match(text.removeprefix("v"))
    if m is None:
        return None
    pre = tuple(m.group(4).split(".")) if m.group(4) else ()
    if any(len(p) > 1 and p.isdigit() and p[0] == "0" for p in pre):
        return None
    return Version(int(m.group(1)), int(m.group(2)), int(m.group(3)), pre, m.group(5) or "", text)


# --- ranges -----------------------------------------------------------------------------------------

_X = frozenset({"x", "X", "*"})
# A version as it may appear inside a range: wildcards allowed, parts optional (Masterminds' grammar,
# including its quirk of accepting "|" inside a number class, which we do not reproduce).
_CV = rf"v?([0-9xX*]+)(\.[0-9xX*]+)?(\.[0-9xX*]+)?(?:-({_IDENT}))?(?:\+({_IDENT}))?"
_OPS = r"!=|>=|=>|<=|=<|~>|>|<|~|\^|="
_ONE = re.compile(rf"^\s*({_OPS})?\s*({_CV})\s*$")
_FIND = re.compile(rf"({_OPS})?\s*({_CV})")
_HYPHEN = re.compile(rf"\s*({_CV})\s+-\s+({_CV})\s*")
_GROUP = re.compile(rf"^\s*(?:{_OPS})?\s*{_CV}\s*(?:(?:\s+|,\s*)(?:{_OPS})?\s*{_CV}\s*)*$")


@dataclasses.dataclass(frozen=True)
class _Comparator:
    op: str
    con: Version
    text: str
    dirty: bool  # some part was a wildcard or missing
    minor_dirty: bool
    patch_dirty: bool

    def check(self, v: Version) -> bool:
        return _CHECKS[self.op](self, v)


def _tilde(c: _Comparator, v: Version) -> bool:
    if v < c.con:
        return False
    if c.con._key() == (0, 0, 0) and not c.minor_dirty and not c.patch_dirty:
        return True
    if v.major != c.con.major:
        return False
    return c.minor_dirty or v.minor == c.con.minor


def _equal(c: _Comparator, v: Version) -> bool:
    return _tilde(c, v) if c.dirty else v == c.con


def _not_equal(c: _Comparator, v: Version) -> bool:
    if c.dirty:
        if v.major != c.con.major:
            return True
        if c.minor_dirty:
            return False
        if v.minor != c.con.minor:
            return True
        if c.patch_dirty:
            return bool(v.prerelease or c.con.prerelease) and _compare_prerelease(v.prerelease, c.con.prerelease) != 0
    return v != c.con


def _greater(c: _Comparator, v: Version) -> bool:
    if not c.dirty:
        return v > c.con
    if v.major != c.con.major:
        return v.major > c.con.major
    if c.minor_dirty:  # ">1" means 2.0.0 or later
        return False
    if c.patch_dirty:  # ">1.1" means 1.2.0 or later
        return v.minor > c.con.minor
    return v > c.con


def _less_equal(c: _Comparator, v: Version) -> bool:
    if not c.dirty:
        return v <= c.con
    if v.major > c.con.major:
        return False
    return not (v.major == c.con.major and v.minor > c.con.minor and not c.minor_dirty)


def _caret(c: _Comparator, v: Version) -> bool:
    if v < c.con:
        return False
    if c.con.major > 0 or c.minor_dirty:
        return v.major == c.con.major
    if v.major > 0:
        return False
    if c.con.minor > 0 or c.patch_dirty:
        return v.minor == c.con.minor
    if v.minor > 0:
        return False
    return v.patch == c.con.patch


_CHECKS: dict[str, Callable[[_Comparator, Version], bool]] = {
    "": _equal,
    "=": _equal,
    "!=": _not_equal,
    ">": _greater,
    "<": lambda c, v: v < c.con,
    ">=": lambda c, v: v >= c.con,
    "=>": lambda c, v: v >= c.con,
    "<=": _less_equal,
    "=<": _less_equal,
    "~": _tilde,
    "~>": _tilde,
    "^": _caret,
}


def _comparator(op: str, m: re.Match[str], text: str) -> _Comparator:
    major, minor, patch = m.group(1), (m.group(2) or "").lstrip("."), (m.group(3) or "").lstrip(".")
    if any(part and part not in _X and not part.isdigit() for part in (major, minor, patch)):
        raise SemverError(f"improper constraint {text!r}")
    pre = tuple(m.group(4).split(".")) if m.group(4) else ()
    # The first wildcard or missing part makes the comparator "dirty" and zeroes everything after it.
    minor_dirty = patch_dirty = False
    if major in _X:
        nums, dirty = (0, 0, 0), True
    elif minor in _X or not minor:
        nums, minor_dirty, dirty = (int(major), 0, 0), True, True
    elif patch in _X or not patch:
        nums, patch_dirty, dirty = (int(major), int(minor), 0), True, True
    else:
        nums, dirty = (int(major), int(minor), int(patch)), False
    return _Comparator(op, Version(*nums, prerelease=pre, original=text), text, dirty, minor_dirty, patch_dirty)


@dataclasses.dataclass(frozen=True)
class Range:
    """A parsed range: OR of AND-groups. ``text`` is what the user wrote."""

    text: str
    groups: tuple[tuple[_Comparator, ...], ...]

    def matches(self, version: Version | str) -> bool:
        """Whether ``version`` (a Version or a tag) satisfies the range; non-versions never do."""
        v = parse_version(version) if isinstance(version, str) else version
        if v is None:
            return False
        for group in self.groups:
            wants_pre = any(c.con.prerelease for c in group)
            if v.prerelease and not wants_pre:
                continue
            if all(c.check(v) for c in group):
                return True
        return False

    def __str__(self) -> str:
        return self.text


def parse_range(text: str) -> Range:
    """Parse a Masterminds range such as ``>=1.0.0 <2.0.0``, ``^1.2``, ``1.x || >=3.0.0-0``.

    Raises SemverError naming the part that does not parse.
    """
    if not text.strip():
        raise SemverError("empty semver range")
    rewritten = _HYPHEN.sub(lambda m: f" >= {m.group(1)}, <= {m.group(7)} ", text)
    groups: list[tuple[_Comparator, ...]] = []
    for part in rewritten.split("||"):
        if not _GROUP.match(part):
            raise SemverError(f"improper constraint {part.strip()!r} in semver range {text!r}")
        comparators = []
        for m in _FIND.finditer(part):
            one = _ONE.match(m.group(0))
            inner = re.match(_CV, one.group(2)) if one is not None else None
            if one is None or inner is None:  # _GROUP already vouched for every piece; kept for safety
                raise SemverError(f"improper constraint {m.group(0).strip()!r}")
            comparators.append(_comparator(one.group(1) or "", inner, m.group(0).strip()))
        groups.append(tuple(comparators))
    return Range(text, tuple(groups))


def highest(tags: Iterable[str], range_: Range | str) -> str | None:
    """The tag with the highest version inside the range, as written (``v1.2.3`` stays ``v1.2.3``).

    Among tags of equal precedence (``1.0.0+a``, ``1.0.0+b``) the first one listed wins, as in Flux.
    """
    r = parse_range(range_) if isinstance(range_, str) else range_
    best: Version | None = None
    for tag in tags:
        v = parse_version(tag)
        if v is not None and r.matches(v) and (best is None or v > best):
            best = v
    return best.original if best is not None else None
