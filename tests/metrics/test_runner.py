"""MetricRunner: which query runs where for each kind of metric, and what a broken setup reports."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from canaryflow.api.catalog import MemoryCatalog
from canaryflow.metrics.base import MetricError, NoValuesFound
from canaryflow.metrics.factory import PrometheusFactory
from canaryflow.metrics.memory import MemoryFactory, MemoryProvider
from canaryflow.metrics.prometheus import HttpOptions
from canaryflow.metrics.runner import MetricRunner

from .resources import canary, metric, seed_templates, template

SEED_ADDRESS = "http://flagger-prometheus.istio-system:9090"
ERROR_RATE = {"name": "error-rate", "templateRef": {"name": "error-rate", "namespace": "istio-system"}}


@pytest.fixture
def catalog() -> MemoryCatalog:
    catalog = MemoryCatalog()
    for seed in seed_templates():
        catalog.add(seed)
    return catalog


@pytest.fixture
def prometheus() -> MemoryProvider:
    return MemoryProvider(lambda query: 1.25)


@pytest.fixture
def seed_prometheus() -> MemoryProvider:
    return MemoryProvider(lambda query: 4.5)


@pytest.fixture
async def runner(
    catalog: MemoryCatalog, prometheus: MemoryProvider, seed_prometheus: MemoryProvider
) -> AsyncIterator[MetricRunner]:
    factory = MemoryFactory(prometheus, {SEED_ADDRESS: seed_prometheus})
    runner = MetricRunner(catalog, factory=factory)
    yield runner
    await runner.close()


async def test_template_metric_runs_the_rendered_template_on_its_provider(
    runner: MetricRunner, seed_prometheus: MemoryProvider
) -> None:
    checked = canary({**ERROR_RATE, "interval": "30s", "thresholdRange": {"max": 1}})
    assert await runner.measure(checked, metric(checked)) == 4.5
    (query,) = seed_prometheus.queries
    assert 'destination_workload_namespace="prod", destination_workload=~"backend"' in query
    assert "}[30s]" in query
    assert "{{" not in query


async def test_template_ref_without_namespace_looks_in_the_canarys_namespace(
    runner: MetricRunner, catalog: MemoryCatalog, prometheus: MemoryProvider
) -> None:
    catalog.add(
        template('sum(app_errors{svc="{{ service }}"})', name="errs", namespace="prod", address="http://p:9090")
    )
    checked = canary({"name": "errs", "templateRef": {"name": "errs"}}, service={"port": 80, "name": "api"})
    await runner.measure(checked, metric(checked))
    assert prometheus.queries == ['sum(app_errors{svc="api"})']


async def test_template_variables_are_rendered(
    runner: MetricRunner, catalog: MemoryCatalog, prometheus: MemoryProvider
) -> None:
    catalog.add(template('x{dir="{{ variables.direction }}"}', name="t", namespace="prod", address="http://p:9090"))
    checked = canary({"name": "t", "templateRef": {"name": "t"}, "templateVariables": {"direction": "inbound"}})
    await runner.measure(checked, metric(checked))
    assert prometheus.queries == ['x{dir="inbound"}']


async def test_a_missing_template_is_named(runner: MetricRunner, catalog: MemoryCatalog) -> None:
    catalog.templates.clear()
    checked = canary(ERROR_RATE)
    with pytest.raises(MetricError, match=r"^metric template istio-system/error-rate not found$"):
        await runner.measure(checked, metric(checked))


async def test_a_template_error_is_a_metric_error_naming_the_variable(
    runner: MetricRunner, catalog: MemoryCatalog
) -> None:
    catalog.add(template("x{{ variables.region }}", name="t", namespace="prod", address="http://p:9090"))
    checked = canary({"name": "t", "templateRef": {"name": "t"}})
    with pytest.raises(MetricError, match="templateVariables has no key 'region'"):
        await runner.measure(checked, metric(checked))


@pytest.mark.parametrize(
    ("spec", "expected_address"),
    [({}, "http://prometheus:9090"), ({"metricsServer": "http://thanos:9090"}, "http://thanos:9090")],
    ids=["default-metrics-server", "canary-metrics-server"],
)
async def test_builtin_metrics_run_on_the_metrics_server(
    catalog: MemoryCatalog, spec: dict[str, str], expected_address: str
) -> None:
    servers = {address: MemoryProvider(lambda q: 99.0) for address in ("http://prometheus:9090", "http://thanos:9090")}
    runner = MetricRunner(catalog, factory=MemoryFactory(MemoryProvider(), servers))
    checked = canary({"name": "request-success-rate", "thresholdRange": {"min": 99}}, **spec)
    assert await runner.measure(checked, metric(checked)) == 99.0
    assert [a for a, p in servers.items() if p.queries] == [expected_address]
    assert "istio_requests_total" in servers[expected_address].queries[0]


async def test_the_default_metrics_server_can_be_set(catalog: MemoryCatalog) -> None:
    local = MemoryProvider(lambda q: 12.0)
    runner = MetricRunner(
        catalog, "http://127.0.0.1:9999", MemoryFactory(MemoryProvider(), {"http://127.0.0.1:9999": local})
    )
    checked = canary({"name": "request-duration", "thresholdRange": {"max": 500}})
    assert await runner.measure(checked, metric(checked)) == 12.0
    assert local.queries


async def test_inline_query_runs_on_the_metrics_server(runner: MetricRunner, prometheus: MemoryProvider) -> None:
    checked = canary({"name": "custom", "query": "sum(rate(errors{ns='{{ namespace }}'}[1m]))"})
    assert await runner.measure(checked, metric(checked)) == 1.25
    assert prometheus.queries == ["sum(rate(errors{ns='prod'}[1m]))"]


async def test_builtins_on_another_mesh_are_an_error(runner: MetricRunner) -> None:
    checked = canary({"name": "request-success-rate"}, provider="linkerd")
    with pytest.raises(MetricError, match="istio provider only"):
        await runner.measure(checked, metric(checked))


async def test_no_values_found_reaches_the_caller_as_such(
    runner: MetricRunner, seed_prometheus: MemoryProvider
) -> None:
    seed_prometheus.answer_with(lambda q: NoValuesFound(f"no values found for query {q}"))
    checked = canary(ERROR_RATE)
    with pytest.raises(NoValuesFound):
        await runner.measure(checked, metric(checked))


async def test_secret_ref_credentials_reach_prometheus(catalog: MemoryCatalog) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"status": "success", "data": {"resultType": "scalar", "result": [0, "7"]}})

    catalog.add(template("up", name="t", namespace="prod", address="http://p:9090", secretRef={"name": "prom"}))
    catalog.add_secret("prod", "prom", {"token": "abc"})
    runner = MetricRunner(catalog, factory=PrometheusFactory(HttpOptions(transport=httpx.MockTransport(answer))))
    checked = canary({"name": "t", "templateRef": {"name": "t"}})
    assert await runner.measure(checked, metric(checked)) == 7.0
    assert seen[0].headers["authorization"] == "Bearer abc"
    await runner.close()


async def test_a_missing_secret_is_named(runner: MetricRunner, catalog: MemoryCatalog) -> None:
    catalog.add(template("up", name="t", namespace="prod", address="http://p:9090", secretRef={"name": "prom"}))
    checked = canary({"name": "t", "templateRef": {"name": "t"}})
    with pytest.raises(MetricError, match=r"secret prod/prom \(secretRef of metric template prod/t\) not found"):
        await runner.measure(checked, metric(checked))


async def test_check_providers_is_empty_when_all_answer(runner: MetricRunner) -> None:
    checked = canary(ERROR_RATE, {"name": "request-success-rate"})
    assert await runner.check_providers(checked) == []


async def test_check_providers_reports_each_problem_once(
    runner: MetricRunner, catalog: MemoryCatalog, seed_prometheus: MemoryProvider
) -> None:
    seed_prometheus.online = False
    catalog.add(template("q", name="dd", namespace="prod", type="datadog", address="https://api.datadoghq.com"))
    checked = canary(
        ERROR_RATE,
        {"name": "latency", "templateRef": {"name": "latency", "namespace": "istio-system"}},
        {"name": "dd", "templateRef": {"name": "dd"}},
        {"name": "gone", "templateRef": {"name": "gone"}},
        {"name": "request-success-rate"},
    )
    problems = await runner.check_providers(checked)
    assert problems == [
        "metric 'gone': metric template prod/gone not found",
        "memory provider is offline (cannot run vector(1)) (used by metrics error-rate, latency)",
    ]


async def test_check_providers_names_an_unreachable_prometheus(catalog: MemoryCatalog) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused")

    runner = MetricRunner(catalog, factory=PrometheusFactory(HttpOptions(transport=httpx.MockTransport(refuse))))
    problems = await runner.check_providers(canary({"name": "request-duration"}))
    assert problems == [
        "prometheus http://prometheus:9090 is unreachable: [Errno 111] Connection refused "
        "(used by metric request-duration)"
    ]
    await runner.close()
