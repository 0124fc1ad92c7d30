"""The dashboard's Backend in the operator: Canaries and Events from the API server, operations as
the ``canaryflow.dev/operation`` annotation (``KubeStatusStore.request``), gates straight to the load tester."""

from __future__ import annotations

from canaryflow.dashboard import gates
from canaryflow.dashboard.base import Json, NotFound
from canaryflow.engine.machine import Operation
from canaryflow.kube.client import CANARY, Api
from canaryflow.kube.client import NotFound as ApiNotFound
from canaryflow.kube.store import KubeEventSink, KubeStatusStore, split_key
from canaryflow.store.base import Event


class KubeBackend:
    def __init__(self, api: Api, namespaces: tuple[str, ...], prometheus: str | None) -> None:
        self.api = api
        self.namespaces = namespaces
        self.prometheus = prometheus
        self._store = KubeStatusStore(api)
        self._events = KubeEventSink(api)

    async def canaries(self) -> list[Json]:
        found: list[Json] = []
        for namespace in self.namespaces or (None,):
            found += await self.api.list(CANARY, namespace)
        return found

    async def events(self, canary: str | None, limit: int) -> list[Event]:
        if canary is None and self.namespaces:
            found: list[Event] = []
            for namespace in self.namespaces:
                found += [e for e in await self._events.recent(None, limit) if e.canary.startswith(namespace + "/")]
            return sorted(found, key=lambda e: e.time)[-limit:]
        return await self._events.recent(canary, limit)

    async def gitops(self) -> dict[str, list[Json]]:
        """Nothing: Flux's objects belong to the gitops-controller, a Deployment of its own with its own RBAC; the
        operator's role grants no access to them (tests/deploy holds it to what its code calls)."""
        return {}

    async def operate(self, canary: str, operation: Operation) -> None:
        await self._canary(canary)
        try:
            await self._store.request(canary, operation)
        except ApiNotFound as exc:
            raise NotFound(f"canary {canary} not found") from exc

    async def gate(self, canary: str, webhook: str, open_: bool) -> str:
        return await gates.toggle(None, await self._canary(canary), webhook, open_)

    async def _canary(self, key: str) -> Json:
        try:
            namespace, name = split_key(key)
        except ValueError as exc:
            raise NotFound(str(exc)) from None
        if self.namespaces and namespace not in self.namespaces:
            raise NotFound(f"canary {key} not found (the operator watches {', '.join(self.namespaces)})")
        body = await self.api.get(CANARY, namespace, name)
        if body is None:
            raise NotFound(f"canary {key} not found")
        return body
