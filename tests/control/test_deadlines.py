"""Bounded waits: an adapter that never answers costs one tick, never the canary, and never another canary.

Each adapter is hung in turn (a call that waits on an event nobody sets). Deadlines are a few tens of
milliseconds so that each case waits only that long; what is asserted is what a user sees: the event naming
the call that hung, the status the next tick starts from, the failed check or the alert not delivered, and the
other canary's ticks on the fake clock.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from canaryflow.api.status import Phase
from canaryflow.control.deadlines import Deadlines
from canaryflow.control.scheduler import Scheduler

from ..engine.harness import Harness, canary
from ..polling import until, wait_for
from .test_scheduler import named

FAST = Deadlines(call=0.05, tick=5.0)


class Hang:
    """Replaces ``owner.method`` with a call that waits until released: every call, or only those for the key
    ``only``, or only the first ``times`` calls (the harness reads the store back after a tick)."""

    def __init__(self, owner: Any, method: str, only: str | None = None, times: int | None = None) -> None:
        self.owner, self.method, self.only, self.times = owner, method, only, times
        self.original: Callable[..., Any] = getattr(owner, method)
        self.released = asyncio.Event()
        self.calls = 0

    async def _hung(self, *args: Any, **kwargs: Any) -> Any:
        target = args[0] if args else None
        key = getattr(target, "key", target)
        if (self.only is None or key == self.only) and (self.times is None or self.calls < self.times):
            self.calls += 1
            await self.released.wait()
        return await self.original(*args, **kwargs)

    @contextlib.contextmanager
    def hung(self) -> Iterator[Hang]:
        setattr(self.owner, self.method, self._hung)
        try:
            yield self
        finally:
            setattr(self.owner, self.method, self.original)
            self.released.set()


async def progressing(h: Harness) -> None:
    h.executor.a.deadlines = FAST
    await h.initialized()
    h.release("rev-2")
    row = await h.tick()
    assert row.brief == ("Progressing", 100, 0, 0, 0)
    row = await h.tick()
    assert row.brief == ("Progressing", 90, 10, 0, 0)


@pytest.mark.parametrize(
    ("adapter", "method", "effect"),
    [
        ("workload", "canary_readiness", "CanaryReadiness"),
        ("router", "set_routes", "SetRoutes"),
        ("store", "load", "StatusStore.load"),
    ],
)
async def test_a_hung_adapter_abandons_the_tick_naming_the_call_and_the_next_tick_goes_on(
    adapter: str, method: str, effect: str
) -> None:
    h = Harness()
    await progressing(h)
    with Hang(getattr(h, adapter), method, times=1).hung():
        row = await h.tick()
    assert row.events == (f"{effect} for podinfo.test did not answer within 0.05s",)
    assert row.brief == ("Progressing", 90, 10, 0, 0)  # nothing saved: the next tick starts from here
    row = await h.tick()
    assert row.brief == ("Progressing", 80, 20, 0, 0)


async def test_a_status_write_that_never_answers_is_caught_up_by_the_next_tick() -> None:
    h = Harness()
    await progressing(h)
    with Hang(h.store, "save", times=1).hung():
        row = await h.tick()
    assert row.events == (
        "Advance podinfo.test canary weight 20",
        "StatusStore.save for podinfo.test did not answer within 0.05s",
    )
    assert (await h.status()).canary_weight == 10  # the step was served but not recorded...
    row = await h.tick()
    # ...so the next tick records it, then steps on from the weight the router serves (as Flagger reads it)
    assert row.events == ("Advance podinfo.test canary weight 20", "Advance podinfo.test canary weight 30")
    assert row.brief == ("Progressing", 70, 30, 0, 0)
    assert (await h.status()).canary_weight == 30


async def test_a_metric_query_that_never_answers_is_a_failed_check() -> None:
    h = Harness()
    await progressing(h)
    with Hang(h.metrics, "measure").hung():
        row = await h.tick()
    assert row.brief == ("Progressing", 90, 10, 0, 1)
    assert any("MeasureMetric for podinfo.test did not answer within 0.05s" in e for e in row.events), row.events
    row = await h.tick()
    assert row.brief == ("Progressing", 80, 20, 0, 1)


async def test_a_webhook_that_never_answers_fails_its_gate_after_its_own_timeout() -> None:
    hook = {"name": "acceptance", "type": "pre-rollout", "url": "http://tester.test/", "timeout": "50ms"}
    h = Harness(canary(webhooks=[hook]))
    h.executor.a.deadlines = FAST
    await h.initialized()
    h.release("rev-2")
    assert (await h.tick()).events == ("New revision detected! Scaling up podinfo.test",)
    with Hang(h.hooks, "call").hung():
        row = await h.tick()
    # The runner's own timeout (50 ms) plus the call deadline: a failed pre-rollout check, not an abandoned tick.
    assert row.phase == "Progressing" and row.failed == 1
    assert any("CallHook for podinfo.test did not answer within 0.1s" in e for e in row.events), row.events
    assert (await h.tick()).brief == ("Progressing", 90, 10, 0, 1)


async def test_a_notifier_that_never_answers_does_not_hold_up_a_rollback() -> None:
    h = Harness(canary(threshold=1))
    await progressing(h)
    h.metrics.values["request-success-rate"] = 50.0
    assert (await h.tick()).brief == ("Progressing", 90, 10, 0, 1)  # the threshold is reached...
    with Hang(h.alerts, "send").hung():
        row = await h.tick()
    assert (row.phase, row.primary, row.canary) == ("Failed", 100, 0)  # ...and the rollback is not held up
    assert "alert not delivered: the notifier did not answer within 0.05s" in row.events


async def test_a_tick_over_its_budget_is_abandoned_naming_what_it_waited_on() -> None:
    h = Harness()
    await progressing(h)
    h.executor.a.deadlines = Deadlines(call=5.0, tick=0.05)
    with Hang(h.workload, "canary_readiness").hung():
        row = await h.tick()
    assert row.events == ("tick of podinfo.test abandoned after 0.05s (its budget) waiting on CanaryReadiness",)
    h.executor.a.deadlines = FAST
    assert (await h.tick()).brief == ("Progressing", 80, 20, 0, 0)


async def test_a_hung_canary_does_not_delay_the_others() -> None:
    h = Harness()
    h.executor.a.deadlines = Deadlines(call=0.2, tick=5.0)
    good, stuck = named("good"), named("stuck")
    for name in ("good", "stuck"):
        h.workload.deploy(f"test/{name}", "rev-1")
    scheduler = Scheduler(h.executor, h.clock)
    with Hang(h.workload, "revision", only="test/stuck").hung() as hang:
        scheduler.apply(good)
        scheduler.apply(stuck)
        await h.clock.advance(0)
        assert (await h.store.load("test/good")).status.phase is Phase.INITIALIZED  # type: ignore[union-attr]
        h.workload.deploy("test/good", "rev-2")
        for _ in range(8):  # while "stuck" waits on its revision, "good" ticks every 10 s of fake time
            await h.clock.advance(10)
        assert (await h.store.load("test/good")).status.phase is Phase.SUCCEEDED  # type: ignore[union-attr]
        assert hang.calls == 1

        async def abandoned() -> bool:
            return any("ObserveRevision for stuck.test did not answer" in e.message for e in h.events.events)

        await until(abandoned, "the stuck canary's tick abandoned")
        await h.clock.advance(10)  # its next tick starts on time (and hangs again: the adapter still does)
        await until(lambda: hang.calls == 2, "the stuck canary's next tick")
    await h.clock.advance(10)
    await until(lambda: h.store.load("test/stuck"), "the stuck canary's first status, once its adapter answers")
    await scheduler.close()


async def test_removing_a_canary_whose_tick_hangs_still_cancels_it() -> None:
    h = Harness()
    h.executor.a.deadlines = Deadlines(call=60.0, tick=60.0)  # the watchdog is not what ends this tick
    scheduler = Scheduler(h.executor, h.clock)
    with Hang(h.workload, "revision").hung() as hang:
        scheduler.apply(h.canary)
        await until(lambda: hang.calls == 1, "the tick waiting on its revision")
        await wait_for(scheduler.remove(h.canary.key), "the hung tick cancelled by remove()")
    assert scheduler.keys == [] and not any("did not answer" in e.message for e in h.events.events)
