"""The Helm chart, rendered by tests/deploy/gotemplate.py (helm is not installed here) for the default values and
the variations its values.yaml documents, and held to the same checks as the kustomize base."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
import yaml

from canaryflow import __version__
from tests.deploy import usage
from tests.deploy.gotemplate import Renderer, TemplateError
from tests.deploy.manifests import (
    CHART,
    CLUSTERWIDE_ONLY,
    KOPF,
    KOPF_NAMESPACED,
    KOPF_NAMESPACES,
    OWNER_FINALIZERS,
    ROOT,
    granted,
    kustomize,
    only,
    operator_options,
    validate,
)

RELEASE = {"Name": "canaryflow", "Namespace": "canaryflow-system", "Service": "Helm"}


def chart() -> dict[str, Any]:
    return dict(yaml.safe_load((CHART / "Chart.yaml").read_text()))


def defaults() -> dict[str, Any]:
    return dict(yaml.safe_load((CHART / "values.yaml").read_text()))


def values(**overrides: Any) -> dict[str, Any]:
    """The default values with top-level keys overridden (nested maps merged, as `helm --set` does)."""
    merged = copy.deepcopy(defaults())
    for key, value in overrides.items():
        merged[key] = {**merged[key], **value} if isinstance(value, dict) else value
    return merged


def templates() -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted((CHART / "templates").iterdir())}


def render(vals: Mapping[str, Any]) -> list[dict[str, Any]]:
    """`helm template`: every manifest template rendered and split into objects (helpers and NOTES excluded)."""
    renderer = Renderer(templates())
    meta = chart()  # Helm's .Chart spells Chart.yaml's fields with a capital first letter
    context = {"Values": vals, "Release": RELEASE, "Chart": {k[0].upper() + k[1:]: v for k, v in meta.items()}}
    objects: list[dict[str, Any]] = []
    for name in templates():
        if name.endswith(".yaml") and not name.startswith("_"):
            text = renderer.render(name, context)
            objects += [doc for doc in yaml.safe_load_all(text) if doc]
    return objects


def container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return dict(only(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0])


def leaves(tree: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            yield from leaves(value, path + ".")
        else:
            yield path


def test_chart_metadata() -> None:
    meta = chart()
    assert meta["apiVersion"] == "v2" and meta["name"] == "canaryflow" and meta["type"] == "application"
    assert re.fullmatch(r"\d+\.\d+\.\d+", meta["version"])
    assert meta["appVersion"] == __version__


def test_every_value_is_used_by_a_template() -> None:
    text = "".join(templates().values())
    for path in leaves(defaults()):
        parts = path.split(".")
        prefixes = [".".join(parts[:n]) for n in range(len(parts), 0, -1)]
        used = any(re.search(rf"\.Values\.{re.escape(p)}(?![\w.])", text) for p in prefixes)
        assert used, f"values.yaml: {path} is used by no template"


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"namespaces": ["prod", "staging"]},
        {"slack": {"url": "https://hooks.slack.com/services/T/B/X", "channel": "releases"}, "msteams": {"url": "x"}},
        {"slack": {"existingSecret": "chat"}, "leaderElection": {"enabled": False}},
        {"replicas": 3, "nodeSelector": {"kubernetes.io/os": "linux"}, "tolerations": [{"operator": "Exists"}]},
    ],
    ids=["defaults", "namespaces", "slack-url", "existing-secret", "replicas"],
)
def test_rendered_objects_are_accepted_by_the_api_server_schema(overrides: dict[str, Any]) -> None:
    for obj in render(values(**overrides)):
        validate(obj)


def test_defaults_match_the_kustomize_base() -> None:
    """Two install paths, one operator: same permissions, flags, probes and pod security."""
    ours, base = render(defaults()), kustomize(ROOT / "deploy")
    assert granted(only(ours, "ClusterRole")["rules"]) == granted(only(base, "ClusterRole")["rules"])
    assert container(ours)["args"] == container(base)["args"]
    for key in ("livenessProbe", "readinessProbe", "securityContext", "resources", "ports", "volumeMounts"):
        assert container(ours)[key] == container(base)[key], key
    pods = [only(objects, "Deployment")["spec"]["template"]["spec"] for objects in (ours, base)]
    assert pods[0]["securityContext"] == pods[1]["securityContext"]
    assert {o["kind"] for o in ours} == {o["kind"] for o in base} - {"Namespace", "CustomResourceDefinition"}


def test_listed_namespaces_get_a_role_each_and_the_operator_only_watches_them() -> None:
    objects = render(values(namespaces=["prod", "staging"]))
    assert [a for a in container(objects)["args"] if a.startswith("--namespace")] == [
        "--namespace=prod",
        "--namespace=staging",
    ]
    roles = {o["metadata"]["namespace"]: o for o in objects if o["kind"] == "Role"}
    bindings = {o["metadata"]["namespace"]: o for o in objects if o["kind"] == "RoleBinding"}
    assert set(roles) == set(bindings) == {"prod", "staging"}
    cluster = granted(only(objects, "ClusterRole")["rules"])
    assert cluster == {p for p in KOPF if p[0] == "apiextensions.k8s.io"} | KOPF_NAMESPACES
    # Inside each namespace: exactly what the code does there, with kopf's namespaced peering.
    cluster_scoped = {"namespaces", "customresourcedefinitions", *CLUSTERWIDE_ONLY}
    needed = {p for p in usage.used_by(ROOT / "src" / "canaryflow" / "kube") if p[1] not in cluster_scoped}
    needed |= KOPF_NAMESPACED | {OWNER_FINALIZERS}
    for namespace, role in roles.items():
        assert granted(role["rules"]) == needed, f"Role in {namespace}: {granted(role['rules']) ^ needed}"
        assert bindings[namespace]["subjects"][0]["namespace"] == RELEASE["Namespace"]


def test_chat_webhooks_come_from_a_secret() -> None:
    slack = {"url": "https://hooks.slack.com/services/T/B/X", "channel": "releases", "user": "canaryflow"}
    objects = render(values(slack=slack))
    secret = only(objects, "Secret")
    assert secret["stringData"] == {"slack-url": "https://hooks.slack.com/services/T/B/X"}
    env = {e["name"]: e for e in container(objects)["env"]}
    assert env["CANARYFLOW_SLACK_URL"]["valueFrom"]["secretKeyRef"]["name"] == secret["metadata"]["name"]
    assert "CANARYFLOW_MSTEAMS_URL" not in env
    assert {"--slack-channel=releases", "--slack-user=canaryflow"} <= set(container(objects)["args"])
    assert "https://hooks" not in str(only(objects, "Deployment"))

    objects = render(values(slack={"existingSecret": "chat", "url": "ignored"}))
    assert not [o for o in objects if o["kind"] == "Secret"]
    ref = {e["name"]: e for e in container(objects)["env"]}["CANARYFLOW_SLACK_URL"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "chat", "key": "slack-url"}


def test_settings_reach_the_operator() -> None:
    """Rendered flags parsed by the real `canaryflow operator` into the options the runtime starts with."""
    objects = render(
        values(
            meshProvider="kubernetes",
            metricsServer="http://prom:9090",
            logLevel="debug",
            namespaces=["prod", "staging"],
            slack={"channel": "releases", "user": "bot"},
            leaderElection={"peering": "deploys"},
        )
    )
    options = operator_options(container(objects)["args"])
    assert (options.mesh_provider, options.metrics_server) == ("kubernetes", "http://prom:9090")
    assert options.log_level == "debug"
    assert (options.namespaces, options.peering, options.listen) == (("prod", "staging"), "deploys", "0.0.0.0:8080")
    assert (options.slack_channel, options.slack_user) == ("releases", "bot")
    standalone = render(values(leaderElection={"enabled": False}))
    assert operator_options(container(standalone)["args"]).peering is None
    assert "clusterkopfpeerings" not in {r for _, r, _ in granted(only(standalone, "ClusterRole")["rules"])}


def test_several_replicas_need_leader_election() -> None:
    assert only(render(values(replicas=3)), "Deployment")["spec"]["replicas"] == 3
    with pytest.raises(TemplateError, match=re.escape("replicas > 1 needs leaderElection.enabled")):
        render(values(replicas=2, leaderElection={"enabled": False}))


def test_service_monitor_scrapes_the_metrics_port() -> None:
    assert not [o for o in render(defaults()) if o["kind"] == "ServiceMonitor"]
    objects = render(values(serviceMonitor={"enabled": True, "interval": "15s"}))
    monitor = only(objects, "ServiceMonitor")
    assert monitor["spec"]["endpoints"] == [{"port": "http-metrics", "path": "/metrics", "interval": "15s"}]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= only(objects, "Service")["spec"]["selector"].items()


def test_notes_name_the_watched_namespaces() -> None:
    renderer = Renderer(templates())
    context = {"Values": values(namespaces=["prod"]), "Release": RELEASE, "Chart": {"AppVersion": "0.1.0"}}
    notes = renderer.render("NOTES.txt", context)
    assert "It drives Canaries in: prod." in notes and "namespace canaryflow-system" in notes


def test_the_evaluator_refuses_what_it_does_not_know() -> None:
    """The renderer must not hide a typo: a missing value or an unknown function fails instead of printing ''."""
    renderer = Renderer({"t": "a: {{ .Values.missing }}", "u": "{{ lower .Values.x }}"})
    with pytest.raises(TemplateError, match="has no value"):
        renderer.render("t", {"Values": {}})
    with pytest.raises(TemplateError, match="unknown function"):
        renderer.render("u", {"Values": {"x": "A"}})
