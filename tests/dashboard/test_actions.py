"""Actions need the token given at start; a browser's need its session and a CSRF token from the same origin."""

from __future__ import annotations

import re

import pytest
from starlette.testclient import TestClient

from canaryflow.dashboard.app import Dashboard
from canaryflow.dashboard.memory import MemoryBackend
from canaryflow.engine.machine import Operation
from tests.dashboard.test_pages import canary

TOKEN = "s3cret-token"
GATE = [{"name": "approve", "type": "confirm-promotion", "url": "http://flagger-loadtester.test/gate/check"}]


@pytest.fixture
def backend() -> MemoryBackend:
    return MemoryBackend([canary(webhooks=GATE)])


def browser(backend: MemoryBackend, token: str | None = TOKEN) -> TestClient:
    return TestClient(Dashboard(backend, token).app, headers={"accept": "text/html"}, follow_redirects=False)


def logged_in(client: TestClient) -> str:
    """Log in; returns the CSRF token the canary's page carries."""
    response = client.post("/login", data={"token": TOKEN})
    assert response.status_code == 303
    page = client.get("/canaries/prod/backend").text
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert found is not None
    return found.group(1)


def test_without_a_token_at_start_the_dashboard_is_read_only(backend: MemoryBackend) -> None:
    client = browser(backend, token=None)
    response = client.post("/canaries/prod/backend/actions/promote", data={"csrf": "x"})
    assert response.status_code == 403 and "read-only" in response.text
    assert client.post("/login", data={"token": "anything"}).status_code == 401
    assert backend.operations == []


def test_an_action_without_logging_in_is_refused_with_401(backend: MemoryBackend) -> None:
    response = browser(backend).post("/canaries/prod/backend/actions/promote", data={"csrf": "x"})
    assert response.status_code == 401
    assert browser(backend).post("/login", data={"token": "wrong"}).status_code == 401
    assert backend.operations == []


def test_a_logged_in_browser_promotes_with_its_csrf_token(backend: MemoryBackend) -> None:
    client = browser(backend)
    csrf = logged_in(client)
    response = client.post("/canaries/prod/backend/actions/promote", data={"csrf": csrf})
    assert response.status_code == 303 and response.headers["location"].startswith("/canaries/prod/backend?notice=")
    assert backend.operations == [("prod/backend", Operation.PROMOTE)]


@pytest.mark.parametrize(
    ("csrf", "headers"),
    [("", {}), ("0" * 64, {}), (None, {"origin": "http://evil.example"})],
    ids=["no-csrf", "wrong-csrf", "other-origin"],
)
def test_cross_site_requests_are_refused(backend: MemoryBackend, csrf: str | None, headers: dict[str, str]) -> None:
    client = browser(backend)
    good = logged_in(client)
    form = {"csrf": good if csrf is None else csrf}
    response = client.post("/canaries/prod/backend/actions/abort", data=form, headers=headers)
    assert response.status_code == 403
    assert backend.operations == []


def test_a_script_acts_with_the_bearer_token(backend: MemoryBackend) -> None:
    client = TestClient(Dashboard(backend, TOKEN).app)
    response = client.post("/canaries/prod/backend/actions/retry", headers={"authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200 and response.json()["message"] == "retry requested"
    wrong = client.post("/canaries/prod/backend/actions/retry", headers={"authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert backend.operations == [("prod/backend", Operation.RETRY)]


def test_gates_open_and_close_and_unknown_names_are_errors(backend: MemoryBackend) -> None:
    client = browser(backend)
    csrf = logged_in(client)
    assert client.post("/canaries/prod/backend/gates/approve/open", data={"csrf": csrf}).status_code == 303
    assert backend.gates == {("prod/backend", "approve"): True}
    assert client.post("/canaries/prod/backend/gates/approve/ajar", data={"csrf": csrf}).status_code == 400
    assert client.post("/canaries/prod/backend/actions/skip", data={"csrf": csrf}).status_code == 400
    assert client.post("/canaries/prod/nothing/actions/promote", data={"csrf": csrf}).status_code == 404
