"""DataPlaneWarmup: when a ready canary's analysis waits for the restarted data plane, and when it stops waiting.

Prometheus' API is answered by a stub (its ``lastScrape`` and ``lastEvaluation`` as the test sets them) and the
clock is the test's, so each decision is checked at an exact moment; the real processes are in
``tests/e2e/test_runtime_restart.py``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import httpx
import pytest

from canaryflow.api.timestamps import rfc3339
from canaryflow.clock import FakeClock
from canaryflow.local.warmup import DataPlaneWarmup

START = 1_800_000_000.0  # the data plane's start, as a Unix time


@dataclasses.dataclass
class Part:
    restarts: int = 0


@dataclasses.dataclass
class Prometheus:
    """What the stub answers: the Envoy target's last scrape and the rule group's last evaluation."""

    scraped: float = 0.0
    evaluated: float = 0.0
    up: bool = True

    def handler(self, request: httpx.Request) -> httpx.Response:
        if not self.up:
            raise httpx.ConnectError("connection refused", request=request)
        if request.url.path == "/api/v1/targets":
            target = {"scrapePool": "envoy", "health": "up", "lastScrape": _rfc3339(self.scraped)}
            return httpx.Response(200, json={"status": "success", "data": {"activeTargets": [target]}})
        group = {"name": "istio-destination-reporter", "lastEvaluation": _rfc3339(self.evaluated)}
        return httpx.Response(200, json={"status": "success", "data": {"groups": [group]}})


def _rfc3339(unix: float) -> str:
    return rfc3339(unix, digits=6)[:-1] + "000Z"  # as Prometheus writes it: nanoseconds


async def at(clock: FakeClock, moment: float) -> float:
    await clock.advance(moment - clock.now())
    return moment


@pytest.fixture
def setup() -> Iterator[tuple[DataPlaneWarmup, Prometheus, FakeClock, Part]]:
    prometheus, clock, envoy = Prometheus(), FakeClock(START), Part()
    client = httpx.AsyncClient(transport=httpx.MockTransport(prometheus.handler))
    yield DataPlaneWarmup(envoy, Part(), "http://prometheus", clock=clock, client=client), prometheus, clock, envoy


async def test_a_ready_canary_waits_for_three_scrapes_and_four_evaluations_since_envoy_serves_it(
    setup: tuple[DataPlaneWarmup, Prometheus, FakeClock, Part],
) -> None:
    warmup, prometheus, clock, _ = setup
    served = await at(clock, START + 2.0)
    assert "scrape Envoy 3 times" in await warmup.hold("prod/backend", served)
    prometheus.scraped, prometheus.evaluated = served + 2.9, served + 3.5
    assert "scrape Envoy 3 times" in await warmup.hold("prod/backend", served)
    prometheus.scraped = served + 3.0
    assert "evaluate its rules 4 times" in await warmup.hold("prod/backend", served)
    prometheus.evaluated = served + 4.0
    assert await warmup.hold("prod/backend", served) == ""
    prometheus.up = False  # once warm, the canary's checks are its own business
    assert await warmup.hold("prod/backend", served) == ""


async def test_a_dead_prometheus_holds_the_canary_only_until_the_limit(
    setup: tuple[DataPlaneWarmup, Prometheus, FakeClock, Part],
) -> None:
    warmup, prometheus, clock, _ = setup
    prometheus.up = False
    await at(clock, START + 29.9)
    assert "Prometheus does not answer" in await warmup.hold("prod/backend", START + 1.0)
    await at(clock, START + 30.0)
    assert await warmup.hold("prod/backend", START + 1.0) == ""  # its checks run, and fail


async def test_a_restarted_envoy_starts_a_new_warm_up(
    setup: tuple[DataPlaneWarmup, Prometheus, FakeClock, Part],
) -> None:
    warmup, prometheus, clock, envoy = setup
    await at(clock, START + 40.0)  # long after the start: nothing to wait for
    assert await warmup.hold("prod/backend", START + 1.0) == ""
    envoy.restarts += 1  # its supervisor started it again: new counters
    prometheus.scraped = prometheus.evaluated = START + 40.5
    assert "scrape Envoy 3 times" in await warmup.hold("prod/backend", START + 1.0)
    await at(clock, START + 70.0)
    assert await warmup.hold("prod/backend", START + 1.0) == ""
