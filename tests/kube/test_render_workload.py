"""The primary workload, its tracked ConfigMaps and Secrets, and the primary HPA."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest

from canaryflow.kube.render import RenderError, configs, render
from tests.kube.builders import canary_doc, deployment_doc, find, rendered

Json = dict[str, Any]


def config_map(name: str, data: dict[str, str], annotations: dict[str, str] | None = None) -> Json:
    meta: Json = {"name": name, "namespace": "prod", "labels": {"team": "web"}}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


def secret(name: str, type_: str = "Opaque", **fields: Any) -> Json:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": "prod"},
        "type": type_,
        **fields,
    }


POD_WITH_CONFIGS: Json = {
    "containers": [
        {
            "name": "backend",
            "image": "podinfo:6",
            "env": [
                {"name": "COLOR", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "color"}}},
                {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "token", "key": "token"}}},
            ],
            "envFrom": [{"configMapRef": {"name": "flags"}}, {"secretRef": {"name": "registry"}}],
        }
    ],
    "initContainers": [
        {
            "name": "migrate",
            "image": "migrate:1",
            "env": [{"name": "DB", "valueFrom": {"secretKeyRef": {"name": "db", "key": "url"}}}],
        }
    ],
    "volumes": [
        {"name": "tls", "secret": {"secretName": "tls"}},
        {"name": "all", "projected": {"sources": [{"configMap": {"name": "bundle"}}, {"secret": {"name": "token"}}]}},
        {"name": "frozen", "configMap": {"name": "frozen"}},
        {"name": "elsewhere", "configMap": {"name": "elsewhere", "optional": True}},
    ],
}
CONFIGS = [
    config_map("settings", {"color": "blue"}),
    config_map("flags", {"FAST": "1"}),
    config_map("bundle", {"ca.crt": "..."}),
    config_map("frozen", {"x": "y"}, {"flagger.app/config-tracking": "disabled"}),
    secret("token", data={"token": base64.b64encode(b"s3cret").decode()}),
    secret("db", stringData={"url": "postgres://db"}),
    secret("tls", "kubernetes.io/tls", data={"tls.crt": "Y3J0", "tls.key": "a2V5"}),
    secret("registry", "kubernetes.io/dockerconfigjson", data={".dockerconfigjson": "e30="}),
]


def test_tracked_configs_are_copied_as_primary_and_the_primary_reads_the_copies() -> None:
    objects = rendered(canary_doc(), deployment_doc(pod_spec=POD_WITH_CONFIGS), *CONFIGS)
    copies = [(o["kind"], o["metadata"]["name"]) for o in objects if o["kind"] in ("ConfigMap", "Secret")]
    assert copies == [
        ("ConfigMap", "bundle-primary"),
        ("ConfigMap", "flags-primary"),
        ("ConfigMap", "settings-primary"),
        ("Secret", "db-primary"),
        ("Secret", "tls-primary"),
        ("Secret", "token-primary"),
    ]
    pod = find(objects, "Deployment", "backend-primary")["spec"]["template"]["spec"]
    container, init = pod["containers"][0], pod["initContainers"][0]
    assert [e["valueFrom"] for e in container["env"]] == [
        {"configMapKeyRef": {"name": "settings-primary", "key": "color"}},
        {"secretKeyRef": {"name": "token-primary", "key": "token"}},
    ]
    # Registry credentials and configs opted out of tracking keep their names.
    assert container["envFrom"] == [{"configMapRef": {"name": "flags-primary"}}, {"secretRef": {"name": "registry"}}]
    assert init["env"][0]["valueFrom"]["secretKeyRef"]["name"] == "db-primary"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["tls"]["secret"]["secretName"] == "tls-primary"
    assert volumes["all"]["projected"]["sources"] == [
        {"configMap": {"name": "bundle-primary"}},
        {"secret": {"name": "token-primary"}},
    ]
    assert volumes["frozen"]["configMap"]["name"] == "frozen"


def test_config_copies_keep_data_and_type_but_not_labels() -> None:
    objects = rendered(canary_doc(), deployment_doc(pod_spec=POD_WITH_CONFIGS), *CONFIGS)
    settings = find(objects, "ConfigMap", "settings-primary")
    assert settings["data"] == {"color": "blue"}
    assert "labels" not in settings["metadata"]
    assert settings["metadata"]["ownerReferences"][0]["name"] == "backend"
    assert find(objects, "Secret", "tls-primary")["type"] == "kubernetes.io/tls"
    # stringData is stored by the API server as base64 data: the copy holds it that way.
    assert find(objects, "Secret", "db-primary")["data"] == {"url": base64.b64encode(b"postgres://db").decode()}


def test_a_config_missing_from_the_manifests_is_left_untracked_with_a_note() -> None:
    rendering = render.render([canary_doc(), deployment_doc(pod_spec=POD_WITH_CONFIGS)], 0)
    pod = find(rendering.objects, "Deployment", "backend-primary")["spec"]["template"]["spec"]
    assert pod["containers"][0]["env"][0]["valueFrom"]["configMapKeyRef"]["name"] == "settings"
    assert any(
        "ConfigMap prod/settings, read by Deployment backend, is not in the manifests" in n for n in rendering.notes
    )
    assert any("ConfigMap prod/elsewhere" in n for n in rendering.notes)


def test_checksums_are_flagger_s_so_tracked_configs_survive_a_migration() -> None:
    # Go's json.Marshal sorts keys, writes no spaces and escapes <, > and &.
    expected = hashlib.sha256(b'{"a":"1","b":"\\u003cx\\u0026y\\u003e"}').hexdigest()[:16]
    assert configs.checksum({"b": "<x&y>", "a": "1"}) == expected
    assert configs.checksum(None) == hashlib.sha256(b"null").hexdigest()[:16]
    tracking = configs.track(
        POD_WITH_CONFIGS,
        lambda kind, name: next((c for c in CONFIGS if c["kind"] == kind and c["metadata"]["name"] == name), None),
    )
    by_key = {ref.key: ref.checksum for ref in tracking.refs}
    assert by_key["configmap/settings"] == configs.checksum({"color": "blue"})
    assert by_key["secret/token"] == configs.checksum({"token": base64.b64encode(b"s3cret").decode()})
    assert sorted(by_key) == [
        "configmap/bundle",
        "configmap/flags",
        "configmap/settings",
        "secret/db",
        "secret/tls",
        "secret/token",
    ]


def test_a_config_change_changes_the_primary_pods_rollout_id() -> None:
    def rollout_id(color: str) -> str:
        settings = config_map("settings", {"color": color})
        objects = rendered(canary_doc(), deployment_doc(pod_spec=POD_WITH_CONFIGS), settings, *CONFIGS[1:])
        annotations = find(objects, "Deployment", "backend-primary")["spec"]["template"]["metadata"]["annotations"]
        value: str = annotations["flagger-id"]
        return value

    assert rollout_id("blue") == rollout_id("blue")
    assert rollout_id("blue") != rollout_id("green")


def test_primary_copies_rollout_settings_and_replicas() -> None:
    target = deployment_doc()
    target["metadata"]["labels"] = {"app": "backend", "kustomize.toolkit.fluxcd.io/name": "apps"}
    target["metadata"]["annotations"] = {"owner": "web", "kustomize.toolkit.fluxcd.io/checksum": "x"}
    target["spec"].update(replicas=3, minReadySeconds=5, revisionHistoryLimit=2, progressDeadlineSeconds=60)
    target["spec"]["strategy"] = {"type": "Recreate"}
    primary = find(rendered(canary_doc(), target), "Deployment", "backend-primary")
    assert primary["metadata"]["labels"] == {"app": "backend-primary"}
    assert primary["metadata"]["annotations"] == {"owner": "web"}
    spec = primary["spec"]
    assert (spec["replicas"], spec["minReadySeconds"], spec["revisionHistoryLimit"]) == (3, 5, 2)
    assert (spec["progressDeadlineSeconds"], spec["strategy"]) == (60, {"type": "Recreate"})


def test_a_target_scaled_to_zero_gives_a_primary_with_one_replica() -> None:
    target = deployment_doc()
    target["spec"]["replicas"] = 0
    assert find(rendered(canary_doc(), target), "Deployment", "backend-primary")["spec"]["replicas"] == 1


def test_anti_affinity_on_the_target_s_pods_points_at_the_primary_s_pods() -> None:
    term = {"labelSelector": {"matchLabels": {"app": "backend"}}, "topologyKey": "kubernetes.io/hostname"}
    spread = {
        "maxSkew": 1,
        "topologyKey": "zone",
        "whenUnsatisfiable": "DoNotSchedule",
        "labelSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["backend"]}]},
    }
    pod = {
        "containers": [{"name": "backend", "image": "podinfo:6"}],
        "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}},
        "topologySpreadConstraints": [spread],
    }
    primary_pod = find(rendered(canary_doc(), deployment_doc(pod_spec=pod)), "Deployment", "backend-primary")["spec"][
        "template"
    ]["spec"]
    required = primary_pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert required["labelSelector"]["matchLabels"] == {"app": "backend-primary"}
    assert primary_pod["topologySpreadConstraints"][0]["labelSelector"]["matchExpressions"][0]["values"] == [
        "backend-primary"
    ]


def test_daemonset_targets_get_a_primary_daemonset() -> None:
    target = deployment_doc(kind="DaemonSet")
    target["spec"]["updateStrategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}
    doc = canary_doc()
    doc["spec"]["targetRef"]["kind"] = "DaemonSet"
    primary = find(rendered(doc, target), "DaemonSet", "backend-primary")
    assert "replicas" not in primary["spec"]
    assert primary["spec"]["updateStrategy"]["rollingUpdate"] == {"maxUnavailable": 1}


def test_a_daemonset_that_does_not_roll_is_refused() -> None:
    target = deployment_doc(kind="DaemonSet")
    target["spec"]["updateStrategy"] = {"type": "OnDelete"}
    doc = canary_doc()
    doc["spec"]["targetRef"]["kind"] = "DaemonSet"
    with pytest.raises(RenderError, match="needs updateStrategy RollingUpdate"):
        rendered(doc, target)


HPA_V2BETA2: Json = {
    "apiVersion": "autoscaling/v2beta2",
    "kind": "HorizontalPodAutoscaler",
    "metadata": {"name": "backend-hpa", "namespace": "prod", "labels": {"team": "web"}},
    "spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "backend"},
        "minReplicas": 2,
        "maxReplicas": 6,
        "metrics": [
            {
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
            }
        ],
        "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}},
    },
}


def autoscaled(hpa: Json, **ref: Any) -> Json:
    doc = canary_doc(
        autoscalerRef={"apiVersion": hpa["apiVersion"], "kind": "HorizontalPodAutoscaler", "name": "backend-hpa", **ref}
    )
    return find(rendered(doc, deployment_doc(), hpa), "HorizontalPodAutoscaler", "backend-hpa-primary")


def test_a_v2beta2_hpa_becomes_an_autoscaling_v2_hpa_for_the_primary() -> None:
    primary = autoscaled(HPA_V2BETA2)
    assert primary["apiVersion"] == "autoscaling/v2"
    assert primary["metadata"]["labels"] == {"team": "web"}
    spec = primary["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "backend-primary"}
    assert (spec["minReplicas"], spec["maxReplicas"]) == (2, 6)
    assert spec["metrics"] == HPA_V2BETA2["spec"]["metrics"]
    assert spec["behavior"] == HPA_V2BETA2["spec"]["behavior"]


def test_a_v1_hpa_s_cpu_target_becomes_a_v2_metric() -> None:
    hpa = {**HPA_V2BETA2, "apiVersion": "autoscaling/v1"}
    hpa["spec"] = {
        "scaleTargetRef": HPA_V2BETA2["spec"]["scaleTargetRef"],
        "maxReplicas": 4,
        "targetCPUUtilizationPercentage": 70,
    }
    assert autoscaled(hpa)["spec"]["metrics"] == [
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}
    ]


def test_primary_scaler_replicas_override_the_primary_hpa_bounds() -> None:
    spec = autoscaled(HPA_V2BETA2, primaryScalerReplicas={"minReplicas": 3, "maxReplicas": 10})["spec"]
    assert (spec["minReplicas"], spec["maxReplicas"]) == (3, 10)


def test_a_missing_hpa_is_refused() -> None:
    doc = canary_doc(autoscalerRef={"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "name": "nope"})
    with pytest.raises(RenderError, match="HorizontalPodAutoscaler prod/nope is not in the manifests"):
        rendered(doc, deployment_doc())
