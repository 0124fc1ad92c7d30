"""The built-in metric checks, ``request-success-rate`` and ``request-duration``, as query templates.

They read Istio's standard metrics (``istio_requests_total`` and
``istio_request_duration_milliseconds_bucket`` as the destination reports them), which both Istio and the
local runtime's Prometheus (relabelling Envoy's stats) provide. The thresholds a canary puts on them are the
engine's business: the success rate is a percentage checked against ``thresholdRange.min``, the duration is
the 99th percentile in milliseconds checked against ``thresholdRange.max``.
"""

from __future__ import annotations

from canaryflow.metrics.base import MetricError

# Meshes whose Prometheus carries Istio's standard metrics; None is a canary without spec.provider (Istio).
ISTIO_METRICS_MESHES = (None, "istio")

_DESTINATION = (
    'reporter="destination", destination_workload_namespace="{{ namespace }}", destination_workload=~"{{ target }}"'
)

REQUEST_SUCCESS_RATE = (
    "sum(rate(istio_requests_total{" + _DESTINATION + ', response_code!~"5.*"}[{{ interval }}]))'
    " / sum(rate(istio_requests_total{" + _DESTINATION + "}[{{ interval }}])) * 100"
)

REQUEST_DURATION = (
    "histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{"
    + _DESTINATION
    + "}[{{ interval }}])) by (le))"
)

QUERIES = {
    "request-success-rate": REQUEST_SUCCESS_RATE,
    "request-duration": REQUEST_DURATION,
}


def is_builtin(metric_name: str) -> bool:
    return metric_name in QUERIES


def query_template(metric_name: str, mesh: str | None) -> str:
    """The query template of a built-in metric for a canary on ``mesh`` (its ``spec.provider``)."""
    if metric_name not in QUERIES:
        raise MetricError(f"{metric_name!r} is not a built-in metric; built-in metrics are " + ", ".join(QUERIES))
    if mesh not in ISTIO_METRICS_MESHES:
        raise MetricError(
            f"built-in metric {metric_name!r} is defined for the istio provider only (the canary's provider "
            f"is {mesh!r}); write the check as a MetricTemplate and refer to it with templateRef"
        )
    return QUERIES[metric_name]
