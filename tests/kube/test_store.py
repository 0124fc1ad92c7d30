"""KubeStatusStore and KubeEventSink against the emulated API server, over HTTP, with the operator's client."""

from __future__ import annotations

from typing import Any

import pytest

from canaryflow.api.status import CanaryStatus, Phase
from canaryflow.engine.effects import EventType
from canaryflow.engine.machine import Operation
from canaryflow.kube.client import CANARY, EVENT
from canaryflow.kube.store import OPERATION_ANNOTATION, KubeEventSink, KubeStatusStore
from canaryflow.store.base import Conflict, Event
from tests.kube import lifecycle_support as support

KEY = "test/podinfo"


@pytest.fixture
async def canary(kube_api: Any) -> dict[str, Any]:
    await support.ensure_namespace(kube_api, "test")
    created: dict[str, Any] = await kube_api.create(CANARY, support.canary_doc())
    return created


async def test_a_new_canary_loads_as_initializing_with_its_resource_version(kube_api: Any, canary: Any) -> None:
    stored = await KubeStatusStore(kube_api).load(KEY)
    assert stored is not None
    assert stored.status.phase is Phase.INITIALIZING
    assert stored.version == canary["metadata"]["resourceVersion"]
    assert await KubeStatusStore(kube_api).load("test/nothing") is None


async def test_saved_status_is_flaggers_shape_in_the_status_subresource(kube_api: Any, canary: Any) -> None:
    store = KubeStatusStore(kube_api)
    stored = await store.load(KEY)
    assert stored is not None
    status = CanaryStatus(phase=Phase.PROGRESSING, canary_weight=20, iterations=0, failed_checks=1,
                          last_applied_spec="abc", last_transition_time=1_700_000_000.0,
                          tracked_configs={"configmap/podinfo-config": "123"})  # fmt: skip
    version = await store.save(KEY, status, stored.version)
    live = await kube_api.get(CANARY, "test", "podinfo")
    assert live["metadata"]["resourceVersion"] == version
    assert live["spec"] == canary["spec"], "a status write must not touch the spec"
    got = live["status"]
    assert (got["phase"], got["canaryWeight"], got["failedChecks"]) == ("Progressing", 20, 1)
    assert got["trackedConfigs"] == {"configmap/podinfo-config": "123"}
    assert got["lastTransitionTime"] == "2023-11-14T22:13:20Z"
    [promoted] = got["conditions"]
    assert (promoted["type"], promoted["status"], promoted["reason"]) == ("Promoted", "Unknown", "Progressing")
    assert "runStartedAt" not in got, "an unset timestamp is left out, never written as an empty string"
    support.validate_canary_status(got)
    again = await store.load(KEY)
    assert again is not None and again.status.canary_weight == 20 and again.version == version


async def test_a_status_changed_by_another_writer_is_a_conflict(kube_api: Any, canary: Any) -> None:
    mine, theirs = KubeStatusStore(kube_api), KubeStatusStore(kube_api)
    loaded = await mine.load(KEY)
    their_load = await theirs.load(KEY)
    assert loaded is not None and their_load is not None
    await theirs.save(KEY, CanaryStatus(phase=Phase.INITIALIZED, last_transition_time=1.0), their_load.version)
    with pytest.raises(Conflict):
        await mine.save(KEY, CanaryStatus(phase=Phase.FAILED, last_transition_time=2.0), loaded.version)
    live = await kube_api.get(CANARY, "test", "podinfo")
    assert live["status"]["phase"] == "Initialized"


async def test_a_metadata_change_during_the_tick_does_not_lose_the_status(kube_api: Any, canary: Any) -> None:
    store = KubeStatusStore(kube_api)
    loaded = await store.load(KEY)
    assert loaded is not None
    await kube_api.patch(CANARY, "test", "podinfo", {"metadata": {"labels": {"team": "blue"}}})
    await store.save(KEY, CanaryStatus(phase=Phase.INITIALIZED, last_transition_time=1.0), loaded.version)
    live = await kube_api.get(CANARY, "test", "podinfo")
    assert live["status"]["phase"] == "Initialized"
    assert live["metadata"]["labels"] == {"team": "blue"}


async def test_operations_are_an_annotation_cleared_only_while_unchanged(kube_api: Any, canary: Any) -> None:
    store = KubeStatusStore(kube_api)
    await store.request(KEY, Operation.PROMOTE)
    live = await kube_api.get(CANARY, "test", "podinfo")
    assert live["metadata"]["annotations"][OPERATION_ANNOTATION] == "promote"
    await store.load(KEY)
    assert await store.pending(KEY) is Operation.PROMOTE
    # The user changes their mind while the tick runs: clearing "promote" must keep "abort".
    await kube_api.patch(CANARY, "test", "podinfo", {"metadata": {"annotations": {OPERATION_ANNOTATION: "abort"}}})
    await store.clear(KEY, Operation.PROMOTE)
    await store.load(KEY)
    assert await store.pending(KEY) is Operation.ABORT
    await store.clear(KEY, Operation.ABORT)
    live = await kube_api.get(CANARY, "test", "podinfo")
    assert OPERATION_ANNOTATION not in (live["metadata"].get("annotations") or {})
    await store.load(KEY)
    assert await store.pending(KEY) is None


async def test_events_name_the_canary_and_repeats_are_counted(kube_api: Any, canary: Any) -> None:
    sink = KubeEventSink(kube_api)
    await sink.record(Event(1_700_000_000.0, KEY, EventType.NORMAL, "Initialization done! podinfo.test"))
    await sink.record(Event(1_700_000_060.0, KEY, EventType.WARNING, "Halt advancement podinfo-primary.test"))
    await sink.record(Event(1_700_000_120.0, KEY, EventType.WARNING, "Halt advancement podinfo-primary.test"))
    items = await kube_api.list(EVENT, "test")
    assert len(items) == 2
    halt = next(e for e in items if e["message"].startswith("Halt"))
    assert halt["count"] == 2 and halt["type"] == "Warning" and halt["reason"] == "Synced"
    assert halt["lastTimestamp"] == "2023-11-14T22:15:20Z" and halt["firstTimestamp"] == "2023-11-14T22:14:20Z"
    involved = halt["involvedObject"]
    assert (involved["kind"], involved["name"], involved["uid"]) == ("Canary", "podinfo", canary["metadata"]["uid"])
    for item in items:
        support.validate(item)
    recent = await sink.recent(KEY)
    assert [e.message for e in recent] == ["Initialization done! podinfo.test", "Halt advancement podinfo-primary.test"]
