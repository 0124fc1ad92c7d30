"""Validating Canary, MetricTemplate and AlertProvider documents: what a user reads when a manifest is wrong."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from canaryflow.api import loader, validate
from canaryflow.api.canary import Canary

BACKEND = (Path(__file__).resolve().parents[2] / "examples/gitops-istio/apps/backend/canary.yaml").read_text()


def line_of(text: str, fragment: str) -> int:
    """The 1-based line of the first line of ``text`` containing ``fragment``."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if fragment in line)


def problems_in(text: str, source: str = "canary.yaml") -> list[str]:
    return [str(p) for p in validate.validate_documents(loader.load_text(text, source).documents).problems]


def check(body: dict[str, Any]) -> list[str]:
    """Problems of one manifest given as data (its lines are those of its YAML dump)."""
    return problems_in(yaml.safe_dump(body, sort_keys=False))


def test_the_whole_seed_repository_validates(seed_dir: Path) -> None:
    report = validate.validate_paths([str(seed_dir)])
    assert report.problems == []
    assert sorted((r.kind, r.metadata.name) for _, r in report.resources) == [
        ("Canary", "backend"),
        ("Canary", "frontend"),
        ("Kustomization", "apps"),
        ("Kustomization", "istio-gateway"),
        ("Kustomization", "istio-system"),
        ("MetricTemplate", "error-rate"),
        ("MetricTemplate", "latency"),
    ]
    assert {
        "Deployment",
        "HorizontalPodAutoscaler",
        "Kustomization (kustomize.config.k8s.io/v1beta1)",
        "HelmRelease",
        "YAML list",
    } <= {s.kind for s in report.skipped}


@pytest.mark.parametrize(
    ("written", "typo", "path", "suggestion"),
    [
        pytest.param("stepWeight: 5", "stepWeigth: 5", "spec.analysis.stepWeigth", "stepWeight", id="stepWeigth"),
        pytest.param(
            "thresholdRange:",
            "thresholdRnage:",
            "spec.analysis.metrics[0].thresholdRnage",
            "thresholdRange",
            id="thresholdRnage",
        ),
        pytest.param(
            "progressDeadlineSeconds",
            "progress_deadline_seconds",
            "spec.progress_deadline_seconds",
            "progressDeadlineSeconds",
            id="snake-case-is-not-yaml",
        ),
        pytest.param("timeout: 15s", "timout: 15s", "spec.analysis.webhooks[0].timout", "timeout", id="timout"),
    ],
)
def test_a_misspelt_field_is_reported_on_its_line_with_the_name_it_was_meant_to_be(
    written: str, typo: str, path: str, suggestion: str
) -> None:
    text = BACKEND.replace(written, typo, 1)
    assert problems_in(text) == [
        f"canary.yaml:{line_of(text, typo)}: Canary/backend: {path}: unknown field; did you mean {suggestion}?"
    ]


def test_a_misspelt_required_field_is_both_missing_and_unknown() -> None:
    text = BACKEND.replace("port: 9898", "prot: 9898")
    assert problems_in(text) == [
        f"canary.yaml:{line_of(text, 'service:')}: Canary/backend: spec.service.port: required field is missing",
        f"canary.yaml:{line_of(text, 'prot:')}: Canary/backend: spec.service.prot: unknown field; did you mean port?",
    ]


