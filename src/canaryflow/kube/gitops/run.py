"""``canaryflow gitops-controller``: the Kubernetes GitOps controller as a process of its own.

Flux runs each of its controllers as its own Deployment; this is canaryflow's equivalent: it connects to the API
server (kubeconfig, else the pod's service account), builds the controller with :func:`kube_gitops`, follows the
Flux objects with :func:`follow`, serves ``/healthz`` and ``/metrics`` for the kubelet's probes and, with
``--receiver-listen``, the Receivers' webhooks. SIGTERM or SIGINT stops it in order: the HTTP servers, the watches
(no new reconcile starts), the controller (running reconciles are cancelled and awaited), then the API client; the
process exits 0.

With ``--leader-elect`` (the install's setting) it first takes the Lease ``--leader-election-id`` in
``--leader-election-namespace`` (:mod:`canaryflow.kube.gitops.leader`): a follower serves /healthz and waits; the
leader reconciles, and exits 1 if it cannot renew (the kubelet restarts it as a follower), as controller-runtime
does; a stopped leader releases the Lease.

``--namespace`` limits which Flux objects are *followed* (as Flux's ``--watch-all-namespaces=false`` does); what a
Kustomization applies may still live anywhere its manifests say, which is why the install binds cluster-admin.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from canaryflow.clock import Clock, SystemClock
from canaryflow.control.web import parse_listen, serving
from canaryflow.gitops import receiver
from canaryflow.gitops.controller.loop import GitOpsController
from canaryflow.gitops.controller.receivers import targets as receiver_targets
from canaryflow.kube.client import KubeApi
from canaryflow.kube.gitops.leader import DEFAULT_LEASE_NAME, LeaderElector, LeaseConfig
from canaryflow.kube.gitops.wiring import follow, kube_gitops

log = logging.getLogger(__name__)

DEFAULT_WORKDIR = Path("/tmp/canaryflow-gitops")
DEFAULT_LISTEN = "127.0.0.1:8081"
DEFAULT_LEASE_NAMESPACE = "canaryflow-system"


class LeadershipLost(Exception):
    """The Lease could not be renewed: another replica may be reconciling, so this one must stop."""

    def __str__(self) -> str:
        return "leader election lost"


class WatchFailed(Exception):
    """The watches of Flux objects stopped with an error: the controller can no longer follow the cluster."""

    def __str__(self) -> str:
        return f"following Flux objects failed: {self.args[0]}"


@dataclasses.dataclass(frozen=True, slots=True)
class GitOpsOptions:
    """What ``canaryflow gitops-controller`` is told on its command line (the flags map 1:1)."""

    namespaces: tuple[str, ...] = ()  # empty: all namespaces
    workdir: Path = DEFAULT_WORKDIR
    listen: str | None = DEFAULT_LISTEN  # None: no HTTP server
    receiver_listen: str | None = None  # HOST:PORT of the Receivers' webhooks; None: not served
    leader_elect: bool = False
    lease_name: str = DEFAULT_LEASE_NAME
    lease_namespace: str = DEFAULT_LEASE_NAMESPACE
    # Not flags: for tests and embedding.
    server: str | None = None  # a plain-HTTP API server URL instead of kubeconfig / in-cluster credentials
    lease: LeaseConfig | None = None  # durations and identity (default: Flux's, host name + uuid)

    def __post_init__(self) -> None:
        if self.listen is not None:
            parse_listen(self.listen)
        if self.receiver_listen is not None:
            try:
                parse_listen(self.receiver_listen)
            except ValueError as exc:
                raise ValueError(str(exc).replace("--listen", "--receiver-listen", 1)) from None


class _Tracked(Collector):
    """``canaryflow_gitops_objects{kind}``: how many Flux objects of each kind the controller follows, read at
    scrape time (no state of its own to drift)."""

    def __init__(self, controller: GitOpsController) -> None:
        self.controller = controller

    def collect(self) -> Any:
        family = GaugeMetricFamily("canaryflow_gitops_objects", "Flux objects followed, by kind.", labels=["kind"])
        counts = dict.fromkeys(self.controller.reconcilers, 0)
        for key in self.controller.keys:
            counts[key.kind] = counts.get(key.kind, 0) + 1
        for kind, count in sorted(counts.items()):
            family.add_metric([kind], count)
        yield family


def health_app(controller: GitOpsController, watches: list[asyncio.Task[None]]) -> Starlette:
    """``/healthz`` answers 200 while the watches run (or while a follower waits for the Lease: ``watches``
    still empty), 503 once they have stopped (the kubelet restarts the pod); ``/metrics`` is the Prometheus
    exposition of what the controller follows."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Tracked(controller))

    async def healthz(request: Request) -> Response:
        if any(task.done() for task in watches):
            return PlainTextResponse("watches stopped", status_code=503)
        return PlainTextResponse("OK" if watches else "OK (waiting to lead)")

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return Starlette(routes=[Route("/healthz", healthz), Route("/metrics", metrics)])


