"""Building the local runtime: Envoy as the mesh, Prometheus for metrics, the load tester, workloads as processes,
and the control loop driving every applied Canary — all on 127.0.0.1, all state under one directory.

``running`` brings the parts up in dependency order (store → Envoy → Prometheus → load tester → workloads →
control loop → GitOps → dashboard), resumes every canary from its stored status, and yields the ``LocalRuntime``.
Every part is put on one exit stack before it starts, so on leaving — or on a failed start, part-way — each is
closed in reverse order, processes stopped by PID; nothing half-started remains.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx

from canaryflow.clock import SystemClock
from canaryflow.control.executor import Adapters, Executor
from canaryflow.control.ownmetrics import Recorder
from canaryflow.control.scheduler import Scheduler, Timing
from canaryflow.control.web import parse_listen
from canaryflow.dashboard import app as dashboard_app
from canaryflow.engine.checks import Settings
from canaryflow.gitops.controller.loop import Timing as GitOpsTiming
from canaryflow.hooks.http import HttpHookConfig, HttpHookRunner
from canaryflow.local import state as state_mod
from canaryflow.local.dashboard import LocalBackend
from canaryflow.local.deployments import PlainDeployments
from canaryflow.local.envoy import EnvoyProcess
from canaryflow.local.gitops import LocalGitOps
from canaryflow.local.objects import Change, ObjectStore, StoreCatalog
from canaryflow.local.procs import Command, Supervised, free_port, port_is_free
from canaryflow.local.prometheus import PrometheusProcess
from canaryflow.local.runtime import ControlLoop, Helpers, LiveMesh, LocalRuntime, Parts, deployment_health
from canaryflow.local.transport import MeshTransport
from canaryflow.local.warmup import DataPlaneWarmup
from canaryflow.local.workloads import ProcessWorkloads, WorkloadsConfig
from canaryflow.metrics.factory import MetricsFactory
from canaryflow.metrics.prometheus import HttpOptions
from canaryflow.metrics.runner import MetricRunner
from canaryflow.notify.dispatch import AlertDispatcher
from canaryflow.routing.envoy import admin as envoy_admin
from canaryflow.routing.envoy.files import XdsFiles
from canaryflow.routing.envoy.model import Alias, Gateway, Mesh
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
PARTS = ("api", "admin", "proxy", "prometheus", "loadtester", "dashboard")


@dataclasses.dataclass(frozen=True, slots=True)
class Options:
    state_dir: state_mod.StateDir
    timing: Timing = dataclasses.field(default_factory=Timing)
    settings: Settings = dataclasses.field(default_factory=Settings)
    gitops_timing: GitOpsTiming = dataclasses.field(default_factory=GitOpsTiming)
    #: The dashboard's token (None: read-only) and address; port 0 keeps the port of the last run when free.
    dashboard: dashboard_app.Settings = dataclasses.field(default_factory=dashboard_app.Settings)


class AlreadyRunning(Exception):
    """Another runtime runs with this state directory."""


@contextlib.asynccontextmanager
async def running(options: Options) -> AsyncIterator[LocalRuntime]:
    """The runtime, started, until the block ends; then every part closed and the record saying it stopped."""
    dirs, started_at = options.state_dir, time.time()
    ports = _claim(dirs)
    stopped: dict[str, Any] | None = None
    try:
        async with contextlib.AsyncExitStack() as stack:
            runtime = await _wire(options, started_at, ports, stack)
            stopped = {**runtime.record(), "pid": None, "children": []}
            yield runtime
    finally:
        if stopped is not None:  # after every part closed: the processes it names are gone
            dirs.write_record(stopped)


def _claim(dirs: state_mod.StateDir) -> dict[str, Any]:
    """Take the state directory (stopping what a killed runtime left running) and choose the ports."""
    dirs.create()
    if dirs.running_pid() not in (None, os.getpid()):
        raise AlreadyRunning(f"a runtime already runs with state directory {dirs.root} (pid {dirs.running_pid()})")
    os.environ[state_mod.OWNER_ENV] = str(dirs.root)  # every child inherits it (reap_orphans)
    reaped = dirs.reap_orphans()
    if reaped:
        log.warning("stopped %d processes left by a previous runtime: %s", len(reaped), reaped)
    return choose_ports((dirs.record() or {}).get("ports", {}))


async def _wire(
    options: Options, started_at: float, ports: dict[str, Any], stack: contextlib.AsyncExitStack
) -> LocalRuntime:
    dirs = options.state_dir
    db = sqlite.connect(dirs.db)
    stack.callback(db.close)
    objects = ObjectStore(db)
    files = XdsFiles(dirs.envoy)
    router = EnvoyRouter(files, envoy_admin.EnvoyAdmin(_url(ports, "admin")), initial_mesh(ports))
    stack.push_async_callback(router.aclose)
    router.write()
    helpers = await _helpers(dirs, ports, files, stack)
    mesh = LiveMesh(router)
    # The canaries' checks wait for Prometheus to see the restarted data plane serve (local/warmup.py).
    warmup = DataPlaneWarmup(helpers.envoy, helpers.prometheus, helpers.prometheus.url)
    stack.push_async_callback(warmup.aclose)
    workloads = ProcessWorkloads(
        WorkloadsConfig(state_dir=dirs.root, lookup=objects.get, on_endpoints=mesh.on_endpoints,
                        extra_env=mesh_env(ports), hold=warmup.hold)
    )  # fmt: skip
    stack.push_async_callback(workloads.close)
    plain = PlainDeployments(objects, workloads, mesh.on_service)
    control = _control_loop(options, ports, db, objects, workloads, router, stack)
    runtime: LocalRuntime | None = None

    async def changed(changes: list[Change]) -> None:  # what a Kustomization applied, as if through the API
        assert runtime is not None, "GitOps applies nothing before it starts, below"
        await runtime.changed(changes)

    gitops = LocalGitOps(
        objects, dirs.root / "gitops", control.events, changed, options.gitops_timing, deployment_health(workloads)
    )
    host, port = parse_listen(options.dashboard.listen)
    listen = f"{host}:{port or ports['dashboard']}"
    runtime = LocalRuntime(
        Parts(dirs, started_at, ports, endpoints(ports, f"http://{listen}"), objects, mesh, helpers, workloads, plain,
              control, gitops)
    )  # fmt: skip
    await _started(stack, gitops.start, gitops.close)
    dashboard = dataclasses.replace(options.dashboard, listen=listen)
    await stack.enter_async_context(dashboard_app.serve(LocalBackend(runtime), dashboard))
    record = asyncio.create_task(runtime.keep_record(), name="runtime record")
    stack.push_async_callback(_cancel, record)
    runtime.resume()
    await plain.resync()
    return runtime


async def _helpers(
    dirs: state_mod.StateDir, ports: dict[str, Any], files: XdsFiles, stack: contextlib.AsyncExitStack
) -> Helpers:
    """Envoy (serving the files the router wrote), Prometheus scraping it, the load tester: started in turn."""
    prometheus = PrometheusProcess(
        dirs.prometheus, port=ports["prometheus"], envoy_admin=_url(ports, "admin"),
        log_path=dirs.logs / "prometheus.log", runtime_api=_url(ports, "api"),
    )  # fmt: skip
    envoy = EnvoyProcess(files, admin_port=ports["admin"], log_path=dirs.logs / "envoy.log")
    helpers = Helpers(envoy, prometheus, _loadtester(dirs, ports))
    for helper in (helpers.envoy, helpers.prometheus, helpers.loadtester):
        await _started(stack, helper.start, helper.stop)
    return helpers


async def _started(
    stack: contextlib.AsyncExitStack, start: Callable[[], Awaitable[None]], stop: Callable[[], Awaitable[None]]
) -> None:
    """Start a part with its stop already on the stack: one that fails half-way (a process spawned that never
    became ready) is stopped with the others."""
    stack.push_async_callback(stop)
    await start()


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _control_loop(
    options: Options,
    ports: dict[str, Any],
    db: sqlite3.Connection,
    objects: ObjectStore,
    workloads: ProcessWorkloads,
    router: EnvoyRouter,
    stack: contextlib.AsyncExitStack,
) -> ControlLoop:
    # In-cluster names through the mesh; the runtime's own Prometheus (the default metrics server) and any
    # other loopback address direct, since Envoy has no route for 127.0.0.1 (MeshTransport's docstring).
    proxy, prometheus = _url(ports, "proxy"), _url(ports, "prometheus")
    catalog = StoreCatalog(objects)
    metrics = MetricRunner(
        catalog, default_address=prometheus, factory=MetricsFactory(HttpOptions(transport=MeshTransport(proxy)))
    )
    stack.push_async_callback(metrics.close)
    hooks = HttpHookRunner(HttpHookConfig(transport=MeshTransport(proxy)))
    stack.push_async_callback(hooks.aclose)
    # The judge asks the runtime's own Prometheus directly; an address a canary names goes through the mesh.
    traffic = PrometheusTraffic(prometheus, MeshTransport(proxy))
    stack.push_async_callback(traffic.close)
    alerts, recorder = AlertDispatcher(catalog), Recorder()
    store, events = sqlite.SqliteStatusStore(db), sqlite.SqliteEventSink(db)
    loop = ControlLoop(
        scheduler=Scheduler(
            Executor(
                Adapters(workload=workloads, router=Verified(router), metrics=metrics, hooks=hooks, alerts=alerts,
                         store=store, events=events, recorder=recorder, settings=options.settings, traffic=traffic),
                SystemClock(),
            ),
            SystemClock(),
            options.timing,
        ),
        status_store=store, events=events, recorder=recorder, alerts=alerts,
    )  # fmt: skip
    stack.push_async_callback(loop.scheduler.close)
    return loop


def choose_ports(previous: dict[str, Any]) -> dict[str, Any]:
    """The same ports as last time where they are free (stable URLs across restarts), new ones otherwise."""

    def port(old: Any) -> int:
        return old if isinstance(old, int) and port_is_free(old) else free_port()

    ports: dict[str, Any] = {name: port(previous.get(name)) for name in PARTS}
    old_gateways = previous.get("gateways") or {}
    ports["gateways"] = {g: port(old_gateways.get(g)) for g in DEFAULT_GATEWAYS}
    return ports


def initial_mesh(ports: dict[str, Any]) -> Mesh:
    gateways = tuple(Gateway(name, port) for name, port in ports["gateways"].items())
    first_gateway = next(iter(ports["gateways"].values()))
    aliases = (
        Alias("prometheus", PROMETHEUS_HOSTS, ports["prometheus"]),
        Alias("loadtester", LOADTESTER_HOSTS, ports["loadtester"]),
        Alias("gateway", GATEWAY_HOSTS, first_gateway),
    )
    return Mesh(proxy_port=ports["proxy"], aliases=aliases, gateways=gateways)


def endpoints(ports: dict[str, Any], dashboard: str) -> dict[str, Any]:
    return {
        "api": _url(ports, "api"),
        "meshProxy": _url(ports, "proxy"),
        "envoyAdmin": _url(ports, "admin"),
        "prometheus": _url(ports, "prometheus"),
        "loadtester": _url(ports, "loadtester"),
        "dashboard": dashboard,
        "gateways": {name: f"http://127.0.0.1:{port}" for name, port in ports["gateways"].items()},
    }


def mesh_env(ports: dict[str, Any]) -> dict[str, str]:
    proxy = _url(ports, "proxy")
    return {"http_proxy": proxy, "HTTP_PROXY": proxy,
            "no_proxy": "127.0.0.1,localhost", "NO_PROXY": "127.0.0.1,localhost"}  # fmt: skip


def _url(ports: dict[str, Any], part: str) -> str:
    return f"http://127.0.0.1:{ports[part]}"


def _loadtester(dirs: state_mod.StateDir, ports: dict[str, Any]) -> Supervised:
    argv = [sys.executable, "-m", "canaryflow.loadtester", "--port", str(ports["loadtester"]),
            "--proxy", _url(ports, "proxy")]  # fmt: skip
    url = f"{_url(ports, 'loadtester')}/healthz"

    async def ready() -> bool:
        try:
            async with httpx.AsyncClient(timeout=1.0, trust_env=False) as client:
                return (await client.get(url)).status_code == 200
        except httpx.HTTPError:
            return False

    return Supervised(Command("loadtester", argv, dirs.logs / "loadtester.log"), ready)
