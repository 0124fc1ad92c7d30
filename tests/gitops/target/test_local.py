"""The local runtime as a GitOps target: a real ObjectStore on SQLite; the runtime hears of what changed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from canaryflow.gitops.kustomize.reconcile import reconcile
from canaryflow.gitops.target.base import ApplyError, Health, ObjRef, Support
from canaryflow.local import objects
from canaryflow.local.gitops_target import LocalTarget
from canaryflow.store import sqlite
from tests.clocks import InstantClock
from tests.gitops.kustomizations import kustomization
from tests.gitops.kustomize.conftest import SEED, Repo


class Runtime:
    """Stands for the runtime's ``changed``: records each batch of changes it is told about."""

    def __init__(self) -> None:
        self.batches: list[list[tuple[str, str, str]]] = []

    async def changed(self, changes: list[objects.Change]) -> None:
        self.batches.append([(c.kind, c.name, c.action) for c in changes])


@pytest.fixture
def store(tmp_path: Path) -> objects.ObjectStore:
    return objects.ObjectStore(sqlite.connect(tmp_path / "state.db"))


@pytest.fixture
def runtime() -> Runtime:
    return Runtime()


@pytest.fixture
def target(store: objects.ObjectStore, runtime: Runtime) -> LocalTarget:
    return LocalTarget(store, runtime.changed)


def cm(name: str, value: str = "a") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "prod"},
        "data": {"v": value},
    }


@pytest.mark.parametrize(
    ("api_version", "kind", "support"),
    [
        ("apps/v1", "Deployment", Support.RUN),
        ("flagger.app/v1beta1", "Canary", Support.RUN),
        ("networking.istio.io/v1beta1", "Gateway", Support.PROVIDED),
        ("helm.toolkit.fluxcd.io/v2beta1", "HelmRelease", Support.PROVIDED),
        ("extensions/v1beta1", "Deployment", Support.UNSUPPORTED),
        ("networking.k8s.io/v1", "Ingress", Support.UNSUPPORTED),
    ],
)
def test_support_follows_the_store_s_kinds(target: LocalTarget, api_version: str, kind: str, support: Support) -> None:
    assert target.support(api_version, kind)[0] is support


def test_an_unsupported_kind_says_what_is_supported(target: LocalTarget) -> None:
    message = target.support("networking.k8s.io/v1", "Ingress")[1]
    assert "kind 'Ingress' is not supported by the local runtime" in message and "Deployment" in message


async def test_apply_writes_only_changes_and_tells_the_runtime(target: LocalTarget, runtime: Runtime) -> None:
    changes = await target.apply([cm("a"), cm("b")])
    assert [(str(c.ref), c.action) for c in changes] == [
        ("ConfigMap/prod/a", "created"),
        ("ConfigMap/prod/b", "created"),
    ]
    changes = await target.apply([cm("a"), cm("b", "changed")])
    assert [c.action for c in changes] == ["unchanged", "configured"]
    assert runtime.batches == [
        [("ConfigMap", "a", "created"), ("ConfigMap", "b", "created")],
        [("ConfigMap", "b", "configured")],
    ]
    await target.apply([cm("a"), cm("b", "changed")])
    assert len(runtime.batches) == 2  # nothing changed: the runtime is not woken


async def test_a_refused_object_refuses_the_whole_apply(target: LocalTarget, store: objects.ObjectStore) -> None:
    canary = {"apiVersion": "flagger.app/v1beta1", "kind": "Canary", "metadata": {"name": "bad", "namespace": "prod"},
              "spec": {}}  # fmt: skip
    with pytest.raises(ApplyError) as raised:
        await target.apply([cm("a"), canary])
    assert raised.value.problems and all(p.startswith("Canary/prod/bad") for p in raised.value.problems)
    assert store.get("ConfigMap", "prod", "a") is None


async def test_delete_and_health(store: objects.ObjectStore, runtime: Runtime) -> None:
    async def replicas(ref: ObjRef, live: dict[str, Any]) -> Health:
        return Health("in-progress", f"{ref.name}: 0 of 1 ready")

    target = LocalTarget(store, runtime.changed, replicas)
    ref = ObjRef("v1", "ConfigMap", "prod", "a")
    assert await target.health(ref) == Health("in-progress", "not found")
    await target.apply([cm("a")])
    assert await target.health(ref) == Health("in-progress", "a: 0 of 1 ready")
    assert await target.delete(ref) is True
    assert await target.delete(ref) is False
    assert runtime.batches[-1] == [("ConfigMap", "a", "deleted")]
    assert store.get("ConfigMap", "prod", "a") is None


async def test_the_seed_apps_reconcile_into_the_local_store(
    tmp_path: Path, target: LocalTarget, store: objects.ObjectStore, runtime: Runtime
) -> None:
    repo = Repo(SEED)
    spec = kustomization("apps", path="./apps", prune=True, wait=True)
    first = await reconcile(spec, repo.artifact(), [], target, clock=InstantClock())
    assert first.ready, first.message
    backend = store.get("Deployment", "prod", "backend")
    assert backend is not None
    assert backend["spec"]["template"]["spec"]["containers"][0]["image"] == "ghcr.io/stefanprodan/podinfo:6.1.0"
    assert [str(c.ref) for c in first.changes if c.action == "provided"] == ["Sidecar/prod/default"]
    assert {kind for batch in runtime.batches for kind, _, _ in batch} >= {"Deployment", "Canary", "Namespace"}
    batches = len(runtime.batches)
    second = await reconcile(spec, repo.artifact(), first.inventory, target, clock=InstantClock())
    assert second.ready and {c.action for c in second.changes} <= {"unchanged", "provided"}
    assert len(runtime.batches) == batches  # an unchanged revision changes nothing in the runtime


async def test_the_whole_seed_repository_applies_to_the_local_runtime(
    target: LocalTarget, store: objects.ObjectStore
) -> None:
    """clusters/my-cluster, then the three Kustomizations it declares, with istio-system's substituteFrom
    ConfigMap resolved as the controller would: Flux's kinds stored, the mesh's kinds provided, nothing refused."""
    repo, clock = Repo(SEED), InstantClock()
    cluster = kustomization("flux-system", path="./clusters/my-cluster", prune=True)
    outcome = await reconcile(cluster, repo.artifact(), [], target, clock=clock)
    assert outcome.ready, outcome.message
    version = store.get("ConfigMap", "flux-system", "istio-version")
    assert version is not None and store.get("Kustomization", "flux-system", "apps") is not None
    for name, path in [("istio-system", "./istio/system"), ("istio-gateway", "./istio/gateway"), ("apps", "./apps")]:
        spec = kustomization(name, path=path, prune=True, wait=True)
        outcome = await reconcile(spec, repo.artifact(), [], target, clock=clock, variables=version["data"])
        assert outcome.ready, f"{name}: {outcome.message}"
    istiod = store.get("HelmRelease", "istio-system", "istiod")
    assert istiod is not None and istiod["spec"]["chart"]["spec"]["version"] == "1.19.3"
    assert store.get("MetricTemplate", "istio-system", "latency") is not None
    assert store.get("Canary", "prod", "backend") is not None