def receiver_app(controller: GitOpsController) -> Starlette:
    """``POST /hook/<digest>``: the webhook of the followed Receiver that published that path in its status (as
    Flux's notification-controller serves them). The call is judged with the Receiver's current token (a rotated
    token's old path is refused); the resources it names are reconciled now. Unknown paths get 404."""
    objects = controller.ctx.objects

    async def hook(request: Request) -> Response:
        path = "/hook/" + request.path_params["digest"]
        for key in (k for k in controller.keys if k.kind == "Receiver"):
            if (await objects.status(key)).get("webhookPath") != path:
                continue
            body = await objects.get(key)
            ref = ((body or {}).get("spec") or {}).get("secretRef") or {}
            secret = await objects.data("Secret", key.namespace, str(ref.get("name"))) or {}
            token = secret.get("token")
            if body is None or token is None or receiver.webhook_path(token, key.name, key.namespace) != path:
                continue
            headers = {k.lower(): v for k, v in request.headers.items()}
            verdict = receiver.judge(body, token, headers, await request.body())
            keys = await receiver_targets(controller.ctx.objects, verdict)
            reconciling = [str(k) for k in keys if controller.request(k)]
            return JSONResponse({"message": verdict.message, "reconciling": reconciling}, verdict.status)
        return JSONResponse({"error": "no receiver for this path"}, 404)

    return Starlette(routes=[Route("/hook/{digest}", hook, methods=["POST"])])


async def run(options: GitOpsOptions, stop: asyncio.Event | None = None, clock: Clock | None = None) -> None:
    """Run until ``stop`` is set, SIGTERM or SIGINT arrives, the watches fail (their error is raised) or, with
    leader election, the Lease is lost (LeadershipLost). ``clock`` is leader election's (tests: a FakeClock)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        api = KubeApi.for_url(options.server) if options.server else await KubeApi.connect()
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(api.close)
            options.workdir.mkdir(parents=True, exist_ok=True)
            controller = kube_gitops(api, options.workdir)
            stack.push_async_callback(controller.close)
            watches: list[asyncio.Task[None]] = []  # once leading
            if options.listen is not None:
                app = health_app(controller, watches)
                port = await stack.enter_async_context(serving(app, options.listen, "health server"))
                log.info("serving /healthz and /metrics on port %d", port)
            waits: list[asyncio.Task[Any]] = [asyncio.create_task(stop.wait(), name="gitops stop")]
            stack.callback(lambda: [task.cancel() for task in waits])
            if options.leader_elect:
                lease = options.lease or LeaseConfig(namespace=options.lease_namespace, name=options.lease_name)
                elector = LeaderElector(api, lease, clock or SystemClock())
                stack.push_async_callback(elector.release)
                acquiring = asyncio.create_task(elector.acquire(), name="gitops leader election")
                log.info("waiting to lead (lease %s/%s)", lease.namespace, lease.name)
                await asyncio.wait((acquiring, waits[0]), return_when=asyncio.FIRST_COMPLETED)
                if not acquiring.done():
                    await _cancel(acquiring)
                    log.info("stopping")
                    return
                waits.append(asyncio.create_task(elector.hold(), name="gitops lease renewal"))
            following = asyncio.create_task(follow(api, controller, options.namespaces), name="gitops follow")
            stack.push_async_callback(_cancel, following)
            watches.append(following)
            if options.receiver_listen is not None:
                port = await stack.enter_async_context(
                    serving(receiver_app(controller), options.receiver_listen, "receiver server")
                )
                log.info("serving the Receivers' webhooks on port %d", port)
            where = ", ".join(options.namespaces) or "all namespaces"
            log.info("following Flux objects in %s; sources under %s", where, options.workdir)
            await asyncio.wait((following, *waits), return_when=asyncio.FIRST_COMPLETED)
            if following.done():
                error = following.exception()
                raise WatchFailed(str(_first(error)) if error else "they ended without being stopped") from error
            if len(waits) > 1 and waits[1].done():
                await _cancel(following)  # no reconcile may start once another replica may lead
                await controller.close()
                raise LeadershipLost
            log.info("stopping")
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


def _first(error: BaseException) -> BaseException:
    """The first error inside (nested) exception groups: follow() runs one watch per kind in a TaskGroup."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


async def _cancel(task: asyncio.Task[None]) -> None:
    """Cancel ``task`` and wait for it; an error it already ended with is raised by run(), not here."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
