"""Deleting a Kustomization in the local runtime, as ``canaryflow delete`` does it: with ``prune: true`` what it
applied is deleted through the runtime's target (the runtime is told of each deletion, as of a manual delete),
Namespaces last, never what it did not apply or what is marked ``prune: disabled``; with ``prune: false``
everything stays.

The parts are the runtime's own: the SQLite object store, LocalGitOps with its git source fetching a real
repository, and the event sink; ``changed`` below forwards to LocalGitOps as ``LocalRuntime.changed`` does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from canaryflow.api.loader import Document
from canaryflow.gitops.controller.loop import Timing
from canaryflow.gitops.controller.objects import Key
from canaryflow.local.gitops import LocalGitOps
from canaryflow.local.objects import Change, ObjectStore
from canaryflow.store import sqlite
from tests.gitops.gitserver import Repo, RepoDir

APPS = Key("Kustomization", "flux-system", "apps")
DISABLED = {"kustomize.toolkit.fluxcd.io/prune": "disabled"}


def doc(body: dict[str, Any]) -> Document:
    return Document("test.yaml", 1, body)


def files() -> dict[str, str]:
    objects = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": "demo"},
         "data": {"greeting": "hello"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "keep", "namespace": "demo",
                                                               "annotations": DISABLED}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "demo"},
         "spec": {"ports": [{"port": 80}]}},
    ]  # fmt: skip
    return {"apps/demo.yaml": yaml.safe_dump_all(objects)}


def flux_objects(url: str, prune: bool) -> list[dict[str, Any]]:
    return [
        {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
         "metadata": {"name": "fleet", "namespace": "flux-system"},
         "spec": {"interval": "1h", "url": url, "ref": {"branch": "master"}}},
        {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
         "metadata": {"name": APPS.name, "namespace": APPS.namespace},
         "spec": {"interval": "1h", "path": "./apps", "prune": prune,
                  "sourceRef": {"kind": "GitRepository", "name": "fleet"}}},
    ]  # fmt: skip


class Runtime:
    """The local runtime's GitOps wiring over a real store, recording what it was told changed."""

    def __init__(self, root: Path) -> None:
        db = sqlite.connect(root / "state.db")
        self.store = ObjectStore(db)
        self.events = sqlite.SqliteEventSink(db)
        self.told: list[Change] = []
        self.gitops = LocalGitOps(self.store, root / "gitops", self.events, self.changed, Timing(scale=0.01))

    async def changed(self, changes: list[Change]) -> None:
        self.told.extend(changes)
        await self.gitops.changed(changes)

    async def apply(self, bodies: list[dict[str, Any]]) -> None:
        await self.changed(self.store.apply([doc(b) for b in bodies]))

    async def delete(self, key: Key) -> list[Change]:
        """``canaryflow delete`` of a Flux object."""
        body = self.store.get(key.kind, key.namespace, key.name)
        assert body is not None
        changes = self.store.delete([doc(body)])
        await self.changed(changes)
        return changes

    def names(self) -> list[str]:
        return sorted(f"{kind}/{o['metadata']['name']}" for kind in ("Namespace", "ConfigMap", "Service")
                      for o in self.store.list(kind))  # fmt: skip

    async def applied(self) -> None:
        for _ in range(400):
            status = self.store.status(APPS.kind, APPS.namespace, APPS.name)
            if status.get("lastAppliedRevision"):
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"the Kustomization never applied: {status}")


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return RepoDir(tmp_path / "repos").create("fleet", files())


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    running = Runtime(tmp_path / "state")
    await running.gitops.start()
    try:
        yield running
    finally:
        await running.gitops.close()


ALL = ["ConfigMap/keep", "ConfigMap/settings", "Namespace/demo", "Service/web"]


async def test_deleting_a_pruning_kustomization_deletes_what_it_applied(runtime: Runtime, repo: Repo) -> None:
    await runtime.apply(flux_objects(f"file://{repo.bare}", prune=True))
    await runtime.applied()
    # something the Kustomization never applied, in its namespace and labelled as if it had
    by_hand = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "by-hand", "namespace": "demo",
               "labels": {"kustomize.toolkit.fluxcd.io/name": "apps",
                          "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}}}  # fmt: skip
    await runtime.apply([by_hand])
    assert runtime.names() == ["ConfigMap/by-hand", *ALL]
    runtime.told.clear()

    deleted = await runtime.delete(APPS)

    assert [str(c) for c in deleted] == ["kustomization.kustomize.toolkit.fluxcd.io/apps deleted"]
    # what it applied is gone, the Namespace too (locally nothing cascades: what it still holds stays)
    assert runtime.names() == ["ConfigMap/by-hand", "ConfigMap/keep"]
    # the runtime was told of each deletion, Namespaces last, as after a `canaryflow delete`
    told = [(c.kind, c.name, c.action) for c in runtime.told]
    assert told[0] == ("Kustomization", "apps", "deleted")
    gc = told[1:]
    assert ("ConfigMap", "settings", "deleted") in gc and ("Service", "web", "deleted") in gc
    assert ("ConfigMap", "keep", "deleted") not in gc and ("ConfigMap", "by-hand", "deleted") not in gc
    assert gc[-1] == ("Namespace", "demo", "deleted") and len(gc) == 3
    assert APPS not in runtime.gitops.controller.keys
    events = await runtime.events.recent(str(APPS))
    collected = [e for e in events if e.reason == "GarbageCollectionSucceeded"]
    assert len(collected) == 1 and "ConfigMap/demo/settings deleted" in collected[0].message.splitlines()


async def test_deleting_a_kustomization_without_prune_leaves_everything(runtime: Runtime, repo: Repo) -> None:
    await runtime.apply(flux_objects(f"file://{repo.bare}", prune=False))
    await runtime.applied()
    assert runtime.names() == ALL
    runtime.told.clear()
    await runtime.delete(APPS)
    assert runtime.names() == ALL
    assert [(c.kind, c.action) for c in runtime.told] == [("Kustomization", "deleted")]
    assert APPS not in runtime.gitops.controller.keys
