"""A real Prometheus scraping the local Envoy: Istio's standard metrics, as Flagger's queries read them."""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from canaryflow.local.procs import free_port
from canaryflow.local.prometheus import PrometheusProcess
from canaryflow.routing.base import Routes
from tests.local.conftest import DataPlane, canary

# Flagger's built-in request-success-rate for Istio, and the seed's error-rate MetricTemplate.
SUCCESS_RATE = """
sum(rate(istio_requests_total{reporter="destination", destination_workload_namespace="prod",
    destination_workload=~"backend", response_code!~"5.*"}[1m]))
/ sum(rate(istio_requests_total{reporter="destination", destination_workload_namespace="prod",
    destination_workload=~"backend"}[1m])) * 100
"""
ERROR_RATE = """
100 - sum(rate(istio_requests_total{reporter="destination", destination_workload_namespace="prod",
    destination_workload=~"backend", response_code!~"5.*"}[1m]))
/ sum(rate(istio_requests_total{reporter="destination", destination_workload_namespace="prod",
    destination_workload=~"backend"}[1m])) * 100
"""


class Prometheus:
    def __init__(self, process: PrometheusProcess) -> None:
        self.process = process
        self.client = httpx.AsyncClient(base_url=process.url, trust_env=False, timeout=5)

    async def vector(self, query: str) -> list[tuple[dict[str, str], float]]:
        response = await self.client.get("/api/v1/query", params={"query": query})
        response.raise_for_status()
        return [(r["metric"], float(r["value"][1])) for r in response.json()["data"]["result"]]

    async def value(self, query: str) -> float:
        result = await self.vector(query)
        return result[0][1] if len(result) == 1 else math.nan

    async def until(self, query: str, done: Callable[[float], bool], seconds: float = 30) -> float:
        """The query's value once ``done`` accepts it, or its last value after ``seconds`` (scrapes are 1 s)."""
        value = math.nan
        for _ in range(int(seconds * 10)):
            value = await self.value(query)
            if done(value):
                return value
            await asyncio.sleep(0.1)
        return value


@pytest.fixture
async def prometheus(dataplane: DataPlane, tmp_path: Path) -> AsyncIterator[Prometheus]:
    process = PrometheusProcess(
        tmp_path / "prometheus",
        port=free_port(),
        envoy_admin=dataplane.envoy.admin_url,
        log_path=tmp_path / "prometheus.log",
    )
    await process.start()
    client = Prometheus(process)
    try:
        yield client
    finally:
        await client.client.aclose()
        await process.stop()


async def backend_at(dataplane: DataPlane, routes: Routes) -> None:
    backend = canary("backend")
    await dataplane.router.reconcile(backend)
    await dataplane.router.set_routes(backend, routes)


async def warm_up(dataplane: DataPlane, prometheus: Prometheus) -> None:
    """One 200 and one 500 per workload, scraped: later requests are increments of series Prometheus knows."""
    for host in ("backend-primary.prod", "backend-canary.prod"):
        await dataplane.send(f"http://{host}/", 1)
        await dataplane.send(f"http://{host}/status/500", 1)
    await prometheus.until('count(istio_requests_total{destination_workload_namespace="prod"})', lambda v: v == 4)
    await asyncio.sleep(2.5)  # two more scrapes, so each series' first sample is behind us


async def test_envoy_stats_become_istio_requests_per_workload(dataplane: DataPlane, prometheus: Prometheus) -> None:
    await backend_at(dataplane, Routes(50, 50))

    await dataplane.send("http://backend.prod:9898/", 40)
    for reporter in ("source", "destination"):  # the destination's series come from recording rules
        await prometheus.until(f'sum(istio_requests_total{{reporter="{reporter}"}})', lambda v: v == 40)

    series = await prometheus.vector("sum by (destination_workload, destination_workload_namespace, reporter, "
                                      "response_code) (istio_requests_total)")  # fmt: skip
    labels = {(m["destination_workload"], m["destination_workload_namespace"], m["reporter"], m["response_code"])
              for m, _ in series}  # fmt: skip
    assert labels == {(workload, "prod", reporter, "200") for workload in ("backend-primary", "backend")
                      for reporter in ("source", "destination")}  # fmt: skip
    assert sum(v for _, v in series) == 80


