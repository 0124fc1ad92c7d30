"""Deleting a Kustomization in the local runtime, as ``canaryflow delete`` does it: with ``prune: true`` what it
applied is deleted through the runtime's target (the runtime is told of each deletion, as of a manual delete),
Namespaces last, never what it did not apply or what is marked ``prune: disabled``; a failed delete is retried and a
deletion interrupted by a crash is finished at the next start (the store records it durably); with ``prune: false``
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
from tests.polling import until

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


class Crash(BaseException):
    """The process dying mid-prune: not an Exception, so no handler catches and retries it."""


async def test_a_deletion_interrupted_mid_prune_is_finished_by_the_next_start(tmp_path: Path, repo: Repo) -> None:
    first = Runtime(tmp_path / "state")
    await first.gitops.start()
    await first.apply(flux_objects(f"file://{repo.bare}", prune=True))
    await first.applied()
    deleting, done = first.gitops.target.delete, []

    async def dying(ref: Any) -> bool:
        if done:  # one object deleted: the process dies before the next
            raise Crash
        done.append(ref)
        return await deleting(ref)

    first.gitops.target.delete = dying  # type: ignore[method-assign]
    with pytest.raises(Crash):
        await first.delete(APPS)
    assert len(done) == 1 and len(first.names()) == len(ALL) - 1
    await first.gitops.close()
    first.store.db.close()

    # a new process on the same state: the deletion was recorded before the first delete, and is finished
    second = Runtime(tmp_path / "state")
    assert second.store.get(APPS.kind, APPS.namespace, APPS.name) is None
    assert second.gitops.finalizer.pending == {APPS}
    await second.gitops.start()
    try:
        await until(lambda: second.names() == ["ConfigMap/keep"], "the rest of the inventory deleted")
        await until(lambda: not second.gitops.finalizer.pending, "the finalizing record cleared")
    finally:
        await second.gitops.close()
    assert ("Namespace", "demo", "deleted") in [(c.kind, c.name, c.action) for c in second.told]


async def test_a_failed_delete_is_retried_until_the_inventory_is_gone(runtime: Runtime, repo: Repo) -> None:
    await runtime.apply(flux_objects(f"file://{repo.bare}", prune=True))
    await runtime.applied()
    deleting, refused = runtime.gitops.target.delete, []

    async def refusing_once(ref: Any) -> bool:
        if ref.kind == "Service" and not refused:
            refused.append(ref)
            raise OSError("disk full")
        return await deleting(ref)

    runtime.gitops.target.delete = refusing_once  # type: ignore[method-assign]
    await runtime.delete(APPS)  # returns after the first attempt; the retry runs in the background
    assert refused and APPS in runtime.gitops.finalizer.pending
    await until(lambda: runtime.names() == ["ConfigMap/keep"], "the inventory deleted by a retry")
    await until(lambda: not runtime.gitops.finalizer.pending, "the finalizing record cleared")
    events = await runtime.events.recent(str(APPS))
    assert [e.reason for e in events if e.reason == "PruneFailed"] == ["PruneFailed"]
    failed = next(e for e in events if e.reason == "PruneFailed")
    assert "disk full" in failed.message and "Service/demo/web" in failed.message