def test_an_unknown_field_with_no_near_name_lists_the_valid_ones(backend_canary: dict[str, Any]) -> None:
    backend_canary["spec"]["targetRef"]["colour"] = "blue"
    [problem] = check(backend_canary)
    assert problem.endswith("spec.targetRef.colour: unknown field; valid fields here: apiVersion, kind, name")


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        pytest.param(
            ("service", "port"), "9898", 'expected a whole number, got "9898" (remove the quotes)', id="quoted-port"
        ),
        pytest.param(("service", "port"), None, "has no value; expected a whole number", id="empty-port"),
        pytest.param(("service", "port"), 70000, "must be at most 65535 (got 70000)", id="port-range"),
        pytest.param(
            ("service", "targetPort"), [80], "expected a whole number or a string, got a list", id="int-or-string"
        ),
        pytest.param(("service", "targetPort"), 0, "a port number must be 1..65535 (got 0)", id="target-port-range"),
        pytest.param(
            ("analysis", "interval"), 15, "expected a duration such as 30s, 1m or 1m30s, got 15", id="bare-interval"
        ),
        pytest.param(("analysis", "interval"), "15 seconds", "invalid duration '15 seconds'", id="bad-duration"),
        pytest.param(("analysis", "stepWeight"), 150, "must be at most 100 (got 150)", id="step-over-100"),
        pytest.param(("analysis", "stepWeight"), 2.5, "expected a whole number, got 2.5", id="fractional-step"),
        pytest.param(("skipAnalysis",), "yes please", 'expected true or false, got "yes please"', id="bool"),
        pytest.param(
            ("skipAnalysis",), "true", 'expected true or false, got "true" (remove the quotes)', id="quoted-bool"
        ),
        pytest.param(("analysis", "webhooks"), {"name": "x"}, "expected a list, got a mapping", id="mapping-for-list"),
        pytest.param(("service",), "podinfo", 'expected a mapping of fields, got "podinfo"', id="text-for-object"),
        pytest.param(
            ("targetRef", "kind"),
            "Deploymnet",
            'must be one of Deployment, DaemonSet, Service (got "Deploymnet"); did you mean Deployment?',
            id="literal-with-suggestion",
        ),
        pytest.param(("provider",), "istoi", "did you mean istio?", id="provider"),
    ],
)
def test_a_wrong_value_names_what_was_expected(
    backend_canary: dict[str, Any], path: tuple[str, ...], value: Any, message: str
) -> None:
    node = backend_canary["spec"]
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    [problem] = check(backend_canary)
    assert f": Canary/backend: spec.{'.'.join(path)}: " in problem
    assert message in problem


def test_a_number_where_text_is_expected_suggests_quotes(backend_canary: dict[str, Any]) -> None:
    backend_canary["metadata"]["labels"] = {"app.kubernetes.io/version": 6.1}
    backend_canary["spec"]["analysis"]["webhooks"][0]["metadata"]["retries"] = 3
    assert [p.split(": ", 2)[2] for p in check(backend_canary)] == [
        'metadata.labels["app.kubernetes.io/version"]: expected a string, got 6.1 (quote it: "6.1")',
        'spec.analysis.webhooks[0].metadata.retries: expected a string, got 3 (quote it: "3")',
    ]


def test_a_missing_required_field_is_reported_where_its_parent_is(backend_canary: dict[str, Any]) -> None:
    del backend_canary["spec"]["service"]["port"]
    text = yaml.safe_dump(backend_canary, sort_keys=False)
    assert problems_in(text) == [
        f"canary.yaml:{line_of(text, 'service:')}: Canary/backend: spec.service.port: required field is missing"
    ]


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        pytest.param(
            {"stepWeight": None, "stepWeights": [10, 30, 20]},
            "spec.analysis.stepWeights",
            "stepWeights must be ascending: entry 2 (20) is not above 30",
            id="step-weights-ascending",
        ),
        pytest.param(
            {"stepWeights": [10, 20]},
            "spec.analysis.stepWeights",
            "set stepWeight or stepWeights, not both",
            id="step-weight-and-weights",
        ),
        pytest.param(
            {"iterations": 10},
            "spec.analysis.iterations",
            "set iterations (A/B testing, blue/green) or stepWeight (progressive canary), not both",
            id="iterations-and-step-weight",
        ),
        pytest.param(
            {"match": [{"headers": {"x-canary": {"exact": "1"}}}]},
            "spec.analysis.match",
            "match (A/B testing) needs iterations",
            id="match-needs-iterations",
        ),
        pytest.param(
            {"stepWeight": None},
            "spec.analysis",
            "analysis needs stepWeight, stepWeights or iterations",
            id="analysis-never-advances",
        ),
        pytest.param(
            {"sessionAffinity": {"cookieName": "c", "primaryCookieName": "c"}},
            "spec.analysis.sessionAffinity.primaryCookieName",
            "primaryCookieName must differ from cookieName",
            id="same-cookie-names",
        ),
        pytest.param(
            {"metrics": [{"name": "latency", "templateRef": {"name": "l"}, "thresholdRange": {"min": 5, "max": 1}}]},
            "spec.analysis.metrics[0].thresholdRange",
            "min (5) is greater than max (1)",
            id="threshold-range",
        ),
        pytest.param(
            {"metrics": [{"name": "my-metric"}]},
            "spec.analysis.metrics[0]",
            "metric 'my-metric' has no templateRef and no query",
            id="metric-without-source",
        ),
        pytest.param(
            {"webhooks": [{"name": "load", "url": "flagger-loadtester.prod/"}]},
            "spec.analysis.webhooks[0].url",
            "url must be an http:// or https:// address with a host",
            id="webhook-url",
        ),
        pytest.param(
            {"match": [{"headers": {"user-agent": {"exact": "a", "regex": "b"}}}], "iterations": 3, "stepWeight": None},
            "spec.analysis.match[0].headers.user-agent",
            "set only one of exact, prefix, suffix or regex",
            id="string-match-one-kind",
        ),
    ],
)
def test_cross_field_rules_point_at_the_field_to_change(
    backend_canary: dict[str, Any], change: dict[str, Any], path: str, message: str
) -> None:
    analysis = backend_canary["spec"]["analysis"]
    for key, value in change.items():
        if value is None:
            analysis.pop(key)
        else:
            analysis[key] = value
    [problem] = check(backend_canary)
    assert f": Canary/backend: {path}: {message}" in problem


