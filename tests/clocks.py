"""A Clock for tests of code that waits in line (retries, polls, health waits): each sleep returns at once and
moves time on by what was asked, and every wait is recorded, so a test sees the waits without taking them.

Code whose waits run beside other tasks (the scheduler, the GitOps controller) is tested on
``canaryflow.clock.FakeClock`` instead, which moves only when the test advances it.
"""

from __future__ import annotations

import asyncio


class InstantClock:
    def __init__(self, start: float = 1_700_000_000.0, *, hold: bool = False) -> None:
        self.time = start
        #: Every sleep asked for, in order.
        self.waits: list[float] = []
        #: Set at the first sleep; with ``hold``, sleepers wait for ``release()``.
        self.called = asyncio.Event()
        self._gate = asyncio.Event()
        if not hold:
            self._gate.set()

    @property
    def slept(self) -> float:
        return sum(self.waits)

    def now(self) -> float:
        return self.time

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.time += seconds
        self.called.set()
        await self._gate.wait()

    def release(self) -> None:
        self._gate.set()
