"""What the CLI's tests run against, without Envoy or Prometheus: a state directory holding the seed's backend
canary mid-run (as a stopped runtime leaves it), and the runtime's real HTTP API over that state, served in this
process on 127.0.0.1 (the runtime record names this process, so the CLI finds it as it finds ``up``'s)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from typer.testing import CliRunner

from canaryflow.api import loader
from canaryflow.api.status import CanaryStatus, Phase
from canaryflow.cli.main import app
from canaryflow.control.ownmetrics import Recorder
from canaryflow.engine.effects import EventType
from canaryflow.local import api, snapshot, state
from canaryflow.local.objects import Change, ObjectStore
from canaryflow.local.procs import free_port
from canaryflow.store import sqlite
from canaryflow.store.base import Event

SEED = Path(__file__).resolve().parents[2] / "examples" / "gitops-istio" / "apps" / "backend"
STARTED = 1_780_000_000.0  # when the saved run started
LONG = "Halt advancement: the canary's error rate is above the threshold " + "x" * 300 + " END-OF-MESSAGE"


@dataclasses.dataclass
class Saved:
    """A state directory and writers into its SQLite state."""

    dirs: state.StateDir
    objects: ObjectStore
    status: sqlite.SqliteStatusStore
    events: sqlite.SqliteEventSink

    @property
    def root(self) -> str:
        return str(self.dirs.root)

    def set_status(self, key: str, **fields: Any) -> None:
        async def update() -> None:
            stored = await self.status.load(key)
            current = stored.status if stored else CanaryStatus()
            for name, value in fields.items():
                setattr(current, name, value)
            await self.status.save(key, current, stored.version if stored else None)

        asyncio.run(update())

    def event(self, key: str, message: str, at: float, warning: bool = False) -> None:
        kind = EventType.WARNING if warning else EventType.NORMAL
        asyncio.run(self.events.record(Event(at, key, kind, message)))

    def cli(self, *args: str) -> tuple[int, str, str]:
        result = CliRunner().invoke(app, [*args, "--state-dir", self.root])
        return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def saved(tmp_path: Path) -> Saved:
    dirs = state.StateDir(tmp_path / "state")
    dirs.create()
    db = sqlite.connect(dirs.db)
    objects = ObjectStore(db)
    loaded = loader.Loaded()
    for name in ("deployment.yaml", "canary.yaml"):
        loaded.extend(loader.load_text((SEED / name).read_text(), str(SEED / name)))
    objects.apply(loaded.documents)
    other = (SEED / "canary.yaml").read_text().replace("namespace: prod", "namespace: staging")
    objects.apply(loader.load_text(other, "staging.yaml").documents)
    saved = Saved(dirs, objects, sqlite.SqliteStatusStore(db), sqlite.SqliteEventSink(db))
    saved.set_status("prod/backend", phase=Phase.PROGRESSING, canary_weight=10, failed_checks=1,
                     run_started_at=STARTED, last_transition_time=STARTED, last_applied_spec="abc")  # fmt: skip
    saved.set_status("staging/backend", phase=Phase.SUCCEEDED, message="Canary analysis completed successfully")
    saved.event("prod/backend", "Initialization done! backend.prod", STARTED - 600)
    saved.event("prod/backend", "New revision detected! Scaling up backend.prod", STARTED + 1)
    saved.event("prod/backend", "Advance backend.prod canary weight 5", STARTED + 16)
    saved.event("prod/backend", "Advance backend.prod canary weight 10", STARTED + 31)
    saved.event("staging/backend", "Promotion completed! backend.staging", STARTED + 40)
    return saved


class Scheduler:
    def __init__(self, objects: ObjectStore) -> None:
        self.objects = objects
        self.woken: list[str] = []

    @property
    def keys(self) -> list[str]:
        return [f"{c.metadata.namespace}/{c.metadata.name}" for c in snapshot.canaries(self.objects)]

    def wake(self, key: str) -> None:
        self.woken.append(key)


class Replicas:
    def processes(self) -> list[dict[str, Any]]:
        return []

    def logs(self, namespace: str, workload: str, lines: int = 50) -> str:
        return ""


class Runtime:
    """canaryflow.local.base.Runtime over the saved state: the control loop and the processes are absent (nothing
    ticks, no replica runs, no GitOps controller), the stores are the real SQLite ones."""

    def __init__(self, saved: Saved, port: int) -> None:
        self.objects, self.status_store, self.events = saved.objects, saved.status, saved.events
        self.canaries = Scheduler(saved.objects)
        self.replicas = Replicas()
        self.gitops: Any = None  # tests that reconcile set theirs
        self.recorder = Recorder()
        self.port = port
        self.global_notifier = ""  # no flagger HelmRelease applied

    async def changed(self, changes: list[Change]) -> None:
        pass

    def endpoints(self) -> dict[str, Any]:
        url = f"http://127.0.0.1:{self.port}"
        return {"api": url, "prometheus": "http://127.0.0.1:1", "dashboard": "http://127.0.0.1:3/",
                "gateways": {"istio-system/public-gateway": "http://127.0.0.1:2"}}  # fmt: skip

    def process_health(self) -> list[dict[str, Any]]:
        return [{"name": "envoy", "pid": 11, "health": "running", "restarts": 0}]

    def deployments(self, namespace: str | None) -> list[dict[str, Any]]:
        return snapshot.deployments(self.objects, namespace, lambda ns, name: {"replicas": 1, "readyReplicas": 1})

    def services(self, namespace: str | None) -> list[dict[str, Any]]:
        return snapshot.services(self.objects, namespace, lambda ns, name: [])


@pytest.fixture
def served(saved: Saved) -> Iterator[Runtime]:
    """The API over ``saved``, found by the CLI as a running runtime's."""
    port = free_port()
    runtime = Runtime(saved, port)
    config = uvicorn.Config(api.build(runtime), host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the API did not start"
        time.sleep(0.01)
    saved.dirs.write_record({"pid": os.getpid(), "cmdline": state.cmdline(os.getpid()),
                             "endpoints": runtime.endpoints()})  # fmt: skip
    yield runtime
    server.should_exit = True
    thread.join(timeout=10)
    saved.dirs.record_path.unlink()
