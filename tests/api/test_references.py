"""References to nothing: ``validate`` warns (never refuses) about a Canary's templateRef, alert providerRef or
targetRef that names no object in the input, with the closest existing name; ``apply`` counts the objects
already applied too."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest

from canaryflow.api import loader, validate
from canaryflow.cli import resources
from canaryflow.local.objects import ObjectStore
from canaryflow.store import sqlite

TEMPLATE = """apiVersion: flagger.app/v1beta1
kind: MetricTemplate
metadata: {name: latency, namespace: istio-system}
spec: {provider: {type: prometheus, address: "http://prometheus:9090"}, query: up}
"""
PROVIDER = """apiVersion: flagger.app/v1beta1
kind: AlertProvider
metadata: {name: on-call, namespace: prod}
spec: {type: slack, address: "https://hooks.slack.com/services/X"}
"""
DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata: {name: backend, namespace: prod}
spec: {selector: {matchLabels: {app: backend}}, template: {metadata: {labels: {app: backend}},
       spec: {containers: [{name: app, image: "ghcr.io/stefanprodan/podinfo:6.1.0"}]}}}
"""


def canary(target: str = "backend", template: str = "latency", provider: str = "on-call") -> str:
    return f"""apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {{name: backend, namespace: prod}}
spec:
  targetRef: {{apiVersion: apps/v1, kind: Deployment, name: {target}}}
  service: {{port: 9898}}
  analysis:
    interval: 15s
    stepWeight: 10
    metrics:
    - name: latency
      templateRef: {{name: {template}, namespace: istio-system}}
      thresholdRange: {{max: 500}}
    alerts:
    - name: chat
      providerRef: {{name: {provider}}}
"""


def warnings(*texts: str) -> list[str]:
    report = validate.validate_documents(loader.load_text("---\n".join(texts), "in.yaml").documents)
    assert report.ok, report.problems
    return [str(w) for w in report.warnings]


def test_references_that_resolve_in_the_input_give_no_warning() -> None:
    assert warnings(TEMPLATE, PROVIDER, DEPLOYMENT, canary()) == []


@pytest.mark.parametrize(
    ("changed", "expected"),
    [
        pytest.param(
            {"template": "latencyy"},
            "spec.analysis.metrics[0].templateRef: MetricTemplate istio-system/latencyy is not in this input; "
            "did you mean latency?",
            id="template",
        ),
        pytest.param(
            {"provider": "oncall"},
            "spec.analysis.alerts[0].providerRef: AlertProvider prod/oncall is not in this input; "
            "did you mean on-call?",
            id="alert-provider",
        ),
        pytest.param(
            {"target": "backnd"},
            "spec.targetRef: Deployment prod/backnd is not in this input; did you mean backend?",
            id="target",
        ),
    ],
)
def test_a_reference_to_nothing_is_a_warning_naming_the_closest_name(changed: dict[str, str], expected: str) -> None:
    [warning] = warnings(TEMPLATE, PROVIDER, DEPLOYMENT, canary(**changed))
    assert warning.startswith("in.yaml:")
    assert warning.endswith(f": warning: Canary/backend: {expected}")


def test_a_name_in_another_namespace_is_suggested_with_its_namespace() -> None:
    moved = TEMPLATE.replace("namespace: istio-system", "namespace: monitoring")
    [warning] = warnings(moved, PROVIDER, DEPLOYMENT, canary())
    assert warning.endswith(
        "MetricTemplate istio-system/latency is not in this input; did you mean monitoring/latency?"
    )


def test_validate_prints_warnings_on_stderr_and_still_succeeds(write: Callable[[str, str], Path]) -> None:
    path = write("canary.yaml", "---\n".join([TEMPLATE, PROVIDER, DEPLOYMENT, canary(template="latencyy")]))
    out, err = io.StringIO(), io.StringIO()
    assert resources.run_validate([str(path)], out, err) == 0
    assert out.getvalue() == ""
    lines = err.getvalue().splitlines()
    assert lines[0] == (
        f"{path}:28: warning: Canary/backend: spec.analysis.metrics[0].templateRef: MetricTemplate "
        "istio-system/latencyy is not in this input; did you mean latency?"
    )
    assert lines[-1] == "no problems, 1 warning; valid resources: 1 AlertProvider, 1 Canary, 1 MetricTemplate"


def test_apply_counts_what_was_applied_before(tmp_path: Path) -> None:
    store = ObjectStore(sqlite.connect(tmp_path / "db.sqlite"))
    store.apply(loader.load_text("---\n".join([TEMPLATE, DEPLOYMENT]), "first.yaml").documents)
    later = loader.load_text("---\n".join([PROVIDER, canary(template="latencyy")]), "second.yaml").documents
    store.apply(later)  # applied all the same: the template may arrive later
    assert store.dangling(later) == [
        "second.yaml:17: warning: Canary/backend: spec.analysis.metrics[0].templateRef: MetricTemplate "
        "istio-system/latencyy is not in this input or the runtime; did you mean latency?"
    ]
    fixed = loader.load_text(canary(), "third.yaml").documents
    assert store.dangling(fixed) == []
    assert store.get("Canary", "prod", "backend") is not None
