"""Progressive canary: the sequence a user sees with `kubectl get canary -w`, tick by tick."""

from __future__ import annotations

from canaryflow.api.status import Phase
from canaryflow.engine.checks import NoValuesPolicy, Settings
from canaryflow.metrics.base import MetricError

from .harness import Harness, canary, no_values


async def test_first_deploy_initializes_without_analysis() -> None:
    h = Harness()
    row = await h.tick()
    assert row.brief == ("Initialized", 100, 0, 0, 0)
    assert row.events == ("Initialization done! podinfo.test",)
    assert h.alerts.sent == [("info", "New Deployment detected, initialization completed.")]
    assert h.target.replicas == 0 and h.target.primary_hash == "rev-1"
    # nothing changes while the target does not
    assert (await h.tick()).events == ()
    assert h.store.saves == 1


async def test_healthy_release_is_promoted_step_by_step() -> None:
    h = Harness()
    await h.initialized()
    h.release("rev-2")
    rows = await h.until(Phase.SUCCEEDED)
    assert [r.brief for r in rows] == [
        ("Progressing", 100, 0, 0, 0),
        ("Progressing", 90, 10, 0, 0),
        ("Progressing", 80, 20, 0, 0),
        ("Progressing", 70, 30, 0, 0),
        ("Promoting", 70, 30, 0, 0),
        ("Finalising", 100, 0, 0, 0),
        ("Succeeded", 100, 0, 0, 0),
    ]
    assert rows[0].events == ("New revision detected! Scaling up podinfo.test",)
    assert rows[1].events == (
        "Starting canary analysis for podinfo.test",
        "Advance podinfo.test canary weight 10",
    )
    assert rows[4].events == ("Copying podinfo.test template spec to podinfo-primary.test",)
    assert rows[5].events == ("Routing all traffic to primary",)
    assert rows[6].events == ("Promotion completed! Scaling down podinfo.test",)
    assert h.target.primary_hash == "rev-2" and h.target.replicas == 0
    assert h.alerts.sent[-1] == ("info", "Canary analysis completed successfully, promotion finished.")
    # metrics are not queried on the first analysis tick, then once per tick until maxWeight is reached
    assert h.metrics.calls == ["request-success-rate"] * 3
    status = await h.status()
    assert status.last_promoted_spec == "rev-2" and status.last_applied_spec == "rev-2"
    # the successful run is counted under Flagger's metric name
    assert (
        h.recorder.registry.get_sample_value("flagger_canary_successes_total", {"name": "podinfo", "namespace": "test"})
        == 1.0
    )


async def test_step_weights_and_promotion_steps() -> None:
    h = Harness(canary(stepWeight=None, maxWeight=None, stepWeights=[5, 25, 60], stepWeightPromotion=40))
    await h.initialized()
    h.release("rev-2")
    rows = await h.until(Phase.SUCCEEDED)
    assert [(r.phase, r.primary, r.canary) for r in rows] == [
        ("Progressing", 100, 0),
        ("Progressing", 95, 5),
        ("Progressing", 75, 25),
        ("Progressing", 40, 60),
        ("Promoting", 40, 60),
        ("Promoting", 80, 20),
        ("Finalising", 100, 0),
        ("Succeeded", 100, 0),
    ]
    assert rows[5].events == ("Advance podinfo.test primary weight 80",)


async def test_weight_stops_at_max_weight_when_step_does_not_divide_it() -> None:
    h = Harness(canary(stepWeight=20, maxWeight=50))
    await h.initialized()
    h.release("rev-2")
    rows = await h.until(Phase.PROMOTING)
    assert [r.canary for r in rows] == [0, 20, 40, 50, 50]


async def test_failing_metric_rolls_back_at_threshold() -> None:
    h = Harness()
    await h.initialized()
    h.metrics.values["request-success-rate"] = 90.0
    h.release("rev-2")
    rows = await h.until(Phase.FAILED)
    assert [r.brief for r in rows] == [
        ("Progressing", 100, 0, 0, 0),
        ("Progressing", 90, 10, 0, 0),
        ("Progressing", 90, 10, 0, 1),
        ("Progressing", 90, 10, 0, 2),
        ("Failed", 100, 0, 0, 2),
    ]
    assert rows[2].events == ("Halt podinfo.test advancement success rate 90.00% < 99%",)
    assert (await h.status()).message == "Rolling back podinfo.test failed checks threshold reached 2"
    assert rows[4].events == (
        "Rolling back podinfo.test failed checks threshold reached 2",
        "Canary failed! Scaling down podinfo.test",
    )
    assert ("error", "Failed checks threshold reached 2") in h.alerts.sent
    assert h.target.replicas == 0 and h.target.primary_hash == "rev-1"
    # a failed revision stays failed until something changes
    assert (await h.ticks(3))[-1].brief == ("Failed", 100, 0, 0, 2)
    assert (
        h.recorder.registry.get_sample_value("flagger_canary_failures_total", {"name": "podinfo", "namespace": "test"})
        == 1.0
    )


