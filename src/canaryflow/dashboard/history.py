"""The timeline behind each canary's chart: weight, phase and metric values, sampled while the dashboard runs.

Status is a snapshot, so the dashboard keeps its own history: one poll of the backend per period, a point per
canary whenever something it charts changed (and one per period while a run is under way, so the time axis
moves). The same poll wakes every open page's server-sent-event stream (``changed``), so N pages cost one poll.
History lives in memory: a restarted runtime starts its charts again from the current status.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator

from canaryflow.dashboard import model
from canaryflow.dashboard.base import Backend, Json

log = logging.getLogger(__name__)
RUNNING = frozenset({"Progressing", "WaitingPromotion", "Promoting", "Finalising"})
MAX_POINTS = 3600


@dataclasses.dataclass(frozen=True, slots=True)
class Point:
    time: float
    weight: int
    phase: str
    metrics: dict[str, float]


class History:
    def __init__(self, backend: Backend, period: float = 1.0) -> None:
        self.backend = backend
        self.period = period
        self.latest: list[Json] = []
        self.points: dict[str, collections.deque[Point]] = {}
        self.generation = 0
        self._changed = asyncio.Condition()

    async def poll(self) -> None:
        """Read every canary once and record what changed."""
        self.latest = await self.backend.canaries()
        now = time.time()
        for body in self.latest:
            status = model.status_of(body)
            metrics = {k: float(v) for k, v in (status.get("lastMetrics") or {}).items() if _number(v)}
            point = Point(now, model.row(body).weight, str(status.get("phase") or ""), metrics)
            series = self.points.setdefault(model.key_of(body), collections.deque(maxlen=MAX_POINTS))
            last = series[-1] if series else None
            moved = last is None or (last.weight, last.phase, last.metrics) != (
                point.weight,
                point.phase,
                point.metrics,
            )
            if moved or point.phase in RUNNING:
                series.append(point)
        async with self._changed:
            self.generation += 1
            self._changed.notify_all()

    async def changed(self, seen: int, timeout: float) -> int:
        """Wait until a poll newer than ``seen`` (or ``timeout``); returns the current generation."""
        async with self._changed:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._changed.wait_for(lambda: self.generation > seen)
            return self.generation

    def timeline(self, key: str) -> Json:
        """The chart's columns: times, canary weight, phase, and each metric's values (None where unmeasured)."""
        series = list(self.points.get(key, ()))
        names = sorted({name for p in series for name in p.metrics})
        return {
            "time": [p.time for p in series],
            "weight": [p.weight for p in series],
            "phase": [p.phase for p in series],
            "metrics": {name: [p.metrics.get(name) for p in series] for name in names},
        }

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[History]:
        task = asyncio.create_task(self._loop(), name="dashboard history")
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        while True:
            try:
                await self.poll()
            except Exception:  # a backend hiccup must not end the charts; the next poll tries again
                log.exception("dashboard: reading the canaries failed")
            await asyncio.sleep(self.period)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
