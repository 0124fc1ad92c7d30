"""The apex, primary and canary Services: which pods they select, their ports and their metadata."""

from __future__ import annotations

import pytest

from canaryflow.kube.render import RenderError
from tests.kube.builders import canary_doc, deployment_doc, find, rendered


@pytest.mark.parametrize(
    ("match_labels", "key"),
    [
        pytest.param({"app": "backend", "name": "backend"}, "app", id="app-before-name"),
        pytest.param({"app.kubernetes.io/name": "backend", "name": "backend"}, "name", id="name-before-k8s-name"),
        pytest.param({"app.kubernetes.io/name": "backend", "tier": "web"}, "app.kubernetes.io/name", id="k8s-name"),
        pytest.param({"tier": "web", "app": "backend"}, "app", id="app-wherever-it-is"),
    ],
)
def test_the_selector_label_is_the_first_of_app_name_and_k8s_name(match_labels: dict[str, str], key: str) -> None:
    objects = rendered(canary_doc(), deployment_doc(match_labels))
    assert find(objects, "Service", "backend-canary")["spec"]["selector"] == {key: "backend"}
    assert find(objects, "Service", "backend-primary")["spec"]["selector"] == {key: "backend-primary"}
    assert find(objects, "Service", "backend")["spec"]["selector"] == {key: "backend-primary"}
    primary = find(objects, "Deployment", "backend-primary")
    assert primary["spec"]["selector"] == {"matchLabels": {key: "backend-primary"}}
    assert primary["spec"]["template"]["metadata"]["labels"][key] == "backend-primary"


def test_a_workload_without_a_selector_label_is_refused_with_the_labels_to_use() -> None:
    with pytest.raises(RenderError, match=r"prod/backend: spec.selector.matchLabels must contain one of app, name"):
        rendered(canary_doc(), deployment_doc({"component": "web"}))


def test_each_service_is_labelled_with_its_own_name_and_kept_out_of_flux_hands() -> None:
    objects = rendered(canary_doc(), deployment_doc())
    for name in ("backend", "backend-primary", "backend-canary"):
        metadata = find(objects, "Service", name)["metadata"]
        assert metadata["labels"] == {"app": name}
        assert metadata["annotations"] == {
            "kustomize.toolkit.fluxcd.io/reconcile": "disabled",
            "helm.toolkit.fluxcd.io/driftDetection": "disabled",
        }
        assert metadata["ownerReferences"][0]["kind"] == "Canary"


@pytest.mark.parametrize(
    ("service", "port"),
    [
        pytest.param("", {"name": "http", "port": 9898, "targetPort": 9898}, id="defaults"),
        pytest.param("portName: grpc", {"name": "grpc", "port": 9898, "targetPort": 9898}, id="port-name"),
        pytest.param("targetPort: 8080", {"name": "http", "port": 9898, "targetPort": 8080}, id="target-port"),
        pytest.param("targetPort: http-app", {"name": "http", "port": 9898, "targetPort": "http-app"}, id="by-name"),
    ],
)
def test_service_port_name_and_target_port(service: str, port: dict[str, object]) -> None:
    objects = rendered(canary_doc(service), deployment_doc())
    for name in ("backend", "backend-primary", "backend-canary"):
        assert find(objects, "Service", name)["spec"]["ports"] == [{**port, "protocol": "TCP"}]


def test_apex_primary_and_canary_metadata_go_to_their_own_service() -> None:
    service = """
    apex: {labels: {team: web}, annotations: {note: apex}}
    primary: {labels: {track: stable}}
    canary: {annotations: {note: canary}}
    """
    objects = rendered(canary_doc(service), deployment_doc())
    apex = find(objects, "Service", "backend")["metadata"]
    assert apex["labels"] == {"team": "web", "app": "backend"}
    assert apex["annotations"]["note"] == "apex"
    assert find(objects, "Service", "backend-primary")["metadata"]["labels"] == {
        "track": "stable",
        "app": "backend-primary",
    }
    assert find(objects, "Service", "backend-canary")["metadata"]["annotations"]["note"] == "canary"
    # The apex metadata also labels the VirtualService that shares the apex name.
    assert find(objects, "VirtualService", "backend")["metadata"]["labels"] == {"team": "web"}


def test_headless_service_and_app_protocol() -> None:
    objects = rendered(canary_doc("headless: true\nappProtocol: http"), deployment_doc())
    spec = find(objects, "Service", "backend-canary")["spec"]
    assert spec["clusterIP"] == "None"
    assert spec["ports"][0]["appProtocol"] == "http"


def test_port_discovery_adds_the_application_ports_but_not_the_served_one_nor_the_proxy_s() -> None:
    pod = {
        "containers": [
            {
                "name": "backend",
                "image": "podinfo:6",
                "ports": [{"containerPort": 9898, "name": "http"}, {"containerPort": 9797, "name": "metrics"}],
            },
            {"name": "sidecar", "image": "log:1", "ports": [{"containerPort": 7000}]},
            {"name": "istio-proxy", "image": "proxyv2:1", "ports": [{"containerPort": 15090, "name": "prom"}]},
        ]
    }
    objects = rendered(canary_doc("portDiscovery: true"), deployment_doc(pod_spec=pod))
    ports = find(objects, "Service", "backend")["spec"]["ports"]
    assert [(p["name"], p["port"], p["targetPort"]) for p in ports] == [
        ("http", 9898, 9898),
        ("tcp-sidecar-0", 7000, 7000),
        ("metrics", 9797, 9797),
    ]
