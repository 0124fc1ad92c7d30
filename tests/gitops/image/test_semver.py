"""Semver ranges as Flux resolves them (Masterminds semver/v3): the table covers each operator and rule."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canaryflow.gitops.semver import SemverError, highest, parse_range, parse_version

TAGS = ["0.9.0", "1.0.0", "1.2.0", "1.2.3", "1.2.9", "1.3.0", "1.10.0", "2.0.0-rc.1", "2.0.0", "2.1.0", "v3.0.0"]


@pytest.mark.parametrize(
    ("range_", "expected"),
    [
        (">=1.0.0 <2.0.0", "1.10.0"),  # space means AND; numeric, not alphabetical, order
        (">=1.0.0, <2.0.0", "1.10.0"),  # comma means AND too
        ("<1.3.0 || >=2.1.0", "v3.0.0"),  # OR; the original tag text comes back, "v" included
        ("1.2.x", "1.2.9"),
        ("1.2", "1.2.9"),  # a missing part is a wildcard in a range
        ("1.x", "1.10.0"),
        ("*", "v3.0.0"),
        ("~1.2.3", "1.2.9"),  # tilde: same major.minor
        ("~1", "1.10.0"),
        ("^1.2.3", "1.10.0"),  # caret: same major
        ("^0.9", "0.9.0"),
        ("=1.2.3", "1.2.3"),
        ("1.2.3", "1.2.3"),
        ("!=2.1.0, <2.5", "2.0.0"),
        (">1.2", "v3.0.0"),
        (">2", "v3.0.0"),
        ("<=1.2", "1.2.9"),  # "<=1.2" includes the whole 1.2 line
        ("<2", "1.10.0"),  # prerelease 2.0.0-rc.1 is excluded: the range has no prerelease
        ("1.2 - 1.3", "1.3.0"),  # hyphen range, inclusive
        (">=2.0.0-0 <2.0.0", "2.0.0-rc.1"),  # a prerelease in the range opts prereleases in
        (">=5.0.0", None),
    ],
)
def test_highest_tag_in_range(range_: str, expected: str | None) -> None:
    assert highest(TAGS, range_) == expected


def test_tags_that_are_not_strict_semver_are_ignored() -> None:
    # Flux's version.ParseVersion: strict SemVer 2.0 with an optional "v"; "1.2" or "01.2.3" is not a version
    assert highest(["latest", "1.2", "01.2.3", "1.2.3.4", "main-abc", "1.0.0"], "*") == "1.0.0"
    assert parse_version("1.2") is None
    assert parse_version("1.0.0-01") is None  # numeric prerelease identifiers have no leading zeros


def test_prerelease_precedence_follows_semver() -> None:
    tags = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1"]
    ordered = sorted(tags, key=lambda t: parse_version(t))  # type: ignore[arg-type, return-value]
    assert ordered == tags
    assert highest([*tags, "1.0.0"], ">=1.0.0-0") == "1.0.0"


def test_equal_versions_first_listed_wins() -> None:
    assert highest(["1.0.0+build.2", "1.0.0+build.1"], "1.0.0") == "1.0.0+build.2"


@pytest.mark.parametrize("bad", ["", "abc", ">=1.2.3x", "1x.2", "1.0.0 ||", ">= 1 <", "1.0.0 2.0.0 ~"])
def test_malformed_ranges_are_errors(bad: str) -> None:
    with pytest.raises(SemverError):
        parse_range(bad)


versions = st.tuples(st.integers(0, 4), st.integers(0, 4), st.integers(0, 4)).map(lambda t: ".".join(map(str, t)))


@given(st.lists(versions, max_size=12), versions, versions)
def test_highest_is_the_maximum_of_the_matching_tags(tags: list[str], low: str, high: str) -> None:
    r = parse_range(f">={low} <{high}")
    matching = [t for t in tags if r.matches(t)]
    expected = max(matching, key=lambda t: tuple(map(int, t.split(".")))) if matching else None
    assert highest(tags, r) == expected
    for t in matching:  # and the bounds mean what they say
        assert tuple(map(int, low.split("."))) <= tuple(map(int, t.split("."))) < tuple(map(int, high.split(".")))
