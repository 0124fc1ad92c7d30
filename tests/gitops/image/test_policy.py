"""ImagePolicy: which tag each policy selects, as Flux's image-reflector-controller would."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canaryflow.api.flux.image import ImagePolicySpec
from canaryflow.gitops.image.policy import PolicyError, PolicySpec, latest


def test_semver_policy_picks_the_highest_tag_in_range() -> None:
    tags = ["6.0.0", "6.1.0", "6.1.5", "6.2.0", "latest", "7.0.0-rc.1"]
    assert latest(tags, PolicySpec(semver="6.1.x")) == "6.1.5"
    assert latest(tags, PolicySpec(semver=">=6.0.0")) == "6.2.0"
    assert latest(tags, PolicySpec(semver=">=7.0.0")) is None


def test_alphabetical_orders_by_byte_value() -> None:
    tags = ["RELEASE.2023-01-31", "RELEASE.2024-05-02", "RELEASE.2024-04-30", "latest"]
    assert latest(tags, PolicySpec(alphabetical="asc")) == "latest"  # lower case sorts after upper case
    assert latest(tags, PolicySpec(alphabetical="desc")) == "RELEASE.2023-01-31"
    assert latest(tags, PolicySpec(alphabetical="ASC", pattern="^RELEASE")) == "RELEASE.2024-05-02"


def test_numerical_orders_by_number_not_text() -> None:
    assert latest(["9", "10", "100", "2"], PolicySpec(numerical="asc")) == "100"
    assert latest(["9", "10", "100", "2"], PolicySpec(numerical="desc")) == "2"
    assert latest(["1.5", "1.25", "-3"], PolicySpec(numerical="asc")) == "1.5"


def test_numerical_rejects_tags_that_are_not_numbers() -> None:
    with pytest.raises(PolicyError, match="'latest'"):
        latest(["1", "latest"], PolicySpec(numerical="asc"))


def test_extract_orders_by_the_captured_value_and_returns_the_original_tag() -> None:
    tags = ["main-9-a1b2c3", "main-10-d4e5f6", "main-2-ffffff", "feature-99-000000", "latest"]
    spec = PolicySpec(numerical="asc", pattern=r"^main-(?P<build>\d+)-[a-f0-9]+$", extract="$build")
    assert latest(tags, spec) == "main-10-d4e5f6"
    numbered = PolicySpec(numerical="asc", pattern=r"^main-(\d+)-", extract="$1")
    assert latest(tags, numbered) == "main-10-d4e5f6"
    braces = PolicySpec(semver="^1", pattern=r"^v(?P<version>.*)-prod$", extract="${version}")
    assert latest(["v1.2.0-prod", "v1.10.0-prod", "v1.11.0-dev"], braces) == "v1.10.0-prod"


def test_pattern_is_searched_not_anchored_as_in_go() -> None:
    assert latest(["app-1.0.0", "1.5.0", "other"], PolicySpec(alphabetical="asc", pattern=r"\d")) == "app-1.0.0"


def test_go_named_group_syntax_is_accepted() -> None:
    spec = PolicySpec(numerical="asc", pattern=r"^build-(?<n>\d+)$", extract="$n")
    assert latest(["build-7", "build-12"], spec) == "build-12"


def test_pattern_without_matches_selects_nothing() -> None:
    assert latest(["a", "b"], PolicySpec(alphabetical="asc", pattern="^z")) is None


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (PolicySpec(), "exactly one of"),
        (PolicySpec(semver="*", numerical="asc"), "got semver, numerical"),
        (PolicySpec(alphabetical="up"), "spec.policy.alphabetical.order: 'up'"),
        (PolicySpec(semver=">= nonsense"), "spec.policy.semver.range"),
        (PolicySpec(numerical="asc", pattern="(unclosed"), "spec.filterTags.pattern"),
        (PolicySpec(numerical="asc", extract="$1"), "needs spec.filterTags.pattern"),
    ],
)
def test_invalid_policies_are_reported_with_the_field(spec: PolicySpec, message: str) -> None:
    with pytest.raises(PolicyError, match=message.replace("(", r"\(")):
        latest(["1"], spec)


def test_of_reads_the_typed_spec() -> None:
    spec = ImagePolicySpec.model_validate(
        {
            "imageRepositoryRef": {"name": "app"},
            "policy": {"numerical": {}},
            "filterTags": {"pattern": r"^b-(\d+)$", "extract": "$1"},
        },
        by_alias=True,
    )
    assert PolicySpec.of(spec) == PolicySpec(numerical="asc", pattern=r"^b-(\d+)$", extract="$1")


tags_st = st.lists(st.text(alphabet="abcXYZ019.-", min_size=1, max_size=6), max_size=15)


@given(tags_st)
def test_alphabetical_asc_is_the_maximum_and_desc_the_minimum(tags: list[str]) -> None:
    assert latest(tags, PolicySpec(alphabetical="asc")) == (max(tags) if tags else None)
    assert latest(tags, PolicySpec(alphabetical="desc")) == (min(tags) if tags else None)


@given(st.lists(st.integers(-1000, 1000), max_size=15))
def test_numerical_asc_is_the_largest_number(numbers: list[int]) -> None:
    tags = [str(n) for n in numbers]
    chosen = latest(tags, PolicySpec(numerical="asc"))
    assert chosen == (str(max(numbers)) if numbers else None)


@given(st.lists(st.integers(0, 500), max_size=15))
def test_extracted_order_picks_the_tag_with_the_largest_capture(builds: list[int]) -> None:
    tags = [f"main-{n}-sha{n % 7}" for n in builds]
    chosen = latest(tags, PolicySpec(numerical="asc", pattern=r"^main-(\d+)-", extract="$1"))
    assert chosen == (f"main-{max(builds)}-sha{max(builds) % 7}" if builds else None)
