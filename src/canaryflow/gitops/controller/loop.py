"""The GitOps controller: one task per Flux object, each reconciling at its interval, on demand (CLI, Receiver,
a changed object) or when an object it builds on changes (a new artifact wakes its Kustomizations, a ready
Kustomization its dependents, a new tag its policies, a new latest image its automations).

One object's failure never stops another's task; a failed reconcile is retried with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from typing import Any

from canaryflow.api.flux import common as flux
from canaryflow.clock.backoff import Backoff
from canaryflow.gitops.controller.context import Context, Reconciler, Result
from canaryflow.gitops.controller.objects import FLUX_KINDS, Key

log = logging.getLogger(__name__)

#: After a reconciler raised (a bug, an unexpected error), and between a finalizer's failed attempts.
UNEXPECTED_FAILURE = Backoff(first=2.0, cap=60.0)


@dataclasses.dataclass(frozen=True, slots=True)
class Timing:
    """``scale`` shortens every wait (tests, demos); ``floor`` is the shortest wait between two runs."""

    scale: float = 1.0
    floor: float = 0.0

    def wait(self, seconds: float) -> float:
        return max(self.floor, seconds * self.scale)


class GitOpsController:
    def __init__(self, ctx: Context, reconcilers: dict[str, Reconciler], timing: Timing | None = None) -> None:
        unknown = set(reconcilers) - set(FLUX_KINDS)
        if unknown:
            raise ValueError(f"no such Flux kind: {', '.join(sorted(unknown))}")
        self.ctx = ctx
        self.reconcilers = reconcilers
        self.timing = timing or Timing()
        self._tasks: dict[Key, asyncio.Task[None]] = {}
        self._wake: dict[Key, asyncio.Event] = {}
        self._done: dict[Key, list[asyncio.Future[None]]] = {}
        self.runs = 0

    @property
    def keys(self) -> list[Key]:
        return sorted(self._tasks)

    async def start(self) -> None:
        """Track every stored object of the kinds this controller reconciles."""
        for kind in self.reconcilers:
            for body in await self.ctx.objects.list(kind):
                self.track(Key.of(body))

    def track(self, key: Key) -> None:
        """Reconcile ``key`` now and at its interval from then on (an applied or changed object)."""
        if key.kind not in self.reconcilers:
            return
        if key in self._tasks:
            self.request(key)
            return
        self._wake[key] = asyncio.Event()
        self._tasks[key] = asyncio.create_task(self._worker(key), name=f"gitops {key}")

    def request(self, key: Key) -> bool:
        """Reconcile ``key`` as soon as its task is free; False when it is not tracked."""
        event = self._wake.get(key)
        if event is None:
            return False
        event.set()
        return True

    async def reconcile(self, key: Key, timeout: float | None = None) -> None:
        """Request a reconcile of ``key`` and wait until one has finished (``canaryflow reconcile``)."""
        if key not in self._tasks:
            raise KeyError(f"{key} is not known")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._done.setdefault(key, []).append(done)
        self.request(key)
        async with asyncio.timeout(timeout):
            await done

    async def forget(self, key: Key) -> None:
        task = self._tasks.pop(key, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._wake.pop(key, None)
        for waiter in self._done.pop(key, []):
            if not waiter.done():
                waiter.set_exception(KeyError(f"{key} was deleted"))
        self.ctx.artifacts.pop(key, None)
        self.ctx.tags.pop(key, None)

    async def close(self) -> None:
        for key in list(self._tasks):
            await self.forget(key)

    async def _worker(self, key: Key) -> None:
        failures = 0
        wake = self._wake[key]
        while True:
            wake.clear()
            waiters, self._done[key] = self._done.get(key, []), []
            body = await self.ctx.objects.get(key)
            # Deleted under us (the runtime's forget() ends this task), or suspended: wait for a change.
            if body is None or (body.get("spec") or {}).get("suspend") is True:
                result = Result(3600.0)
            else:
                result = await self._run(key, body, failures)
                failures = failures + 1 if result.failed else 0
            self.runs += 1
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
            for other in result.wake:
                if other != key and not self.request(other):
                    self.track(other)
            await self._pause(wake, self.timing.wait(result.requeue))

    async def _pause(self, wake: asyncio.Event, seconds: float) -> None:
        """Until ``wake`` is set or ``seconds`` have passed on the Clock (a FakeClock in tests)."""
        sleeper = asyncio.create_task(self.ctx.clock.sleep(seconds))
        waker = asyncio.create_task(wake.wait())
        try:
            await asyncio.wait((sleeper, waker), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, waker):
                task.cancel()

    async def _run(self, key: Key, body: dict[str, Any], failures: int) -> Result:
        try:
            return await self.reconcilers[key.kind](self.ctx, key, body, failures)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug or an unexpected error: keep this object's loop alive, say why
            log.exception("%s: reconcile failed", key)
            await self.ctx.emit(key, True, flux.RECONCILIATION_FAILED, f"{type(exc).__name__}: {exc}")
            return Result(UNEXPECTED_FAILURE.delay(failures + 1), failed=True)
