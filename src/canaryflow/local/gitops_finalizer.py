"""Kustomization deletions in the local runtime, carried through a crash: the local runtime's finalizer.

Kubernetes keeps a deleted Kustomization (``deletionTimestamp``, Flux's finalizer) until what it applied is
garbage-collected; the local store has no finalizers, so it does the equivalent itself: the deletion of a
Kustomization writes a durable "finalizing" record (body and last status, in the same SQLite transaction as the
delete: :meth:`ObjectStore.hold_deletions`), and the record goes only when
:func:`~canaryflow.gitops.controller.kustomizations.finalize_kustomization` has deleted the whole inventory. The
first attempt runs as ``canaryflow delete`` returns; a failed delete is retried with backoff until it succeeds;
a runtime that stopped or died in the middle finds the record at its next start and finishes the job (deleting
an object already gone is not an error, so the same inventory is simply walked again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from canaryflow.gitops.controller.kustomizations import finalize_kustomization
from canaryflow.gitops.controller.loop import UNEXPECTED_FAILURE, GitOpsController
from canaryflow.gitops.controller.objects import Key
from canaryflow.local.objects import ObjectStore

log = logging.getLogger(__name__)

KIND = "Kustomization"


class LocalFinalizer:
    def __init__(self, store: ObjectStore, controller: GitOpsController) -> None:
        self.store, self.controller = store, controller
        self._tasks: dict[Key, asyncio.Task[None]] = {}
        store.hold_deletions(KIND)

    @property
    def pending(self) -> set[Key]:
        """The deleted Kustomizations whose finalization has not finished (as recorded in the store)."""
        return {Key.of(body) for body in self.store.finalizing(KIND)}

    def resume(self) -> None:
        """Finish, in the background, what a previous run left (it stopped or crashed mid-deletion)."""
        for body in self.store.finalizing(KIND):
            self._retry_later(Key.of(body), body, failures=0)

    async def deleted(self, key: Key, body: dict[str, Any]) -> None:
        """``key`` was just deleted (``body``: what the store held, with its last status). The first attempt
        runs now; if a delete fails, the retries run in the background."""
        if key in self._tasks:
            return
        try:
            if await self._attempt(key, body):
                return
        except Exception:  # the store or a delete failed unexpectedly: the record stays, retry
            log.exception("%s: finalization failed", key)
        self._retry_later(key, body, failures=1)

    async def close(self) -> None:
        """Stop retrying (the records stay: the next start resumes them)."""
        for task in list(self._tasks.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _attempt(self, key: Key, body: dict[str, Any]) -> bool:
        status = body.get("status")
        done = await finalize_kustomization(self.controller.ctx, key, body, status if isinstance(status, dict) else {})
        if done:
            self.store.finalized(key.kind, key.namespace, key.name)
        return done

    def _retry_later(self, key: Key, body: dict[str, Any], failures: int) -> None:
        if key in self._tasks:
            return
        task = asyncio.create_task(self._retry(key, body, failures), name=f"gitops finalize {key}")
        self._tasks[key] = task
        task.add_done_callback(lambda _: self._tasks.pop(key, None))

    async def _retry(self, key: Key, body: dict[str, Any], failures: int) -> None:
        timing, clock = self.controller.timing, self.controller.ctx.clock
        while True:
            if failures:
                await clock.sleep(timing.wait(UNEXPECTED_FAILURE.delay(failures + 1)))
            try:
                if await self._attempt(key, body):
                    return
            except Exception:
                log.exception("%s: finalization failed", key)
            failures += 1
