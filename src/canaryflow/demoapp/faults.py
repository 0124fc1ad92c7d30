"""Fault injection for the demo app: a faulty release is the same app started with fault knobs.

Knobs come from the environment, so a Deployment's ``env`` makes a release faulty exactly as the seed's
rollback section does by hand (HTTP 500s and slow answers):

- ``CANARYFLOW_FAULT_ERROR_RATE``: fraction (0..1) of application requests answered 500;
- ``CANARYFLOW_FAULT_DELAY``: time added to every application request (``1s``, ``250ms`` or ``0.5``);
- ``CANARYFLOW_FAULT_UNREADY=1``: ``/readyz`` never answers 200;
- ``CANARYFLOW_FAULT_CRASH=1``: the process exits at once on start (a crash-looping release).

podinfo's own ``--random-error`` and ``--random-delay`` flags feed the same injector.

Faults apply to application endpoints only. The probes (``/healthz``, ``/readyz``…), ``/metrics`` and
``/version`` are exempt: a faulty release must still start and pass its probes, so that it is the canary
analysis, not the rollout, that catches it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import Callable, Mapping
from typing import TypeVar

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from canaryflow.api.duration import parse_duration

T = TypeVar("T")

ERROR_RATE = "CANARYFLOW_FAULT_ERROR_RATE"
DELAY = "CANARYFLOW_FAULT_DELAY"
UNREADY = "CANARYFLOW_FAULT_UNREADY"
CRASH = "CANARYFLOW_FAULT_CRASH"

EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/readyz/enable", "/readyz/disable", "/metrics", "/version"})

# podinfo's --random-error answers roughly one request in three with a server error.
_RANDOM_ERROR_RATE = 1 / 3
_RANDOM_ERROR_CODES = (500, 502, 503, 504)
_TRUE = frozenset({"1", "t", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "f", "false", "no", "off"})


def parse_seconds(text: str) -> float:
    """Seconds in ``1s`` / ``500ms`` (Go durations, as manifests write them) or a bare number of seconds."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = parse_duration(text)
    if seconds < 0:
        raise ValueError(f"{text!r} is negative")
    return seconds


def parse_flag(text: str) -> bool:
    """A boolean the way Go's strconv and shell users write it; anything else is an error, never false."""
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{text!r} is not a boolean (use true or false)")


def _parse_fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{value} must be a fraction between 0 and 1")
    return value


def _knob(environ: Mapping[str, str], name: str, parse: Callable[[str], T], default: T) -> T:
    raw = environ.get(name, "")
    if not raw:
        return default
    try:
        return parse(raw)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None


@dataclasses.dataclass(frozen=True, slots=True)
class Faults:
    error_rate: float = 0.0
    delay: float = 0.0
    unready: bool = False
    crash: bool = False
    random_error: bool = False
    random_delay: tuple[float, float] | None = None  # (min, max) seconds, podinfo's --random-delay

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Faults:
        """Read the knobs; a malformed value raises ValueError naming the variable."""
        return cls(
            error_rate=_knob(environ, ERROR_RATE, _parse_fraction, 0.0),
            delay=_knob(environ, DELAY, parse_seconds, 0.0),
            unready=_knob(environ, UNREADY, parse_flag, False),
            crash=_knob(environ, CRASH, parse_flag, False),
        )

    def applies_to(self, path: str) -> bool:
        return path not in EXEMPT_PATHS

    def pick_delay(self, rng: random.Random) -> float:
        extra = rng.uniform(*self.random_delay) if self.random_delay else 0.0
        return self.delay + extra

    def pick_error(self, rng: random.Random) -> int | None:
        """The status code that replaces this request's answer, or None to serve it normally."""
        if self.error_rate and rng.random() < self.error_rate:
            return 500
        if self.random_error and rng.random() < _RANDOM_ERROR_RATE:
            return rng.choice(_RANDOM_ERROR_CODES)
        return None


class FaultInjector:
    """ASGI middleware: delays and fails application requests as the knobs say."""

    def __init__(self, app: ASGIApp, faults: Faults, rng: random.Random | None = None) -> None:
        self.app = app
        self.faults = faults
        self.rng = rng or random.Random()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.faults.applies_to(scope["path"]):
            await self.app(scope, receive, send)
            return
        delay = self.faults.pick_delay(self.rng)
        if delay > 0:
            await asyncio.sleep(delay)
        code = self.faults.pick_error(self.rng)
        if code is None:
            await self.app(scope, receive, send)
            return
        response = JSONResponse({"error": "fault injected by canaryflow", "status": code}, status_code=code)
        await response(scope, receive, send)
