"""One timer for the deadlines of every call in flight, of every canary.

``asyncio.timeout`` around each adapter call reads the clock, schedules a loop timer and cancels it, for every
call; with in-memory adapters that never suspend, the cancelled timers also pile up in the loop's heap. Measured
with ``bench/engine.py`` (1,000 canaries in analysis, on a busy machine): 14,000 ticks/s without deadlines,
7,000 with ``asyncio.timeout`` per call. The watchdog is the coarse timer of network servers instead: a call only
bumps its tick's sequence number and names itself (``Watch.begin``: no clock read, no allocation); one loop timer,
running while ticks are in flight, looks every ``period`` seconds, notes when it first saw each call, and cancels
the task of a call it has seen for ``seconds`` (so a hung call is cut between ``seconds`` and ``seconds + period``
after it began) or of a tick past its budget. The ``await`` of that call turns the cancellation into ``Expired``
(``uncancel`` first, as ``asyncio.timeout`` does, so a real cancellation still cancels).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable


class Expired(Exception):
    """The call in flight did not answer in time; ``budget``: the tick's budget ran out first."""

    def __init__(self, call: str, seconds: float, *, budget: bool) -> None:
        super().__init__(f"{call} did not answer within {seconds:g}s")
        self.call, self.seconds, self.budget = call, seconds, budget


class Watch:
    """One tick: its budget, and the call in flight (bumped by ``begin``, looked at by the watchdog). Nothing
    here reads a clock: the watchdog notes when it first sees the tick and each call."""

    __slots__ = ("budget", "call", "fired", "over_budget", "seconds", "seen", "seq", "since", "started", "task")

    def __init__(self, task: asyncio.Task[object], budget: Callable[[], float]) -> None:
        self.task = task
        self.budget: float | Callable[[], float] = budget  # worked out at the first look (most ticks get none)
        self.call, self.seconds, self.seq = "nothing yet", math.inf, 0
        self.seen = -1
        self.since = self.started = math.inf
        self.fired = self.over_budget = False

    def begin(self, call: str, seconds: float) -> None:
        """The tick is about to wait on ``call``, for at most ``seconds``."""
        self.seq += 1
        self.call, self.seconds = call, seconds

    def expired(self) -> Expired:
        """What a ``CancelledError`` caught while waiting on a call means: ``Expired`` when the watchdog sent it;
        otherwise the cancellation itself, re-raised from here (call this only in an ``except`` block)."""
        if not self.fired:
            raise  # a bare raise re-raises the CancelledError being handled
        self.fired = False
        if self.task.uncancel() > 0:  # cancelled by someone else too: that one wins
            raise
        if self.over_budget:
            return Expired(self.call, float(self.budget), budget=True)  # type: ignore[arg-type]
        return Expired(self.call, self.seconds, budget=False)

    def answered(self) -> None:
        """The call answered: if the watchdog fired meanwhile and the call swallowed the cancellation, take it
        back (the answer stands)."""
        if self.fired:
            self.fired = False
            self.task.uncancel()

    def extend(self, seconds: float) -> None:
        """A new budget (for what a tick does after it was abandoned: its warning event)."""
        self.budget, self.started, self.over_budget = seconds, math.inf, False

    def overdue(self, now: float) -> bool:
        """Whether the tick is overdue, as seen at ``now``."""
        if not isinstance(self.budget, float):
            self.budget = self.budget()
        if self.started == math.inf:
            self.started = now
        if self.seq != self.seen:  # a call begun since the last look: its clock starts now
            self.seen, self.since = self.seq, now
        self.over_budget = now - self.started >= self.budget
        return self.over_budget or now - self.since >= self.seconds


class Watchdog:
    def __init__(self) -> None:
        self._watches: set[Watch] = set()
        self._timer: asyncio.TimerHandle | None = None

    def watch(self, budget: Callable[[], float], period: Callable[[], float]) -> Watch:
        """Start watching the current task's tick, which may take ``budget()`` seconds in all; while ticks are in
        flight, look every ``period()`` seconds."""
        task = asyncio.current_task()
        if task is None:  # pragma: no cover (ticks always run in a task)
            raise RuntimeError("a tick runs in a task")
        watch = Watch(task, budget)
        self._watches.add(watch)
        if self._timer is None:
            loop = task.get_loop()
            self._timer = loop.call_later(period(), self._look, loop, period)
        return watch

    def forget(self, watch: Watch) -> None:
        self._watches.discard(watch)
        watch.answered()

    def _look(self, loop: asyncio.AbstractEventLoop, period: Callable[[], float]) -> None:
        now = loop.time()
        for watch in self._watches:
            if not watch.fired and watch.overdue(now):
                watch.fired = True
                watch.task.cancel()
        self._timer = loop.call_later(period(), self._look, loop, period) if self._watches else None
