"""A running local runtime: what it reacts to and what it shows. ``LocalRuntime`` implements ``base.Runtime``, the
interface the API and the dashboard use.

It is built once, from parts already started, by ``wiring.running``, which also closes them: nothing here starts or
stops a part. What it does is react to applied and deleted objects (start, update or stop canaries, run plain
Deployments, track Flux objects) and compute the views the API serves (processes, Deployments, Services, the
record in ``runtime.json``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import os
from typing import Any

from canaryflow.api.canary import Canary
from canaryflow.control.ownmetrics import Recorder
from canaryflow.control.scheduler import Scheduler
from canaryflow.gitops.target.base import Health, ObjRef
from canaryflow.local import snapshot
from canaryflow.local import state as state_mod
from canaryflow.local.deployments import PlainDeployments
from canaryflow.local.envoy import EnvoyProcess
from canaryflow.local.gitops import LocalGitOps
from canaryflow.local.gitops_target import HealthOf
from canaryflow.local.objects import Change, ObjectStore
from canaryflow.local.procs import Supervised
from canaryflow.local.prometheus import PrometheusProcess
from canaryflow.local.workloads import ProcessWorkloads
from canaryflow.notify import chart
from canaryflow.notify.dispatch import AlertDispatcher
from canaryflow.notify.factory import AlertProviderError
from canaryflow.routing.envoy.model import Endpoint, Mesh, Service, Workload
from canaryflow.routing.envoy.router import EnvoyRouter
from canaryflow.store.base import EventSink, StatusStore

log = logging.getLogger(__name__)


class LiveMesh:
    """The mesh as last sent to the router. Each change is computed from it and stored before the router is
    awaited, so two changes in flight (a replica's endpoints, a Service) cannot undo each other."""

    def __init__(self, router: EnvoyRouter) -> None:
        self.router = router
        self.mesh: Mesh = router.mesh

    async def on_service(self, namespace: str, name: str, workload: str | None) -> None:
        mesh = self.mesh.without_service(namespace, name)
        self.mesh = mesh if workload is None else mesh.with_service(Service(namespace, name, workload))
        await self.router.update_mesh(self.mesh)

    async def on_endpoints(self, namespace: str, workload: str, ports: list[int]) -> None:
        self.mesh = self.mesh.with_workload(Workload(namespace, workload, tuple(Endpoint(p) for p in ports)))
        await self.router.update_mesh(self.mesh)


@dataclasses.dataclass(frozen=True, slots=True)
class Helpers:
    """The processes every runtime runs, whatever is applied."""

    envoy: EnvoyProcess
    prometheus: PrometheusProcess
    loadtester: Supervised


@dataclasses.dataclass(frozen=True, slots=True)
class ControlLoop:
    """What the runtime uses of the control loop it wired (the executor's adapters)."""

    scheduler: Scheduler
    status_store: StatusStore
    events: EventSink
    recorder: Recorder
    alerts: AlertDispatcher


@dataclasses.dataclass(frozen=True, slots=True)
class Parts:
    """Everything a running runtime is made of, each part started (``wiring.running`` owns them)."""

    dirs: state_mod.StateDir
    started_at: float
    ports: dict[str, Any]
    endpoints: dict[str, Any]
    objects: ObjectStore
    mesh: LiveMesh
    helpers: Helpers
    workloads: ProcessWorkloads
    plain: PlainDeployments
    control: ControlLoop
    gitops: LocalGitOps


class LocalRuntime:
    """The runtime over its started parts (base.Runtime): reactions to changed objects, and what the API shows."""

    def __init__(self, parts: Parts) -> None:
        self.parts = parts
        # base.Runtime: the parts the API uses
        self.objects, self.replicas, self.gitops = parts.objects, parts.workloads, parts.gitops
        self.canaries, self.status_store = parts.control.scheduler, parts.control.status_store
        self.events, self.recorder = parts.control.events, parts.control.recorder
        self.global_notifier = ""
        self._refresh_global_notifier()

    # -- applying objects ------------------------------------------------------------------------------------------
    async def changed(self, changes: list[Change]) -> None:
        """React to applied or deleted objects: start, update or stop canaries; wake those whose target changed;
        track Flux objects."""
        await self.gitops.changed(changes)
        if any(change.kind == "HelmRelease" for change in changes):
            self._refresh_global_notifier()
        scheduler = self.parts.control.scheduler
        for change in changes:
            if change.kind == "Canary" and change.action in ("created", "configured"):
                scheduler.apply(Canary.model_validate(change.body))
            elif change.kind == "Canary" and change.action == "deleted":
                await self._forget(Canary.model_validate(change.body))
                await self.parts.plain.resync()  # its target is a plain Deployment again
            elif change.kind in ("Deployment", "ConfigMap", "Secret"):
                for canary_key in scheduler.keys:
                    if canary_key.split("/")[0] == change.namespace:
                        scheduler.wake(canary_key)
        await self.parts.plain.changed(changes)

    def resume(self) -> None:
        """Drive every stored canary again, from its stored status."""
        for body in self.objects.list("Canary"):
            self.parts.control.scheduler.apply(Canary.model_validate(body))

    def _refresh_global_notifier(self) -> None:
        """Slack or Teams from the flagger HelmRelease's values, as Flagger's chart passes them as flags."""
        try:
            found = chart.from_helm_releases(self.objects.list("HelmRelease"))
        except AlertProviderError as exc:
            log.warning("no global notifier: %s", exc)
            found = None
        self.parts.control.alerts.global_notifier = found.notifier if found else None
        self.global_notifier = found.description if found else ""

    async def _forget(self, canary: Canary) -> None:
        await self.parts.control.scheduler.remove(canary.key)
        await self.parts.mesh.router.finalize(canary)
        if canary.spec.revert_on_deletion:  # give the target its replicas back before its primary goes
            await self.parts.workloads.finalize(canary)
        await self.parts.workloads.remove(canary)
        await self.status_store.delete(canary.key)

    # -- what the API shows --------------------------------------------------------------------------------------
    def process_health(self) -> list[dict[str, Any]]:
        helpers = self.parts.helpers
        parts: list[dict[str, Any]] = [
            {"name": name, "pid": part.pid, "health": "running" if part.running else "down"}
            for name, part in self._helpers()
        ]
        parts[0]["restarts"] = helpers.envoy.restarts
        for p in self.parts.workloads.processes():
            parts.append({
                "name": f"{p['namespace']}/{p['workload']}-{p['replica']}", "pid": p.get("pid"), "port": p.get("port"),
                "health": "ready" if p.get("ready") else "not ready", "restarts": p.get("restarts", 0),
                "version": p.get("version"),
            })  # fmt: skip
        return parts

    def deployments(self, namespace: str | None) -> list[dict[str, Any]]:
        return snapshot.deployments(self.objects, namespace, functools.partial(deployment_status, self.replicas))

    def services(self, namespace: str | None) -> list[dict[str, Any]]:
        def endpoints(ns: str, workload: str) -> list[str]:
            return [f"127.0.0.1:{e.port}" for e in self.parts.mesh.mesh.endpoints(ns, workload)]

        return snapshot.services(self.objects, namespace, endpoints)

    def endpoints(self) -> dict[str, Any]:
        return self.parts.endpoints

    # -- the record --------------------------------------------------------------------------------------------------
    def children(self) -> list[dict[str, Any]]:
        out = []
        parts = [(name, part.pid) for name, part in self._helpers()]
        parts += [(p["name"], p["pid"]) for p in self.parts.workloads.processes() if p.get("pid")]
        for name, pid in parts:
            line = state_mod.cmdline(pid) if pid else None
            if pid and line:
                out.append({"name": name, "pid": pid, "cmdline": line})
        return out

    def record(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "cmdline": state_mod.cmdline(os.getpid()),
            "startedAt": self.parts.started_at,
            "ports": self.parts.ports,
            "endpoints": self.endpoints(),
            "children": self.children(),
        }

    async def keep_record(self) -> None:
        while True:
            self.parts.dirs.write_record(self.record())
            await asyncio.sleep(1.0)

    def _helpers(self) -> list[tuple[str, EnvoyProcess | PrometheusProcess | Supervised]]:
        helpers = self.parts.helpers
        return [("envoy", helpers.envoy), ("prometheus", helpers.prometheus), ("loadtester", helpers.loadtester)]


def deployment_status(replicas: ProcessWorkloads, namespace: str, name: str) -> dict[str, Any]:
    mine = [p for p in replicas.processes() if (p["namespace"], p["workload"]) == (namespace, name)]
    ready = sum(1 for p in mine if p.get("ready"))
    restarts = sum(int(p.get("restarts") or 0) for p in mine)  # not Kubernetes': its pods' RESTARTS, summed
    available = sum(1 for p in mine if p.get("available"))
    return {"replicas": len(mine), "readyReplicas": ready, "updatedReplicas": len(mine),
            "availableReplicas": available, "restarts": restarts}  # fmt: skip


def deployment_health(replicas: ProcessWorkloads) -> HealthOf:
    """What a Kustomization's ``wait``/``healthChecks`` see: a Deployment is in progress while one of its
    processes is not ready (one that runs no process here — scaled to zero by its canary, or not run
    locally — is current); every other stored object is current."""

    async def health(ref: ObjRef, live: dict[str, Any]) -> Health:
        if ref.kind != "Deployment":
            return Health("current")
        status = deployment_status(replicas, ref.namespace, ref.name)
        if status["readyReplicas"] < status["replicas"]:
            return Health("in-progress", f"{status['readyReplicas']}/{status['replicas']} replicas ready")
        return Health("current")

    return health
