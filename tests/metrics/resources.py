"""Resources the metrics tests share: a Canary builder and the seed's MetricTemplates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from canaryflow.api.canary import Canary, CanaryMetric
from canaryflow.api.metrictemplate import MetricTemplate

SEED_TEMPLATES = (
    Path(__file__).resolve().parents[2] / "examples" / "gitops-istio" / "istio" / "gateway" / "flagger-metrics.yaml"
)


def canary(*metrics: dict[str, Any], name: str = "backend", namespace: str = "prod", **spec: Any) -> Canary:
    """A canary on Deployment ``name`` with the given ``spec.analysis.metrics`` and extra spec fields."""
    body: dict[str, Any] = {
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
        "service": {"port": 9898},
        "analysis": {"interval": "15s", "stepWeight": 10, "metrics": list(metrics)},
    }
    body.update(spec)
    return Canary.model_validate({"metadata": {"name": name, "namespace": namespace}, "spec": body})


def metric(canary_: Canary, index: int = 0) -> CanaryMetric:
    metrics = canary_.spec.effective_analysis.metrics
    assert metrics is not None
    return metrics[index]


def seed_templates(address: str | None = None) -> list[MetricTemplate]:
    """The seed's error-rate and latency templates, pointed at ``address`` when given."""
    templates = []
    for doc in yaml.safe_load_all(SEED_TEMPLATES.read_text()):
        if address is not None:
            doc["spec"]["provider"]["address"] = address
        templates.append(MetricTemplate.model_validate(doc))
    return templates


def template(query: str, *, name: str = "custom", namespace: str = "istio-system", **provider: Any) -> MetricTemplate:
    return MetricTemplate.model_validate(
        {
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"provider": {"type": "prometheus", **provider}, "query": query},
        }
    )
