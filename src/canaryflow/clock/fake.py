"""A Clock that only moves when told to: the in-memory twin of ``SystemClock``."""

from __future__ import annotations

import asyncio
import heapq
import itertools


class FakeClock:
    """A clock that only moves when told to: ``await clock.advance(60)`` wakes every sleeper due by then, in
    order, letting each run before moving on."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + max(0.0, seconds), next(self._seq), future))
        await future

    async def advance(self, seconds: float) -> None:
        end = self._now + seconds
        await _settle()
        while self._sleepers and self._sleepers[0][0] <= end:
            due, _, future = heapq.heappop(self._sleepers)
            self._now = max(self._now, due)
            if not future.done():
                future.set_result(None)
            await _settle()
        self._now = end
        await _settle()


async def _settle(rounds: int = 20) -> None:
    """Let woken tasks run until they block again (they only wait on the clock or on in-memory adapters)."""
    for _ in range(rounds):
        await asyncio.sleep(0)
