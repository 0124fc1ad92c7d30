"""The dashboard in real headless Chromium (Debian's, driven by Playwright) against a local runtime running the
seed's backend canary: what a person watching a release sees and can do, and the seed's Grafana view with the
local Prometheus behind it.

One runtime serves every test of this module (starting one takes most of the time): the canary holds at a
confirm-promotion gate once it reaches its maximum weight, so it is still running whatever the order and speed of
the tests before the one that promotes it, which runs last.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from playwright.sync_api import Browser, Page, sync_playwright
from rich.console import Console
from typer.testing import CliRunner

from canaryflow.cli import demo
from canaryflow.cli.main import app
from canaryflow.dashboard import grafana

pytestmark = pytest.mark.e2e

TOKEN = "dashboard-test-token"
SCRIPT = "<script>window.__pwned = 1</script>"
SEED_VIEW = (  # the seed's guide, as it is
    "/d/flagger-istio/istio-canary?refresh=10s&orgId=1&var-namespace=prod&var-primary=backend-primary&var-canary=backend"
)
CHROMIUM = "/usr/bin/chromium"


@dataclasses.dataclass
class Live:
    scenario: demo.Demo
    url: str
    browser: Browser

    def page(self) -> Page:
        page = self.browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        return page

    def status(self) -> dict[str, Any]:
        return dict(self.scenario.canary("backend").get("status", {}))


def _canary_with_gate_and_script(repo: Path) -> None:
    """The seed's backend canary, plus a confirm-promotion gate and a pre-rollout webhook whose name is markup."""
    path = repo / "apps" / "backend" / "canary.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["spec"]["analysis"]["webhooks"] += [
        {"name": SCRIPT, "type": "pre-rollout", "url": "http://flagger-loadtester.prod/",
         "metadata": {"type": "bash", "cmd": "true"}},
        {"name": "approval", "type": "confirm-promotion", "url": "http://flagger-loadtester.prod/gate/check"},
    ]  # fmt: skip
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


@contextlib.contextmanager
def _traffic(scenario: demo.Demo) -> Iterator[None]:
    """Users calling backend.prod through the mesh (the primary gets none from the load test): bounded, stops."""
    stop = threading.Event()

    def run() -> None:
        deadline = time.monotonic() + 600
        with scenario.mesh() as client:
            while not stop.is_set() and time.monotonic() < deadline:
                with contextlib.suppress(httpx.HTTPError):
                    client.get("http://backend.prod:9898/")
                stop.wait(0.05)

    thread = threading.Thread(target=run, name="traffic", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    work = tmp_path_factory.mktemp("dashboard")
    scenario = demo.Demo(demo.EXAMPLES, work, Console(file=io.StringIO()), 0.2)
    _canary_with_gate_and_script(scenario.repo)
    scenario.runtime.start(time_scale=0.2, min_interval=10.0, dashboard=("", TOKEN))
    try:
        scenario.apply("apps/namespace.yaml", "istio/gateway", "apps/backend")
        assert scenario.wait("backend", ("Initialized",), timeout=120) == "Initialized"
        scenario.set_tag("backend", "6.1.1")
        scenario.apply("apps/backend")
        assert scenario.wait("backend", ("Progressing",), timeout=120) == "Progressing"
        url = str((scenario.runtime.dirs.record() or {})["endpoints"]["dashboard"])
        with _traffic(scenario), sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM)
            yield Live(scenario, url, browser)
            browser.close()
    finally:
        scenario.runtime.stop()


def test_the_list_shows_the_running_canary(live: Live, tmp_path: Path) -> None:
    page = live.page()
    page.goto(live.url + "/")
    row = page.locator('tr[data-canary="prod/backend"]')
    assert row.locator("td").nth(0).inner_text() == "prod"
    assert row.locator(".phase").inner_text() in ("Progressing", "WaitingPromotion")
    page.screenshot(path=tmp_path / "list.png", full_page=True)


def test_the_weight_chart_advances_while_the_run_progresses(live: Live, tmp_path: Path) -> None:
    page = live.page()
    page.goto(f"{live.url}/canaries/prod/backend")
    page.wait_for_function("() => window.canaryflow.timeline !== null")
    first = page.evaluate("() => Math.max(...window.canaryflow.timeline.weight)")
    points = int(page.locator("#timeline").get_attribute("data-points") or 0)
    if first < 50:  # live updates, no reload: the chart grows until the canary holds at its gate (50%)
        page.wait_for_function(f"() => Math.max(...window.canaryflow.timeline.weight) > {first}", timeout=90_000)
    assert int(page.locator("#timeline").get_attribute("data-points") or 0) > points
    assert page.locator("#timeline canvas").count() == 1
    page.screenshot(path=tmp_path / "canary.png", full_page=True)


