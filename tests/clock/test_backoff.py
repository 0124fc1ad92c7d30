"""The one backoff policy: the waits every retry in canaryflow uses."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canaryflow.clock.backoff import Backoff


def test_waits_double_from_the_first_up_to_the_cap() -> None:
    assert [Backoff(0.5, 5.0).delay(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


def test_a_factor_other_than_two() -> None:
    assert [Backoff(1.0, 100.0, factor=3.0).delay(n) for n in (1, 2, 3)] == [1.0, 3.0, 9.0]


@given(st.integers(min_value=1, max_value=10_000))
def test_a_long_run_of_failures_waits_the_cap_and_never_overflows(failures: int) -> None:
    delay = Backoff(2.0, 60.0).delay(failures)
    assert 2.0 <= delay <= 60.0
    assert delay == 60.0 or failures <= 5


@pytest.mark.parametrize(
    "make", [lambda: Backoff(-1.0, 1.0), lambda: Backoff(1.0, -1.0), lambda: Backoff(1.0, 1.0, factor=0.5)],
    ids=["negative-first", "negative-cap", "shrinking"],
)  # fmt: skip
def test_a_policy_that_cannot_be_a_backoff_is_refused(make: object) -> None:
    with pytest.raises(ValueError, match="Backoff needs"):
        make()  # type: ignore[operator]


def test_there_is_no_wait_before_the_first_failure() -> None:
    with pytest.raises(ValueError, match="at least one failure"):
        Backoff(1.0, 2.0).delay(0)