def test_autoscaler_replicas_must_be_ordered(backend_canary: dict[str, Any]) -> None:
    backend_canary["spec"]["autoscalerRef"]["primaryScalerReplicas"] = {"minReplicas": 4, "maxReplicas": 2}
    [problem] = check(backend_canary)
    assert "spec.autoscalerRef.primaryScalerReplicas.maxReplicas: maxReplicas (2) is below minReplicas (4)" in problem


def test_skip_analysis_accepts_an_analysis_that_never_advances(backend_canary: dict[str, Any]) -> None:
    backend_canary["spec"]["skipAnalysis"] = True
    del backend_canary["spec"]["analysis"]["stepWeight"]
    assert check(backend_canary) == []


def test_in_a_stream_each_bad_document_is_reported_and_the_good_ones_are_not_affected(
    write: Callable[[str, str], Path],
) -> None:
    broken = BACKEND.replace("stepWeight: 5", "stepWeight: lots").replace("name: backend\n", "name: broken\n", 1)
    other = BACKEND.replace("name: backend\n", "name: other\n", 1).replace("port: 9898", "port: -1")
    text = "\n---\n".join([BACKEND, broken, other])
    path = write("stream.yaml", text)
    report = validate.validate_paths([str(path)])
    assert [str(p) for p in report.problems] == [
        f"{path}:{line_of(text, 'stepWeight: lots')}: Canary/broken: spec.analysis.stepWeight: "
        'expected a whole number, got "lots"',
        f"{path}:{line_of(text, 'port: -1')}: Canary/other: spec.service.port: must be at least 1 (got -1)",
    ]
    [(document, canary)] = report.resources
    assert isinstance(canary, Canary) and canary.metadata.name == "backend" and document.line == 1


@pytest.mark.parametrize(
    ("header", "message"),
    [
        pytest.param(
            "apiVersion: flagger.app/v1alpha3\nkind: Canary",
            "apiVersion: apiVersion flagger.app/v1alpha3 is not supported: canaryflow, like Flagger 1.x, reads "
            "Canary as flagger.app/v1beta1",
            id="old-version",
        ),
        pytest.param(
            "apiVersion: flager.app/v1beta1\nkind: Canary",
            "apiVersion flager.app/v1beta1 is not supported",
            id="misspelt-group",
        ),
        pytest.param(
            "kind: Canary", "apiVersion: apiVersion is missing; a Canary is flagger.app/v1beta1", id="no-api-version"
        ),
        pytest.param(
            "apiVersion: flagger.app/v1beta1\nkind: Canery",
            "kind: unknown kind 'Canery'; did you mean Canary?",
            id="misspelt-kind",
        ),
        pytest.param("apiVersion: flagger.app/v1beta1", "kind: kind is missing", id="no-kind"),
    ],
)
def test_wrong_api_versions_and_kinds_of_flagger_resources_are_errors(header: str, message: str) -> None:
    text = f"{header}\nmetadata:\n  name: podinfo\nspec: {{}}\n"
    [problem] = problems_in(text)
    assert problem.startswith("canary.yaml:") and message in problem