def test_an_injected_script_in_an_event_is_shown_as_text(live: Live, tmp_path: Path) -> None:
    page = live.page()
    page.goto(f"{live.url}/canaries/prod/backend")
    assert f"Pre-rollout check {SCRIPT} passed" in page.locator("#events").inner_text()
    assert page.evaluate("() => window.__pwned") is None
    page.screenshot(path=tmp_path / "events.png", full_page=True)


def test_promote_without_the_token_is_refused(live: Live, tmp_path: Path) -> None:
    page = live.page()
    page.goto(f"{live.url}/canaries/prod/backend")
    with page.expect_navigation() as answer:
        page.get_by_role("button", name="Promote").click()
    assert answer.value is not None and answer.value.status == 401
    assert "log in with the dashboard token first" in page.inner_text("main")
    page.screenshot(path=tmp_path / "refused.png", full_page=True)
    forged = httpx.post(f"{live.url}/canaries/prod/backend/actions/promote", headers={"authorization": "Bearer x"},
                        trust_env=False)  # fmt: skip
    assert forged.status_code == 401
    assert live.status()["phase"] in ("Progressing", "WaitingPromotion")


def test_the_seed_grafana_view_shows_the_six_traffic_panels_with_data(live: Live, tmp_path: Path) -> None:
    page = live.page()
    page.goto(live.url + SEED_VIEW)
    traffic = page.locator('figure[data-row="traffic"]')
    assert traffic.count() == 6
    assert [t.strip() for t in traffic.locator("figcaption").all_inner_texts()] == [
        "Primary: Request Volume", "Canary: Request Volume", "Primary: Success Rate", "Canary: Success Rate",
        "Primary: Request Duration", "Canary: Request Duration",
    ]  # fmt: skip
    # The page refreshes its data every 10 s; every series of the six draws a line (two points or more) once
    # Prometheus has scraped a few times.
    page.wait_for_function(
        """() => [...document.querySelectorAll('figure[data-row="traffic"]')]
                 .every(f => Number(f.dataset.points) >= 2)""",
        timeout=90_000,
    )
    page.screenshot(path=tmp_path / "istio-canary.png", full_page=True)


def test_every_query_of_the_shipped_grafana_dashboard_returns_data(live: Live) -> None:
    record = live.scenario.runtime.dirs.record() or {}
    prometheus = record["endpoints"]["prometheus"]
    values = {"namespace": "prod", "primary": "backend-primary", "canary": "backend"}
    shipped = json.loads((Path(demo.EXAMPLES).parents[1] / "deploy" / "grafana" / "istio-canary.json").read_text())
    exprs = [t["expr"] for p in shipped["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 14
    missing: list[str] = []
    deadline = time.monotonic() + 90
    while True:
        missing = []
        for expr in exprs:
            query = grafana.substitute(expr, values)
            answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": query}, trust_env=False).json()
            assert answer["status"] == "success", (query, answer)
            if not answer["data"]["result"]:
                missing.append(query)
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert missing == []


def test_promote_with_the_token_promotes(live: Live, tmp_path: Path) -> None:
    page = live.page()
    page.goto(live.url + "/login")
    page.fill('input[name="token"]', TOKEN)
    with page.expect_navigation():
        page.get_by_role("button", name="Log in").click()
    page.goto(f"{live.url}/canaries/prod/backend")
    with page.expect_navigation() as answer:
        page.get_by_role("button", name="Promote").click()
    assert answer.value is not None and answer.value.status == 200
    assert "promote requested" in page.locator(".notice").inner_text()
    page.wait_for_function("() => document.getElementById('phase').textContent === 'Succeeded'", timeout=120_000)
    page.screenshot(path=tmp_path / "promoted.png", full_page=True)
    with live.scenario.mesh() as client:
        assert client.get("http://backend.prod:9898/version").json()["version"] == "6.1.1"


def test_canaryflow_dashboard_prints_the_url_the_runtime_serves(live: Live) -> None:
    result = CliRunner().invoke(app, ["dashboard", "--state-dir", str(live.scenario.runtime.dirs.root)])
    assert result.exit_code == 0 and result.output.strip() == live.url
    assert live.url.startswith("http://127.0.0.1:")
    assert httpx.get(live.url + "/healthz", trust_env=False).text == "OK"
