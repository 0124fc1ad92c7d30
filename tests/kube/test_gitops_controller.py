"""The GitOps controller on Kubernetes: Flux objects and their status subresource in the emulator, a git
repository served by a real ``git daemon``, manifests applied to the emulator by server-side apply."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from canaryflow.api.flux import common as flux
from canaryflow.api.flux.status import KustomizationStatus
from canaryflow.clock import FakeClock
from canaryflow.gitops.controller.loop import GitOpsController
from canaryflow.gitops.controller.objects import Key
from canaryflow.kube.client import CONFIGMAP, DEPLOYMENT, EVENT, NAMESPACE, SECRET, Kind, KubeApi
from canaryflow.kube.gitops.events import KubeFluxEvents
from canaryflow.kube.gitops.objects import KubeFluxObjects
from canaryflow.kube.gitops.wiring import follow, kube_gitops
from tests.gitops.gitserver import GitDaemon, Repo, RepoDir
from tests.kube.emulator import RunningEmulator
from tests.kube.schemas import validate
from tests.polling import until

Json = dict[str, Any]
GITREPOSITORY = Kind("source.toolkit.fluxcd.io/v1", "GitRepository", "gitrepositories")
KUSTOMIZATION = Kind("kustomize.toolkit.fluxcd.io/v1", "Kustomization", "kustomizations")
KUSTOMIZATION_PATH = "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/flux-system/kustomizations/apps"
APPS = Key("Kustomization", "flux-system", "apps")
REPO = Key("GitRepository", "flux-system", "fleet")


def manifests(replicas: int = 2, colour: str = "blue") -> dict[str, str]:
    labels = {"app": "backend"}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "backend", "namespace": "prod", "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "backend", "image": "ghcr.io/stefanprodan/podinfo:6.0.0"}]},
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "backend", "namespace": "prod"},
        "spec": {"selector": labels, "ports": [{"name": "http", "port": 9898, "targetPort": 9898}]},
    }
    configmap = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ui", "namespace": "prod"},
                 "data": {"colour": colour}}  # fmt: skip
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod"}}
    return {
        "apps/prod/namespace.yaml": yaml.safe_dump(namespace),
        "apps/prod/backend.yaml": yaml.safe_dump_all([deployment, service]),
        "apps/prod/ui.yaml": yaml.safe_dump(configmap),
    }


def git_repository(url: str) -> Json:
    return {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": REPO.name, "namespace": REPO.namespace},
        "spec": {"interval": "1m", "url": url, "ref": {"branch": "master"}},
    }


def kustomization() -> Json:
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": APPS.name, "namespace": APPS.namespace},
        "spec": {"interval": "10m", "path": "./apps/prod", "prune": True,
                 "sourceRef": {"kind": "GitRepository", "name": REPO.name}},
    }  # fmt: skip


# --- KubeFluxObjects ---------------------------------------------------------------------------------------------


async def test_flux_objects_are_listed_across_namespaces_and_read(kube_api: KubeApi) -> None:
    objects = KubeFluxObjects(kube_api)
    await kube_api.create(GITREPOSITORY, git_repository("git://example.invalid/a.git"))
    other = git_repository("git://example.invalid/b.git")
    other["metadata"] = {"name": "other", "namespace": "team-a"}
    await kube_api.create(GITREPOSITORY, other)
    listed = await objects.list("GitRepository")
    assert sorted((Key.of(body).namespace, Key.of(body).name) for body in listed) == [
        ("flux-system", "fleet"),
        ("team-a", "other"),
    ]
    body = await objects.get(REPO)
    assert body is not None and body["spec"]["url"] == "git://example.invalid/a.git"
    assert await objects.get(Key("GitRepository", "flux-system", "missing")) is None
    for kind in ("ImageRepository", "ImagePolicy", "ImageUpdateAutomation", "Receiver"):
        assert await objects.list(kind) == []
    with pytest.raises(ValueError, match="'HelmRelease' is not a Flux kind"):
        await objects.list("HelmRelease")


async def test_secret_data_is_decoded_and_configmap_data_is_as_stored(kube_api: KubeApi) -> None:
    objects = KubeFluxObjects(kube_api)
    await kube_api.create(
        SECRET,
        {
            "metadata": {"name": "auth", "namespace": "flux-system"},
            "data": {
                "username": base64.b64encode(b"git").decode(),
                "password": base64.b64encode(b"s3cr\xc3\xa9t").decode(),
            },
        },
    )
    await kube_api.create(CONFIGMAP, {"metadata": {"name": "vars", "namespace": "flux-system"},
                                      "data": {"cluster": "prod", "region": "eu-1"}})  # fmt: skip
    assert await objects.data("Secret", "flux-system", "auth") == {"username": "git", "password": "s3cré" + "t"}
    assert await objects.data("ConfigMap", "flux-system", "vars") == {"cluster": "prod", "region": "eu-1"}
    assert await objects.data("Secret", "flux-system", "missing") is None
    with pytest.raises(ValueError, match="only ConfigMap and Secret"):
        await objects.data("Deployment", "flux-system", "auth")


async def test_status_goes_to_the_status_subresource_and_survives_a_conflict(
    kube_api: KubeApi, kube_emulator: RunningEmulator
) -> None:
    objects = KubeFluxObjects(kube_api)
    created = await kube_api.create(KUSTOMIZATION, kustomization())
    assert await objects.status(APPS) == {}
    kube_emulator.fail_next("PUT", f"{KUSTOMIZATION_PATH}/status", 409)
    ready = flux.condition(flux.READY, True, flux.SUCCEEDED, "Applied revision: main@sha1:abc", 1.7e9, 1)
    await objects.set_status(APPS, KustomizationStatus(observed_generation=1, conditions=[ready]))
    assert await objects.status(APPS) == {"observedGeneration": 1, "conditions": [ready.to_dict()]}
    puts = [r for r in kube_emulator.requests if r.method == "PUT"]
    assert [r.path for r in puts] == [f"{KUSTOMIZATION_PATH}/status"] * 2  # the conflict, then the retry
    live = await kube_api.get(KUSTOMIZATION, "flux-system", "apps")
    assert live is not None and live["metadata"]["generation"] == created["metadata"]["generation"]
    assert live["spec"] == kustomization()["spec"]
    validate(live)  # the status too, against the CRD's


# --- the controller end to end -------------------------------------------------------------------------------


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return RepoDir(tmp_path / "repos").create("fleet", manifests())


@pytest.fixture
def daemon(tmp_path: Path, repo: Repo) -> Any:
    with GitDaemon(tmp_path / "repos") as running:
        yield running


async def applied_revision(kube_api: KubeApi) -> str | None:
    live = await kube_api.get(KUSTOMIZATION, "flux-system", "apps")
    status = (live or {}).get("status") or {}
    ready = [c for c in status.get("conditions") or [] if c.get("type") == "Ready" and c.get("status") == "True"]
    return str(status["lastAppliedRevision"]) if ready else None


async def test_a_git_repository_is_applied_to_the_cluster(
    kube_api: KubeApi, kube_emulator: RunningEmulator, repo: Repo, daemon: GitDaemon,
    gitops_controller: GitOpsController,
) -> None:  # fmt: skip
    await kube_api.create(GITREPOSITORY, git_repository(daemon.url("fleet")))
    await kube_api.create(KUSTOMIZATION, kustomization())
    revision = f"master@sha1:{repo.head()}"

    async def applied() -> bool:
        return await applied_revision(kube_api) == revision

    await until(applied, f"Kustomization applied {revision}")
    live = await kube_api.get(KUSTOMIZATION, "flux-system", "apps")
    assert live is not None
    ready = next(c for c in live["status"]["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "ReconciliationSucceeded" and ready["message"] == f"Applied revision: {revision}"
    assert sorted(e["id"] for e in live["status"]["inventory"]["entries"]) == [
        "_prod__Namespace", "prod_backend__Service", "prod_backend_apps_Deployment", "prod_ui__ConfigMap",
    ]  # fmt: skip
    source = await kube_api.get(GITREPOSITORY, "flux-system", "fleet")
    assert source is not None and source["status"]["artifact"]["revision"] == revision
    # their status as the CRDs declare it (a real API server would prune the rest); the test's git:// daemon is
    # not a URL the CRD allows, so the source is checked with an https one
    validate(live)
    validate({**source, "spec": {**source["spec"], "url": "https://git.example.com/fleet.git"}})
    # what git holds is in the cluster, valid for the API server, written by server-side apply as canaryflow
    written = [r for r in kube_emulator.requests if r.content_type == "application/apply-patch+yaml"
               and r.query.get("dryRun") != "All"]  # fmt: skip
    assert sorted(r.path for r in written) == [
        "/api/v1/namespaces/prod",
        "/api/v1/namespaces/prod/configmaps/ui",
        "/api/v1/namespaces/prod/services/backend",
        "/apis/apps/v1/namespaces/prod/deployments/backend",
    ]
    assert all(r.query == {"fieldManager": "canaryflow", "force": "true"} for r in written)
    ui = next(r for r in written if r.path.endswith("/configmaps/ui"))
    assert ui.body == {
        "apiVersion": "v1", "kind": "ConfigMap", "data": {"colour": "blue"},
        "metadata": {"name": "ui", "namespace": "prod", "labels": {
            "kustomize.toolkit.fluxcd.io/name": "apps", "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}},
    }  # fmt: skip
    for kind, namespace, name in ((NAMESPACE, None, "prod"), (CONFIGMAP, "prod", "ui"),
                                  (Kind("v1", "Service", "services"), "prod", "backend"),
                                  (DEPLOYMENT, "prod", "backend")):  # fmt: skip
        obj = await kube_api.get(kind, namespace, name)
        assert obj is not None, f"{kind.kind} {name} was not applied"
        validate(obj)

    # what happened is told in Events on the Flux objects, as Flux's controllers tell it
    events = await kube_api.list(EVENT, "flux-system")
    for event in events:
        validate(event)
    told = {(e["involvedObject"]["kind"], e["type"], e["reason"], e["source"]["component"]) for e in events}
    assert ("GitRepository", "Normal", "NewArtifact", "source-controller") in told
    applied_event = next(e for e in events if e["involvedObject"]["kind"] == "Kustomization" and e["type"] == "Normal")
    assert applied_event["involvedObject"]["uid"] == live["metadata"]["uid"]
    assert "ConfigMap/prod/ui created" in applied_event["message"].splitlines()

    # a reconcile of the same revision only dry-runs
    before = len(kube_emulator.requests)
    await gitops_controller.reconcile(APPS, timeout=30)
    after = kube_emulator.requests[before:]
    assert [r for r in after if r.content_type == "application/apply-patch+yaml" and r.query.get("dryRun") != "All"] \
        == []  # fmt: skip
    assert not [r for r in after if r.method in ("POST", "DELETE")]

    # drift is reverted at the next reconcile
    await kube_api.patch(CONFIGMAP, "prod", "ui", {"data": {"colour": "red"}})
    await gitops_controller.reconcile(APPS, timeout=30)
    ui_live = await kube_api.get(CONFIGMAP, "prod", "ui")
    assert ui_live is not None and ui_live["data"] == {"colour": "blue"}

    # a commit that changes one object and removes another: applied, and the removed one pruned
    files: dict[str, str | None] = {**manifests(colour="green"), "apps/prod/backend.yaml": None}
    sha = repo.commit(files)
    await gitops_controller.reconcile(REPO, timeout=30)

    async def new_revision() -> bool:
        return await applied_revision(kube_api) == f"master@sha1:{sha}"

    await until(new_revision, "the new commit applied")
    ui_live = await kube_api.get(CONFIGMAP, "prod", "ui")
    assert ui_live is not None and ui_live["data"] == {"colour": "green"}
    assert await kube_api.get(DEPLOYMENT, "prod", "backend") is None
    assert await kube_api.get(NAMESPACE, None, "prod") is not None


async def test_a_revision_the_api_server_refuses_applies_nothing(
    kube_api: KubeApi, kube_emulator: RunningEmulator, repo: Repo, daemon: GitDaemon,
    gitops_controller: GitOpsController,
) -> None:  # fmt: skip
    await kube_api.create(GITREPOSITORY, git_repository(daemon.url("fleet")))
    await kube_api.create(KUSTOMIZATION, kustomization())
    first = f"master@sha1:{repo.head()}"

    async def applied() -> bool:
        return await applied_revision(kube_api) == first

    await until(applied, "the first revision applied")
    bad = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bad", "namespace": "prod",
           "labels": {"tier": "front end"}}}  # fmt: skip
    sha = repo.commit({**manifests(colour="green"), "apps/prod/bad.yaml": yaml.safe_dump(bad)})
    before = len(kube_emulator.requests)
    await gitops_controller.reconcile(REPO, timeout=30)

    async def failed() -> bool:
        live = await kube_api.get(KUSTOMIZATION, "flux-system", "apps")
        status = (live or {}).get("status") or {}
        return status.get("lastAttemptedRevision") == f"master@sha1:{sha}"

    await until(failed, "the bad revision attempted")
    live = await kube_api.get(KUSTOMIZATION, "flux-system", "apps")
    assert live is not None
    ready = next(c for c in live["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and "ConfigMap/prod/bad: " in ready["message"]
    assert live["status"]["lastAppliedRevision"] == first
    writes = [r for r in kube_emulator.requests[before:] if r.content_type == "application/apply-patch+yaml"
              and r.query.get("dryRun") != "All"]  # fmt: skip
    assert writes == []
    ui_live = await kube_api.get(CONFIGMAP, "prod", "ui")
    assert ui_live is not None and ui_live["data"] == {"colour": "blue"}
    refused = [e for e in await kube_api.list(EVENT, "flux-system") if e["reason"] == "ReconciliationFailed"]
    assert [(e["type"], e["involvedObject"]["kind"], e["involvedObject"]["name"]) for e in refused] == [
        ("Warning", "Kustomization", "apps")
    ]
    assert "ConfigMap/prod/bad: " in refused[0]["message"]


async def test_follow_tracks_new_changed_and_deleted_objects_but_not_status_writes(
    kube_api: KubeApi, tmp_path: Path
) -> None:
    # real timing: after a failed fetch the next retry is 5 s away, so any earlier run was woken by the watch
    controller = kube_gitops(kube_api, tmp_path / "gitops")
    following = asyncio.create_task(follow(kube_api, controller))
    try:
        await kube_api.create(GITREPOSITORY, git_repository(f"file://{tmp_path}/nowhere.git"))

        async def failed() -> bool:
            live = await kube_api.get(GITREPOSITORY, "flux-system", "fleet")
            conditions = ((live or {}).get("status") or {}).get("conditions") or []
            return REPO in controller.keys and any(c["reason"] == "GitOperationFailed" for c in conditions)

        await until(failed, "the new GitRepository reconciled, its fetch failure in the status")
        await asyncio.sleep(0.2)  # the status write's MODIFIED event arrives and is let pass
        assert controller.runs == 1
        await kube_api.patch(GITREPOSITORY, "flux-system", "fleet", {"spec": {"ref": {"branch": "main"}}})

        async def rerun() -> bool:
            return controller.runs == 2

        await until(rerun, "a reconcile after the spec changed")
        await kube_api.delete(GITREPOSITORY, "flux-system", "fleet")

        async def forgotten() -> bool:
            return REPO not in controller.keys

        await until(forgotten, "the deleted GitRepository forgotten")
    finally:
        following.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await following
        await controller.close()


async def test_a_repeated_event_is_counted_not_repeated(kube_api: KubeApi) -> None:
    await kube_api.create(KUSTOMIZATION, kustomization())
    emit = KubeFluxEvents(kube_api, KubeFluxObjects(kube_api), clock=FakeClock(1_700_000_000.0))
    for _ in range(3):
        await emit(str(APPS), True, "BuildFailed", "kustomization.yaml: no such file")
    await emit(str(APPS), False, "ReconciliationSucceeded", "ConfigMap/prod/ui configured")
    events = sorted(await kube_api.list(EVENT, "flux-system"), key=lambda e: e["reason"])
    assert [(e["type"], e["reason"], e["count"]) for e in events] == [
        ("Warning", "BuildFailed", 3),
        ("Normal", "ReconciliationSucceeded", 1),
    ]
    assert events[0]["lastTimestamp"] == "2023-11-14T22:13:20Z"
    assert events[0]["involvedObject"]["apiVersion"] == "kustomize.toolkit.fluxcd.io/v1"
    for event in events:
        validate(event)
