"""The local runtime end to end: real Envoy, Prometheus, processes and hey traffic, driven like a user would."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pytest
import yaml
from rich.console import Console

from canaryflow.cli import demo
from canaryflow.local import state
from tests.e2e.test_runtime_restart import kill_and_restart_at_weight

pytestmark = pytest.mark.e2e


def test_the_seed_scenario_runs_end_to_end() -> None:
    out = io.StringIO()
    code = demo.run(out, time_scale=0.2)
    text = out.getvalue()
    assert code == 0, text
    assert "all five outcomes happened" in text
    assert "other→6.1.1" not in text  # non-matching traffic never reached the A/B canary


@pytest.fixture
def scenario(tmp_path: Path) -> demo.Demo:
    d = demo.Demo(demo.EXAMPLES, tmp_path, Console(file=io.StringIO()), 0.2)
    d.runtime.start(time_scale=0.2, min_interval=10.0)
    yield d
    d.runtime.stop()
    assert not leftovers(d.runtime.dirs), "down left processes behind"


def leftovers(dirs: state.StateDir) -> list[int]:
    record = dirs.record() or {}
    return [c["pid"] for c in record.get("children", []) if state.same_process(c["pid"], c["cmdline"])]


def test_invalid_manifests_are_rejected_whole(scenario: demo.Demo, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    deployment = (scenario.repo / "apps" / "backend" / "deployment.yaml").read_text()
    canary = yaml.safe_load((scenario.repo / "apps" / "backend" / "canary.yaml").read_text())
    canary["spec"]["analysis"]["stepWeigth"] = 5
    bad.write_text(deployment + "---\n" + yaml.safe_dump(canary))
    response = scenario.runtime.request(
        "POST", "/apply", json={"sources": [{"source": str(bad), "text": bad.read_text()}], "namespace": None}
    )
    assert response.status_code == 422
    assert any("stepWeigth: unknown field; did you mean stepWeight?" in p for p in response.json()["problems"])
    listing = scenario.runtime.json("GET", "/objects/deployments")
    assert listing["items"] == []  # the valid Deployment beside it was not applied either


def test_latency_regression_is_rolled_back_and_primary_keeps_serving(scenario: demo.Demo) -> None:
    scenario.apply("apps/namespace.yaml", "istio/gateway", "apps/backend")
    assert scenario.wait("backend", ("Initialized",), timeout=120) == "Initialized"
    path = scenario.repo / "apps" / "backend" / "deployment.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": "CANARYFLOW_FAULT_DELAY", "value": "1s"})
    path.write_text(yaml.safe_dump(doc))
    scenario.set_tag("backend", "6.2.0")
    before = scenario.canary("backend")["status"]["lastAppliedSpec"]
    scenario.apply("apps/backend")
    assert scenario.wait("backend", ("Succeeded", "Failed"), since=before, timeout=240) == "Failed"
    events = scenario.runtime.json("GET", "/events", params={"canary": "prod/backend", "limit": 200})
    messages = [e["message"] for e in events]
    assert any(m.startswith("Halt backend.prod advancement latency") for m in messages), messages
    assert "Rolling back backend.prod failed checks threshold reached 10" in messages
    with scenario.mesh() as client:
        assert client.get("http://backend.prod:9898/version").json()["version"] == "6.1.0"


def test_killed_runtime_resumes_the_run_from_its_stored_state(scenario: demo.Demo) -> None:
    scenario.apply("apps/namespace.yaml", "istio/gateway", "apps/backend")
    assert scenario.wait("backend", ("Initialized",), timeout=120) == "Initialized"
    before = scenario.canary("backend")["status"]["lastAppliedSpec"]
    scenario.set_tag("backend", "6.1.1")
    scenario.apply("apps/backend")
    kill_and_restart_at_weight(scenario, 10)
    status = scenario.canary("backend")["status"]
    assert status["phase"] == "Progressing" and status["canaryWeight"] >= 10  # resumed, not restarted
    assert scenario.wait("backend", ("Succeeded", "Failed"), since=before, timeout=240) == "Succeeded"
    with scenario.mesh() as client:
        assert client.get("http://backend.prod:9898/version").json()["version"] == "6.1.1"
    record = scenario.runtime.dirs.record() or {}
    assert httpx.get(record["endpoints"]["api"] + "/healthz", trust_env=False).text == "OK"
