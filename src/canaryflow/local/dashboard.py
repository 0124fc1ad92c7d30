"""The dashboard's Backend in the local runtime: canaries and events from the SQLite store, Flux objects from the
object store, operations through the status store and the scheduler, gates through the mesh proxy."""

from __future__ import annotations

import httpx

from canaryflow.dashboard import gates
from canaryflow.dashboard.base import Json, NotFound
from canaryflow.engine.machine import Operation
from canaryflow.local import api
from canaryflow.local.base import Runtime
from canaryflow.store.base import Event

FLUX_KINDS = ("GitRepository", "Kustomization", "ImageRepository", "ImagePolicy", "ImageUpdateAutomation")


class LocalBackend:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.prometheus: str | None = runtime.endpoints()["prometheus"]

    async def canaries(self) -> list[Json]:
        return await api.listing(self.runtime, "Canary", None)

    async def events(self, canary: str | None, limit: int) -> list[Event]:
        return await self.runtime.events.recent(canary, limit)

    async def gitops(self) -> dict[str, list[Json]]:
        objects = self.runtime.objects
        found: dict[str, list[Json]] = {}
        for kind in FLUX_KINDS:
            found[kind] = []
            for body in objects.list(kind):
                meta = body["metadata"]
                found[kind].append({**body, "status": objects.status(kind, meta["namespace"], meta["name"])})
        return found

    async def operate(self, canary: str, operation: Operation) -> None:
        if canary not in self.runtime.canaries.keys:
            raise NotFound(f"canary {canary} not found")
        await self.runtime.status_store.request(canary, operation)
        self.runtime.canaries.wake(canary)

    async def gate(self, canary: str, webhook: str, open_: bool) -> str:
        body = next((c for c in await self.canaries() if _key(c) == canary), None)
        if body is None:
            raise NotFound(f"canary {canary} not found")
        mesh = httpx.AsyncHTTPTransport(proxy=self.runtime.endpoints()["meshProxy"])
        return await gates.toggle(mesh, body, webhook, open_)


def _key(body: Json) -> str:
    return f"{body['metadata']['namespace']}/{body['metadata']['name']}"
