"""The GitOps controller inside the local runtime: Flux objects and their status live in the runtime's object
store, git sources are fetched under the state directory, and Kustomizations apply through the same path as
``canaryflow apply`` (so a Deployment changed in git wakes its Canary exactly as a manual apply does)."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from canaryflow.api.flux.status import FluxStatus
from canaryflow.engine.effects import EventType
from canaryflow.gitops.controller import RECONCILERS
from canaryflow.gitops.controller.context import Context
from canaryflow.gitops.controller.diff import diff_kustomization
from canaryflow.gitops.controller.loop import GitOpsController, Timing
from canaryflow.gitops.controller.objects import FLUX_KINDS, Key, stored
from canaryflow.gitops.source.git import GitSource
from canaryflow.gitops.target.base import Support
from canaryflow.local.gitops_finalizer import LocalFinalizer
from canaryflow.local.gitops_target import HealthOf, LocalTarget
from canaryflow.local.objects import Change, ObjectStore
from canaryflow.store.base import Event, EventSink


class LocalFluxObjects:
    """canaryflow.gitops.controller.objects.FluxObjects over the local object store."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    async def list(self, kind: str) -> list[dict[str, Any]]:
        return self.store.list(kind)

    async def get(self, key: Key) -> dict[str, Any] | None:
        return self.store.get(key.kind, key.namespace, key.name)

    async def data(self, kind: str, namespace: str, name: str) -> dict[str, str] | None:
        body = self.store.get(kind, namespace, name)
        if body is None:
            return None
        data: dict[str, str] = {}
        for k, v in (body.get("data") or {}).items():
            data[k] = base64.b64decode(v).decode(errors="replace") if kind == "Secret" else str(v)
        data.update({k: str(v) for k, v in (body.get("stringData") or {}).items()})
        return data

    async def status(self, key: Key) -> dict[str, Any]:
        return self.store.status(key.kind, key.namespace, key.name)

    async def set_status(self, key: Key, status: FluxStatus) -> None:
        self.store.set_status(key.kind, key.namespace, key.name, stored(status))


class LocalGitOps:
    """The controller and its parts, wired for the local runtime."""

    def __init__(
        self,
        store: ObjectStore,
        root: Path,
        events: EventSink,
        on_change: Callable[[list[Change]], Awaitable[None]],
        timing: Timing | None = None,
        health: HealthOf | None = None,
    ) -> None:
        self.objects = LocalFluxObjects(store)
        self.target = LocalTarget(store, on_change, health=health)

        async def emit(subject: str, warning: bool, reason: str, message: str) -> None:
            kind = EventType.WARNING if warning else EventType.NORMAL
            await events.record(Event(self.ctx.clock.now(), subject, kind, message, reason))

        self.ctx = Context(
            objects=self.objects,
            source=GitSource(root / "sources"),
            target=self.target,
            workdir=root / "work",
            events=emit,
        )
        self.controller = GitOpsController(self.ctx, RECONCILERS, timing)
        self.finalizer = LocalFinalizer(store, self.controller)

    async def start(self) -> None:
        await self.controller.start()
        self.finalizer.resume()  # deletions a previous run did not finish

    async def close(self) -> None:
        await self.finalizer.close()
        await self.controller.close()

    async def changed(self, changes: list[Change]) -> None:
        """Track applied Flux objects; forget deleted ones, after a deleted Kustomization's finalization (what it
        applied is deleted when it said ``prune: true``, through the target, so the runtime reacts to each
        deletion as to ``canaryflow delete``; a Kustomization among them is finalized in turn). The store
        recorded the deletion durably (see :mod:`canaryflow.local.gitops_finalizer`): a failed delete is retried,
        and a crash in the middle is finished at the next start."""
        for change in changes:
            if change.kind not in FLUX_KINDS:
                continue
            key = Key(change.kind, change.namespace, change.name)
            if change.action == "deleted":
                await self.controller.forget(key)  # first: no reconcile may re-apply what is being deleted
                if change.kind == "Kustomization":
                    await self.finalizer.deleted(key, change.body)
            elif change.action in ("created", "configured"):
                self.controller.track(key)

    async def reconcile(self, key: Key, timeout: float) -> None:
        await self.controller.reconcile(key, timeout)

    def request(self, key: Key) -> None:
        self.controller.request(key)

    async def diff(self, key: Key) -> list[dict[str, Any]]:
        return await diff_kustomization(self.ctx, key)

    def provided(self, api_version: str, kind: str) -> bool:
        support, _ = self.target.support(api_version, kind)
        return support is Support.PROVIDED
