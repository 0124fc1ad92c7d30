"""Liveness probes restart a process, as the kubelet restarts a container; the restart is counted."""

from __future__ import annotations

from typing import Any

import pytest

from canaryflow.local.workloads import ProcessWorkloads
from tests.local.test_workloads import Cluster, alive, backend
from tests.polling import until

FAST = {"initialDelaySeconds": 0, "periodSeconds": 1, "failureThreshold": 2}  # 0.1 s apart at TIME_SCALE
FAILING = {
    "httpGet": {"httpGet": {"path": "/status/500", "port": 9898}},  # the demo app answers the code it is asked
    "tcpSocket": {"tcpSocket": {"port": 1}},  # nothing listens there
    "exec": {"exec": {"command": ["podcli", "check", "http", "localhost:9898/status/503"]}},
}


def with_liveness(probe: dict[str, Any]) -> dict[str, Any]:
    deployment = backend(replicas=1)
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"] = probe
    return deployment


def only(workloads: ProcessWorkloads) -> dict[str, Any]:
    processes = workloads.processes()
    assert len(processes) == 1, processes
    return processes[0]


@pytest.mark.parametrize("kind", sorted(FAILING))
async def test_a_failing_liveness_probe_restarts_the_process(
    cluster: tuple[Cluster, ProcessWorkloads], kind: str
) -> None:
    store, workloads = cluster
    store.apply(with_liveness({**FAILING[kind], **FAST}))
    workloads.run_deployment("prod", "backend")
    await until(lambda: workloads.processes() and only(workloads)["pid"], "process started")
    first = only(workloads)["pid"]

    await until(lambda: only(workloads)["restarts"] >= 1, "restarted by its liveness probe")
    await until(lambda: only(workloads)["pid"] not in (None, first), "a new process")
    assert not alive(first)
    log = workloads.logs("prod", "backend")
    assert "liveness probe failed 2 times in a row" in log


async def test_a_passing_liveness_probe_leaves_the_process_alone(cluster: tuple[Cluster, ProcessWorkloads]) -> None:
    store, workloads = cluster
    # Failures tolerated for 6 s (a process starting on a busy machine is not killed), probed every 0.2 s.
    patient = {"initialDelaySeconds": 5, "periodSeconds": 2, "failureThreshold": 30}
    store.apply(with_liveness({"httpGet": {"path": "/healthz", "port": 9898}, **patient}))
    workloads.run_deployment("prod", "backend")
    await until(lambda: store.endpoints.get("prod/backend"), "backend ready")
    replica = workloads._sets["prod/backend"].replicas[0]
    assert replica.liveness is not None
    await until(lambda: replica.liveness.checks >= 5, "five liveness probes run")  # type: ignore[union-attr]
    assert only(workloads)["restarts"] == 0 and replica.liveness.kills == 0


async def test_the_initial_delay_holds_the_first_probe_back(cluster: tuple[Cluster, ProcessWorkloads]) -> None:
    store, workloads = cluster
    # A long initial delay: the process becomes ready (readiness probes run) with no liveness probe yet.
    store.apply(with_liveness({**FAILING["httpGet"], **FAST, "initialDelaySeconds": 600}))
    workloads.run_deployment("prod", "backend")
    await until(lambda: store.endpoints.get("prod/backend"), "backend ready")
    replica = workloads._sets["prod/backend"].replicas[0]
    assert replica.liveness is not None and replica.liveness.checks == 0
    assert only(workloads)["restarts"] == 0
