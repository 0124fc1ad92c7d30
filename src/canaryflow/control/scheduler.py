"""The scheduler: one asyncio task per canary, ticking every ``analysis.interval`` (and between, as often as
the canary's judge looks).

As in kopf, each object has its own worker, so a canary's ticks never overlap while canaries run in
parallel; a slow or failing canary delays nobody else. ``wake`` runs a tick now (a spec change, a user's
promote/abort/retry, a GitOps apply) instead of waiting for the interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging

from canaryflow.api.canary import Canary
from canaryflow.control.clock import Clock
from canaryflow.control.executor import Executor
from canaryflow.engine import judging
from canaryflow.engine.checks import Settings

log = logging.getLogger(__name__)

#: Flagger raises intervals under 10 s to 10 s.
MIN_INTERVAL = 10.0


@dataclasses.dataclass(frozen=True, slots=True)
class Timing:
    """``scale`` shortens every interval (0.1 turns 15 s into 1.5 s): for demos and simulations, not production."""

    scale: float = 1.0
    min_interval: float = MIN_INTERVAL

    def interval(self, canary: Canary) -> float:
        return max(self.min_interval, canary.spec.effective_analysis.interval_seconds) * self.scale

    def wake_every(self, canary: Canary, settings: Settings) -> float:
        """How often the canary's worker wakes: every interval, or as often as its judge looks (scaled too,
        never more than once a second)."""
        interval = self.interval(canary)
        judge = judging.active(canary, settings)
        if judge is None:
            return interval
        return min(interval, max(1.0, judge.interval_seconds * self.scale))


class Scheduler:
    def __init__(self, executor: Executor, clock: Clock, timing: Timing | None = None) -> None:
        self.executor = executor
        self.clock = clock
        self.timing = timing or Timing()
        self._canaries: dict[str, Canary] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._wakeups: dict[str, asyncio.Event] = {}
        self.ticks = 0

    @property
    def keys(self) -> list[str]:
        return sorted(self._canaries)

    def apply(self, canary: Canary) -> None:
        """Start driving ``canary``, or pick up its new spec at once."""
        key = canary.key
        known = key in self._canaries
        self._canaries[key] = canary
        self.executor.a.recorder.track(canary)
        if known:
            self.wake(key)
            return
        self._wakeups[key] = asyncio.Event()
        self._tasks[key] = asyncio.create_task(self._worker(key), name=f"canary {key}")

    def wake(self, key: str) -> None:
        event = self._wakeups.get(key)
        if event is not None:
            event.set()

    async def remove(self, key: str) -> None:
        canary = self._canaries.pop(key, None)
        task = self._tasks.pop(key, None)
        self._wakeups.pop(key, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if canary is not None:
            self.executor.a.recorder.forget(canary.metadata.namespace, canary.metadata.name)

    async def close(self) -> None:
        for key in list(self._tasks):
            await self.remove(key)

    async def _worker(self, key: str) -> None:
        while key in self._canaries:
            canary = self._canaries[key]
            interval = self.timing.interval(canary)
            try:
                await self.executor.tick(canary, interval)
            except Exception:  # an engine bug must not stop this canary's worker, nor any other
                log.exception("tick of canary %s failed", key)
            self.ticks += 1
            await self._wait(key, self.timing.wake_every(canary, self.executor.a.settings))

    async def _wait(self, key: str, seconds: float) -> None:
        event = self._wakeups.get(key)
        if event is None:
            return
        sleeper = asyncio.ensure_future(self.clock.sleep(seconds))
        waker = asyncio.ensure_future(event.wait())
        try:
            await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, waker):
                task.cancel()
            event.clear()
