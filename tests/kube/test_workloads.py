"""KubeWorkload against the realistic emulator over real HTTP: the primary copy, its configs and HPA, readiness
by Flagger's rules, scaling, promotion, revert on deletion, and conflicts; every object written is validated."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from canaryflow.api.canary import Canary
from canaryflow.clock import FakeClock
from canaryflow.engine.effects import Readiness
from canaryflow.kube.api import WatchEvent
from canaryflow.kube.cache import KubeCache
from canaryflow.kube.client import Api, Conflict
from canaryflow.kube.kinds import CONFIGMAP, DAEMONSET, DEPLOYMENT, HPA, NAMESPACE, SECRET
from canaryflow.kube.workloads import SCALE_TO_ZERO_KEY, KubeWorkload
from canaryflow.workloads.base import WorkloadError
from tests.kube import schemas
from tests.kube.builders import canary_doc, deployment_doc

Json = dict[str, Any]
POD_SPEC = {
    "containers": [
        {
            "name": "backend",
            "image": "podinfo:6.0.0",
            "ports": [{"containerPort": 9898}],
            "env": [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "backend-token", "key": "token"}}}],
            "volumeMounts": [{"name": "config", "mountPath": "/etc/backend"}],
        }
    ],
    "volumes": [{"name": "config", "configMap": {"name": "backend-config"}}],
}


def make_canary(autoscaler: bool = False, kind: str = "Deployment", **analysis: Any) -> Canary:
    doc = canary_doc()
    doc["metadata"]["uid"] = "5b7c8d2e-0000-4000-8000-000000000001"
    doc["spec"]["targetRef"]["kind"] = kind
    doc["spec"]["progressDeadlineSeconds"] = 60
    doc["spec"]["analysis"].update(analysis)
    if autoscaler:
        doc["spec"]["autoscalerRef"] = {
            "apiVersion": "autoscaling/v2beta2",
            "kind": "HorizontalPodAutoscaler",
            "name": "backend",
        }
    return Canary.model_validate(doc)


async def seed(api: Api, kind: str = "Deployment", replicas: int | None = 3, hpa: bool = False) -> Json:
    """Namespace prod with the target (podinfo reading a ConfigMap and a Secret), its configs and maybe an HPA."""
    await api.create(NAMESPACE, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod"}})
    await api.create(CONFIGMAP, config_map({"port": "9898"}))
    await api.create(
        SECRET,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "backend-token", "namespace": "prod"},
            "type": "Opaque",
            "data": {"token": "czNjcjN0"},
        },
    )
    target = deployment_doc(pod_spec=copy.deepcopy(POD_SPEC), kind=kind)
    if replicas is not None and kind == "Deployment":
        target["spec"]["replicas"] = replicas
    if hpa:
        await api.create(
            HPA,
            {
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": "backend", "namespace": "prod"},
                "spec": {
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "backend"},
                    "minReplicas": 2,
                    "maxReplicas": 4,
                    "metrics": [
                        {
                            "type": "Resource",
                            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
                        }
                    ],
                },
            },
        )
    return await api.create(DAEMONSET if kind == "DaemonSet" else DEPLOYMENT, target)


def config_map(data: dict[str, str]) -> Json:
    meta = {"name": "backend-config", "namespace": "prod"}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


def writes(kube_emulator: Any, since: int = 0) -> list[Any]:
    return [r for r in kube_emulator.requests[since:] if r.method not in ("GET", "HEAD")]


def validate_written(kube_emulator: Any, since: int = 0) -> int:
    """Validate every object body the adapter POSTed or PUT; returns how many."""
    count = 0
    for request in writes(kube_emulator, since):
        if request.method in ("POST", "PUT") and isinstance(request.body, dict) and "kind" in request.body:
            body = copy.deepcopy(request.body)
            body["metadata"].pop("resourceVersion", None)
            schemas.validate(_without_server_fields(body))
            count += 1
    return count


def _without_server_fields(body: Json) -> Json:
    for field in ("uid", "creationTimestamp", "generation", "managedFields"):
        body["metadata"].pop(field, None)
    body.pop("status", None)
    return body


async def set_status(api: Api, kind: Any, name: str, status: Json) -> None:
    """Simulate the workload controller: write ``status`` (observing the current generation)."""
    obj = await api.get(kind, "prod", name)
    assert obj is not None
    obj["status"] = {"observedGeneration": obj["metadata"].get("generation", 1), **status}
    await api.replace_status(kind, obj)


def rolled_out(replicas: int) -> Json:
    return {"replicas": replicas, "updatedReplicas": replicas, "availableReplicas": replicas, "readyReplicas": replicas}


async def test_initialize_creates_primary_with_config_copies_and_hpa(kube_api: Api, kube_emulator: Any) -> None:
    await seed(kube_api, hpa=True)
    canary = make_canary(autoscaler=True)
    await KubeWorkload(kube_api).initialize(canary)

    primary = await kube_api.get(DEPLOYMENT, "prod", "backend-primary")
    assert primary is not None
    assert primary["spec"]["selector"] == {"matchLabels": {"app": "backend-primary"}}
    assert primary["spec"]["replicas"] == 3
    assert primary["metadata"]["ownerReferences"][0]["uid"] == canary.metadata.uid
    pod = primary["spec"]["template"]["spec"]
    assert pod["volumes"][0]["configMap"]["name"] == "backend-config-primary"
    assert pod["containers"][0]["env"][0]["valueFrom"]["secretKeyRef"]["name"] == "backend-token-primary"
    config = await kube_api.get(CONFIGMAP, "prod", "backend-config-primary")
    secret = await kube_api.get(SECRET, "prod", "backend-token-primary")
    assert config is not None and config["data"] == {"port": "9898"}
    assert secret is not None and secret["data"] == {"token": "czNjcjN0"}
    hpa = await kube_api.get(HPA, "prod", "backend-primary")
    assert hpa is not None
    assert hpa["spec"]["scaleTargetRef"]["name"] == "backend-primary"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 4)
    target = await kube_api.get(DEPLOYMENT, "prod", "backend")
    assert target is not None and target["spec"]["replicas"] == 3  # scaled to zero by the engine, once ready
    assert validate_written(kube_emulator) >= 4


async def test_initialize_again_writes_nothing(kube_api: Api, kube_emulator: Any) -> None:
    await seed(kube_api, hpa=True)
    workload, canary = KubeWorkload(kube_api), make_canary(autoscaler=True)
    await workload.initialize(canary)
    before = len(kube_emulator.requests)
    await workload.initialize(canary)
    await workload.revision(canary)
    await workload.scale_canary_up(canary)  # already at its replicas
    assert writes(kube_emulator, before) == []


async def test_initialize_does_not_ship_a_changed_target_to_the_primary(kube_api: Api) -> None:
    await seed(kube_api)
    workload, canary = KubeWorkload(kube_api), make_canary()
    await workload.initialize(canary)
    target = await kube_api.get(DEPLOYMENT, "prod", "backend")
    assert target is not None
    target["spec"]["template"]["spec"]["containers"][0]["image"] = "podinfo:6.1.0"
    await kube_api.replace(DEPLOYMENT, target)
    await workload.initialize(canary)
    primary = await kube_api.get(DEPLOYMENT, "prod", "backend-primary")
    assert primary is not None
    assert primary["spec"]["template"]["spec"]["containers"][0]["image"] == "podinfo:6.0.0"


async def test_missing_target_is_a_clear_error(kube_api: Api) -> None:
    await kube_api.create(NAMESPACE, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod"}})
    with pytest.raises(WorkloadError, match="deployment prod/backend not found"):
        await KubeWorkload(kube_api).initialize(make_canary())


async def test_target_without_a_selector_label_is_named(kube_api: Api) -> None:
    await kube_api.create(NAMESPACE, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod"}})
    await kube_api.create(DEPLOYMENT, deployment_doc(match_labels={"role": "api"}))
    with pytest.raises(WorkloadError, match=r"prod/backend: spec.selector.matchLabels must contain one of app"):
        await KubeWorkload(kube_api).initialize(make_canary())


async def test_revision_follows_template_and_tracked_configs(kube_api: Api) -> None:
    await seed(kube_api)
    workload, canary = KubeWorkload(kube_api), make_canary()
    first = await workload.revision(canary)
    assert dict(first.configs).keys() == {"configmap/backend-config", "secret/backend-token"}
    await workload.scale_canary_to_zero(canary)
    assert await workload.revision(canary) == first  # scaling is not a release
    await kube_api.replace(CONFIGMAP, {**config_map({"port": "8080"}), "metadata": await _meta(kube_api)})
    changed = await workload.revision(canary)
    assert changed.spec_hash == first.spec_hash
    assert dict(changed.configs)["configmap/backend-config"] != dict(first.configs)["configmap/backend-config"]
    target = await kube_api.get(DEPLOYMENT, "prod", "backend")
    assert target is not None
    target["spec"]["template"]["spec"]["containers"][0]["image"] = "podinfo:6.1.0"
    await kube_api.replace(DEPLOYMENT, target)
    assert (await workload.revision(canary)).spec_hash != first.spec_hash


async def _meta(api: Api) -> Json:
    live = await api.get(CONFIGMAP, "prod", "backend-config")
    assert live is not None
    return dict(live["metadata"])


async def test_readiness_follows_flaggers_rules(kube_api: Api) -> None:
    await seed(kube_api)
    workload, canary = KubeWorkload(kube_api), make_canary()
    await workload.initialize(canary)
    primary = await workload.primary_readiness(canary)
    assert not primary.ready and primary.retriable
    assert "backend-primary.prod not ready: waiting for rollout to finish" in primary.message
    await set_status(kube_api, DEPLOYMENT, "backend-primary", {**rolled_out(3), "availableReplicas": 2})
    assert "2 of 3 (readyThreshold 100%)" in (await workload.primary_readiness(canary)).message
    await set_status(kube_api, DEPLOYMENT, "backend-primary", rolled_out(3))
    assert await workload.primary_readiness(canary) == Readiness(True)

    await set_status(kube_api, DEPLOYMENT, "backend", {**rolled_out(3), "updatedReplicas": 1, "replicas": 3})
    canary_ready = await workload.canary_readiness(canary)
    assert canary_ready == Readiness(
        False,
        "canary deployment backend.prod not ready: waiting for rollout to finish: "
        "1 out of 3 new replicas have been updated",
        True,
    )
    stuck = {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}
    await set_status(kube_api, DEPLOYMENT, "backend", {**rolled_out(1), "conditions": [stuck]})
    assert not (await workload.canary_readiness(canary)).retriable


async def test_unavailable_past_the_progress_deadline_is_final(kube_api: Api) -> None:
    await seed(kube_api, replicas=2)
    canary = make_canary()
    conditions = [
        {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"},
        {
            "type": "Available",
            "status": "False",
            "reason": "MinimumReplicasUnavailable",
            "lastUpdateTime": "2026-01-01T10:00:00Z",
        },
    ]
    await set_status(
        kube_api, DEPLOYMENT, "backend", {**rolled_out(2), "availableReplicas": 0, "conditions": conditions}
    )
    within = KubeWorkload(kube_api, clock=FakeClock(_epoch("2026-01-01T10:00:30Z")))
    past = KubeWorkload(kube_api, clock=FakeClock(_epoch("2026-01-01T10:01:01Z")))
    assert (await within.canary_readiness(canary)).retriable
    late = await past.canary_readiness(canary)
    assert not late.ready and not late.retriable


def _epoch(text: str) -> float:
    import datetime

    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


async def test_scaling_and_finalize(kube_api: Api) -> None:
    await seed(kube_api, replicas=3)
    workload, canary = KubeWorkload(kube_api), make_canary()
    await workload.initialize(canary)
    await workload.scale_canary_to_zero(canary)
    assert await _replicas(kube_api, "backend") == 0
    await workload.scale_canary_up(canary)  # from zero: the primary's replicas
    assert await _replicas(kube_api, "backend") == 3
    await workload.scale_canary_to_zero(canary)
    await workload.finalize(canary)
    assert await _replicas(kube_api, "backend") == 3


async def test_scale_up_with_an_autoscaler_uses_its_minimum(kube_api: Api) -> None:
    await seed(kube_api, replicas=None, hpa=True)
    workload, canary = KubeWorkload(kube_api), make_canary(autoscaler=True)
    await workload.initialize(canary)
    await workload.scale_canary_to_zero(canary)
    await workload.scale_canary_up(canary)
    assert await _replicas(kube_api, "backend") == 2


async def _replicas(api: Api, name: str) -> int:
    obj = await api.get(DEPLOYMENT, "prod", name)
    assert obj is not None
    return int(obj["spec"]["replicas"])


async def test_promote_copies_template_and_configs(kube_api: Api, kube_emulator: Any) -> None:
    await seed(kube_api)
    workload, canary = KubeWorkload(kube_api), make_canary()
    await workload.initialize(canary)
    before = await kube_api.get(DEPLOYMENT, "prod", "backend-primary")
    assert before is not None
    target = await kube_api.get(DEPLOYMENT, "prod", "backend")
    assert target is not None
    target["spec"]["template"]["spec"]["containers"][0]["image"] = "podinfo:6.1.0"
    target["metadata"]["annotations"] = {
        "team": "payments",
        "deployment.kubernetes.io/revision": "4",  # the target's controller's, and kubectl's: not copied
        "kubectl.kubernetes.io/last-applied-configuration": "{}",
    }
    await kube_api.replace(DEPLOYMENT, target)
    await kube_api.replace(CONFIGMAP, {**config_map({"port": "8080"}), "metadata": await _meta(kube_api)})

    await workload.promote(canary)
    after = await kube_api.get(DEPLOYMENT, "prod", "backend-primary")
    assert after is not None
    assert after["spec"]["template"]["spec"]["containers"][0]["image"] == "podinfo:6.1.0"
    assert after["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"] == "backend-config-primary"
    assert after["metadata"]["annotations"] == {"team": "payments"}
    ids = [d["spec"]["template"]["metadata"]["annotations"]["flagger-id"] for d in (before, after)]
    assert ids[0] != ids[1]
    copied = await kube_api.get(CONFIGMAP, "prod", "backend-config-primary")
    assert copied is not None and copied["data"] == {"port": "8080"}
    count = len(kube_emulator.requests)
    await workload.promote(canary)
    assert writes(kube_emulator, count) == []
    validate_written(kube_emulator)


async def test_daemonset_target(kube_api: Api, kube_emulator: Any) -> None:
    await seed(kube_api, kind="DaemonSet")
    workload, canary = KubeWorkload(kube_api), make_canary(kind="DaemonSet")
    await workload.initialize(canary)
    primary = await kube_api.get(DAEMONSET, "prod", "backend-primary")
    assert primary is not None and primary["spec"]["selector"]["matchLabels"] == {"app": "backend-primary"}
    revision = await workload.revision(canary)

    await workload.scale_canary_to_zero(canary)
    target = await kube_api.get(DAEMONSET, "prod", "backend")
    assert target is not None
    assert target["spec"]["template"]["spec"]["nodeSelector"] == {SCALE_TO_ZERO_KEY: "true"}
    assert await workload.revision(canary) == revision
    await workload.promote(canary)  # the scale-down selector never reaches the primary
    primary = await kube_api.get(DAEMONSET, "prod", "backend-primary")
    assert primary is not None and "nodeSelector" not in primary["spec"]["template"]["spec"]
    await workload.scale_canary_up(canary)
    target = await kube_api.get(DAEMONSET, "prod", "backend")
    assert target is not None and SCALE_TO_ZERO_KEY not in (
        target["spec"]["template"]["spec"].get("nodeSelector") or {}
    )

    status = {"desiredNumberScheduled": 3, "updatedNumberScheduled": 2, "numberAvailable": 2}
    await set_status(kube_api, DAEMONSET, "backend", status)
    ready = await workload.canary_readiness(canary)
    assert not ready.ready and "2 out of 3 new pods have been updated" in ready.message
    await set_status(kube_api, DAEMONSET, "backend", {**status, "updatedNumberScheduled": 3, "numberAvailable": 3})
    assert (await workload.canary_readiness(canary)).ready
    validate_written(kube_emulator)


async def test_conflicts_are_retried_on_a_fresh_read(kube_api: Api, kube_emulator: Any) -> None:
    await seed(kube_api)
    workload, canary = KubeWorkload(kube_api), make_canary()
    await workload.initialize(canary)
    target = await kube_api.get(DEPLOYMENT, "prod", "backend")
    assert target is not None
    target["spec"]["template"]["spec"]["containers"][0]["image"] = "podinfo:6.1.0"
    await kube_api.replace(DEPLOYMENT, target)
    kube_emulator.fail_next("PUT", DEPLOYMENT.path("prod", "backend-primary"), 409, times=2)
    await workload.promote(canary)
    primary = await kube_api.get(DEPLOYMENT, "prod", "backend-primary")
    assert primary is not None
    assert primary["spec"]["template"]["spec"]["containers"][0]["image"] == "podinfo:6.1.0"

    kube_emulator.fail_next("PATCH", DEPLOYMENT.path("prod", "backend"), 409, times=10)
    with pytest.raises(Conflict):
        await workload.scale_canary_to_zero(canary)


async def test_with_a_cache_the_primary_is_not_ready_from_its_copy_before_the_promotion(
    kube_api: Api, kube_emulator: Any
) -> None:
    """The operator reads workloads from a watch-backed cache. Right after a promotion wrote the primary, the
    cache may still hold the primary as it was (rolled out, ready): readiness must come from the new object."""
    await seed(kube_api)
    cache = KubeCache(kube_api)  # not started: it holds what it is shown below, like a watch that lags behind
    workload, canary = KubeWorkload(kube_api, cache=cache), make_canary()
    await workload.initialize(canary)
    await set_status(kube_api, DEPLOYMENT, "backend-primary", rolled_out(3))
    for name in ("backend", "backend-primary"):
        cache.observe(DEPLOYMENT, WatchEvent("ADDED", await kube_api.get(DEPLOYMENT, "prod", name) or {}))
    count = len(kube_emulator.requests)
    assert (await workload.primary_readiness(canary)).ready  # initialize wrote it: asks the server once
    assert len(kube_emulator.requests) == count + 1
    assert (await workload.primary_readiness(canary)).ready  # the cache holds the server's version now
    assert len(kube_emulator.requests) == count + 1

    target = await kube_api.get(DEPLOYMENT, "prod", "backend")
    assert target is not None
    target["spec"]["template"]["spec"]["containers"][0]["image"] = "podinfo:6.1.0"
    cache.observe(DEPLOYMENT, WatchEvent("MODIFIED", await kube_api.replace(DEPLOYMENT, target)))
    await workload.promote(canary)
    ready = await workload.primary_readiness(canary)
    assert not ready.ready and "observed deployment generation less than desired generation" in ready.message
    primary = await kube_api.get(DEPLOYMENT, "prod", "backend-primary")
    assert primary is not None and primary["spec"]["template"]["spec"]["containers"][0]["image"] == "podinfo:6.1.0"
