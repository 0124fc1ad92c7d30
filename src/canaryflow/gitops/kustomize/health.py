"""``wait`` and ``healthChecks``: poll the target until every object is current, one has failed, or the timeout
is up.

A definite failure ends the wait at once ("failed early due to stalled resources", as kustomize-controller says
it now): waiting out a ten-minute timeout for a Deployment whose rollout has already failed is the pain users
report most about health checks. Every wait goes through a Clock, so tests run on fake time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from canaryflow.clock import Clock
from canaryflow.gitops.target.base import Health, ObjRef, Target

#: How often the objects are polled (kstatus' poller in Flux polls every few seconds too).
POLL_INTERVAL = 2.0
_KSTATUS = {"current": "Current", "in-progress": "InProgress", "failed": "Failed"}


@dataclasses.dataclass(frozen=True)
class HealthResult:
    ok: bool
    message: str
    elapsed: float


async def wait_healthy(
    target: Target, refs: Sequence[ObjRef], timeout: float, clock: Clock, *, poll: float = POLL_INTERVAL
) -> HealthResult:
    start = clock.now()
    pending = list(dict.fromkeys(refs))
    last: dict[ObjRef, Health] = {}
    while True:
        for ref in pending:
            last[ref] = await target.health(ref)
        elapsed = clock.now() - start
        failed = [ref for ref in pending if last[ref].state == "failed"]
        if failed:
            return HealthResult(
                False, f"Health check failed after {duration(elapsed)}: failed early due to stalled resources: "
                f"{_listed(failed, last)}", elapsed,
            )  # fmt: skip
        pending = [ref for ref in pending if last[ref].state != "current"]
        if not pending:
            return HealthResult(True, f"Health check passed in {duration(elapsed)}", elapsed)
        if elapsed >= timeout:
            return HealthResult(
                False, f"Health check failed after {duration(elapsed)}: timeout waiting for: {_listed(pending, last)}",
                elapsed,
            )  # fmt: skip
        await clock.sleep(min(poll, timeout - elapsed))


def _listed(refs: Sequence[ObjRef], health: dict[ObjRef, Health]) -> str:
    parts = []
    for ref in refs:
        state = health[ref]
        detail = f": {state.message}" if state.message else ""
        parts.append(f"{ref} status: '{_KSTATUS.get(state.state, state.state)}'{detail}")
    return "[" + ", ".join(parts) + "]"


def duration(seconds: float) -> str:
    """Go's way of writing a duration, which Flux's messages use: ``1m30s``, ``2.5s``, ``0s``."""
    seconds = round(seconds, 3)
    minutes, rest = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    text = f"{rest:.3f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{hours}h{minutes}m{text}"
    return f"{minutes}m{text}" if minutes else text
