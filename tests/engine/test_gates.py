"""Webhooks and gates: every type's pass/fail meaning, as a user of Flagger's load tester relies on."""

from __future__ import annotations

from canaryflow.api.status import Phase
from canaryflow.hooks.base import HookResult

from .harness import Harness, canary


def hook(name: str, type_: str, **extra: object) -> dict[str, object]:
    return {"name": name, "type": type_, "url": f"http://flagger-loadtester.test/{name}", **extra}


async def test_confirm_rollout_gate_waits_then_starts() -> None:
    h = Harness(canary(webhooks=[hook("approve", "confirm-rollout")]))
    h.hooks.script("approve", False)
    await h.initialized()
    h.release("rev-2")
    rows = await h.ticks(3)
    assert [r.phase for r in rows] == ["Waiting"] * 3
    assert rows[0].events == ("Halt podinfo.test advancement waiting for approval approve",)
    assert rows[1].events == rows[2].events == ()
    assert h.alerts.sent.count(("warn", "Canary is waiting for approval.")) == 1
    assert h.target.replicas == 0  # the canary is not scaled up before approval
    h.hooks.passing("approve")
    row = await h.tick()
    assert row.brief == ("Progressing", 100, 0, 0, 0)
    assert row.events == ("New revision detected! Scaling up podinfo.test",)


async def test_muted_gate_sends_no_alert() -> None:
    h = Harness(canary(webhooks=[hook("approve", "confirm-rollout", muteAlert=True)]))
    h.hooks.script("approve", False)
    await h.initialized()
    h.release("rev-2")
    await h.tick()
    assert ("warn", "Canary is waiting for approval.") not in h.alerts.sent


async def test_confirm_promotion_gate_holds_at_max_weight_while_analysis_continues() -> None:
    h = Harness(canary(webhooks=[hook("promote-gate", "confirm-promotion")]))
    h.hooks.script("promote-gate", False, False, True)
    await h.initialized()
    h.release("rev-2")
    rows = await h.until(Phase.SUCCEEDED)
    assert [r.brief for r in rows][3:7] == [
        ("Progressing", 70, 30, 0, 0),
        ("WaitingPromotion", 70, 30, 0, 0),
        ("WaitingPromotion", 70, 30, 0, 0),
        ("Promoting", 70, 30, 0, 0),
    ]
    assert rows[4].events == ("Halt podinfo.test advancement waiting for promotion approval promote-gate",)
    assert h.alerts.sent.count(("warn", "Canary is waiting for promotion approval.")) == 1
    assert len(h.metrics.calls) == 5  # checks went on while waiting


async def test_failing_metric_while_waiting_for_promotion_still_rolls_back() -> None:
    h = Harness(canary(webhooks=[hook("promote-gate", "confirm-promotion")]))
    h.hooks.script("promote-gate", False)
    await h.initialized()
    h.release("rev-2")
    await h.until(Phase.WAITING_PROMOTION)
    h.metrics.values["request-success-rate"] = 10.0
    rows = await h.until(Phase.FAILED)
    assert rows[-1].events[0] == "Rolling back podinfo.test failed checks threshold reached 2"


async def test_confirm_traffic_increase_halts_without_failing() -> None:
    h = Harness(canary(webhooks=[hook("more", "confirm-traffic-increase")]))
    h.hooks.script("more", True, False, False, True)
    await h.initialized()
    h.release("rev-2")
    rows = await h.ticks(6)
    assert [(r.canary, r.failed) for r in rows] == [(0, 0), (10, 0), (10, 0), (10, 0), (20, 0), (30, 0)]
    assert rows[2].events == ("Halt podinfo.test advancement waiting for traffic increase approval more",)


async def test_pre_rollout_failure_counts_and_alerts() -> None:
    h = Harness(canary(webhooks=[hook("conformance", "pre-rollout")]))
    h.hooks.script("conformance", HookResult(False, "500 Internal Server Error: grep: no token"))
    await h.initialized()
    h.release("rev-2")
    rows = await h.until(Phase.FAILED)
    assert [r.brief for r in rows] == [
        ("Progressing", 100, 0, 0, 0),
        ("Progressing", 100, 0, 0, 1),
        ("Progressing", 100, 0, 0, 2),
        ("Failed", 100, 0, 0, 2),
    ]
    assert rows[1].events == (
        "Starting canary analysis for podinfo.test",
        "Halt podinfo.test advancement pre-rollout check conformance failed 500 Internal Server Error: grep: no token",
    )
    assert ("warn", "Pre-rollout check conformance failed") in h.alerts.sent


async def test_pre_rollout_runs_once_then_rollout_hooks_every_tick() -> None:
    h = Harness(canary(webhooks=[hook("conformance", "pre-rollout"), hook("load", "rollout")]))
    await h.initialized()
    h.release("rev-2")
    await h.until(Phase.SUCCEEDED)
    assert len(h.hooks.calls_to("conformance")) == 1
    assert len(h.hooks.calls_to("load")) == 3
    call = h.hooks.calls_to("load")[0]
    assert (call.name, call.namespace, call.phase) == ("podinfo", "test", "Progressing")
    assert len(call.checksum) == 16


async def test_rollout_hook_failure_is_a_failed_check() -> None:
    h = Harness(canary(webhooks=[hook("load", "")]))
    h.hooks.script("load", HookResult(False, "connection refused"))
    await h.initialized()
    h.release("rev-2")
    rows = await h.ticks(3)
    assert rows[-1].failed == 1
    assert rows[-1].events == ("Halt podinfo.test advancement external check load failed connection refused",)
    assert h.metrics.calls == []


async def test_rollback_hook_that_passes_rolls_back_at_once() -> None:
    h = Harness(canary(webhooks=[hook("rollback-gate", "rollback")]))
    h.hooks.script("rollback-gate", False, False, False, True)
    await h.initialized()
    h.release("rev-2")
    rows = await h.until(Phase.FAILED)
    assert rows[-1].events == ("Rolling back podinfo.test manual webhook invoked",)
    assert ("warn", "Rolling back manual webhook invoked") in h.alerts.sent
    assert h.router.routes[h.canary.key].canary == 0


async def test_post_rollout_hooks_run_after_success_and_failure() -> None:
    h = Harness(canary(webhooks=[hook("notify", "post-rollout")]))
    h.hooks.script("notify", HookResult(False, "503"))
    await h.initialized()
    h.release("rev-2")
    rows = await h.until(Phase.SUCCEEDED)
    assert "Post-rollout hook notify failed 503" in rows[-1].events
    h.metrics.values["request-success-rate"] = 1.0
    h.release("rev-3")
    await h.until(Phase.FAILED)
    assert [c.phase for c in h.hooks.calls_to("notify")] == ["Succeeded", "Failed"]


async def test_event_hooks_receive_every_event() -> None:
    h = Harness(canary(webhooks=[hook("events", "event")]))
    await h.initialized()
    calls = h.hooks.calls_to("events")
    assert len(calls) == 1
    metadata = dict(calls[0].extra_metadata)
    assert metadata["eventMessage"] == "Initialization done! podinfo.test"
    assert metadata["eventType"] == "Normal"
    assert metadata["timestamp"].isdigit()
