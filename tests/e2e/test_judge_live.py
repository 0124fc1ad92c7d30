"""The judge on live traffic: real Envoy, Prometheus, workload processes and hey. A canary serving 3 % errors
passes its 5 % error-rate threshold, so the thresholds alone would promote it; the judge, comparing it with the
primary on the counts Prometheus scrapes, rolls it back within a few looks."""

from __future__ import annotations

import io
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console

from canaryflow.cli import demo

pytestmark = pytest.mark.e2e


def judged_canary(path: Path) -> None:
    doc = yaml.safe_load(path.read_text())
    analysis = doc["spec"]["analysis"]
    analysis["judge"] = {"interval": "2s"}
    analysis["metrics"][0]["thresholdRange"] = {"max": 5}  # 3 % errors pass this
    analysis["webhooks"] = [w for w in analysis["webhooks"] if w["type"] != "rollout"]  # users' traffic only
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def faulty(path: Path, error_rate: str) -> None:
    doc = yaml.safe_load(path.read_text())
    env = doc["spec"]["template"]["spec"]["containers"][0].setdefault("env", [])
    env.append({"name": "CANARYFLOW_FAULT_ERROR_RATE", "value": error_rate})
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def users(d: demo.Demo, seconds: int) -> subprocess.Popen[bytes]:
    """Users of the backend, through the mesh (Envoy splits them by the canary's weights): 100 req/s."""
    proxy = (d.runtime.dirs.record() or {})["endpoints"]["meshProxy"]
    argv = ["hey", "-z", f"{seconds}s", "-q", "50", "-c", "2", "-x", proxy, "http://backend.prod:9898/"]
    log = (d.runtime.dirs.logs / "users.log").open("wb")
    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)


def test_a_canary_the_thresholds_would_promote_is_rolled_back_by_the_judge(tmp_path: Path) -> None:
    d = demo.Demo(demo.EXAMPLES, tmp_path, Console(file=io.StringIO()), 0.2)
    judged_canary(d.repo / "apps" / "backend" / "canary.yaml")
    d.runtime.start(time_scale=0.2, min_interval=10.0)
    load = None
    try:
        assert d.first_deploy().ok
        load = users(d, 120)
        before = d.canary("backend")["status"]["lastAppliedSpec"]
        d.set_tag("backend", "6.1.1")
        faulty(d.repo / "apps" / "backend" / "deployment.yaml", "0.03")
        started = time.monotonic()
        d.apply("apps/backend")
        assert d.wait("backend", ("Succeeded", "Failed"), since=before, timeout=150) == "Failed"
        seconds = time.monotonic() - started
        status: dict[str, Any] = d.canary("backend")["status"]
        message = status["conditions"][0]["message"]
        events = d.runtime.json("GET", "/events", params={"canary": "prod/backend"})
        assert "the judge found the canary worse: errors e-value" in message, "\n".join(
            [message, *(e["message"] for e in events[-30:]), str(status)]
        )
        errors = next(t for t in status["judge"]["tests"] if t["name"] == "errors")
        assert errors["decision"] == "rollback" and errors["statistic"] >= errors["bound"]
        # The thresholds never failed: the judge decided, on the canary's first steps.
        assert status["failedChecks"] < 10 and seconds < 60, (status, seconds)
        assert any("the judge found the canary worse" in e["message"] for e in events), events
        with d.mesh() as client:
            assert client.get("http://backend.prod:9898/version").json()["version"] == "6.1.0"
    finally:
        if load is not None:
            load.terminate()
            load.wait(10)
        d.runtime.stop()
