"""The operator's wiring: the Kubernetes adapters, the control loop, kopf, and the /metrics port.

It mirrors the local runtime: the same Executor and Scheduler, with the Kubernetes API behind every adapter
(KubeWorkload, KubeRouter, KubeStatusStore, KubeEventSink, KubeCatalog). ``OperatorRuntime.run`` starts the
parts in dependency order (API client, catalog, control loop, metrics server), runs kopf in the current event
loop until ``stop_flag`` is set, and stops everything it started.

Leader election is kopf peering. kopf pauses every operator that sees a live peer of higher *or equal*
priority, so replicas must not share one: each picks a random priority unless told otherwise, the highest
drives canaries, the others stay paused until its keep-alive lapses (or it leaves, saying so). The peering
object must exist for this (kopf never creates it, and waits paused without it): the runtime creates it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
from collections.abc import Sequence
from typing import Any

import kopf

from canaryflow.clock import Clock, SystemClock
from canaryflow.control.executor import Adapters, AlertSender, MetricsRunner
from canaryflow.control.ownmetrics import Recorder
from canaryflow.control.scheduler import Scheduler, Timing
from canaryflow.control.web import metrics_app, parse_listen, serving
from canaryflow.dashboard import app as dashboard_app
from canaryflow.engine.checks import Settings
from canaryflow.hooks.base import HookRunner
from canaryflow.hooks.http import HttpHookConfig, HttpHookRunner
from canaryflow.kube.cache import KubeCache
from canaryflow.kube.catalog import KubeCatalog
from canaryflow.kube.client import Api, Conflict, Kind, KubeApi
from canaryflow.kube.dashboard import KubeBackend
from canaryflow.kube.operator import FINALIZER, CanaryOperator, KubeExecutor
from canaryflow.kube.store import KubeEventSink, KubeStatusStore
from canaryflow.metrics.runner import MetricRunner
from canaryflow.notify.base import Alert, Notifier
from canaryflow.notify.delivery import Endpoint
from canaryflow.notify.dispatch import AlertDispatcher
from canaryflow.notify.msteams import MSTeamsNotifier
from canaryflow.notify.slack import SlackNotifier
from canaryflow.routing.base import Router
from canaryflow.routing.verified import Verified
from canaryflow.traffic.prometheus import PrometheusTraffic
from canaryflow.workloads.base import Workload

log = logging.getLogger(__name__)

DEFAULT_METRICS_SERVER = "http://prometheus.istio-system:9090"
MESH_PROVIDERS = ("istio", "kubernetes")
CLUSTER_PEERING = Kind("kopf.dev/v1", "ClusterKopfPeering", "clusterkopfpeerings", namespaced=False)
PEERING = Kind("kopf.dev/v1", "KopfPeering", "kopfpeerings")


@dataclasses.dataclass(frozen=True, slots=True)
class OperatorOptions:
    """What ``canaryflow operator`` is told on its command line (see docs and interfaces: the flags map 1:1)."""

    namespaces: tuple[str, ...] = ()  # empty: all namespaces
    metrics_server: str = DEFAULT_METRICS_SERVER
    mesh_provider: str = "istio"
    slack_url: str | None = None
    slack_channel: str | None = None
    slack_user: str | None = None
    msteams_url: str | None = None
    peering: str | None = "canaryflow"  # None: standalone, no leader election
    listen: str | None = "127.0.0.1:8080"  # None: no /metrics server
    log_level: str = "info"
    dashboard_listen: str | None = None  # HOST:PORT of the dashboard; None: no dashboard
    dashboard_token: str | None = None  # allows the dashboard's actions; None: read-only
    # Not flags: for tests, benchmarks and embedding.
    server: str | None = None  # a plain-HTTP API server URL instead of kubeconfig / in-cluster credentials
    priority: int | None = None  # kopf peering priority; random when None
    timing: Timing = dataclasses.field(default_factory=Timing)
    settings: Settings = dataclasses.field(default_factory=Settings)

    def __post_init__(self) -> None:
        if self.mesh_provider not in MESH_PROVIDERS:
            raise ValueError(f"--mesh-provider {self.mesh_provider!r}: must be one of {', '.join(MESH_PROVIDERS)}")
        if self.listen is not None:
            parse_listen(self.listen)
        if self.dashboard_listen is not None:
            try:
                parse_listen(self.dashboard_listen)
            except ValueError as exc:
                raise ValueError(str(exc).replace("--listen", "--dashboard-listen", 1)) from None


class Fanout:
    """The global notifiers (Slack and Teams flags) as one: each hears every alert; failures are joined."""

    def __init__(self, notifiers: Sequence[Notifier]) -> None:
        self.notifiers = list(notifiers)

    async def post(self, alert: Alert) -> None:
        results = await asyncio.gather(*(n.post(alert) for n in self.notifiers), return_exceptions=True)
        errors = [str(r) or type(r).__name__ for r in results if isinstance(r, BaseException)]
        if errors:
            raise RuntimeError("; ".join(errors))


def global_notifier(options: OperatorOptions) -> Notifier | None:
    notifiers: list[Notifier] = []
    if options.slack_url:
        extra = {"channel": options.slack_channel} if options.slack_channel else {}
        extra |= {"username": options.slack_user} if options.slack_user else {}
        notifiers.append(SlackNotifier(Endpoint(options.slack_url), **extra))
    if options.msteams_url:
        notifiers.append(MSTeamsNotifier(Endpoint(options.msteams_url)))
    if not notifiers:
        return None
    return notifiers[0] if len(notifiers) == 1 else Fanout(notifiers)


class OperatorRuntime:
    """One operator instance. Adapters may be passed in (tests); by default they talk to the API server."""

    def __init__(
        self,
        options: OperatorOptions,
        *,
        api: Api | None = None,
        workload: Workload | None = None,
        router: Router | None = None,
        metrics: MetricsRunner | None = None,
        hooks: HookRunner | None = None,
        alerts: AlertSender | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.options = options
        self.clock = clock or SystemClock()
        self._api, self._workload, self._router = api, workload, router
        self._metrics, self._hooks, self._alerts = metrics, hooks, alerts
        self.priority = options.priority if options.priority is not None else random.randint(1, 2**31 - 1)
        self.kopf_settings = kopf_settings(options)
        self.recorder = Recorder(options.mesh_provider)
        self._stack = contextlib.AsyncExitStack()

    # -- start and stop -----------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the parts in dependency order; if one fails, those already started are stopped again."""
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            raise

    async def _start(self) -> None:
        stack = self._stack
        api = self._api
        if api is None:
            api = KubeApi.for_url(self.options.server) if self.options.server else await KubeApi.connect()
            stack.push_async_callback(api.close)
        self.api = api
        self.catalog = KubeCatalog(api, self.options.namespaces)
        await self.catalog.start()
        stack.push_async_callback(self.catalog.close)
        # The objects the Kubernetes adapters compare on every tick, kept current by watches (kube/cache.py).
        self.cache = KubeCache(api, self.options.namespaces)
        if self._workload is None or self._router is None:
            await self.cache.start()
            stack.push_async_callback(self.cache.close)
        self.workload: Workload = self._workload or _kube_workload(api, self.clock, self.cache)
        self.router: Router = self._router or _kube_router(api, self.options.mesh_provider, self.cache)
        metrics = self._metrics
        if metrics is None:
            runner = MetricRunner(self.catalog, default_address=self.options.metrics_server)
            stack.push_async_callback(runner.close)
            metrics = runner
        traffic = PrometheusTraffic(self.options.metrics_server)
        stack.push_async_callback(traffic.close)
        hooks = self._hooks
        if hooks is None:
            http_hooks = HttpHookRunner(HttpHookConfig(clock=self.clock))
            stack.push_async_callback(http_hooks.aclose)
            hooks = http_hooks
        self.store = KubeStatusStore(api)
        self.events = KubeEventSink(api)
        adapters = Adapters(
            workload=self.workload,
            router=Verified(self.router),
            metrics=metrics,
            hooks=hooks,
            alerts=self._alerts or AlertDispatcher(self.catalog, global_notifier(self.options)),
            store=self.store,
            events=self.events,
            recorder=self.recorder,
            settings=self.options.settings,
            traffic=traffic,
        )
        self.executor = KubeExecutor(adapters, self.clock)
        self.scheduler = Scheduler(self.executor, self.clock, self.options.timing)
        stack.push_async_callback(self.scheduler.close)
        self.handlers = CanaryOperator(self.scheduler, self.workload, self.router, self.store, self.events, self.clock)
        self.registry = kopf.OperatorRegistry()
        self.handlers.register(self.registry)
        kopf.on.login(registry=self.registry)(self._login)
        if self.options.peering is not None:
            await self._ensure_peering(self.options.peering)
        if self.options.listen is not None:
            await self._serve_metrics(self.options.listen)
        if self.options.dashboard_listen is not None:
            backend = KubeBackend(api, self.options.namespaces, self.options.metrics_server)
            settings = dashboard_app.Settings(self.options.dashboard_listen, self.options.dashboard_token)
            self.dashboard_port = await stack.enter_async_context(dashboard_app.serve(backend, settings))

    async def stop(self) -> None:
        await self._stack.aclose()

    async def run(self, stop_flag: asyncio.Event | None = None, ready_flag: asyncio.Event | None = None) -> None:
        """Start, run kopf until ``stop_flag`` is set (or forever), stop."""
        await self.start()
        try:
            await self.run_kopf(stop_flag, ready_flag)
        finally:
            await self.stop()

    async def run_kopf(self, stop_flag: asyncio.Event | None = None, ready_flag: asyncio.Event | None = None) -> None:
        o = self.options
        await kopf.operator(
            registry=self.registry,
            settings=self.kopf_settings,
            clusterwide=not o.namespaces,
            namespaces=list(o.namespaces),
            standalone=o.peering is None,
            peering_name=o.peering,
            priority=self.priority,
            stop_flag=stop_flag,
            ready_flag=ready_flag,
        )

    # -- parts --------------------------------------------------------------------------------------------------
    async def _login(self, **kwargs: Any) -> kopf.ConnectionInfo | None:
        if self.options.server:
            return kopf.ConnectionInfo(server=self.options.server.rstrip("/"), insecure=True)
        found: kopf.ConnectionInfo | None = kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(
            **kwargs
        )
        return found

    async def _ensure_peering(self, name: str) -> None:
        """Create the peering object(s) kopf needs for leader election (it waits, paused, for them otherwise)."""
        places: list[tuple[Kind, str | None]] = (
            [(PEERING, ns) for ns in self.options.namespaces] if self.options.namespaces else [(CLUSTER_PEERING, None)]
        )
        for kind, namespace in places:
            metadata: dict[str, Any] = {"name": name, **({"namespace": namespace} if namespace else {})}
            if await self.api.get(kind, namespace, name) is not None:
                continue
            with contextlib.suppress(Conflict):  # another replica created it first
                await self.api.create(kind, {"apiVersion": kind.api_version, "kind": kind.kind, "metadata": metadata})

    async def _serve_metrics(self, listen: str) -> None:
        app = metrics_app(self.recorder)
        self.metrics_port = await self._stack.enter_async_context(serving(app, listen, "metrics server"))


def kopf_settings(options: OperatorOptions) -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="canaryflow.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="canaryflow.dev", key="last-handled-configuration"
    )
    # Users read canaryflow's events (Flagger's messages); kopf's per-handler events would bury them.
    settings.posting.enabled = False
    settings.posting.reporting_component = "canaryflow"
    return settings


def _kube_workload(api: Api, clock: Clock, cache: KubeCache) -> Workload:
    from canaryflow.kube.workloads import KubeWorkload

    return KubeWorkload(api, clock=clock, cache=cache)


def _kube_router(api: Api, mesh_provider: str, cache: KubeCache) -> Router:
    from canaryflow.kube.router import KubeRouter

    return KubeRouter(api, default_provider=mesh_provider, cache=cache)
