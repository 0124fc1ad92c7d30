"""The local store keeps status, operations and events across a crash (a new connection to the same file)."""

from __future__ import annotations

from pathlib import Path

import pytest

from canaryflow.api.status import CanaryStatus, Phase
from canaryflow.engine.effects import EventType
from canaryflow.engine.machine import Operation
from canaryflow.store import sqlite
from canaryflow.store.base import Conflict, Event


async def test_status_survives_a_restart_with_every_field(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = sqlite.SqliteStatusStore(sqlite.connect(path))
    status = CanaryStatus(
        phase=Phase.PROGRESSING,
        canary_weight=20,
        failed_checks=1,
        last_applied_spec="abc",
        tracked_configs={"configmap/cfg": "1234"},
        run_started_at=1700000000.5,
        last_metrics={"error-rate": 0.25},
    )
    version = await store.save("prod/backend", status, None)
    await store.request("prod/backend", Operation.ABORT)
    reopened = sqlite.SqliteStatusStore(sqlite.connect(path))
    stored = await reopened.load("prod/backend")
    assert stored is not None and stored.status == status and stored.version == version
    assert await reopened.pending("prod/backend") is Operation.ABORT
    await reopened.clear("prod/backend", Operation.ABORT)
    assert await store.pending("prod/backend") is None


async def test_stale_writes_are_refused(tmp_path: Path) -> None:
    db = sqlite.connect(tmp_path / "state.db")
    store = sqlite.SqliteStatusStore(db)
    v1 = await store.save("prod/backend", CanaryStatus(), None)
    await store.save("prod/backend", CanaryStatus(phase=Phase.INITIALIZED), v1)
    with pytest.raises(Conflict):
        await store.save("prod/backend", CanaryStatus(phase=Phase.FAILED), v1)
    with pytest.raises(Conflict):
        await store.save("prod/backend", CanaryStatus(), None)
    stored = await store.load("prod/backend")
    assert stored is not None and stored.status.phase is Phase.INITIALIZED


async def test_events_are_kept_in_order_per_canary(tmp_path: Path) -> None:
    sink = sqlite.SqliteEventSink(sqlite.connect(tmp_path / "state.db"))
    for i in range(5):
        await sink.record(Event(float(i), "prod/backend" if i % 2 else "prod/frontend", EventType.NORMAL, f"m{i}"))
    assert [e.message for e in await sink.recent("prod/backend")] == ["m1", "m3"]
    assert [e.message for e in await sink.recent(limit=2)] == ["m3", "m4"]
