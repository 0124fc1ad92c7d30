"""The built-in checks: Istio's success rate and p99 duration queries (values are checked in test_live)."""

from __future__ import annotations

import pytest

from canaryflow.api.canary import BUILTIN_METRICS
from canaryflow.metrics import builtin
from canaryflow.metrics.base import MetricError
from canaryflow.metrics.runner import query_variables
from canaryflow.metrics.template import render

from .resources import canary, metric


def test_every_builtin_name_the_api_accepts_has_a_query() -> None:
    assert sorted(builtin.QUERIES) == sorted(BUILTIN_METRICS)


def test_success_rate_is_the_percentage_of_non_5xx_destination_requests() -> None:
    checked = canary({"name": "request-success-rate", "interval": "1m", "thresholdRange": {"min": 99}})
    query = render(builtin.query_template("request-success-rate", None), query_variables(checked, metric(checked)))
    selector = 'reporter="destination", destination_workload_namespace="prod", destination_workload=~"backend"'
    assert query == (
        f'sum(rate(istio_requests_total{{{selector}, response_code!~"5.*"}}[1m]))'
        f" / sum(rate(istio_requests_total{{{selector}}}[1m])) * 100"
    )


def test_duration_is_the_99th_percentile_in_milliseconds() -> None:
    checked = canary({"name": "request-duration", "interval": "30s", "thresholdRange": {"max": 500}})
    query = render(builtin.query_template("request-duration", "istio"), query_variables(checked, metric(checked)))
    assert query.startswith("histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{")
    assert query.endswith('destination_workload=~"backend"}[30s])) by (le))')


@pytest.mark.parametrize("mesh", ["linkerd", "nginx", "appmesh"])
def test_other_meshes_need_a_metric_template(mesh: str) -> None:
    with pytest.raises(MetricError, match=rf"istio provider only \(the canary's provider is '{mesh}'\).*templateRef"):
        builtin.query_template("request-success-rate", mesh)


def test_an_unknown_builtin_lists_the_known_ones() -> None:
    with pytest.raises(MetricError, match="request-success-rate, request-duration"):
        builtin.query_template("error-rate", None)
