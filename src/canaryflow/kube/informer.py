"""What the watch cache and the catalog share, as informers: a watch followed until cancelled, started again after
a pause that grows while it keeps failing, and the tasks that follow them stopped together."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence

from canaryflow.clock.backoff import Backoff
from canaryflow.kube.api import Api, WatchEvent
from canaryflow.kube.kinds import Kind


async def follow(
    api: Api,
    kind: Kind,
    namespace: str | None,
    handle: Callable[[WatchEvent], Awaitable[None]],
    lost: Callable[[Exception | None, float, int], None],
    restart: Backoff,
) -> None:
    """Hand every event of the watch of ``kind`` in ``namespace`` (None: all) to ``handle``, until cancelled. A
    watch that fails (or ends) is reported to ``lost`` (its exception, None when it just ended; the pause before
    the next start; how many starts in a row failed before it) and started again after the pause."""
    failures = 0
    while True:
        problem: Exception | None = None
        try:
            async for event in api.watch(kind, namespace):
                failures = 0
                await handle(event)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any failure: the caller says what becomes of what the watch delivered
            problem = exc
        delay = restart.delay(failures + 1)
        lost(problem, delay, failures)
        failures += 1
        await asyncio.sleep(delay)


async def stop(tasks: Sequence[asyncio.Task[None]]) -> None:
    """Cancel ``tasks`` and wait until each has ended."""
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