async def test_success_rate_of_the_canary_counts_its_injected_errors(
    dataplane: DataPlane, prometheus: Prometheus
) -> None:
    await backend_at(dataplane, Routes(100, 0))
    await warm_up(dataplane, prometheus)

    # 10 % errors at the canary, none at the primary: only the canary's share may show.
    await dataplane.send("http://backend-canary.prod:9898/", 90)
    await dataplane.send("http://backend-canary.prod:9898/status/500", 10)
    await dataplane.send("http://backend.prod:9898/", 100)

    success = await prometheus.until(SUCCESS_RATE, lambda v: abs(v - 90) < 1)
    error = await prometheus.value(ERROR_RATE)
    assert success == pytest.approx(90, abs=1)
    assert error == pytest.approx(10, abs=1)


async def test_envoys_own_503s_reach_only_the_source_reporter(dataplane: DataPlane, prometheus: Prometheus) -> None:
    """A canary scaled to zero still called by a load test: Envoy answers 503 (no healthy upstream) itself. In
    Istio no destination sidecar sees those requests; a 503 the workload itself gave is seen by both."""
    await backend_at(dataplane, Routes(100, 0))
    await dataplane.send("http://backend-canary.prod:9898/status/503", 4)  # the workload's own 503s
    mesh = dataplane.router.mesh
    scaled_to_zero = tuple(dataclasses.replace(w, endpoints=()) if w.name == "backend" else w for w in mesh.workloads)
    await dataplane.router.update_mesh(dataclasses.replace(mesh, workloads=scaled_to_zero))
    answers = await dataplane.send("http://backend-canary.prod:9898/", 6)
    assert [a.status_code for a in answers] == [503] * 6

    selector = 'destination_workload="backend", response_code="503"'
    source_query = f'sum(istio_requests_total{{reporter="source", {selector}}})'
    await prometheus.until(source_query, lambda v: v >= 6)
    await asyncio.sleep(2.5)  # two more scrapes and rule evaluations
    source = await prometheus.value(source_query)
    destination = await prometheus.value(f'sum(istio_requests_total{{reporter="destination", {selector}}})')
    own = await prometheus.value('sum(canaryflow_envoy_local_replies_total{destination_workload="backend"})')
    assert own == 6
    # Envoy may restart the cluster's counters when its endpoints go (source 6), or not (source 10).
    assert (source, destination) in ((6, 0), (10, 4))


async def test_mirrored_copies_stay_out_of_the_canarys_metrics(dataplane: DataPlane, prometheus: Prometheus) -> None:
    await backend_at(dataplane, Routes(100, 0, mirrored=True))

    await dataplane.send("http://backend.prod:9898/", 30)
    primary = await prometheus.until('sum(istio_requests_total{destination_workload="backend-primary"})',
                                     lambda v: v == 30)  # fmt: skip
    await asyncio.sleep(2)  # the canary's copies were served too: give their stats two scrapes

    assert primary == 30
    assert dataplane.upstreams["backend"].shadows() == 30
    assert await prometheus.vector('istio_requests_total{destination_workload="backend"}') == []


async def test_latency_histogram_has_fine_buckets(dataplane: DataPlane, prometheus: Prometheus) -> None:
    await backend_at(dataplane, Routes(0, 100))

    await dataplane.send("http://backend.prod:9898/", 20)
    count = await prometheus.until('sum(istio_request_duration_milliseconds_count{destination_workload="backend"})',
                                   lambda v: v == 20)  # fmt: skip

    buckets = await prometheus.vector('istio_request_duration_milliseconds_bucket{destination_workload="backend"}')
    bounds = {m["le"] for m, _ in buckets}
    assert count == 20
    assert {"11", "12", "13", "500", "+Inf"} <= bounds
    assert {m["reporter"] for m, _ in buckets} == {"destination"}
