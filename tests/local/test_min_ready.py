"""``minReadySeconds``: a replica counts as available only once it has been ready that long."""

from __future__ import annotations

from typing import Any

from canaryflow.engine.effects import Readiness
from canaryflow.local.workloads import ProcessWorkloads
from tests.local.test_workloads import CANARY, Cluster, alive, backend, pids, ready
from tests.polling import until

A_MINUTE = 600  # seconds in the manifest: a minute at TIME_SCALE, far longer than any test step


def min_ready(seconds: int, tag: str = "6.1.0") -> dict[str, Any]:
    deployment = backend(tag, replicas=1)
    deployment["spec"]["minReadySeconds"] = seconds
    return deployment


async def test_a_ready_replica_is_not_available_before_min_ready_seconds(
    cluster: tuple[Cluster, ProcessWorkloads],
) -> None:
    store, workloads = cluster
    store.apply(min_ready(A_MINUTE))
    await workloads.scale_canary_up(CANARY)
    await until(lambda: store.endpoints.get("prod/backend"), "ready: in the endpoints")  # the mesh sends traffic

    readiness = await workloads.canary_readiness(CANARY)
    assert not readiness.ready and readiness.retriable
    assert "0 of 1 (readyThreshold 100%) updated replicas are available" in readiness.message
    assert [(p["ready"], p["available"]) for p in workloads.processes()] == [(True, False)]


async def test_a_replica_becomes_available_after_min_ready_seconds(cluster: tuple[Cluster, ProcessWorkloads]) -> None:
    store, workloads = cluster
    store.apply(min_ready(10))  # one second at TIME_SCALE
    await workloads.scale_canary_up(CANARY)

    result: Readiness = await until(ready(workloads.canary_readiness), "canary available")
    assert result.ready
    assert [(p["ready"], p["available"]) for p in workloads.processes()] == [(True, True)]


async def test_the_roll_keeps_old_replicas_until_new_ones_are_available(
    cluster: tuple[Cluster, ProcessWorkloads],
) -> None:
    store, workloads = cluster
    store.apply(min_ready(0, "6.1.0"))
    workloads.run_deployment("prod", "backend")
    await until(lambda: store.endpoints.get("prod/backend"), "6.1.0 ready")
    old = pids(workloads, "backend")

    store.apply(min_ready(A_MINUTE, "6.1.1"))
    workloads.run_deployment("prod", "backend")
    await until(lambda: len(store.endpoints.get("prod/backend") or ()) == 2, "6.1.1 ready beside 6.1.0")
    assert all(alive(pid) for pid in old)  # ready is not available: 6.1.0 keeps serving
    versions = sorted(p["version"] for p in workloads.processes())
    assert versions == ["6.1.0", "6.1.1"]

    new = [p["pid"] for p in workloads.processes() if p["version"] == "6.1.1"]
    store.apply(min_ready(0, "6.1.1"))  # minReadySeconds is not in the template: nothing restarts
    workloads.run_deployment("prod", "backend")
    await until(lambda: not [pid for pid in old if alive(pid)], "6.1.0 stopped once 6.1.1 is available")
    assert pids(workloads, "backend") == new


async def test_the_primary_gets_the_targets_min_ready_seconds(cluster: tuple[Cluster, ProcessWorkloads]) -> None:
    store, workloads = cluster
    store.apply(min_ready(A_MINUTE))
    await workloads.initialize(CANARY)  # Flagger copies minReadySeconds to the primary with the template
    await until(lambda: store.endpoints.get("prod/backend-primary"), "primary ready: in the endpoints")

    readiness = await workloads.primary_readiness(CANARY)
    assert not readiness.ready
    assert "0 of 1 (readyThreshold 100%) updated replicas are available" in readiness.message
