"""canaryflow's own metrics keep Flagger's names, so dashboards and alert rules written for Flagger work."""

from __future__ import annotations

import httpx
from prometheus_client import CollectorRegistry, Histogram

from canaryflow.api.status import CanaryStatus, Phase
from canaryflow.control.web import metrics_app

from ..engine.harness import Harness


async def scrape(h: Harness) -> str:
    transport = httpx.ASGITransport(app=metrics_app(h.recorder))
    async with httpx.AsyncClient(transport=transport, base_url="http://canaryflow") as client:
        assert (await client.get("/healthz")).text == "OK"
        response = await client.get("/metrics")
        assert response.headers["content-type"].startswith("text/plain")
        return response.text


async def test_metrics_endpoint_serves_flagger_names_during_and_after_a_run() -> None:
    h = Harness()
    h.recorder.track(h.canary)
    await h.initialized()
    h.release("rev-2")
    await h.ticks(3)
    text = await scrape(h)
    assert 'flagger_info{mesh_provider="istio",version="0.1.0"} 1.0' in text
    assert 'flagger_canary_total{namespace="test"} 1.0' in text
    assert 'flagger_canary_status{name="podinfo",namespace="test"} 0.0' in text
    assert 'flagger_canary_weight{namespace="test",workload="podinfo"} 20.0' in text
    assert 'flagger_canary_weight{namespace="test",workload="podinfo-primary"} 80.0' in text
    assert 'flagger_canary_metric_analysis{metric="request-success-rate",name="podinfo",namespace="test"} 100.0' in text
    assert 'flagger_canary_duration_seconds_count{name="podinfo",namespace="test"} 1.0' in text
    await h.until(Phase.SUCCEEDED)
    text = await scrape(h)
    assert 'flagger_canary_status{name="podinfo",namespace="test"} 1.0' in text
    assert 'flagger_canary_successes_total{name="podinfo",namespace="test"} 1.0' in text


def test_the_analysis_duration_reads_as_a_prometheus_client_histogram() -> None:
    """The recorder keeps the durations in plain lists (ticks are hot); the samples are a Histogram's."""
    h = Harness()
    recorder = h.recorder
    reference = Histogram("flagger_canary_duration_seconds", "Seconds spent performing canary analysis.",
                          ["name", "namespace"], registry=CollectorRegistry())  # fmt: skip
    status = CanaryStatus(phase=Phase.PROGRESSING)
    for seconds in (0.0, 0.004, 0.005, 0.0051, 0.3, 2.5, 9.0, 11.0, 1e9):
        recorder.observe(h.canary, Phase.PROGRESSING, status, seconds)
        reference.labels("podinfo", "test").observe(seconds)
    (ours,) = [m for m in recorder.registry.collect() if m.name == "flagger_canary_duration_seconds"]
    (theirs,) = reference.collect()
    assert ours.type == theirs.type == "histogram"
    assert [s for s in ours.samples if not s.name.endswith("_created")] == [
        s for s in theirs.samples if not s.name.endswith("_created")
    ]
    assert [s.name for s in ours.samples] == [s.name for s in theirs.samples]
