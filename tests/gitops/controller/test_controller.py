"""The GitOps controller over in-memory parts: sources, kustomizations, dependencies, failures, receivers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from canaryflow.clock import FakeClock
from canaryflow.gitops.controller import RECONCILERS
from canaryflow.gitops.controller.context import Context
from canaryflow.gitops.controller.diff import diff_kustomization
from canaryflow.gitops.controller.loop import GitOpsController
from canaryflow.gitops.controller.objects import Key, MemoryObjects
from canaryflow.gitops.image import MemoryRegistry
from canaryflow.gitops.receiver import webhook_path
from canaryflow.gitops.source.memory import MemorySource
from canaryflow.gitops.target.base import ObjRef
from canaryflow.gitops.target.memory import MemoryTarget
from tests.kube.schemas import validate_flux_status
from tests.polling import until

URL = "https://git.example/fleet.git"
REPO = Key("GitRepository", "flux-system", "flux-system")
APPS = Key("Kustomization", "flux-system", "apps")
INFRA = Key("Kustomization", "flux-system", "infra")


def configmap(name: str, value: str, namespace: str = "prod") -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace},
            "data": {"v": value},
        }
    )


def repository() -> dict[str, Any]:
    return {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": REPO.name, "namespace": REPO.namespace},
        "spec": {"interval": "1m", "url": URL, "ref": {"branch": "main"}},
    }


def kustomization(key: Key, path: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": key.name, "namespace": key.namespace},
        "spec": {
            "interval": "10m",
            "path": path,
            "prune": True,
            "sourceRef": {"kind": "GitRepository", "name": REPO.name},
            **spec,
        },
    }


class World:
    def __init__(self, tmp: Path) -> None:
        self.objects = MemoryObjects()
        self.source = MemorySource(tmp / "artifacts")
        self.target = MemoryTarget(provided={"HelmRelease"})
        self.registry = MemoryRegistry()
        self.clock = FakeClock()
        self.ctx = Context(
            objects=self.objects,
            source=self.source,
            target=self.target,
            workdir=tmp / "work",
            clock=self.clock,
            registry=self.registry,
        )
        self.controller = GitOpsController(self.ctx, RECONCILERS)

    async def add(self, body: dict[str, Any]) -> Key:
        key = self.objects.put(body)
        self.controller.track(key)
        return key

    async def settle(self, *keys: Key) -> None:
        for key in keys:
            await self.controller.reconcile(key, timeout=10)

    def ready(self, key: Key) -> dict[str, Any]:
        status = self.objects.statuses.get(key, {})
        return next(c for c in status["conditions"] if c["type"] == "Ready")

    def live(self, name: str) -> dict[str, Any] | None:
        return self.target.objects.get(ObjRef("v1", "ConfigMap", "prod", name).id)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    w = World(tmp_path)
    yield w
    await w.controller.close()
    for key, status in w.objects.statuses.items():  # every status written is one Flux's CRD declares
        validate_flux_status(key.kind, status)


async def test_a_commit_is_applied_and_the_status_says_which_revision(world: World) -> None:
    sha = world.source.commit(URL, branch="main", files={"apps/a.yaml": configmap("a", "1")})
    await world.add(repository())
    await world.add(kustomization(APPS, "./apps"))
    await world.settle(REPO, APPS)
    assert world.ready(APPS)["status"] == "True"
    assert world.ready(APPS)["message"] == f"Applied revision: main@sha1:{sha}"
    assert world.objects.statuses[APPS]["lastAppliedRevision"] == f"main@sha1:{sha}"
    assert world.objects.statuses[APPS]["inventory"]["entries"] == [{"id": "prod_a__ConfigMap", "v": "v1"}]
    assert world.live("a")["data"] == {"v": "1"}


async def test_a_new_commit_wakes_the_kustomization_and_prunes_what_was_removed(world: World) -> None:
    world.source.commit(
        URL, branch="main", files={"apps/a.yaml": configmap("a", "1"), "apps/b.yaml": configmap("b", "1")}
    )
    await world.add(repository())
    await world.add(kustomization(APPS, "./apps"))
    await world.settle(REPO, APPS)
    sha = world.source.commit(URL, branch="main", files={"apps/a.yaml": configmap("a", "2")})
    await world.settle(REPO)  # only the source is asked: the new artifact must wake the Kustomization
    for _ in range(200):
        if world.objects.statuses[APPS].get("lastAppliedRevision") == f"main@sha1:{sha}":
            break
        await world.settle(APPS)
    assert world.live("a")["data"] == {"v": "2"}
    assert world.live("b") is None


async def test_a_dependency_holds_the_dependent_until_it_has_applied_the_same_revision(world: World) -> None:
    world.source.commit(
        URL, branch="main", files={"infra/ns.yaml": configmap("infra", "1"), "apps/a.yaml": configmap("a", "1")}
    )
    await world.add(repository())
    await world.settle(REPO)
    await world.add(kustomization(APPS, "./apps", dependsOn=[{"name": "infra"}]))
    await world.settle(APPS)
    assert world.ready(APPS)["reason"] == "DependencyNotReady"
    assert "infra" in world.ready(APPS)["message"]
    assert world.live("a") is None
    await world.add(kustomization(INFRA, "./infra"))
    await world.settle(INFRA, APPS)
    assert world.ready(APPS)["status"] == "True"
    assert world.live("a") is not None


async def test_a_broken_revision_applies_nothing_and_the_last_good_one_keeps_running(world: World) -> None:
    world.source.commit(URL, branch="main", files={"apps/a.yaml": configmap("a", "1")})
    await world.add(repository())
    await world.add(kustomization(APPS, "./apps"))
    await world.settle(REPO, APPS)
    good = world.objects.statuses[APPS]["lastAppliedRevision"]
    bad = world.source.commit(
        URL, branch="main", files={"apps/a.yaml": configmap("a", "2"), "apps/broken.yaml": "kind: [unclosed\n"}
    )
    await world.settle(REPO, APPS)
    ready = world.ready(APPS)
    assert (ready["status"], ready["reason"]) == ("False", "BuildFailed")
    assert "broken.yaml" in ready["message"]
    assert world.live("a")["data"] == {"v": "1"}
    status = world.objects.statuses[APPS]
    assert status["lastAppliedRevision"] == good
    assert status["lastAttemptedRevision"] == f"main@sha1:{bad}"
    assert status["inventory"]["entries"] == [{"id": "prod_a__ConfigMap", "v": "v1"}]


async def test_an_unreachable_source_is_not_ready_with_the_reason_and_recovers(world: World) -> None:
    world.source.commit(URL, branch="main", files={"apps/a.yaml": configmap("a", "1")})
    world.source.fail(URL, "connection refused")
    await world.add(repository())
    await world.settle(REPO)
    ready = world.ready(REPO)
    assert (ready["status"], ready["reason"]) == ("False", "GitOperationFailed")
    assert "connection refused" in ready["message"]
    world.source.fail(URL, None)
    await world.settle(REPO)
    assert world.ready(REPO)["status"] == "True"


async def test_a_kustomization_without_its_source_says_so(world: World) -> None:
    await world.add(kustomization(APPS, "./apps"))
    await world.settle(APPS)
    ready = world.ready(APPS)
    assert (ready["status"], ready["reason"]) == ("False", "ArtifactFailed")
    assert "flux-system/flux-system" in ready["message"]


async def test_substitute_from_a_configmap_with_the_inline_map_winning(world: World) -> None:
    text = configmap("a", "${version}-${tier:=free}")
    world.source.commit(URL, branch="main", files={"apps/a.yaml": text})
    world.objects.put_config("ConfigMap", "flux-system", "vars", {"version": "1.19", "tier": "gold"})
    await world.add(repository())
    await world.add(
        kustomization(
            APPS,
            "./apps",
            postBuild={"substitute": {"version": "2.0"}, "substituteFrom": [{"kind": "ConfigMap", "name": "vars"}]},
        )
    )
    await world.settle(REPO, APPS)
    assert world.live("a")["data"] == {"v": "2.0-gold"}


async def test_diff_lists_drift_and_reconcile_corrects_it(world: World) -> None:
    world.source.commit(URL, branch="main", files={"apps/a.yaml": configmap("a", "1")})
    await world.add(repository())
    await world.add(kustomization(APPS, "./apps"))
    await world.settle(REPO, APPS)
    assert await diff_kustomization(world.ctx, APPS) == []
    world.target.edit(ObjRef("v1", "ConfigMap", "prod", "a"), lambda obj: obj["data"].update(v="edited"))
    differences = await diff_kustomization(world.ctx, APPS)
    assert [d["object"] for d in differences] == ["ConfigMap/prod/a"]
    assert differences[0]["lines"] == ['data.v: "edited" → "1"']
    await world.settle(APPS)
    assert world.live("a")["data"] == {"v": "1"}
    assert await diff_kustomization(world.ctx, APPS) == []


async def test_an_unchanged_revision_writes_nothing(world: World) -> None:
    world.source.commit(URL, branch="main", files={"apps/a.yaml": configmap("a", "1")})
    await world.add(repository())
    await world.add(kustomization(APPS, "./apps"))
    await world.settle(REPO, APPS)
    writes, status_writes = world.target.writes, world.objects.status_writes
    await world.settle(REPO, APPS)
    assert (world.target.writes, world.objects.status_writes) == (writes, status_writes)


async def test_a_receiver_publishes_its_webhook_path(world: World) -> None:
    world.objects.put_config("Secret", "flux-system", "token", {"token": "abc"})
    key = await world.add(
        {
            "apiVersion": "notification.toolkit.fluxcd.io/v1",
            "kind": "Receiver",
            "metadata": {"name": "gh", "namespace": "flux-system"},
            "spec": {
                "type": "github",
                "secretRef": {"name": "token"},
                "resources": [{"kind": "GitRepository", "name": "flux-system"}],
            },
        }
    )
    await world.settle(key)
    assert world.objects.statuses[key]["webhookPath"] == webhook_path("abc", "gh", "flux-system")
    assert world.ready(key)["status"] == "True"


def image_repository(name: str, image: str) -> dict[str, Any]:
    return {
        "apiVersion": "image.toolkit.fluxcd.io/v1beta2",
        "kind": "ImageRepository",
        "metadata": {"name": name, "namespace": "flux-system"},
        "spec": {"image": image, "interval": "5m"},
    }


def image_policy(name: str, repository: str, semver: str) -> dict[str, Any]:
    return {
        "apiVersion": "image.toolkit.fluxcd.io/v1beta2",
        "kind": "ImagePolicy",
        "metadata": {"name": name, "namespace": "flux-system"},
        "spec": {"imageRepositoryRef": {"name": repository}, "policy": {"semver": {"range": semver}}},
    }


async def test_a_scan_lists_the_tags_without_signatures_and_a_new_tag_moves_the_policy(world: World) -> None:
    world.registry.push("ghcr.io/org/app", "1.0.0")
    world.registry.push("ghcr.io/org/app", "sha256-abc.sig")
    repo = await world.add(image_repository("app", "ghcr.io/org/app"))
    policy = await world.add(image_policy("app", "app", ">=1.0.0"))
    await world.settle(repo, policy)
    scan = world.objects.statuses[repo]["lastScanResult"]
    assert (scan["tagCount"], scan["latestTags"]) == (1, ["1.0.0"])
    assert world.objects.statuses[policy]["latestRef"] == {"name": "ghcr.io/org/app", "tag": "1.0.0"}

    world.registry.push("ghcr.io/org/app", "1.1.0")
    await world.settle(repo, policy)
    assert world.objects.statuses[policy]["latestRef"] == {"name": "ghcr.io/org/app", "tag": "1.1.0"}
    assert world.objects.statuses[policy]["observedPreviousRef"] == {"name": "ghcr.io/org/app", "tag": "1.0.0"}


async def test_an_unknown_image_is_not_ready_with_the_registrys_reason(world: World) -> None:
    repo = await world.add(image_repository("app", "ghcr.io/org/missing"))
    await world.settle(repo)
    assert world.ready(repo)["status"] == "False"
    assert "ghcr.io/org/missing: repository not found" in world.ready(repo)["message"]


async def test_a_dependency_that_becomes_ready_wakes_its_dependents_at_once(world: World) -> None:
    world.source.commit(
        URL, branch="main", files={"infra/a.yaml": configmap("i", "1"), "apps/a.yaml": configmap("a", "1")}
    )
    await world.add(repository())
    await world.settle(REPO)
    await world.add(kustomization(APPS, "./apps", dependsOn=[{"name": "infra"}]))
    await world.settle(APPS)
    assert world.ready(APPS)["reason"] == "DependencyNotReady"  # next re-check in 30 s of the clock
    await world.add(kustomization(INFRA, "./infra"))
    await world.settle(INFRA)
    # The fake clock does not move: only the wake-up from infra reconciles apps.
    await until(lambda: world.ready(APPS)["status"] == "True", "apps woken by infra becoming ready", limit=10)
    assert world.live("a") is not None
