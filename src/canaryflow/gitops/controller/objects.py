"""The FluxObjects seam: where the GitOps controller reads Flux objects and writes their status.

The local runtime keeps them in its SQLite object store, the Kubernetes runtime in the API server (status
subresource). Both give the controller the same small view: list and get objects of the Flux kinds, read the
data of a ConfigMap or Secret (for ``secretRef`` and ``substituteFrom``), and persist an object's status, which
holds the Kustomization's inventory: a prune after a crash still knows what it applied.

A status is written as the typed model of :mod:`canaryflow.api.flux.status` and serialised once, by the store,
with :func:`stored` (Flux's shape: camelCase, unset fields left out); it is read back as that JSON.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any, Protocol

from canaryflow.api.flux.status import FluxStatus

#: The kinds the controller reconciles, by kind: their API group.
FLUX_KINDS: dict[str, str] = {
    "GitRepository": "source.toolkit.fluxcd.io",
    "Kustomization": "kustomize.toolkit.fluxcd.io",
    "ImageRepository": "image.toolkit.fluxcd.io",
    "ImagePolicy": "image.toolkit.fluxcd.io",
    "ImageUpdateAutomation": "image.toolkit.fluxcd.io",
    "Receiver": "notification.toolkit.fluxcd.io",
}


@dataclasses.dataclass(frozen=True, order=True, slots=True)
class Key:
    kind: str
    namespace: str
    name: str

    @classmethod
    def of(cls, body: dict[str, Any]) -> Key:
        meta = body.get("metadata") or {}
        return cls(str(body.get("kind")), str(meta.get("namespace") or "default"), str(meta.get("name")))

    def __str__(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"


class FluxObjects(Protocol):
    async def list(self, kind: str) -> list[dict[str, Any]]:
        """Every object of ``kind`` in every namespace."""
        ...

    async def get(self, key: Key) -> dict[str, Any] | None: ...

    async def data(self, kind: str, namespace: str, name: str) -> dict[str, str] | None:
        """The decoded ``data`` (and ``stringData``) of a ConfigMap or Secret; None when it does not exist."""
        ...

    async def status(self, key: Key) -> dict[str, Any]:
        """The stored status ({} when none)."""
        ...

    async def set_status(self, key: Key, status: FluxStatus) -> None:
        """Replace the stored status with ``status``, serialised by :func:`stored`."""
        ...


def stored(status: FluxStatus) -> dict[str, Any]:
    """``status`` as every store keeps it and the API serves it: JSON, camelCase, unset fields left out."""
    return status.to_dict()


class MemoryObjects:
    """Objects in dictionaries: for tests and the simulator."""

    def __init__(self) -> None:
        self.objects: dict[Key, dict[str, Any]] = {}
        self.configs: dict[tuple[str, str, str], dict[str, str]] = {}
        self.statuses: dict[Key, dict[str, Any]] = {}
        self.status_writes = 0

    def put(self, body: dict[str, Any]) -> Key:
        key = Key.of(body)
        old = self.objects.get(key)
        meta = dict(body.get("metadata") or {})
        meta.setdefault("namespace", key.namespace)
        generation = int((old or {}).get("metadata", {}).get("generation", 0))
        if old is None or old.get("spec") != body.get("spec"):
            generation += 1
        meta["generation"] = generation
        self.objects[key] = {**copy.deepcopy(body), "metadata": meta}
        return key

    def put_config(self, kind: str, namespace: str, name: str, data: dict[str, str]) -> None:
        self.configs[(kind, namespace, name)] = dict(data)

    async def list(self, kind: str) -> list[dict[str, Any]]:
        return [copy.deepcopy(body) for key, body in sorted(self.objects.items()) if key.kind == kind]

    async def get(self, key: Key) -> dict[str, Any] | None:
        body = self.objects.get(key)
        return copy.deepcopy(body) if body is not None else None

    async def data(self, kind: str, namespace: str, name: str) -> dict[str, str] | None:
        found = self.configs.get((kind, namespace, name))
        return dict(found) if found is not None else None

    async def status(self, key: Key) -> dict[str, Any]:
        return copy.deepcopy(self.statuses.get(key, {}))

    async def set_status(self, key: Key, status: FluxStatus) -> None:
        self.status_writes += 1
        self.statuses[key] = stored(status)
