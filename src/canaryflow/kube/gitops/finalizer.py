"""Flux's finalizer on Kustomizations: a deleted Kustomization stays in the API server (``deletionTimestamp``
set) until what it applied has been garbage-collected, then the finalizer is removed and the object goes.

As kustomize-controller does, the finalizer is added before the first reconcile, so nothing is applied that a
deletion could leave behind; a Kustomization that existed before canaryflow followed it gets it at the first
list. What the finalization deletes is decided in :func:`canaryflow.gitops.controller.kustomizations.
finalize_kustomization` (shared with the local runtime); this module only holds the object until it is done, and
retries with backoff while a delete fails (the finalizer stays meanwhile, as in Flux). A controller restarted
during a deletion finds the object still there, still deleting, and finishes the job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from canaryflow.gitops.controller.kustomizations import finalize_kustomization
from canaryflow.gitops.controller.loop import UNEXPECTED_FAILURE, GitOpsController
from canaryflow.gitops.controller.objects import Key
from canaryflow.kube.client import Api, Kind
from canaryflow.kube.errors import ApiError, NotFound

log = logging.getLogger(__name__)

#: The finalizer kustomize-controller puts on every Kustomization (``KustomizationFinalizer`` in its API).
FINALIZER = "finalizers.fluxcd.io"


class KustomizationFinalizer:
    def __init__(self, api: Api, controller: GitOpsController, kind: Kind) -> None:
        self.api, self.controller, self.kind = api, controller, kind
        self._tasks: dict[Key, asyncio.Task[None]] = {}

    async def observe(self, key: Key, body: dict[str, Any]) -> bool:
        """Called for every Kustomization the watch sees (not deleted yet). Adds the finalizer to a live one
        (False: reconcile it); forgets a deleting one and finalizes it (True: do not reconcile it)."""
        meta = body.get("metadata") or {}
        finalizers = list(meta.get("finalizers") or [])
        if not meta.get("deletionTimestamp"):
            if FINALIZER not in finalizers:
                await self._add(key, meta, finalizers)
            return False
        await self.controller.forget(key)  # no reconcile may re-apply what is being deleted
        if FINALIZER in finalizers and key not in self._tasks:
            task = asyncio.create_task(self._finalize(key), name=f"gitops finalize {key}")
            self._tasks[key] = task
            task.add_done_callback(lambda _: self._tasks.pop(key, None))
        return True

    async def close(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _add(self, key: Key, meta: dict[str, Any], finalizers: list[str]) -> None:
        """Append the finalizer, guarded by the resourceVersion just seen: a lost race is answered by the
        watch event of the write that won, which brings the object here again."""
        patch: list[dict[str, Any]] = [
            {"op": "test", "path": "/metadata/resourceVersion", "value": meta.get("resourceVersion")},
            {"op": "add", "path": "/metadata/finalizers", "value": [*finalizers, FINALIZER]},
        ]
        try:
            await self.api.patch(self.kind, key.namespace, key.name, patch, type="json")
        except ApiError as exc:
            log.info("%s: finalizer not added (%s); the next event retries", key, exc)

    async def _finalize(self, key: Key) -> None:
        failures = 0
        while True:
            try:
                body = await self.api.get(self.kind, key.namespace, key.name)
                meta = (body or {}).get("metadata") or {}
                if body is None or FINALIZER not in (meta.get("finalizers") or []):
                    return
                status = body.get("status")
                done = await finalize_kustomization(
                    self.controller.ctx, key, body, status if isinstance(status, dict) else {}
                )
                if done and await self._remove(key, list(meta["finalizers"])):
                    return
            except asyncio.CancelledError:
                raise
            except Exception:  # the API server unreachable, an event refused: the finalizer stays, try again
                log.exception("%s: finalization failed", key)
            failures += 1
            await self.controller.ctx.clock.sleep(self.controller.timing.wait(UNEXPECTED_FAILURE.delay(failures + 1)))

    async def _remove(self, key: Key, finalizers: list[str]) -> bool:
        """Remove only this finalizer, only if the list is still the one read (others' finalizers stay)."""
        patch = [
            {"op": "test", "path": "/metadata/finalizers", "value": finalizers},
            {"op": "replace", "path": "/metadata/finalizers", "value": [f for f in finalizers if f != FINALIZER]},
        ]
        try:
            await self.api.patch(self.kind, key.namespace, key.name, patch, type="json")
        except NotFound:
            return True
        except ApiError as exc:
            log.info("%s: finalizer not removed (%s); retrying", key, exc)
            return False
        return True
