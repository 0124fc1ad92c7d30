"""Deleting a Kustomization in Kubernetes: Flux's finalizer holds it while what it applied is garbage-collected
(``prune: true``), then lets it go, even when the controller died in the middle (the next one finishes); with
``prune: false`` it goes at once and everything stays. Against the
realistic emulator (finalizers, ``deletionTimestamp``, namespace deletion) and a real ``git daemon``."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

from canaryflow.gitops.controller.loop import GitOpsController, Timing
from canaryflow.kube.client import CONFIGMAP, DEPLOYMENT, EVENT, NAMESPACE, Kind, KubeApi
from canaryflow.kube.gitops.finalizer import FINALIZER
from canaryflow.kube.gitops.wiring import follow, kube_gitops
from tests.gitops.gitserver import GitDaemon, Repo
from tests.kube.emulator import RunningEmulator
from tests.kube.test_gitops_controller import (
    APPS,
    GITREPOSITORY,
    KUSTOMIZATION,
    applied_revision,
    git_repository,
    kustomization,
)

# the fixtures, by name
from tests.kube.test_gitops_controller import daemon as daemon
from tests.kube.test_gitops_controller import repo as repo
from tests.polling import until, wait_for

SERVICE = Kind("v1", "Service", "services")


async def follow_until_applied(kube_api: KubeApi, daemon: GitDaemon, repo: Repo, prune: bool) -> None:
    await kube_api.create(GITREPOSITORY, git_repository(daemon.url("fleet")))
    body = kustomization()
    body["spec"]["prune"] = prune
    await kube_api.create(KUSTOMIZATION, body)
    revision = f"master@sha1:{repo.head()}"

    async def applied() -> bool:
        return await applied_revision(kube_api) == revision

    await until(applied, f"Kustomization applied {revision}")
    live = await kube_api.get(KUSTOMIZATION, APPS.namespace, APPS.name)
    assert live is not None and live["metadata"]["finalizers"] == [FINALIZER]


async def gone(kube_api: KubeApi) -> None:
    async def deleted() -> bool:
        return await kube_api.get(KUSTOMIZATION, APPS.namespace, APPS.name) is None

    await until(deleted, "the Kustomization deleted")


async def test_a_deleted_pruning_kustomization_collects_its_inventory_then_goes(
    kube_api: KubeApi, kube_emulator: RunningEmulator, repo: Repo, daemon: GitDaemon,
    gitops_controller: GitOpsController,
) -> None:  # fmt: skip
    await follow_until_applied(kube_api, daemon, repo, prune=True)
    # the Namespace is protected (else the API server would delete everything in it); an object never applied,
    # even labelled as the Kustomization's, is not its to delete
    await kube_api.patch(NAMESPACE, None, "prod",
                         {"metadata": {"annotations": {"kustomize.toolkit.fluxcd.io/prune": "disabled"}}})  # fmt: skip
    labels = {"kustomize.toolkit.fluxcd.io/name": "apps", "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}
    by_hand: dict[str, Any] = {"metadata": {"name": "by-hand", "namespace": "prod", "labels": labels}}
    await kube_api.create(CONFIGMAP, by_hand)
    before = len(kube_emulator.requests)

    await kube_api.delete(KUSTOMIZATION, APPS.namespace, APPS.name)
    await gone(kube_api)

    deletes = [r.path for r in kube_emulator.requests[before:] if r.method == "DELETE"]
    assert deletes == [
        "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/flux-system/kustomizations/apps",
        "/apis/apps/v1/namespaces/prod/deployments/backend",
        "/api/v1/namespaces/prod/services/backend",
        "/api/v1/namespaces/prod/configmaps/ui",
    ]
    assert await kube_api.get(DEPLOYMENT, "prod", "backend") is None
    assert await kube_api.get(SERVICE, "prod", "backend") is None
    assert await kube_api.get(CONFIGMAP, "prod", "ui") is None
    assert await kube_api.get(CONFIGMAP, "prod", "by-hand") is not None
    assert await kube_api.get(NAMESPACE, None, "prod") is not None
    assert APPS not in gitops_controller.keys
    events = [e for e in await kube_api.list(EVENT, "flux-system") if e["reason"] == "GarbageCollectionSucceeded"]
    assert len(events) == 1 and events[0]["type"] == "Normal"
    assert events[0]["message"].splitlines() == [
        "Deployment/prod/backend deleted", "Service/prod/backend deleted", "ConfigMap/prod/ui deleted"]  # fmt: skip


async def test_a_failed_delete_keeps_the_finalizer_until_a_retry_succeeds(
    kube_api: KubeApi, kube_emulator: RunningEmulator, repo: Repo, daemon: GitDaemon,
    gitops_controller: GitOpsController,
) -> None:  # fmt: skip
    await follow_until_applied(kube_api, daemon, repo, prune=True)
    service = "/api/v1/namespaces/prod/services/backend"
    kube_emulator.fail_next("DELETE", service, 403, times=2)  # RBAC says no, twice
    before = len(kube_emulator.requests)
    await kube_api.delete(KUSTOMIZATION, APPS.namespace, APPS.name)
    await gone(kube_api)

    warnings = [e for e in await kube_api.list(EVENT, "flux-system") if e["reason"] == "PruneFailed"]
    assert warnings and all(e["type"] == "Warning" for e in warnings)
    assert "prune failed for Service/prod/backend" in warnings[0]["message"]
    assert "not deleted yet: Service/prod/backend, ConfigMap/prod/ui, Namespace/prod" in warnings[0]["message"]
    # the finalizer was held until the third attempt had deleted the Service and the rest after it
    after = kube_emulator.requests[before:]
    service_deletes = [i for i, r in enumerate(after) if r.method == "DELETE" and r.path == service]
    released = [
        i
        for i, r in enumerate(after)
        if r.method == "PATCH"
        and r.path.endswith("/kustomizations/apps")
        and isinstance(r.body, list)
        and any(op.get("path") == "/metadata/finalizers" and op.get("op") == "replace" for op in r.body)
    ]
    assert len(service_deletes) == 3 and len(released) == 1 and released[0] > service_deletes[-1]
    assert await kube_api.get(SERVICE, "prod", "backend") is None
    assert await kube_api.get(NAMESPACE, None, "prod") is None


async def test_a_deleted_kustomization_without_prune_leaves_everything(
    kube_api: KubeApi, kube_emulator: RunningEmulator, repo: Repo, daemon: GitDaemon,
    gitops_controller: GitOpsController,
) -> None:  # fmt: skip
    await follow_until_applied(kube_api, daemon, repo, prune=False)
    before = len(kube_emulator.requests)
    await kube_api.delete(KUSTOMIZATION, APPS.namespace, APPS.name)
    await gone(kube_api)
    deletes = [r.path for r in kube_emulator.requests[before:] if r.method == "DELETE"]
    assert deletes == ["/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/flux-system/kustomizations/apps"]
    for kind, namespace, name in ((DEPLOYMENT, "prod", "backend"), (SERVICE, "prod", "backend"),
                                  (CONFIGMAP, "prod", "ui"), (NAMESPACE, None, "prod")):  # fmt: skip
        assert await kube_api.get(kind, namespace, name) is not None, f"{kind.kind} {name} was deleted"


class Crash(BaseException):
    """The process dying mid-prune: not an Exception, so no handler catches and retries it."""


async def test_a_controller_dying_mid_prune_leaves_the_finalizer_and_the_next_one_finishes(
    kube_api: KubeApi, kube_emulator: RunningEmulator, repo: Repo, daemon: GitDaemon, tmp_path: Path,
) -> None:  # fmt: skip
    first = kube_gitops(kube_api, tmp_path / "first", timing=Timing(scale=0.01))
    following = asyncio.create_task(follow(kube_api, first))
    await follow_until_applied(kube_api, daemon, repo, prune=True)
    deleting, died = first.ctx.target.delete, asyncio.Event()
    done: list[str] = []

    async def dying(ref: Any) -> bool:
        if done:  # one object deleted: the process dies before the next
            died.set()
            raise Crash
        done.append(str(ref))
        return await deleting(ref)

    first.ctx.target.delete = dying  # type: ignore[method-assign]
    await kube_api.delete(KUSTOMIZATION, APPS.namespace, APPS.name)
    await wait_for(died.wait(), "the controller dying after one deletion")
    following.cancel()
    with contextlib.suppress(asyncio.CancelledError, Crash):
        await following
    with contextlib.suppress(Crash):
        await first.close()

    # what the crash left: the Kustomization held by Flux's finalizer, part of its inventory still there
    live = await kube_api.get(KUSTOMIZATION, APPS.namespace, APPS.name)
    assert live is not None and live["metadata"]["deletionTimestamp"] and live["metadata"]["finalizers"] == [FINALIZER]
    assert len(done) == 1  # the first of the inventory (Deployment, Service, ConfigMap, Namespace last)
    assert await kube_api.get(DEPLOYMENT, "prod", "backend") is None
    assert await kube_api.get(SERVICE, "prod", "backend") is not None

    second = kube_gitops(kube_api, tmp_path / "second", timing=Timing(scale=0.01))
    following = asyncio.create_task(follow(kube_api, second))
    try:
        await gone(kube_api)
    finally:
        following.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await following
        await second.close()
    assert await kube_api.get(SERVICE, "prod", "backend") is None
    assert await kube_api.get(CONFIGMAP, "prod", "ui") is None
    assert await kube_api.get(NAMESPACE, None, "prod") is None
