"""The demo app answers podinfo's endpoints the way podinfo does, so the seed's probes and hooks work on it."""

from __future__ import annotations

import httpx
import pytest

from tests.demoapp.services import Service


def test_root_describes_the_release_like_podinfo(demo: Service) -> None:
    reply = httpx.get(f"{demo.url}/")

    assert reply.status_code == 200
    info = reply.json()
    assert info["version"] == "6.1.0"
    assert info["color"] == "#34577c"
    assert info["message"] == "hello from the backend"
    assert info["hostname"] == "backend-primary-0"
    assert set(info) >= {"revision", "logo", "goos", "goarch", "runtime", "num_goroutine", "num_cpu"}
    assert info["num_cpu"].isdigit()


def test_api_info_is_the_same_document(demo: Service) -> None:
    assert httpx.get(f"{demo.url}/api/info").json()["version"] == "6.1.0"


def test_version_endpoint(demo: Service) -> None:
    assert httpx.get(f"{demo.url}/version").json()["version"] == "6.1.0"


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_answer_ok(demo: Service, path: str) -> None:
    reply = httpx.get(f"{demo.url}{path}")

    assert (reply.status_code, reply.json()) == (200, {"status": "OK"})


def test_readiness_can_be_switched_off_and_on(demo: Service) -> None:
    assert httpx.post(f"{demo.url}/readyz/disable").status_code == 202
    unready = httpx.get(f"{demo.url}/readyz").status_code
    assert httpx.post(f"{demo.url}/readyz/enable").status_code == 202

    assert unready == 503
    assert httpx.get(f"{demo.url}/readyz").status_code == 200
    assert httpx.get(f"{demo.url}/healthz").status_code == 200


@pytest.mark.parametrize("code", [200, 201, 404, 418, 500, 503])
def test_status_answers_the_code_asked_for(demo: Service, code: int) -> None:
    reply = httpx.get(f"{demo.url}/status/{code}")

    assert (reply.status_code, reply.json()) == (code, {"status": code})


def test_status_204_has_no_body(demo: Service) -> None:
    reply = httpx.get(f"{demo.url}/status/204")

    assert (reply.status_code, reply.content) == (204, b"")


@pytest.mark.parametrize("code", ["abc", "99", "600"], ids=["not-a-number", "too-low", "too-high"])
def test_status_rejects_what_is_not_a_status(demo: Service, code: str) -> None:
    assert httpx.get(f"{demo.url}/status/{code}").status_code == 400


def test_delay_answers_with_the_delay(demo: Service) -> None:
    assert httpx.get(f"{demo.url}/delay/0.1").json() == {"delay": 0.1}
    assert httpx.get(f"{demo.url}/delay/0").json() == {"delay": 0}
    assert httpx.get(f"{demo.url}/delay/soon").status_code == 400


def test_token_is_issued_and_validates(demo: Service) -> None:
    issued = httpx.post(f"{demo.url}/token", content=b"test")
    token = issued.json()["token"]
    valid = httpx.get(f"{demo.url}/token/validate", headers={"Authorization": f"Bearer {token}"})

    assert issued.status_code == 200
    assert issued.json()["expires_at"].endswith("Z")
    assert (valid.status_code, valid.json()["token_name"]) == (200, "test")


def test_forged_token_is_refused(demo: Service) -> None:
    token = httpx.post(f"{demo.url}/token").json()["token"]
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")

    reply = httpx.get(f"{demo.url}/token/validate", headers={"Authorization": f"Bearer {forged}"})

    assert reply.status_code == 401


def test_the_seeds_conformance_command_finds_a_token(demo: Service) -> None:
    """The seed's pre-rollout hook runs ``curl -sd 'test' …/token | grep token``."""
    reply = httpx.post(f"{demo.url}/token", content=b"test")

    assert "token" in reply.text


def test_echo_returns_the_body(demo: Service) -> None:
    reply = httpx.post(f"{demo.url}/echo", content=b'{"hello": "world"}')

    assert (reply.status_code, reply.content) == (202, b'{"hello": "world"}')


def test_env_lists_the_process_environment(demo: Service) -> None:
    assert "PODINFO_VERSION=6.1.0" in httpx.get(f"{demo.url}/env").json()


def test_headers_lists_the_request_headers(demo: Service) -> None:
    headers = httpx.get(f"{demo.url}/headers", headers={"X-Canary": "insider"}).json()

    assert headers["X-Canary"] == ["insider"]


def test_metrics_count_requests_per_route(demo: Service) -> None:
    series = 'http_requests_total{method="GET",path="/status/{code}",status="418"}'
    before = metric(demo, series)
    for _ in range(3):
        httpx.get(f"{demo.url}/status/418")

    assert metric(demo, series) == before + 3
    assert "http_request_duration_seconds_bucket" in httpx.get(f"{demo.url}/metrics").text


def metric(service: Service, series: str) -> float:
    """The value of one series in the app's /metrics (0 when absent)."""
    for line in httpx.get(f"{service.url}/metrics").text.splitlines():
        if line.startswith(series + " "):
            return float(line.rpartition(" ")[2])
    return 0.0


def test_unknown_path_is_not_found(demo: Service) -> None:
    assert httpx.get(f"{demo.url}/nowhere").status_code == 404
