"""The seed's Grafana view: the shipped dashboard JSON, its variables, and the page without a Prometheus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from canaryflow.dashboard import grafana
from canaryflow.dashboard.app import Dashboard
from canaryflow.dashboard.memory import MemoryBackend
from tests.dashboard.test_pages import canary

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "istio-canary.json"
SEED = {"var-namespace": "prod", "var-primary": "backend-primary", "var-canary": "backend"}


def test_the_dashboard_shipped_for_clusters_is_the_one_the_view_draws() -> None:
    assert DEPLOY.read_text() == grafana.DASHBOARD.read_text()
    shipped = json.loads(DEPLOY.read_text())
    assert (shipped["uid"], shipped["title"]) == ("flagger-istio", "Istio Canary")
    assert {v["name"] for v in shipped["templating"]["list"]} >= {"namespace", "primary", "canary"}
    titles = [p.title for p in grafana.panels()]
    for workload in ("Primary", "Canary"):
        for panel in ("Request Volume", "Success Rate", "Request Duration", "CPU Usage by Pod", "Memory Usage by Pod"):
            assert f"{workload}: {panel}" in titles


@pytest.mark.parametrize(
    "bad", ['prod"} or vector(1) #', "", "Prod", "a" * 300], ids=["promql-injection", "empty", "upper-case", "long"]
)
def test_a_variable_that_is_no_kubernetes_name_is_refused(bad: str) -> None:
    with pytest.raises(grafana.BadVariable, match="var-canary"):
        grafana.variables({**SEED, "var-canary": bad})


def test_variables_are_substituted_in_both_spellings() -> None:
    values = grafana.variables(SEED)
    assert grafana.substitute('x{a=~"$primary",b="${canary}"}', values) == 'x{a=~"backend-primary",b="backend"}'


def test_the_view_lists_canaries_without_variables_and_says_when_there_is_no_prometheus() -> None:
    client = TestClient(Dashboard(MemoryBackend([canary()])).app)
    chooser = client.get("/d/flagger-istio/istio-canary").text
    assert "var-primary=backend-primary" in chooser
    page = client.get("/d/flagger-istio/istio-canary", params=SEED)
    assert page.status_code == 200 and page.text.count('data-row="traffic"') == 6
    assert client.get("/d/flagger-istio/istio-canary", params={**SEED, "var-namespace": "a b"}).status_code == 400
    data = client.get("/d/flagger-istio/istio-canary/data", params=SEED)
    assert data.status_code == 503 and "no Prometheus" in data.json()["error"]
