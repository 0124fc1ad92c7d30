"""A runtime killed with ``kill -9`` mid-analysis and started again: its healthy canary carries on, as Flagger's
do when the Flagger pod restarts; a canary whose restarted data plane stays dead still fails.

Real Envoy, Prometheus, workload processes and ``hey`` users through the mesh; a tick a second (time scale 0.1)
against a 10 s error-rate window, as ``bench/chaos.py`` runs them. The kill lands right after the first step, when
the canary has served almost nothing yet: the restarted Envoy's counters are all Prometheus will have of it.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console

from canaryflow.cli import demo
from canaryflow.cli.client import CliError

pytestmark = pytest.mark.e2e

TIME_SCALE = 0.1
#: A failed check's event: a metric over its threshold or without values, a failed query, a failed hook.
FAILED_CHECK = re.compile(r"^(Halt (\S+ )?advancement |Metric query failed )")
HELD = "Analysis of prod/backend held: the local data plane is starting"


@pytest.fixture
def scenario(tmp_path: Path) -> Iterator[demo.Demo]:
    d = demo.Demo(demo.EXAMPLES, tmp_path, Console(file=io.StringIO()), TIME_SCALE)
    d.runtime.start(time_scale=TIME_SCALE, min_interval=10.0)
    users: subprocess.Popen[bytes] | None = None
    try:
        _configure(d)
        d.apply("apps/namespace.yaml", "istio/gateway", "apps/backend")
        assert d.wait("backend", ("Initialized",), timeout=120) == "Initialized"
        proxy = (d.runtime.dirs.record() or {})["endpoints"]["meshProxy"]  # the same port after a restart
        argv = ["hey", "-z", "1h", "-q", "10", "-c", "4", "-t", "2", "-x", proxy, "http://backend.prod:9898/"]
        users = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        yield d
    finally:
        if users is not None:
            users.terminate()
            users.wait(10)
        d.runtime.stop()


def _configure(d: demo.Demo) -> None:
    """The backend canary as the chaos bench runs it: three steps to 60 %, one error-rate check, no webhooks
    (the users are the load); probes every scaled second."""
    path = d.repo / "apps" / "backend" / "canary.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["spec"]["progressDeadlineSeconds"] = 120
    doc["spec"]["analysis"] = {
        "interval": "10s", "threshold": 2, "maxWeight": 60, "stepWeight": 20, "webhooks": [],
        "metrics": [{"name": "error-rate", "templateRef": {"name": "error-rate", "namespace": "istio-system"},
                     "thresholdRange": {"max": 5}, "interval": "10s"}],
    }  # fmt: skip
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    path = d.repo / "apps" / "backend" / "deployment.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["spec"]["minReadySeconds"] = 0
    container = doc["spec"]["template"]["spec"]["containers"][0]
    for probe in ("livenessProbe", "readinessProbe"):
        container[probe].update(initialDelaySeconds=1, periodSeconds=2)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def release_and_kill_at_first_step(d: demo.Demo) -> tuple[str, float]:
    """Release a new tag, kill the runtime as soon as the canary has its first step, start it again; the
    lastAppliedSpec before the release, and the moment of the kill."""
    before = d.canary("backend")["status"]["lastAppliedSpec"]
    d.set_tag("backend", "6.1.1")
    d.apply("apps/backend")
    return before, kill_and_restart_at_weight(d, 20)


def kill_and_restart_at_weight(d: demo.Demo, weight: int) -> float:
    """Once the backend canary has ``weight``, kill the runtime with SIGKILL and start it again; the moment of the
    kill."""
    deadline = time.monotonic() + 120
    while d.canary("backend")["status"].get("canaryWeight", 0) < weight:
        assert time.monotonic() < deadline, d.canary("backend")["status"]
        time.sleep(0.05)
    pid = d.runtime.dirs.running_pid()
    assert pid is not None
    killed_at = time.time()
    os.kill(pid, signal.SIGKILL)
    while d.runtime.dirs.running_pid() == pid:
        time.sleep(0.05)
    with pytest.raises(CliError):
        d.runtime.url()  # it is really gone
    d.runtime.start(time_scale=d.time_scale, min_interval=10.0)
    return killed_at


def events_since(d: demo.Demo, moment: float) -> list[str]:
    events: list[dict[str, Any]] = d.runtime.json("GET", "/events", params={"canary": "prod/backend", "limit": 500})
    return [e["message"] for e in events if e["time"] > moment]


def test_a_healthy_canary_carries_on_after_the_runtime_is_killed(scenario: demo.Demo) -> None:
    before, killed_at = release_and_kill_at_first_step(scenario)
    assert scenario.wait("backend", ("Succeeded", "Failed"), since=before, timeout=180) == "Succeeded"
    after = events_since(scenario, killed_at)
    assert not [m for m in after if FAILED_CHECK.match(m)], after  # the restart cost no check
    assert any(m.startswith(HELD) for m in after), after  # it waited for the data plane, and said so
    assert "Promotion completed! Scaling down backend.prod" in after


def test_a_canary_whose_restarted_data_plane_stays_dead_still_fails(scenario: demo.Demo) -> None:
    before, killed_at = release_and_kill_at_first_step(scenario)
    prometheus = next(c["pid"] for c in (scenario.runtime.dirs.record() or {})["children"] if c["name"] == "prometheus")
    os.kill(prometheus, signal.SIGSTOP)  # frozen: it neither answers nor is restarted
    try:
        outcome = scenario.wait("backend", ("Succeeded", "Failed"), since=before, timeout=180)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(prometheus, signal.SIGCONT)
    after = events_since(scenario, killed_at)
    assert outcome == "Failed", after
    held = [i for i, m in enumerate(after) if m.startswith(HELD)]
    failed = [i for i, m in enumerate(after) if FAILED_CHECK.match(m)]
    assert held and failed and max(held) < min(failed), after  # held while warming up, then the checks failed
    assert "Rolling back backend.prod failed checks threshold reached 2" in after
