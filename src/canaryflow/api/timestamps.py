"""RFC 3339 timestamps, the one way canaryflow writes and reads a time in a status, an event or an answer.

Kubernetes writes ``metav1.Time`` in whole seconds, UTC, with a ``Z`` (``2026-11-26T13:45:00Z``), so that is
what ``rfc3339`` writes unless asked for a fraction. ``parse_rfc3339`` reads anything RFC 3339 allows (a
fraction of any length, ``Z`` or a numeric offset, lower-case ``t``/``z``) because the times read back come from
other writers too (the API server's MicroTime, a user's manifest, Flux), and refuses what it does not allow
(no offset, a date alone) with the value in the message.
"""

from __future__ import annotations

import datetime
import re

_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?P<fraction>\.\d+)?(?P<offset>[Zz]|[+-]\d{2}:\d{2})",
)
#: Python keeps microseconds: digits past the sixth are dropped when read.
_MAX_DIGITS = 6


def rfc3339(seconds: float, *, digits: int = 0) -> str:
    """``seconds`` since the epoch in UTC with a ``Z``; ``digits`` of fraction (0: whole seconds, truncated)."""
    if not 0 <= digits <= _MAX_DIGITS:
        raise ValueError(f"digits must be 0 to {_MAX_DIGITS}, got {digits}")
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
    whole = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if digits == 0:
        return whole + "Z"
    return f"{whole}.{moment.microsecond:06d}"[: len(whole) + 1 + digits] + "Z"


def parse_rfc3339(value: str) -> float:
    """Seconds since the epoch of an RFC 3339 timestamp; ValueError naming the value when it is not one."""
    match = _RFC3339.fullmatch(value)
    if match is None:
        raise ValueError(f"not an RFC 3339 timestamp (like 2026-11-26T13:45:00Z): {value!r}")
    text = value.upper()
    fraction = match["fraction"]
    if fraction is not None and len(fraction) > _MAX_DIGITS + 1:
        text = text.replace(fraction, fraction[: _MAX_DIGITS + 1], 1)
    try:
        return datetime.datetime.fromisoformat(text).timestamp()
    except ValueError as exc:  # the shape is right, a field is out of range (month 13, second 61)
        raise ValueError(f"not an RFC 3339 timestamp: {value!r}: {exc}") from None
