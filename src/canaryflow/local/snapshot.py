"""What the local runtime shows (objects in Kubernetes' shapes, canary status, events), built from the stores.

The runtime's API serves these shapes; when no runtime is running, ``DiskState`` builds the same ones from the
state directory's SQLite file, so that ``get``, ``describe`` and ``events`` still answer after ``down`` (or a
crash). Deployments read from disk have no ready replica and generated Services no endpoint: nothing runs.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from canaryflow.api.canary import Canary
from canaryflow.api.status import CanaryStatus
from canaryflow.local import state as state_mod
from canaryflow.local.objects import ObjectStore
from canaryflow.store import sqlite
from canaryflow.store.base import Event, EventSink, StatusStore

#: The resource names the CLI takes (kubectl's plural and singular), by kind.
KINDS = {
    "canaries": "Canary", "canary": "Canary", "deployments": "Deployment", "deployment": "Deployment",
    "deploy": "Deployment", "services": "Service", "service": "Service", "svc": "Service",
    "metrictemplates": "MetricTemplate", "metrictemplate": "MetricTemplate",
    "alertproviders": "AlertProvider", "alertprovider": "AlertProvider", "configmaps": "ConfigMap",
    "configmap": "ConfigMap", "secrets": "Secret", "secret": "Secret",
}  # fmt: skip
#: Events kept per page when filtering by namespace (the store keeps the last 10,000 in all).
SCAN = 10_000


def not_found(kind: str, namespace: str, name: str) -> str:
    """The one wording every command uses for a missing object."""
    return f"{kind} {namespace}/{name} not found" if namespace else f"{kind} {name} not found"


def unknown_kind(word: str, known: dict[str, str]) -> str:
    return f"unknown resource type {word!r}; known: {', '.join(sorted(known))}"


def as_list(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items}


def event_dict(e: Event) -> dict[str, Any]:
    return {"time": e.time, "object": e.canary, "type": e.type.value, "reason": e.reason, "message": e.message}


async def recent_events(sink: EventSink, canary: str | None, namespace: str | None, limit: int) -> list[dict[str, Any]]:
    """The last ``limit`` events of one canary (``namespace/name``), of one namespace, or of all."""
    if canary is not None or namespace is None:
        return [event_dict(e) for e in await sink.recent(canary, limit)]
    found = [e for e in await sink.recent(None, SCAN) if e.canary.startswith(f"{namespace}/")]
    return [event_dict(e) for e in found[-limit:]]


async def canaries_with_status(store: ObjectStore, status: StatusStore, namespace: str | None) -> list[dict[str, Any]]:
    items = store.list("Canary", namespace)
    for item in items:
        stored = await status.load(f"{item['metadata']['namespace']}/{item['metadata']['name']}")
        item["status"] = (stored.status if stored else CanaryStatus()).to_dict()
    return items


def deployments(
    store: ObjectStore, namespace: str | None, status_of: Callable[[str, str], dict[str, Any]]
) -> list[dict[str, Any]]:
    """Applied Deployments, and the ``<name>-primary`` copies the canaries made of them (as Flagger's)."""
    items = []
    targets = {(c.metadata.namespace, c.spec.target_ref.name) for c in canaries(store)}
    for item in store.list("Deployment", namespace):
        ns, name = item["metadata"]["namespace"], item["metadata"]["name"]
        item["status"] = status_of(ns, name)
        items.append(item)
        if (ns, name) in targets:
            primary = {**item, "metadata": {**item["metadata"], "name": f"{name}-primary"}}
            primary["status"] = status_of(ns, f"{name}-primary")
            items.append(primary)
    return items


def services(
    store: ObjectStore, namespace: str | None, endpoints_of: Callable[[str, str], list[str]]
) -> list[dict[str, Any]]:
    """The Services Flagger creates for each canary (apex, -primary, -canary) and the applied ones."""
    items = store.list("Service", namespace)
    for canary in canaries(store):
        ns = canary.metadata.namespace
        if namespace not in (None, ns):
            continue
        svc, target, port = canary.service_name, canary.spec.target_ref.name, canary.spec.service.port
        for name, workload in ((svc, f"{target}-primary"), (f"{svc}-primary", f"{target}-primary"),
                               (f"{svc}-canary", target)):  # fmt: skip
            items.append({
                "apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
                "spec": {"selector": {"app": workload}, "ports": [{"name": "http", "port": port}]},
                "status": {"endpoints": endpoints_of(ns, workload)},
            })  # fmt: skip
    return items


def canaries(store: ObjectStore) -> list[Canary]:
    return [Canary.model_validate(body) for body in store.list("Canary")]


def gitops_items(store: ObjectStore, kind: str, namespace: str | None) -> list[dict[str, Any]]:
    """Flux objects with the status their controller last wrote."""
    items = []
    for body in store.list(kind, namespace):
        meta = body["metadata"]
        items.append({**body, "status": store.status(kind, meta["namespace"], meta["name"])})
    return items


class DiskState:
    """The state a stopped runtime left in its state directory, read in the shapes its API serves."""

    def __init__(self, dirs: state_mod.StateDir) -> None:
        if not dirs.db.exists():
            raise FileNotFoundError(dirs.db)
        self.db: sqlite3.Connection = sqlite.connect(dirs.db)
        self.store = ObjectStore(self.db)
        self.status = sqlite.SqliteStatusStore(self.db)
        self.sink = sqlite.SqliteEventSink(self.db)

    async def objects(self, kind: str, namespace: str | None) -> list[dict[str, Any]]:
        if kind == "Canary":
            return await canaries_with_status(self.store, self.status, namespace)
        if kind == "Deployment":
            return deployments(self.store, namespace, lambda ns, name: _NOT_RUNNING)
        if kind == "Service":
            return services(self.store, namespace, lambda ns, name: [])
        return self.store.list(kind, namespace)

    async def events(self, canary: str | None, namespace: str | None, limit: int) -> list[dict[str, Any]]:
        return await recent_events(self.sink, canary, namespace, limit)

    def gitops(self, kind: str, namespace: str | None) -> list[dict[str, Any]]:
        return gitops_items(self.store, kind, namespace)

    def close(self) -> None:
        self.db.close()


_NOT_RUNNING = {"replicas": 0, "readyReplicas": 0, "updatedReplicas": 0, "availableReplicas": 0}