def test_other_kinds_and_non_objects_are_skipped_not_judged() -> None:
    text = (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {nonsense: true}\n---\n"
        "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\n---\n"
        "apiVersion: other.example.com/v1\nkind: Canary\n---\n"
        "- op: add\n  path: /spec\n---\n"
        "just text\n---\n"
        "metadata: {name: no-kind}\n"
    )
    report = validate.validate_documents(loader.load_text(text, "mixed.yaml").documents)
    assert report.ok
    assert [(s.line, s.kind) for s in report.skipped] == [
        (1, "Deployment"),
        (6, "HelmRelease"),
        (9, "Canary (other.example.com/v1)"),
        (12, "YAML list"),
        (15, "YAML scalar"),
        (17, "no kind"),
    ]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param(
            "type: slak\naddress: https://hooks.slack.com/x",
            'spec.type: must be one of slack, msteams, discord, rocket, gchat (got "slak"); did you mean slack?',
            id="type",
        ),
        pytest.param("type: slack", "spec: set address, or secretRef", id="nowhere-to-send"),
    ],
)
def test_alert_provider_rules(spec: str, message: str) -> None:
    indented = "\n".join("  " + line for line in spec.splitlines())
    text = f"apiVersion: flagger.app/v1beta1\nkind: AlertProvider\nmetadata:\n  name: on-call\nspec:\n{indented}\n"
    [problem] = problems_in(text)
    assert f"AlertProvider/on-call: {message}" in problem


def test_alert_provider_may_set_address_and_secret_ref_together() -> None:
    """Flagger's alerting docs do (a Slack bot token in the Secret); the Secret's address wins at run time."""
    text = (
        "apiVersion: flagger.app/v1beta1\nkind: AlertProvider\nmetadata:\n  name: on-call\n  namespace: flagger\n"
        "spec:\n  type: slack\n  address: https://slack.com/api/chat.postMessage\n  secretRef:\n    name: on-call-url\n"
    )
    assert problems_in(text) == []


def test_metric_template_headers_are_lists_as_in_go() -> None:
    text = (
        "apiVersion: flagger.app/v1beta1\nkind: MetricTemplate\nmetadata:\n  name: m\nspec:\n"
        "  provider:\n    type: prometheus\n    headers:\n      X-Scope-OrgID: [tenant]\n      X-Other: one\n"
        "  query: up\n"
    )
    assert problems_in(text) == [
        'canary.yaml:10: MetricTemplate/m: spec.provider.headers.X-Other: expected a list, got "one"'
    ]


def test_the_items_of_a_list_are_validated_one_by_one() -> None:
    text = (
        "apiVersion: v1\nkind: List\nitems:\n"
        "- apiVersion: flagger.app/v1beta1\n  kind: AlertProvider\n  metadata: {name: good}\n"
        "  spec: {type: slack, address: 'https://hooks.slack.com/x'}\n"
        "- apiVersion: flagger.app/v1beta1\n  kind: AlertProvider\n  metadata: {name: bad}\n"
        "  spec:\n    type: slack\n    adress: x\n"
        "- apiVersion: v1\n  kind: Service\n"
    )
    report = validate.validate_documents(loader.load_text(text, "list.yaml").documents)
    assert [r.metadata.name for _, r in report.resources] == ["good"]
    assert [str(p) for p in report.problems] == [
        "list.yaml:13: AlertProvider/bad: spec.adress: unknown field; did you mean address?",
    ]
    assert [(s.line, s.kind) for s in report.skipped] == [(14, "Service")]


@pytest.mark.parametrize(
    ("analysis", "refused"),
    [
        pytest.param({}, "stepWeight", id="progressive"),
        pytest.param(
            {"stepWeight": None, "iterations": 5, "match": [{"headers": {"x": {"exact": "1"}}}]}, "match", id="a-b"
        ),
        pytest.param({"stepWeight": None, "iterations": 5, "mirror": True}, "mirror", id="mirror"),
    ],
)
def test_provider_kubernetes_refuses_what_services_alone_cannot_route(
    analysis: dict[str, object], refused: str
) -> None:
    doc = yaml.safe_load(BACKEND)
    doc["spec"]["provider"] = "kubernetes"
    for field, value in analysis.items():
        if value is None:
            doc["spec"]["analysis"].pop(field)
        else:
            doc["spec"]["analysis"][field] = value
    [problem] = problems_in(yaml.safe_dump(doc))
    assert "Canary/backend: spec.analysis: provider kubernetes switches Services only" in problem
    assert f"cannot honour {refused}" in problem and "istio" in problem


def test_provider_kubernetes_accepts_blue_green() -> None:
    doc = yaml.safe_load(BACKEND)
    doc["spec"]["provider"] = "kubernetes"
    doc["spec"]["analysis"].pop("stepWeight")
    doc["spec"]["analysis"]["iterations"] = 5
    assert problems_in(yaml.safe_dump(doc)) == []