async def test_failed_checks_accumulate_within_a_run() -> None:
    h = Harness(canary(threshold=2, maxWeight=50))
    await h.initialized()
    h.metrics.values["request-success-rate"] = [100.0, 50.0, 100.0, 50.0, 100.0]
    h.release("rev-2")
    rows = await h.until(Phase.FAILED)
    assert [r.failed for r in rows] == [0, 0, 0, 1, 1, 2, 2]


async def test_latency_check_uses_max() -> None:
    h = Harness(canary(metrics=[{"name": "request-duration", "thresholdRange": {"max": 500}, "interval": "30s"}]))
    await h.initialized()
    h.metrics.values["request-duration"] = 750.0
    h.release("rev-2")
    rows = await h.ticks(3)
    assert rows[-1].events == ("Halt podinfo.test advancement request duration 750ms > 500ms",)
    assert rows[-1].failed == 1


async def test_no_values_counts_as_failure_by_default() -> None:
    h = Harness()
    await h.initialized()
    h.metrics.values["request-success-rate"] = no_values()
    h.release("rev-2")
    rows = await h.ticks(3)
    assert rows[-1].failed == 1 and rows[-1].canary == 10
    assert rows[-1].events == (
        "Halt advancement no values found for built-in metric: request-success-rate "
        "probably podinfo.test is not receiving traffic",
    )


async def test_no_values_can_hold_without_failing() -> None:
    h = Harness(settings=Settings(no_values=NoValuesPolicy.HOLD))
    await h.initialized()
    h.metrics.values["request-success-rate"] = [no_values(), no_values(), no_values(), 100.0]
    h.release("rev-2")
    rows = await h.ticks(6)
    assert [(r.canary, r.failed) for r in rows] == [(0, 0), (10, 0), (10, 0), (10, 0), (10, 0), (20, 0)]


async def test_metric_query_error_is_a_failed_check_with_the_reason() -> None:
    h = Harness()
    await h.initialized()
    h.metrics.values["request-success-rate"] = MetricError("prometheus at http://prom:9090 unreachable")
    h.release("rev-2")
    rows = await h.ticks(3)
    assert rows[-1].failed == 1
    assert rows[-1].events == (
        "Metric query failed for request-success-rate: prometheus at http://prom:9090 unreachable",
    )
    # `kubectl describe` shows why the canary halts
    assert (await h.status()).message == rows[-1].events[0]
    h.metrics.values["request-success-rate"] = 100.0
    await h.tick()
    assert (await h.status()).message == ""


async def test_unreachable_provider_is_reported_on_first_run() -> None:
    h = Harness()
    h.metrics.offline = ["prometheus http://prom:9090: connection refused"]
    row = await h.tick()
    assert row.events[0] == "Error checking metric providers: prometheus http://prom:9090: connection refused"
    assert row.phase == "Initialized"


async def test_new_revision_mid_run_restarts_analysis() -> None:
    h = Harness()
    await h.initialized()
    h.metrics.values["request-success-rate"] = [100.0, 50.0, 100.0]
    h.release("rev-2")
    rows = await h.ticks(4)
    assert rows[-1].brief == ("Progressing", 80, 20, 0, 1)
    h.release("rev-3")
    row = await h.tick()
    assert row.brief == ("Progressing", 100, 0, 0, 0)
    assert row.events == ("New revision detected! Restarting analysis for podinfo.test",)
    rows = await h.until(Phase.SUCCEEDED)
    assert h.target.primary_hash == "rev-3"


async def test_tracked_config_change_starts_a_run() -> None:
    h = Harness()
    h.release("rev-1", **{"configmap/podinfo-config": "aaaa"})
    await h.initialized()
    assert (await h.status()).tracked_configs == {"configmap/podinfo-config": "aaaa"}
    h.release("rev-1", **{"configmap/podinfo-config": "bbbb"})
    row = await h.tick()
    assert row.phase == "Progressing"
    await h.until(Phase.SUCCEEDED)


async def test_suspended_canary_does_nothing() -> None:
    h = Harness(canary(spec_suspend=True))
    row = await h.tick()
    assert row.events == ("skipping canary run as object is suspended",)
    assert (await h.status()).phase is Phase.INITIALIZING
    assert h.target.calls == []


async def test_skip_analysis_promotes_at_once() -> None:
    h = Harness(canary(spec_skipAnalysis=True))
    await h.initialized()
    h.release("rev-2")
    rows = await h.until(Phase.SUCCEEDED)
    assert [r.brief for r in rows] == [("Progressing", 100, 0, 0, 0), ("Succeeded", 100, 0, 0, 0)]
    assert rows[1].events == (
        "Copying podinfo.test template spec to podinfo-primary.test",
        "Promotion completed! Canary analysis was skipped for podinfo.test",
    )
    assert h.metrics.calls == []
    assert h.target.primary_hash == "rev-2"
