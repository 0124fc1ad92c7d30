"""Parts of bench/gitops.py: a runtime-sized harness around the local runtime's GitOps pieces, manifests, a git
remote to push to, and the Receiver's HTTP endpoint served by uvicorn as the local runtime serves it.

The harness is the local runtime minus Envoy, Prometheus and the canary scheduler: the same ObjectStore on a
SQLite file opened as the runtime opens it, the same LocalGitOps (GitSource, LocalTarget, the controller), the
same ``/hook/<digest>`` route from canaryflow.local.gitops_api. What it adds is bookkeeping: when each object
change reached the store, and how many status writes were made.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette

from canaryflow.api.loader import Document
from canaryflow.gitops.controller.loop import GitOpsController, Timing
from canaryflow.gitops.controller.objects import Key
from canaryflow.local import gitops_api
from canaryflow.local.gitops import LocalGitOps
from canaryflow.local.objects import Change, ObjectStore
from canaryflow.store import sqlite
from canaryflow.store.base import Event

# The git servers the GitOps tests use (real `git daemon`, isolated git environment) live with the tests.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.gitops.gitserver import GitDaemon, RepoDir, free_port, git

__all__ = ["FLUX_NS", "GitDaemon", "Harness", "HookServer", "Pusher", "RepoDir", "Writes", "percentile", "rss_kib"]

FLUX_NS = "flux-system"


class CountingStore(ObjectStore):
    """The runtime's ObjectStore, counting status writes (the controllers' only writes besides objects)."""

    status_writes = 0

    def set_status(self, kind: str, namespace: str, name: str, status: dict[str, Any]) -> None:
        self.status_writes += 1
        super().set_status(kind, namespace, name, status)


class CountingEvents:
    """The runtime's event sink (events are rows in the same SQLite file), counting what is recorded."""

    def __init__(self, sink: sqlite.SqliteEventSink) -> None:
        self.sink = sink
        self.recorded = 0

    async def record(self, event: Event) -> None:
        self.recorded += 1
        await self.sink.record(event)

    async def recent(self, canary: str | None = None, limit: int = 50) -> list[Event]:
        return await self.sink.recent(canary, limit)


class Harness:
    """The runtime's object store and GitOps parts, what the runtime's ``changed`` does for GitOps, plus arrival
    times of ConfigMap contents."""

    def __init__(self, root: Path, timing: Timing | None = None) -> None:
        self.db: sqlite3.Connection = sqlite.connect(root / "state.db")
        self.objects = CountingStore(self.db)
        self.events = CountingEvents(sqlite.SqliteEventSink(self.db))
        self.parts = LocalGitOps(self.objects, root / "gitops", self.events, self.changed, timing)
        self.gitops: GitOpsController = self.parts.controller
        self.written = 0  # objects created, configured or deleted (what the runtime is told about)
        self._waiting: dict[tuple[str, str, str], asyncio.Future[float]] = {}

    async def start(self) -> None:
        await self.parts.start()

    async def close(self) -> None:
        await self.parts.close()
        self.db.close()

    async def changed(self, changes: list[Change]) -> None:
        """The runtime's reaction to objects a Kustomization wrote (LocalTarget reports only real writes)."""
        self.written += len(changes)
        now = time.perf_counter()
        await self.parts.changed(changes)
        for change in changes:
            if change.kind == "ConfigMap" and change.action in ("created", "configured"):
                value = str((change.body.get("data") or {}).get("value"))
                waiter = self._waiting.pop((change.namespace, change.name, value), None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(now)

    def expect(self, namespace: str, name: str, value: str) -> asyncio.Future[float]:
        """Resolves with the perf_counter time at which ConfigMap namespace/name with data.value reached the
        store (LocalTarget reports a change right after the store's transaction commits)."""
        waiter: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._waiting[(namespace, name, value)] = waiter
        return waiter

    async def apply(self, *bodies: dict[str, Any]) -> list[Key]:
        """``canaryflow apply`` of Flux objects: store them, let the controller track them."""
        changes = self.objects.apply([Document("bench", i, body) for i, body in enumerate(bodies)], FLUX_NS)
        await self.parts.changed(changes)
        return [Key.of(body) for body in bodies]

    def stored_value(self, namespace: str, name: str) -> str | None:
        body = self.objects.get("ConfigMap", namespace, name)
        return None if body is None else str((body.get("data") or {}).get("value"))


class Pusher:
    """Commits to a repository's work clone and pushes them to ``git daemon`` (git://), as a developer would."""

    def __init__(self, repos: RepoDir, name: str, files: Mapping[str, str], url: str) -> None:
        self.repo = repos.create(name, files)
        self.url = url

    def push(self, files: Mapping[str, str]) -> tuple[float, str]:
        """Commit ``files`` and push; returns the perf_counter time at which ``git push`` returned, and the sha."""
        for name, content in files.items():
            path = self.repo.work / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
        git("add", "--all", cwd=self.repo.work)
        git("commit", "--quiet", "-m", f"change {', '.join(files)}", cwd=self.repo.work)
        sha = git("rev-parse", "HEAD", cwd=self.repo.work).strip()
        git("push", "--quiet", self.url, "HEAD:refs/heads/master", cwd=self.repo.work)
        return time.perf_counter(), sha


@dataclasses.dataclass(frozen=True, slots=True)
class Served:
    """What gitops_api.routes serves (canaryflow.local.base.GitOpsRuntime): the harness' store and GitOps parts."""

    objects: ObjectStore
    gitops: LocalGitOps


class HookServer:
    """The local runtime's ``/hook/{digest}`` route (gitops_api.routes) on uvicorn, on 127.0.0.1."""

    def __init__(self, harness: Harness) -> None:
        app = Starlette(routes=gitops_api.routes(Served(harness.objects, harness.parts)))
        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[HookServer]:
        task = asyncio.create_task(self.server.serve(), name="hook server")
        try:
            while not self.server.started:
                if task.done():
                    task.result()  # raises what stopped it
                    raise RuntimeError("the hook server exited before it started")
                await asyncio.sleep(0.01)
            yield self
        finally:
            self.server.should_exit = True
            await task


# -- manifests ---------------------------------------------------------------------------------------------------


def configmap(name: str, namespace: str, value: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": {"value": value},
    }


def deployment(name: str, namespace: str) -> dict[str, Any]:
    labels = {"app": name}
    container = {
        "name": "app",
        "image": "ghcr.io/stefanprodan/podinfo:6.0.0",
        "ports": [{"name": "http", "containerPort": 9898}],
        "env": [{"name": "INSTANCE", "value": name}],
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
        },
    }


