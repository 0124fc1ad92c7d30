"""The local runtime: Envoy as the mesh, Prometheus for metrics, the load tester, workloads as processes, and
the control loop driving every applied Canary — all on 127.0.0.1, all state under one directory.

``LocalRuntime.start`` brings the parts up in dependency order (store → Envoy → Prometheus → load tester →
workloads → control loop → API) and resumes every canary from its stored status; ``stop`` ends every process it
started, by PID.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import sys
import time
from typing import Any

import httpx

from canaryflow.api.canary import Canary
from canaryflow.clock import SystemClock
from canaryflow.control.executor import Adapters, Executor
from canaryflow.control.ownmetrics import Recorder
from canaryflow.control.scheduler import Scheduler, Timing
from canaryflow.control.web import parse_listen
from canaryflow.dashboard import app as dashboard_app
from canaryflow.engine.checks import Settings
from canaryflow.gitops.controller.loop import Timing as GitOpsTiming
from canaryflow.gitops.controller.objects import Key
from canaryflow.gitops.target.base import Health, ObjRef
from canaryflow.hooks.http import HttpHookConfig, HttpHookRunner
from canaryflow.local import snapshot
from canaryflow.local import state as state_mod
from canaryflow.local.dashboard import LocalBackend
from canaryflow.local.deployments import PlainDeployments
from canaryflow.local.envoy import EnvoyProcess
from canaryflow.local.gitops import LocalGitOps
from canaryflow.local.objects import Change, ObjectStore, StoreCatalog
from canaryflow.local.procs import Command, Supervised, free_port, port_is_free
from canaryflow.local.prometheus import PrometheusProcess
from canaryflow.local.transport import MeshTransport
from canaryflow.local.workloads import ProcessWorkloads, WorkloadsConfig
from canaryflow.metrics.factory import MetricsFactory
from canaryflow.metrics.prometheus import HttpOptions
from canaryflow.metrics.runner import MetricRunner
from canaryflow.notify import chart
from canaryflow.notify.dispatch import AlertDispatcher
from canaryflow.notify.factory import AlertProviderError
from canaryflow.routing.envoy import admin as envoy_admin
from canaryflow.routing.envoy.files import XdsFiles
from canaryflow.routing.envoy.model import Alias, Endpoint, Gateway, Mesh, Service, Workload
from canaryflow.routing.envoy.router import EnvoyRouter
from canaryflow.routing.verified import Verified
from canaryflow.store import sqlite
from canaryflow.traffic.prometheus import PrometheusTraffic

log = logging.getLogger(__name__)

#: The seed's Istio ingress gateway, served whether or not its Gateway object was applied.
DEFAULT_GATEWAYS = ("istio-system/public-gateway",)
#: In-cluster names of Prometheus and the load tester in Flagger's and the seed's manifests.
PROMETHEUS_HOSTS = ("flagger-prometheus.istio-system", "prometheus.istio-system", "prometheus")
LOADTESTER_HOSTS = ("flagger-loadtester", "flagger-loadtester.*")
GATEWAY_HOSTS = ("istio-gateway.istio-system", "istio-ingressgateway.istio-system")


@dataclasses.dataclass(frozen=True, slots=True)
class Options:
    state_dir: state_mod.StateDir
    timing: Timing = dataclasses.field(default_factory=Timing)
    settings: Settings = dataclasses.field(default_factory=Settings)
    gitops_timing: GitOpsTiming = dataclasses.field(default_factory=GitOpsTiming)
    #: The dashboard's token (None: read-only) and address; port 0 keeps the port of the last run when free.
    dashboard: dashboard_app.Settings = dataclasses.field(default_factory=dashboard_app.Settings)


class RuntimeError_(Exception):
    """The runtime cannot start (already running, a part failed)."""


class LocalRuntime:
    def __init__(self, options: Options) -> None:
        self.options = options
        self.dirs = options.state_dir
        self.ports: dict[str, Any] = {}
        self.started_at = time.time()
        self._stack = contextlib.AsyncExitStack()
        self._record_task: asyncio.Task[None] | None = None
        self._dashboard = contextlib.AsyncExitStack()
        self.dashboard_url = ""

    # -- start and stop ------------------------------------------------------------------------------------------
    async def start(self) -> None:
        dirs = self.dirs
        dirs.create()
        if dirs.running_pid() not in (None, os.getpid()):
            raise RuntimeError_(f"a runtime already runs with state directory {dirs.root} (pid {dirs.running_pid()})")
        os.environ[state_mod.OWNER_ENV] = str(dirs.root)  # every child inherits it (reap_orphans)
        reaped = dirs.reap_orphans()
        if reaped:
            log.warning("stopped %d processes left by a previous runtime: %s", len(reaped), reaped)
        self.ports = self._choose_ports((dirs.record() or {}).get("ports", {}))
        db = sqlite.connect(dirs.db)
        self.objects = ObjectStore(db)
        self.catalog = StoreCatalog(self.objects)
        self.mesh = self._initial_mesh()
        self.files = XdsFiles(dirs.envoy)
        self.router = EnvoyRouter(self.files, envoy_admin.EnvoyAdmin(self._url("admin")), self.mesh)
        self.router.write()
        self.envoy = EnvoyProcess(self.files, admin_port=self.ports["admin"], log_path=dirs.logs / "envoy.log")
        await self.envoy.start()
        self._stack.push_async_callback(self.envoy.stop)
        self.prometheus = PrometheusProcess(
            dirs.prometheus, port=self.ports["prometheus"], envoy_admin=self._url("admin"),
            log_path=dirs.logs / "prometheus.log", runtime_api=self._url("api"),
        )  # fmt: skip
        await self.prometheus.start()
        self._stack.push_async_callback(self.prometheus.stop)
        self.loadtester = self._loadtester()
        await self.loadtester.start()
        self._stack.push_async_callback(self.loadtester.stop)
        self.workloads = ProcessWorkloads(
            WorkloadsConfig(
                state_dir=dirs.root,
                lookup=self._lookup,
                on_endpoints=self._on_endpoints,
                extra_env=self.mesh_env(),
            )
        )
        self._stack.push_async_callback(self.workloads.close)
        self.plain = PlainDeployments(self.objects, self.workloads, self._on_service)
        self.recorder = Recorder()
        self._build_control_loop(db)
        self.gitops_parts = LocalGitOps(
            self.objects, dirs.root / "gitops", self.events, self.changed, self.options.gitops_timing, self._health
        )
        self.gitops = self.gitops_parts.controller
        self.flux_objects = self.gitops_parts.objects
        await self.gitops_parts.start()
        await self._serve_dashboard()
        self._record_task = asyncio.create_task(self._keep_record(), name="runtime record")
        for body in self.objects.list("Canary"):
            self.scheduler.apply(Canary.model_validate(body))
        await self.plain.resync()

    def _build_control_loop(self, db: Any) -> None:
        # In-cluster names through the mesh; the runtime's own Prometheus (the default metrics server) and any
        # other loopback address direct, since Envoy has no route for 127.0.0.1 (MeshTransport's docstring).
        proxy = self._url("proxy")
        self.metrics = MetricRunner(
            self.catalog, default_address=f"{self._url('prometheus')}",
            factory=MetricsFactory(HttpOptions(transport=MeshTransport(proxy))),
        )  # fmt: skip
        self.hooks = HttpHookRunner(HttpHookConfig(transport=MeshTransport(proxy)))
        # The judge asks the runtime's own Prometheus directly; an address a canary names goes through the mesh.
        self.traffic = PrometheusTraffic(self._url("prometheus"), MeshTransport(proxy))
        self._stack.push_async_callback(self.traffic.close)
        self.alerts = AlertDispatcher(self.catalog)
        self.global_notifier = ""
        self._refresh_global_notifier()
        adapters = Adapters(
            workload=self.workloads,
            router=Verified(self.router),
            metrics=self.metrics,
            hooks=self.hooks,
            alerts=self.alerts,
            store=sqlite.SqliteStatusStore(db),
            events=sqlite.SqliteEventSink(db),
            recorder=self.recorder,
            settings=self.options.settings,
            traffic=self.traffic,
        )
        self.status_store = adapters.store
        self.events = adapters.events
        self.executor = Executor(adapters, SystemClock())
        self.scheduler = Scheduler(self.executor, SystemClock(), self.options.timing)

    async def _serve_dashboard(self) -> None:
        settings = self.options.dashboard
        host, port = parse_listen(settings.listen)
        listen = f"{host}:{port or self.ports['dashboard']}"
        served = dashboard_app.serve(LocalBackend(self), dataclasses.replace(settings, listen=listen))
        bound = await self._dashboard.enter_async_context(served)
        self.dashboard_url = f"http://{host}:{bound}"

    async def stop(self) -> None:
        await self._dashboard.aclose()
        if self._record_task is not None:
            self._record_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._record_task
        await self.gitops_parts.close()
        await self.scheduler.close()
        await self.metrics.close()
        await self.hooks.aclose()
        await self.router.aclose()
        await self._stack.aclose()
        self.dirs.write_record({**self.record(), "pid": None, "children": []})

    # -- applying objects ------------------------------------------------------------------------------------------
    async def changed(self, changes: list[Change]) -> None:
        """React to applied or deleted objects: start, update or stop canaries; wake those whose target changed;
        track Flux objects."""
        await self.gitops_parts.changed(changes)
        if any(change.kind == "HelmRelease" for change in changes):
            self._refresh_global_notifier()
        for change in changes:
            if change.kind == "Canary" and change.action in ("created", "configured"):
                self.scheduler.apply(Canary.model_validate(change.body))
            elif change.kind == "Canary" and change.action == "deleted":
                await self._forget(Canary.model_validate(change.body))
                await self.plain.resync()  # its target is a plain Deployment again
            elif change.kind in ("Deployment", "ConfigMap", "Secret"):
                for canary_key in self.scheduler.keys:
                    if canary_key.split("/")[0] == change.namespace:
                        self.scheduler.wake(canary_key)
        await self.plain.changed(changes)

    def _refresh_global_notifier(self) -> None:
        """Slack or Teams from the flagger HelmRelease's values, as Flagger's chart passes them as flags."""
        try:
            found = chart.from_helm_releases(self.objects.list("HelmRelease"))
        except AlertProviderError as exc:
            log.warning("no global notifier: %s", exc)
            found = None
        self.alerts.global_notifier = found.notifier if found else None
        self.global_notifier = found.description if found else ""

    async def _health(self, ref: ObjRef, live: dict[str, Any]) -> Health:
        """What a Kustomization's ``wait``/``healthChecks`` see: a Deployment is in progress while one of its
        processes is not ready (one that runs no process here — scaled to zero by its canary, or not run
        locally — is current); every other stored object is current."""
        if ref.kind != "Deployment":
            return Health("current")
        status = self.deployment_status(ref.namespace, ref.name)
        if status["readyReplicas"] < status["replicas"]:
            return Health("in-progress", f"{status['readyReplicas']}/{status['replicas']} replicas ready")
        return Health("current")

    async def gitops_diff(self, key: Key) -> list[dict[str, Any]]:
        return await self.gitops_parts.diff(key)

    async def _forget(self, canary: Canary) -> None:
        await self.scheduler.remove(canary.key)
        await self.router.finalize(canary)
        if canary.spec.revert_on_deletion:  # give the target its replicas back before its primary goes
            await self.workloads.finalize(canary)
        await self.workloads.remove(canary)
        await self.status_store.delete(canary.key)

    # -- wiring ---------------------------------------------------------------------------------------------------
    def _choose_ports(self, previous: dict[str, Any]) -> dict[str, Any]:
        """The same ports as last time where they are free (stable URLs across restarts), new ones otherwise."""

        def port(name: str, old: Any) -> int:
            return old if isinstance(old, int) and port_is_free(old) else free_port()

        ports: dict[str, Any] = {
            n: port(n, previous.get(n)) for n in ("api", "admin", "proxy", "prometheus", "loadtester", "dashboard")
        }
        old_gateways = previous.get("gateways") or {}
        ports["gateways"] = {g: port(g, old_gateways.get(g)) for g in self._gateway_names()}
        return ports

    def _gateway_names(self) -> list[str]:
        return list(DEFAULT_GATEWAYS)

    def _initial_mesh(self) -> Mesh:
        gateways = tuple(Gateway(name, port) for name, port in self.ports["gateways"].items())
        first_gateway = next(iter(self.ports["gateways"].values()))
        aliases = (
            Alias("prometheus", PROMETHEUS_HOSTS, self.ports["prometheus"]),
            Alias("loadtester", LOADTESTER_HOSTS, self.ports["loadtester"]),
            Alias("gateway", GATEWAY_HOSTS, first_gateway),
        )
        return Mesh(proxy_port=self.ports["proxy"], aliases=aliases, gateways=gateways)

    def _url(self, part: str) -> str:
        return f"http://127.0.0.1:{self.ports[part]}"

    def mesh_env(self) -> dict[str, str]:
        proxy = self._url("proxy")
        return {
            "http_proxy": proxy,
            "HTTP_PROXY": proxy,
            "no_proxy": "127.0.0.1,localhost",
            "NO_PROXY": "127.0.0.1,localhost",
        }

    def _loadtester(self) -> Supervised:
        argv = [sys.executable, "-m", "canaryflow.loadtester", "--port", str(self.ports["loadtester"]),
                "--proxy", self._url("proxy")]  # fmt: skip
        url = f"{self._url('loadtester')}/healthz"

        async def ready() -> bool:
            try:
                async with httpx.AsyncClient(timeout=1.0, trust_env=False) as client:
                    return (await client.get(url)).status_code == 200
            except httpx.HTTPError:
                return False

        return Supervised(Command("loadtester", argv, self.dirs.logs / "loadtester.log"), ready)

    def _lookup(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get(kind, namespace, name)

    async def _on_service(self, namespace: str, name: str, workload: str | None) -> None:
        mesh = self.mesh.without_service(namespace, name)
        self.mesh = mesh if workload is None else mesh.with_service(Service(namespace, name, workload))
        await self.router.update_mesh(self.mesh)

    async def _on_endpoints(self, namespace: str, workload: str, ports: list[int]) -> None:
        self.mesh = self.mesh.with_workload(Workload(namespace, workload, tuple(Endpoint(p) for p in ports)))
        await self.router.update_mesh(self.mesh)

    # -- what the API shows --------------------------------------------------------------------------------------
    def process_health(self) -> list[dict[str, Any]]:
        parts: list[dict[str, Any]] = [
            {"name": name, "pid": part.pid, "health": "running" if part.running else "down"}
            for name, part in (("envoy", self.envoy), ("prometheus", self.prometheus), ("loadtester", self.loadtester))
        ]
        parts[0]["restarts"] = self.envoy.restarts
        for p in self.workloads.processes():
            parts.append({
                "name": f"{p['namespace']}/{p['workload']}-{p['replica']}", "pid": p.get("pid"), "port": p.get("port"),
                "health": "ready" if p.get("ready") else "not ready", "restarts": p.get("restarts", 0),
                "version": p.get("version"),
            })  # fmt: skip
        return parts

    def deployment_status(self, namespace: str, name: str) -> dict[str, Any]:
        mine = [p for p in self.workloads.processes() if (p["namespace"], p["workload"]) == (namespace, name)]
        ready = sum(1 for p in mine if p.get("ready"))
        restarts = sum(int(p.get("restarts") or 0) for p in mine)  # not Kubernetes': its pods' RESTARTS, summed
        available = sum(1 for p in mine if p.get("available"))
        return {"replicas": len(mine), "readyReplicas": ready, "updatedReplicas": len(mine),
                "availableReplicas": available, "restarts": restarts}  # fmt: skip

    def deployments(self, namespace: str | None) -> list[dict[str, Any]]:
        return snapshot.deployments(self.objects, namespace, self.deployment_status)

    def canaries(self) -> list[Canary]:
        return snapshot.canaries(self.objects)

    def services(self, namespace: str | None) -> list[dict[str, Any]]:
        def endpoints(ns: str, workload: str) -> list[str]:
            return [f"127.0.0.1:{e.port}" for e in self.mesh.endpoints(ns, workload)]

        return snapshot.services(self.objects, namespace, endpoints)

    # -- the record --------------------------------------------------------------------------------------------------
    def endpoints(self) -> dict[str, Any]:
        return {
            "api": self._url("api"),
            "meshProxy": self._url("proxy"),
            "envoyAdmin": self._url("admin"),
            "prometheus": self._url("prometheus"),
            "loadtester": self._url("loadtester"),
            "dashboard": self.dashboard_url,
            "gateways": {name: f"http://127.0.0.1:{port}" for name, port in self.ports["gateways"].items()},
        }

    def children(self) -> list[dict[str, Any]]:
        out = []
        parts = [("envoy", self.envoy.pid), ("prometheus", self.prometheus.pid), ("loadtester", self.loadtester.pid)]
        parts += [(p["name"], p["pid"]) for p in self.workloads.processes() if p.get("pid")]
        for name, pid in parts:
            line = state_mod.cmdline(pid) if pid else None
            if pid and line:
                out.append({"name": name, "pid": pid, "cmdline": line})
        return out

    def record(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "cmdline": state_mod.cmdline(os.getpid()),
            "startedAt": self.started_at,
            "ports": self.ports,
            "endpoints": self.endpoints(),
            "children": self.children(),
        }

    async def _keep_record(self) -> None:
        while True:
            self.dirs.write_record(self.record())
            await asyncio.sleep(1.0)
