"""KubeTarget against the realistic emulator over real HTTP: server-side apply as the field manager
``canaryflow``, dry runs before any write, only changed objects written, drift corrected, refusals that write
nothing, prune limited to the inventory, and health read from live status."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from canaryflow.gitops.kustomize.reconcile import reconcile
from canaryflow.gitops.target.base import ApplyError, Health, ObjRef, Support
from canaryflow.kube.client import CONFIGMAP, DEPLOYMENT, NAMESPACE, KubeApi
from canaryflow.kube.gitops.target import KubeTarget
from tests.gitops.kustomizations import kustomization
from tests.kube.emulator import RunningEmulator
from tests.kube.emulator.core import RecordedRequest
from tests.kube.schemas import validate

Json = dict[str, Any]
APPLY = "application/apply-patch+yaml"


def namespace(name: str = "prod") -> Json:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def configmap(name: str, value: str = "a", **annotations: str) -> Json:
    meta: Json = {"name": name, "namespace": "prod"}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"v": value}}


def deployment(replicas: int = 2, image: str = "ghcr.io/stefanprodan/podinfo:6.0.0") -> Json:
    labels = {"app": "backend"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "backend", "namespace": "prod", "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "backend", "image": image, "ports": [{"containerPort": 9898}]}]},
            },
        },
    }


def applies(requests: list[RecordedRequest], *, dry_run: bool) -> list[RecordedRequest]:
    return [r for r in requests if r.content_type == APPLY and (r.query.get("dryRun") == "All") is dry_run]


def writes(requests: list[RecordedRequest]) -> list[RecordedRequest]:
    """Requests that change something: anything but a GET or a dry run."""
    return [r for r in requests if r.method != "GET" and r.query.get("dryRun") != "All"]


@pytest.fixture
def target(kube_api: KubeApi) -> KubeTarget:
    return KubeTarget(kube_api)


async def test_apply_is_server_side_apply_by_canaryflow_with_the_manifest_as_body(
    target: KubeTarget, kube_api: KubeApi, kube_emulator: RunningEmulator
) -> None:
    objects = [namespace(), configmap("settings"), {**deployment(), "status": {"replicas": 9}}]
    changes = await target.apply(objects)
    assert [(str(c.ref), c.action) for c in changes] == [
        ("Namespace/prod", "created"),
        ("ConfigMap/prod/settings", "created"),
        ("Deployment/prod/backend", "created"),
    ]
    real = applies(kube_emulator.requests, dry_run=False)
    assert [r.path for r in real] == [
        "/api/v1/namespaces/prod",
        "/api/v1/namespaces/prod/configmaps/settings",
        "/apis/apps/v1/namespaces/prod/deployments/backend",
    ]
    for request in real:
        assert request.method == "PATCH"
        assert request.query == {"fieldManager": "canaryflow", "force": "true"}
    # the manifest as written in git, without the status a manifest may carry: the server owns it
    assert [r.body for r in real] == [namespace(), configmap("settings"), deployment()]
    # every object was checked by a dry run first (concurrently: in any order), with the same manager and body
    dry = applies(kube_emulator.requests, dry_run=True)
    assert sorted((r.path, str(r.body)) for r in dry) == sorted((r.path, str(r.body)) for r in real)
    assert all(r.query["fieldManager"] == "canaryflow" and r.query["force"] == "true" for r in dry)
    first_write = next(i for i, r in enumerate(kube_emulator.requests) if r in real)
    assert all(kube_emulator.requests.index(r) < first_write for r in dry)
    for kind, ns, name in ((NAMESPACE, None, "prod"), (CONFIGMAP, "prod", "settings"), (DEPLOYMENT, "prod", "backend")):
        live = await kube_api.get(kind, ns, name)
        assert live is not None
        validate(live)
        assert [(m["manager"], m["operation"]) for m in live["metadata"]["managedFields"]] == [("canaryflow", "Apply")]


async def test_reapplying_unchanged_objects_writes_nothing(target: KubeTarget, kube_emulator: RunningEmulator) -> None:
    objects = [namespace(), configmap("settings"), deployment()]
    await target.apply(objects)
    before = len(kube_emulator.requests)
    changes = await target.apply(objects)
    assert [c.action for c in changes] == ["unchanged"] * 3
    after = kube_emulator.requests[before:]
    assert writes(after) == []
    assert len(applies(after, dry_run=True)) == 3


async def test_drift_from_an_edit_is_reverted_and_only_that_object_is_written(
    target: KubeTarget, kube_api: KubeApi, kube_emulator: RunningEmulator
) -> None:
    objects = [configmap("settings"), deployment(replicas=2)]
    await target.apply(objects)
    # a `kubectl edit` / `kubectl scale` behind GitOps' back, by another field manager
    await kube_api.patch(DEPLOYMENT, "prod", "backend", {"spec": {"replicas": 5}})
    before = len(kube_emulator.requests)
    changes = await target.apply(objects)
    assert [(c.ref.kind, c.action) for c in changes] == [("ConfigMap", "unchanged"), ("Deployment", "configured")]
    real = writes(kube_emulator.requests[before:])
    assert [(r.path, r.query) for r in real] == [
        ("/apis/apps/v1/namespaces/prod/deployments/backend", {"fieldManager": "canaryflow", "force": "true"})
    ]
    live = await kube_api.get(DEPLOYMENT, "prod", "backend")
    assert live is not None and live["spec"]["replicas"] == 2
    validate(live)


async def test_a_field_removed_from_git_is_removed_from_the_cluster(target: KubeTarget, kube_api: KubeApi) -> None:
    await target.apply([{**configmap("settings"), "data": {"v": "a", "old": "x"}}])
    changes = await target.apply([configmap("settings")])
    assert changes[0].action == "configured"
    live = await kube_api.get(CONFIGMAP, "prod", "settings")
    assert live is not None and live["data"] == {"v": "a"}


async def test_one_refused_object_means_nothing_is_written(
    target: KubeTarget, kube_api: KubeApi, kube_emulator: RunningEmulator
) -> None:
    bad = configmap("broken")
    bad["metadata"]["labels"] = {"tier": "not a valid label value!"}
    with pytest.raises(ApplyError) as failed:
        await target.apply([configmap("good"), bad, deployment()])
    assert len(failed.value.problems) == 1
    problem = failed.value.problems[0]
    assert problem.startswith("ConfigMap/prod/broken: ") and "metadata.labels[tier]" in problem
    assert writes(kube_emulator.requests) == []
    assert await kube_api.get(CONFIGMAP, "prod", "good") is None
    assert await kube_api.get(DEPLOYMENT, "prod", "backend") is None


async def test_every_refusal_is_listed(target: KubeTarget, kube_emulator: RunningEmulator) -> None:
    first, second = configmap("first"), configmap("second")
    first["metadata"]["labels"] = {"a": "bad value"}
    second["metadata"]["annotations"] = {"n": 1}
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "prod"}}
    with pytest.raises(ApplyError) as failed:
        await target.apply([first, widget, second])
    # an unserved kind is found before any dry run; the dry runs' refusals are then all reported, in order
    assert [p.split(": ")[0] for p in failed.value.problems] == ["Widget/prod/w"]
    with pytest.raises(ApplyError) as failed:
        await target.apply([first, second])
    assert [p.split(": ")[0] for p in failed.value.problems] == ["ConfigMap/prod/first", "ConfigMap/prod/second"]
    assert writes(kube_emulator.requests) == []


async def test_an_unserved_kind_is_refused_and_then_unsupported(target: KubeTarget) -> None:
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "prod"}}
    assert target.support("example.com/v1", "Widget")[0] is Support.RUN  # not looked up yet
    with pytest.raises(ApplyError) as failed:
        await target.apply([configmap("good"), widget])
    assert failed.value.problems[0].startswith("Widget/prod/w: the API server does not serve kind Widget")
    assert "CustomResourceDefinition" in failed.value.problems[0]
    support, message = target.support("example.com/v1", "Widget")
    assert support is Support.UNSUPPORTED and "does not serve kind Widget" in message
    assert target.support("apps/v1", "Deployment") == (Support.RUN, "")
    # a typo in a served group is caught the same way
    with pytest.raises(ApplyError, match="Deploymnet"):
        await target.apply([{**deployment(), "kind": "Deploymnet"}])


async def test_a_namespaced_object_without_namespace_is_refused(target: KubeTarget) -> None:
    orphan = configmap("settings")
    del orphan["metadata"]["namespace"]
    with pytest.raises(ApplyError, match=r"ConfigMap/settings: metadata.namespace: Required value"):
        await target.apply([orphan])


async def test_ssa_policies_ignore_and_if_not_present(
    target: KubeTarget, kube_api: KubeApi, kube_emulator: RunningEmulator
) -> None:
    await target.apply([configmap("seeded", "first")])
    before = len(kube_emulator.requests)
    changes = await target.apply([
        configmap("seeded", "second", **{"kustomize.toolkit.fluxcd.io/ssa": "IfNotPresent"}),
        configmap("ignored", "x", **{"kustomize.toolkit.fluxcd.io/ssa": "Ignore"}),
        configmap("merged", "m", **{"kustomize.toolkit.fluxcd.io/ssa": "Merge"}),
    ])  # fmt: skip
    assert [c.action for c in changes] == ["unchanged", "unchanged", "created"]
    assert [r.path.rsplit("/", 1)[1] for r in writes(kube_emulator.requests[before:])] == ["merged"]
    seeded = await kube_api.get(CONFIGMAP, "prod", "seeded")
    assert seeded is not None and seeded["data"] == {"v": "first"}
    assert await kube_api.get(CONFIGMAP, "prod", "ignored") is None


async def test_get_and_delete(target: KubeTarget, kube_api: KubeApi) -> None:
    await target.apply([namespace(), configmap("settings")])
    ref = ObjRef("v1", "ConfigMap", "prod", "settings")
    live = await target.get(ref)
    assert live is not None and live["data"] == {"v": "a"}
    assert await target.get(ObjRef("v1", "Namespace", "", "prod")) is not None
    assert await target.delete(ref) is True
    assert await target.delete(ref) is False
    assert await kube_api.get(CONFIGMAP, "prod", "settings") is None
    assert await target.get(ObjRef("example.com/v1", "Widget", "prod", "w")) is None


@dataclasses.dataclass(frozen=True)
class Revision:
    revision: str
    path: Path


def revision(root: Path, name: str, objects: list[Json]) -> Revision:
    path = root / name
    path.mkdir(parents=True)
    (path / "all.yaml").write_text(yaml.safe_dump_all(objects))
    return Revision(f"master@sha1:{name}", path)


async def test_prune_deletes_only_what_the_inventory_held(
    target: KubeTarget, kube_api: KubeApi, kube_emulator: RunningEmulator, tmp_path: Path
) -> None:
    spec = kustomization("apps", prune=True)
    first = await reconcile(spec, revision(tmp_path, "one", [configmap("a"), configmap("b")]), [], target)
    assert first.ready, first.message
    # an object nobody put in git, and one that looks like ours but was never in the inventory
    await kube_api.create(CONFIGMAP, configmap("handmade"))
    await kube_api.create(CONFIGMAP, {**configmap("lookalike"), "metadata": {
        "name": "lookalike", "namespace": "prod",
        "labels": {"kustomize.toolkit.fluxcd.io/name": "apps", "kustomize.toolkit.fluxcd.io/namespace": "flux-system"},
    }})  # fmt: skip
    before = len(kube_emulator.requests)
    second = await reconcile(spec, revision(tmp_path, "two", [configmap("a")]), first.inventory, target)
    assert second.ready, second.message
    assert [(str(c.ref), c.action) for c in second.changes] == [
        ("ConfigMap/prod/a", "unchanged"),
        ("ConfigMap/prod/b", "deleted"),
    ]
    assert [(r.method, r.path) for r in writes(kube_emulator.requests[before:])] == [
        ("DELETE", "/api/v1/namespaces/prod/configmaps/b")
    ]
    names = sorted(cm["metadata"]["name"] for cm in await kube_api.list(CONFIGMAP, "prod"))
    assert names == ["a", "handmade", "lookalike"]
    # the labels Flux puts on what it applies are part of what was applied
    a = await kube_api.get(CONFIGMAP, "prod", "a")
    assert a is not None and a["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/name"] == "apps"
    validate(a)


async def test_a_refused_revision_keeps_the_last_good_one_running(
    target: KubeTarget, kube_api: KubeApi, kube_emulator: RunningEmulator, tmp_path: Path
) -> None:
    spec = kustomization("apps", prune=True)
    good = await reconcile(spec, revision(tmp_path, "good", [configmap("a", "1"), configmap("b")]), [], target)
    bad = configmap("c")
    bad["metadata"]["name"] = "Not_A_Name"
    before = len(kube_emulator.requests)
    outcome = await reconcile(spec, revision(tmp_path, "bad", [configmap("a", "2"), bad]), good.inventory, target)
    assert not outcome.ready and outcome.reason == "ReconciliationFailed"
    assert "ConfigMap/prod/Not_A_Name: " in outcome.message and "nothing was applied" in outcome.message
    assert writes(kube_emulator.requests[before:]) == []
    a = await kube_api.get(CONFIGMAP, "prod", "a")
    assert a is not None and a["data"] == {"v": "1"}
    assert await kube_api.get(CONFIGMAP, "prod", "b") is not None


async def test_health_follows_live_status(target: KubeTarget, kube_api: KubeApi) -> None:
    ref = ObjRef("apps/v1", "Deployment", "prod", "backend")
    assert (await target.health(ref)).state == "in-progress"  # not there yet
    await target.apply([deployment(replicas=2)])
    health = await target.health(ref)
    assert (health.state, health.message) == ("in-progress", "Updated: 0/2")
    live = await kube_api.get(DEPLOYMENT, "prod", "backend")
    assert live is not None
    status = {"observedGeneration": live["metadata"]["generation"], "replicas": 2, "updatedReplicas": 2,
              "readyReplicas": 2, "availableReplicas": 2}  # fmt: skip
    await kube_api.replace_status(DEPLOYMENT, {**live, "status": status})
    assert (await target.health(ref)).state == "current"
    # a new spec the deployment controller has not seen yet is not current, whatever the old status says
    await target.apply([deployment(replicas=2, image="ghcr.io/stefanprodan/podinfo:6.0.1")])
    assert (await target.health(ref)).state == "in-progress"
    live = await kube_api.get(DEPLOYMENT, "prod", "backend")
    assert live is not None
    stalled = {**status, "observedGeneration": live["metadata"]["generation"], "conditions": [
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
         "message": 'ReplicaSet "backend-7d" has timed out progressing.'},
    ]}  # fmt: skip
    await kube_api.replace_status(DEPLOYMENT, {**live, "status": stalled})
    health = await target.health(ref)
    assert health.state == "failed" and "ProgressDeadlineExceeded" in health.message


async def test_an_object_in_a_namespace_of_the_same_revision_is_checked_once_the_namespace_exists(
    target: KubeTarget, kube_api: KubeApi, kube_emulator: RunningEmulator
) -> None:
    # a real API server refuses even a dry run in a namespace that does not exist yet (404)
    kube_emulator.fail_next("PATCH", "/api/v1/namespaces/fresh/configmaps/settings?", 404)
    settings = {**configmap("settings"), "metadata": {"name": "settings", "namespace": "fresh"}}
    changes = await target.apply([namespace("fresh"), settings])
    assert [c.action for c in changes] == ["created", "created"]
    order = [(r.path.rsplit("/", 1)[1], r.query.get("dryRun", "real")) for r in kube_emulator.requests
             if r.content_type == APPLY]  # fmt: skip
    # both dry-run (the configmap's refused), the namespace written, the configmap checked again, then written
    assert sorted(order[:2]) == [("fresh", "All"), ("settings", "All")]
    assert order[2:] == [("fresh", "real"), ("settings", "All"), ("settings", "real")]
    assert await kube_api.get(CONFIGMAP, "fresh", "settings") is not None


async def test_a_custom_resource_waits_for_its_definition_and_says_when_it_never_comes(
    kube_api: KubeApi, kube_emulator: RunningEmulator
) -> None:
    target = KubeTarget(kube_api, crd_timeout=0)
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList"},
            "versions": [{"name": "v1", "served": True, "storage": True,
                          "schema": {"openAPIV3Schema": {"type": "object"}}}],
        },
    }  # fmt: skip
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "prod"}}
    # the emulator does not start serving a CRD's kind: the wait runs out, with the CRD already applied
    with pytest.raises(ApplyError) as failed:
        await target.apply([crd, configmap("settings"), widget])
    assert failed.value.problems == [
        "Widget/prod/w: kind Widget is not served 0s after its CustomResourceDefinition was applied",
        "already applied before this failure: CustomResourceDefinition/widgets.example.com",
    ]
    assert [r.path.rsplit("/", 1)[1] for r in writes(kube_emulator.requests)] == ["widgets.example.com"]
    assert await kube_api.get(CONFIGMAP, "prod", "settings") is None


async def test_health_of_an_object_with_conditions(target: KubeTarget, kube_api: KubeApi) -> None:
    kind = await kube_api.discover("kustomize.toolkit.fluxcd.io/v1", "Kustomization")
    body = {"apiVersion": kind.api_version, "kind": kind.kind, "metadata": {"name": "apps", "namespace": "flux-system"},
            "spec": {"interval": "10m", "path": "./", "prune": True, "sourceRef": {"kind": "GitRepository",
                                                                                   "name": "fleet"}}}  # fmt: skip
    created = await kube_api.create(kind, body)
    ref = ObjRef(kind.api_version, "Kustomization", "flux-system", "apps")
    assert (await target.health(ref)).state == "current"  # nothing to read yet: kstatus calls that current

    async def status(generation: int, *conditions: Json) -> None:
        live = await kube_api.get(kind, "flux-system", "apps")
        assert live is not None
        await kube_api.replace_status(kind, {**live, "status": {"observedGeneration": generation,
                                                                 "conditions": list(conditions)}})  # fmt: skip

    generation = created["metadata"]["generation"]
    await status(generation, {"type": "Ready", "status": "Unknown", "reason": "Progressing", "message": "working"},
                 {"type": "Reconciling", "status": "True", "reason": "Progressing", "message": "working"})  # fmt: skip
    assert await target.health(ref) == Health("in-progress", "Progressing: working")
    await status(generation, {"type": "Ready", "status": "False", "reason": "BuildFailed", "message": "no file"},
                 {"type": "Stalled", "status": "True", "reason": "BuildFailed", "message": "no file"})  # fmt: skip
    assert await target.health(ref) == Health("failed", "BuildFailed: no file")
    await status(generation, {"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded"})
    assert (await target.health(ref)).state == "current"
    await status(generation - 1, {"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded"})
    assert (await target.health(ref)).state == "in-progress"
