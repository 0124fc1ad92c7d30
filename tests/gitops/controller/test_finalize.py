"""A deleted Kustomization's finalization (shared by both runtimes): with ``prune: true`` what its last inventory
holds is deleted, with an event; ``prune: false`` or ``suspend: true`` leaves everything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from canaryflow.clock import FakeClock
from canaryflow.gitops.controller.context import Context
from canaryflow.gitops.controller.kustomizations import finalize_kustomization
from canaryflow.gitops.controller.objects import Key, MemoryObjects
from canaryflow.gitops.kustomize.inventory import entry
from canaryflow.gitops.source.memory import MemorySource
from canaryflow.gitops.target.base import ObjRef
from canaryflow.gitops.target.memory import MemoryTarget

APPS = Key("Kustomization", "flux-system", "apps")
OWN = {"kustomize.toolkit.fluxcd.io/name": "apps", "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}
NAMESPACE = ObjRef("v1", "Namespace", "", "prod")
DEPLOYMENT = ObjRef("apps/v1", "Deployment", "prod", "backend")
CONFIGMAP = ObjRef("v1", "ConfigMap", "prod", "ui")
INVENTORY = [NAMESPACE, DEPLOYMENT, CONFIGMAP]


class Parts:
    def __init__(self, tmp: Path) -> None:
        self.target = MemoryTarget()
        self.events: list[tuple[str, bool, str, str]] = []

        async def emit(subject: str, warning: bool, reason: str, message: str) -> None:
            self.events.append((subject, warning, reason, message))

        self.ctx = Context(objects=MemoryObjects(), source=MemorySource(tmp / "a"), target=self.target,
                           workdir=tmp / "w", clock=FakeClock(), events=emit)  # fmt: skip
        for ref in [*INVENTORY, ObjRef("v1", "ConfigMap", "prod", "by-hand")]:
            meta: dict[str, Any] = {"name": ref.name, "labels": OWN if ref.name != "by-hand" else {}}
            if ref.namespace:
                meta["namespace"] = ref.namespace
            self.target.put({"apiVersion": ref.api_version, "kind": ref.kind, "metadata": meta})

    async def live(self) -> list[str]:
        return sorted(str(ObjRef.of(obj)) for obj in self.target.objects.values())


def body(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": "apps", "namespace": "flux-system"},
            "spec": {"interval": "10m", "path": "./apps", "sourceRef": {"kind": "GitRepository", "name": "f"},
                     **spec}}  # fmt: skip


STATUS = {"inventory": {"entries": [entry(ref) for ref in INVENTORY]}}


async def test_prune_true_deletes_the_inventory_in_reverse_order_and_says_so(tmp_path: Path) -> None:
    parts = Parts(tmp_path)
    assert await finalize_kustomization(parts.ctx, APPS, body(prune=True), STATUS)
    assert parts.target.deleted == [DEPLOYMENT, CONFIGMAP, NAMESPACE]
    assert await parts.live() == ["ConfigMap/prod/by-hand"]  # never in the inventory: stays
    told = "Deployment/prod/backend deleted\nConfigMap/prod/ui deleted\nNamespace/prod deleted"
    assert parts.events == [(str(APPS), False, "GarbageCollectionSucceeded", told)]


@pytest.mark.parametrize("spec", [{"prune": False}, {"prune": True, "suspend": True}])
async def test_prune_false_or_suspended_leaves_everything(tmp_path: Path, spec: dict[str, Any]) -> None:
    parts = Parts(tmp_path)
    before = await parts.live()
    assert await finalize_kustomization(parts.ctx, APPS, body(**spec), STATUS)
    assert await parts.live() == before and parts.target.deleted == [] and parts.events == []


async def test_a_failed_delete_is_a_warning_and_a_retry_finishes(tmp_path: Path) -> None:
    parts = Parts(tmp_path)
    parts.target.failing_deletes.add(CONFIGMAP.id)
    assert not await finalize_kustomization(parts.ctx, APPS, body(prune=True), STATUS)
    warning = parts.events[-1]
    assert warning[1:3] == (True, "PruneFailed")
    assert "prune failed for ConfigMap/prod/ui" in warning[3] and "Namespace/prod" in warning[3]
    assert await parts.target.get(NAMESPACE) is not None  # the namespace is not deleted before what is in it
    parts.target.failing_deletes.clear()
    assert await finalize_kustomization(parts.ctx, APPS, body(prune=True), STATUS)
    assert await parts.live() == ["ConfigMap/prod/by-hand"]


async def test_an_unreadable_inventory_deletes_nothing(tmp_path: Path) -> None:
    parts = Parts(tmp_path)
    status = {"inventory": {"entries": [{"id": "garbage", "v": "v1"}]}}
    assert await finalize_kustomization(parts.ctx, APPS, body(prune=True), status)
    assert parts.target.deleted == []
    assert parts.events[-1][1:3] == (True, "PruneFailed") and "'garbage'" in parts.events[-1][3]