def service(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 9898, "targetPort": "http"}]},
    }


def fleet(count: int, namespace: str) -> dict[str, str]:
    """``count`` objects, one file each under ``apps/``: ConfigMaps, Deployments and Services in turn."""
    files = {}
    for i in range(count):
        name = f"app-{i // 3:04d}"
        if i % 3 == 0:
            body = configmap(name, namespace, f"v{i}")
        else:
            body = deployment(name, namespace) if i % 3 == 1 else service(name, namespace)
        files[f"apps/{name}-{body['kind'].lower()}.yaml"] = yaml_of(body)
    return files


def yaml_of(body: dict[str, Any]) -> str:
    return json.dumps(body, indent=2) + "\n"  # JSON is YAML; the build parses both alike


def git_repository(name: str, url: str, interval: str) -> dict[str, Any]:
    return {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": name, "namespace": FLUX_NS},
        "spec": {"interval": interval, "url": url, "ref": {"branch": "master"}},
    }


def kustomization(name: str, source: str, path: str, interval: str = "1h") -> dict[str, Any]:
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": name, "namespace": FLUX_NS},
        "spec": {
            "interval": interval,
            "path": path,
            "prune": True,
            "sourceRef": {"kind": "GitRepository", "name": source},
        },
    }


def receiver(name: str, secret: str, repository: str) -> dict[str, Any]:
    return {
        "apiVersion": "notification.toolkit.fluxcd.io/v1",
        "kind": "Receiver",
        "metadata": {"name": name, "namespace": FLUX_NS},
        "spec": {
            "type": "github",
            "events": ["push"],
            "secretRef": {"name": secret},
            "resources": [{"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository", "name": repository}],
        },
    }


def secret(name: str, token: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": FLUX_NS},
        "stringData": {"token": token},
    }


# -- figures -----------------------------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def reset_peak_rss() -> None:
    """Make VmHWM (peak RSS) start again from the current RSS (Linux: ``5`` to /proc/self/clear_refs)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def rss_kib() -> tuple[int, int]:
    """(VmRSS, VmHWM) of this process in KiB, from /proc."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields["VmRSS"], fields["VmHWM"]


@dataclasses.dataclass
class Writes:
    """Counters read before and after a reconcile."""

    total_changes: int
    status_writes: int
    objects_written: int
    events: int

    @classmethod
    def of(cls, harness: Harness) -> Writes:
        return cls(harness.db.total_changes, harness.objects.status_writes, harness.written, harness.events.recorded)

    def __sub__(self, other: Writes) -> Writes:
        return Writes(*(a - b for a, b in zip(dataclasses.astuple(self), dataclasses.astuple(other), strict=True)))
