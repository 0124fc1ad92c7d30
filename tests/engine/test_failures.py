"""Readiness, deadlines, adapter failures and user operations."""

from __future__ import annotations

from canaryflow.api.status import Phase
from canaryflow.engine.effects import Routes
from canaryflow.engine.machine import Operation

from .harness import Harness, canary


async def test_canary_that_never_becomes_ready_is_rolled_back_at_the_deadline() -> None:
    h = Harness()  # progressDeadlineSeconds: 60, interval 10s
    await h.initialized()
    h.release("rev-2")
    h.target.canary_ready = False
    rows = await h.until(Phase.FAILED)
    assert [r.phase for r in rows] == ["Progressing"] * 6 + ["Failed"]
    assert rows[1].events == ("podinfo not ready: waiting for rollout to finish",)
    message = "podinfo not ready: waiting for rollout to finish (not ready for 60s)"
    assert rows[-1].events == (f"Rolling back podinfo.test progress deadline exceeded {message}",)
    assert ("error", f"Progress deadline exceeded {message}") in h.alerts.sent
    assert h.target.replicas == 0


async def test_canary_that_becomes_ready_in_time_goes_on() -> None:
    h = Harness()
    await h.initialized()
    h.release("rev-2")
    h.target.canary_ready = False
    await h.ticks(4)
    h.target.canary_ready = True
    rows = await h.until(Phase.SUCCEEDED)
    assert "Failed" not in [r.phase for r in rows]


async def test_non_retriable_readiness_rolls_back_at_once() -> None:
    h = Harness()
    await h.initialized()
    h.release("rev-2")
    await h.ticks(2)
    h.target.canary_ready = False
    h.target.canary_retriable = False
    row = await h.tick()
    assert row.phase == "Failed"


async def test_primary_not_ready_blocks_initialization() -> None:
    h = Harness()
    h.target.primary_ready = False
    rows = await h.ticks(2)
    assert [r.phase for r in rows] == ["Initializing", "Initializing"]
    assert rows[0].events == ("podinfo-primary not ready",)
    h.target.primary_ready = True
    assert (await h.tick()).phase == "Initialized"


async def test_router_failure_abandons_the_tick_and_saves_nothing() -> None:
    h = Harness()
    await h.initialized()
    h.release("rev-2")
    await h.ticks(2)
    before = await h.status()
    h.router.fail_with = "virtualservice podinfo: 503 from API server"
    row = await h.tick()
    assert row.events == ("ReconcileRouting failed for podinfo.test: virtualservice podinfo: 503 from API server",)
    assert await h.status() == before
    h.router.fail_with = None
    assert (await h.tick()).canary == 20


async def test_missing_target_is_reported() -> None:
    h = Harness()
    h.workload.targets.clear()
    row = await h.tick()
    assert row.events == ("InitializeWorkload failed for podinfo.test: deployment test/podinfo not found",)
    assert (await h.status()).phase is Phase.INITIALIZING


async def test_abort_rolls_back_a_running_analysis() -> None:
    h = Harness()
    await h.initialized()
    h.release("rev-2")
    await h.ticks(3)
    await h.request(Operation.ABORT)
    row = await h.tick()
    assert row.brief == ("Failed", 100, 0, 0, 0)
    assert row.events == ("Rolling back podinfo.test: abort requested",)
    assert await h.store.pending(h.canary.key) is None


async def test_promote_skips_the_rest_of_the_analysis() -> None:
    h = Harness(canary(maxWeight=50))
    await h.initialized()
    h.release("rev-2")
    await h.ticks(2)
    await h.request(Operation.PROMOTE)
    rows = await h.until(Phase.SUCCEEDED)
    assert rows[0].events == (
        "Promotion requested for podinfo.test: skipping the rest of the analysis",
        "Copying podinfo.test template spec to podinfo-primary.test",
    )
    assert [r.phase for r in rows] == ["Promoting", "Finalising", "Succeeded"]


async def test_retry_runs_a_failed_revision_again() -> None:
    h = Harness()
    await h.initialized()
    h.metrics.values["request-success-rate"] = 50.0
    h.release("rev-2")
    await h.until(Phase.FAILED)
    h.metrics.values["request-success-rate"] = 100.0
    assert (await h.tick()).phase == "Failed"  # nothing changed: Flagger would stay here forever
    await h.request(Operation.RETRY)
    row = await h.tick()
    assert row.phase == "Progressing"
    assert row.events == (
        "Retry requested: restarting the analysis of podinfo.test",
        "New revision detected! Scaling up podinfo.test",
    )
    await h.until(Phase.SUCCEEDED)
    assert h.target.primary_hash == "rev-2"


async def test_operation_outside_a_run_is_refused_and_cleared() -> None:
    h = Harness()
    await h.initialized()
    await h.request(Operation.PROMOTE)
    row = await h.tick()
    assert row.events == ("promote ignored: podinfo.test is Initialized, no analysis is running",)
    assert await h.store.pending(h.canary.key) is None


async def test_a_step_served_but_not_recorded_is_recorded_with_its_event_by_the_next_tick() -> None:
    # A runtime killed between setting the routes and saving the status: the router serves 20, the status says 10.
    h = Harness()
    await h.initialized()
    h.release("rev-2")
    await h.ticks(2)
    assert (await h.status()).canary_weight == 10
    await h.router.set_routes(h.canary, Routes(80, 20))
    row = await h.tick()
    assert row.events == ("Advance podinfo.test canary weight 20", "Advance podinfo.test canary weight 30")
    assert (await h.status()).canary_weight == 30


async def test_routes_that_are_not_the_next_step_are_not_taken_for_a_lost_one() -> None:
    h = Harness()
    await h.initialized()
    h.release("rev-2")
    await h.ticks(2)
    await h.router.set_routes(h.canary, Routes(50, 50))  # someone else's edit: not a step the engine took
    row = await h.tick()
    assert "Advance podinfo.test canary weight 50" not in row.events
