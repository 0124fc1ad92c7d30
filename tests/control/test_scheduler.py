"""The scheduler drives many canaries independently: one broken canary never stops the others."""

from __future__ import annotations

import yaml

from canaryflow.api.canary import Canary
from canaryflow.api.status import Phase
from canaryflow.control.scheduler import Scheduler, Timing

from ..engine.harness import BASE, Harness


def named(name: str) -> Canary:
    doc = yaml.safe_load(BASE)
    doc["metadata"]["name"] = name
    doc["spec"]["targetRef"]["name"] = name
    return Canary.model_validate(doc)


async def test_canaries_tick_on_their_interval_and_a_broken_one_does_not_stop_the_others() -> None:
    h = Harness()
    good, broken = named("good"), named("broken")  # "broken" has no Deployment
    h.workload.deploy("test/good", "rev-1")
    scheduler = Scheduler(h.executor, h.clock)
    scheduler.apply(good)
    scheduler.apply(broken)
    await h.clock.advance(0)
    assert (await h.store.load("test/good")).status.phase is Phase.INITIALIZED  # type: ignore[union-attr]
    h.workload.deploy("test/good", "rev-2")
    for _ in range(8):
        await h.clock.advance(10)
    status = await h.store.load("test/good")
    assert status is not None and status.status.phase is Phase.SUCCEEDED
    assert await h.store.load("test/broken") is None
    broken_events = await h.events.recent("test/broken")
    assert len(broken_events) == 9
    assert broken_events[0].message == "InitializeWorkload failed for broken.test: deployment test/broken not found"
    await scheduler.close()


async def test_wake_runs_a_tick_now_and_timing_scales_intervals() -> None:
    h = Harness()
    scheduler = Scheduler(h.executor, h.clock, Timing(scale=0.1))
    assert scheduler.timing.interval(h.canary) == 1.0  # 10 s scaled by 0.1
    scheduler.apply(h.canary)
    await h.clock.advance(0)
    ticks = scheduler.ticks
    h.release("rev-2")
    scheduler.apply(h.canary)  # a re-applied spec is picked up at once: no time passes before the tick
    await h.clock.advance(0)
    assert scheduler.ticks == ticks + 1
    assert (await h.status()).phase is Phase.PROGRESSING
    await scheduler.close()
    assert scheduler.keys == []
