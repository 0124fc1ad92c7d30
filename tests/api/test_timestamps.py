"""RFC 3339 timestamps: what canaryflow writes, and every form it reads back from other writers."""

from __future__ import annotations

import datetime
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canaryflow.api.timestamps import parse_rfc3339, rfc3339

# 1970 to 2096 in whole microseconds: within these a float holds every microsecond exactly enough.
MOMENTS = st.integers(min_value=0, max_value=4_000_000_000_000_000).map(lambda us: us / 1_000_000)
OFFSETS = st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59)


def test_written_as_kubernetes_writes_a_time() -> None:
    assert rfc3339(1_764_164_700.7) == "2025-11-26T13:45:00Z"
    assert rfc3339(1_764_164_700.7, digits=3) == "2025-11-26T13:45:00.700Z"


@given(MOMENTS)
def test_whole_seconds_round_trip(seconds: float) -> None:
    assert parse_rfc3339(rfc3339(seconds)) == math.floor(seconds)


@given(MOMENTS, st.integers(min_value=1, max_value=6))
def test_fractions_round_trip_to_their_digits(seconds: float, digits: int) -> None:
    back = parse_rfc3339(rfc3339(seconds, digits=digits))
    assert abs(seconds - back) < 10**-digits
    assert rfc3339(back, digits=digits) == rfc3339(seconds, digits=digits)


@given(MOMENTS.filter(lambda s: s >= 86_400), OFFSETS)
def test_any_offset_names_the_same_instant(seconds: float, minutes: int) -> None:
    zone = datetime.timezone(datetime.timedelta(minutes=minutes))
    local = datetime.datetime.fromtimestamp(seconds, tz=zone)
    sign = "-" if minutes < 0 else "+"
    text = local.strftime("%Y-%m-%dT%H:%M:%S.%f") + f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    assert parse_rfc3339(text) == pytest.approx(seconds, abs=1e-6)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("2024-05-01T10:00:00Z", 1_714_557_600.0),
        ("2024-05-01T10:00:00.5Z", 1_714_557_600.5),
        ("2024-05-01T10:00:00.123456789Z", 1_714_557_600.123456),
        ("2024-05-01t10:00:00z", 1_714_557_600.0),
        ("2024-05-01T12:00:00+02:00", 1_714_557_600.0),
        ("2024-05-01T09:30:00-00:30", 1_714_557_600.0),
    ],
    ids=["utc", "fraction", "nanoseconds", "lower-case", "east", "west"],
)
def test_every_rfc3339_form_is_read(text: str, seconds: float) -> None:
    assert parse_rfc3339(text) == pytest.approx(seconds, abs=1e-6)


@pytest.mark.parametrize(
    "text",
    ["2024-05-01T10:00:00", "2024-05-01", "2024-05-01 10:00:00Z", "20240501T100000Z", "2024-13-01T10:00:00Z", ""],
    ids=["no-offset", "date-only", "space", "basic-format", "month-13", "empty"],
)
def test_what_rfc3339_does_not_allow_is_refused_naming_the_value(text: str) -> None:
    with pytest.raises(ValueError, match="not an RFC 3339 timestamp") as caught:
        parse_rfc3339(text)
    assert repr(text) in str(caught.value)
