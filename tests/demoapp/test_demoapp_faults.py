"""Fault knobs make a faulty release out of the same app: errors, slowness, never ready, crash loop."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from tests.demoapp import services
from tests.demoapp.conftest import StartDemo


@pytest.fixture(scope="module")
def failing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[services.Service]:
    """A release whose every application request fails."""
    log = tmp_path_factory.mktemp("failing") / "demoapp.log"
    with services.running("canaryflow.demoapp", log, env={"CANARYFLOW_FAULT_ERROR_RATE": "1"}) as service:
        yield service


def test_error_rate_one_fails_every_application_request(failing: services.Service) -> None:
    codes = {httpx.get(f"{failing.url}/").status_code for _ in range(10)}

    assert codes == {500}
    assert httpx.post(f"{failing.url}/token", content=b"test").status_code == 500


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/version", "/metrics"])
def test_probes_and_metrics_are_spared_so_the_release_starts(failing: services.Service, path: str) -> None:
    assert httpx.get(f"{failing.url}{path}").status_code == 200


def test_partial_error_rate_fails_some_requests(start_demo: StartDemo) -> None:
    demo = start_demo(env={"CANARYFLOW_FAULT_ERROR_RATE": "0.5"})

    with httpx.Client() as client:
        codes = [client.get(f"{demo.url}/").status_code for _ in range(100)]

    assert set(codes) == {200, 500}


def test_delay_slows_every_application_request(start_demo: StartDemo) -> None:
    """Read from the app's own latency histogram: every request to / took longer than half a second."""
    demo = start_demo(env={"CANARYFLOW_FAULT_DELAY": "600ms"})

    assert httpx.get(f"{demo.url}/", timeout=10).status_code == 200

    buckets = latency_buckets(demo, path="/")
    assert buckets["0.5"] == 0
    assert buckets["+Inf"] == 1


def test_unready_release_never_becomes_ready(start_demo: StartDemo) -> None:
    demo = start_demo(env={"CANARYFLOW_FAULT_UNREADY": "1"})

    before = httpx.get(f"{demo.url}/readyz").status_code
    httpx.post(f"{demo.url}/readyz/enable")

    assert (before, httpx.get(f"{demo.url}/readyz").status_code) == (503, 503)
    assert httpx.get(f"{demo.url}/healthz").status_code == 200


def test_crash_knob_exits_at_once() -> None:
    result = run_demoapp({"CANARYFLOW_FAULT_CRASH": "1"})

    assert result.returncode == 1
    assert "CANARYFLOW_FAULT_CRASH" in result.stderr


@pytest.mark.parametrize(
    ("knob", "value"),
    [
        ("CANARYFLOW_FAULT_ERROR_RATE", "often"),
        ("CANARYFLOW_FAULT_ERROR_RATE", "1.5"),
        ("CANARYFLOW_FAULT_DELAY", "slow"),
        ("CANARYFLOW_FAULT_UNREADY", "maybe"),
    ],
    ids=["rate-not-a-number", "rate-above-one", "delay-not-a-duration", "unready-not-a-boolean"],
)
def test_malformed_knob_is_a_configuration_error(knob: str, value: str) -> None:
    result = run_demoapp({knob: value})

    assert result.returncode == 2
    assert knob in result.stderr


def test_podinfo_random_error_flag_fails_some_requests(start_demo: StartDemo) -> None:
    demo = start_demo(["--random-error"])

    with httpx.Client() as client:
        codes = {client.get(f"{demo.url}/").status_code for _ in range(60)}

    assert 200 in codes
    assert codes - {200} <= {500, 502, 503, 504}
    assert codes - {200}


def run_demoapp(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the app where it is expected to exit before serving (bounded: it would otherwise serve)."""
    port = str(services.free_port())
    return subprocess.run(
        [sys.executable, "-m", "canaryflow.demoapp", "--port", port],
        env=services.clean_env(env),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def latency_buckets(service: services.Service, path: str) -> dict[str, float]:
    """Cumulative request counts per ``le`` bound of the app's latency histogram for one route."""
    buckets: dict[str, float] = {}
    for line in httpx.get(f"{service.url}/metrics").text.splitlines():
        if line.startswith("http_request_duration_seconds_bucket{") and f'path="{path}"' in line:
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            buckets[bound] = buckets.get(bound, 0.0) + float(line.rpartition(" ")[2])
    return buckets
