"""The metric runner against a real Prometheus scraping Istio-style metrics: the seed's templates and the
built-in checks give the values the traffic implies; no traffic gives "no values found"; a stopped
Prometheus gives a MetricError."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from canaryflow.api.catalog import MemoryCatalog
from canaryflow.metrics.base import MetricError, NoValuesFound
from canaryflow.metrics.runner import MetricRunner

from .prom_server import Exporter, PrometheusServer, Traffic
from .resources import canary, metric, seed_templates

ERROR_RATE = {"name": "error-rate", "templateRef": {"name": "error-rate", "namespace": "istio-system"}}
LATENCY = {"name": "latency", "templateRef": {"name": "latency", "namespace": "istio-system"}}
WAIT_FOR_DATA = 90.0  # seconds; generous for a loaded machine, normally ~2 s


@pytest.fixture(scope="module")
def exporter() -> Iterator[Exporter]:
    exporter = Exporter()
    # Per scrape: 5 % errors, and p99 = 10 + (50 - 10) * 0.9 = 46 ms (90 requests under 10 ms, 10 under 50 ms).
    exporter.receive("prod", "backend", Traffic(ok=95, errors=5, fast=90, slow=10))
    exporter.receive("prod", "backend-primary", Traffic(ok=100, errors=0, fast=100, slow=0))
    exporter.receive("prod", "quiet", Traffic())
    exporter.start()
    yield exporter
    exporter.stop()


@pytest.fixture(scope="module")
def prometheus(exporter: Exporter, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    server = PrometheusServer(tmp_path_factory.mktemp("prometheus"), [exporter.address])
    server.start()
    try:
        _wait_for_rates(server.url)
        yield server
    finally:
        server.stop()


def _wait_for_rates(url: str) -> None:
    """Block until every series has two samples, so rate() has a value (bounded; polls, asserts nothing)."""
    query = urllib.parse.urlencode({"query": "count(rate(istio_requests_total[1m]))"})
    deadline = time.monotonic() + WAIT_FOR_DATA
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{url}/api/v1/query?{query}", timeout=10) as response:
            result = json.load(response)["data"]["result"]
        if result and float(result[0]["value"][1]) >= 6:  # 3 workloads x 2 response codes
            return
        time.sleep(0.25)
    raise RuntimeError(f"prometheus at {url} had no rates after {WAIT_FOR_DATA:g} s")


@pytest.fixture
async def runner(prometheus: PrometheusServer) -> AsyncIterator[MetricRunner]:
    catalog = MemoryCatalog()
    for seed in seed_templates(address=prometheus.url):
        catalog.add(seed)
    runner = MetricRunner(catalog, default_address=prometheus.url)
    yield runner
    await runner.close()


@pytest.mark.parametrize(
    ("target", "spec", "expected"),
    [
        ("backend", {**ERROR_RATE, "interval": "30s"}, 5.0),
        ("backend-primary", {**ERROR_RATE, "interval": "30s"}, 0.0),
        ("backend", {**LATENCY, "interval": "30s"}, 46.0),
        ("backend", {"name": "request-success-rate", "interval": "1m"}, 95.0),
        ("backend", {"name": "request-duration", "interval": "1m"}, 46.0),
    ],
    ids=["seed-error-rate", "seed-error-rate-primary", "seed-latency", "builtin-success-rate", "builtin-duration"],
)
async def test_metrics_read_the_traffic(
    runner: MetricRunner, target: str, spec: dict[str, str], expected: float
) -> None:
    checked = canary(spec, name=target)
    assert await runner.measure(checked, metric(checked)) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("target", ["ghost", "quiet"], ids=["workload-without-series", "workload-without-requests"])
@pytest.mark.parametrize("spec", [ERROR_RATE, LATENCY, {"name": "request-success-rate"}], ids=lambda s: s["name"])
async def test_no_traffic_is_no_values_found(runner: MetricRunner, target: str, spec: dict[str, str]) -> None:
    checked = canary(spec, name=target)
    with pytest.raises(NoValuesFound, match="no values found for query"):
        await runner.measure(checked, metric(checked))


async def test_a_live_prometheus_is_online(runner: MetricRunner) -> None:
    assert await runner.check_providers(canary(ERROR_RATE, {"name": "request-duration"})) == []


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("sum(rate(istio_requests_total[1m]", r"answered HTTP 400: bad_data: .*parse error"),
        ("istio_requests_total[1m]", r"returned a matrix"),
    ],
    ids=["syntax-error", "range-vector"],
)
async def test_prometheus_rejections_come_back_with_its_reason(runner: MetricRunner, query: str, message: str) -> None:
    checked = canary({"name": "custom", "query": query})
    with pytest.raises(MetricError, match=message):
        await runner.measure(checked, metric(checked))


async def test_a_stopped_prometheus_is_a_metric_error(exporter: Exporter, tmp_path: Path) -> None:
    server = PrometheusServer(tmp_path, [exporter.address])
    server.start()
    runner = MetricRunner(MemoryCatalog(), default_address=server.url)
    checked = canary({"name": "request-success-rate"})
    try:
        assert await runner.check_providers(checked) == []
        server.stop()
        with pytest.raises(MetricError, match=f"prometheus {server.url} is unreachable") as caught:
            await runner.measure(checked, metric(checked))
        assert not isinstance(caught.value, NoValuesFound)
        (problem,) = await runner.check_providers(checked)
        assert problem.startswith(f"prometheus {server.url} is unreachable")
    finally:
        server.stop()
        await runner.close()
