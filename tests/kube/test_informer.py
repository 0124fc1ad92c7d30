"""kube.informer: the watch-following loop the cache and the catalog share, and stopping their tasks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from canaryflow.clock.backoff import Backoff
from canaryflow.kube import informer
from canaryflow.kube.api import WatchEvent
from canaryflow.kube.kinds import DEPLOYMENT, Kind
from tests.polling import until, wait_for

EVENT = WatchEvent("ADDED", {"metadata": {"namespace": "test", "name": "podinfo"}})


class ScriptedWatches:
    """Each ``watch`` plays the next script: ``"fail"`` raises, ``"end"`` ends the stream, an event is yielded,
    ``"hang"`` waits until cancelled."""

    def __init__(self, *scripts: list[Any]) -> None:
        self.scripts = list(scripts)
        self.started: list[tuple[Kind, str | None]] = []

    async def watch(self, kind: Kind, namespace: str | None = None) -> AsyncIterator[WatchEvent]:
        self.started.append((kind, namespace))
        for step in self.scripts.pop(0):
            if step == "fail":
                raise RuntimeError(f"watch {len(self.started)} failed")
            if step == "end":
                return
            if step == "hang":
                await asyncio.Event().wait()
            yield step


async def test_follow_hands_on_events_and_restarts_after_a_growing_pause() -> None:
    api = ScriptedWatches(["fail"], ["fail"], [EVENT, "end"], [EVENT, "hang"])
    handled: list[WatchEvent] = []
    lost: list[tuple[str | None, float, int]] = []

    async def handle(event: WatchEvent) -> None:
        handled.append(event)

    def report(exc: Exception | None, delay: float, failures: int) -> None:
        lost.append((None if exc is None else str(exc), delay, failures))

    restart = Backoff(first=0.001, cap=0.002)
    task = asyncio.create_task(informer.follow(api, DEPLOYMENT, "test", handle, report, restart))  # type: ignore[arg-type]
    await until(lambda: len(handled) == 2, "the events of the third and fourth watch")
    assert lost == [
        ("watch 1 failed", 0.001, 0),
        ("watch 2 failed", 0.002, 1),
        (None, 0.001, 0),  # the third delivered an event before it ended: its pause starts over
    ]
    assert api.started == [(DEPLOYMENT, "test")] * 4
    await wait_for(informer.stop([task]), "follow to stop")
    assert task.cancelled()


async def test_stop_cancels_every_task_and_waits_for_each() -> None:
    tasks = [asyncio.create_task(asyncio.sleep(3600)) for _ in range(3)]
    await wait_for(informer.stop(tasks), "the tasks to stop")
    assert all(task.cancelled() for task in tasks)
