"""``canaryflow gitops-controller``: the Kubernetes GitOps controller as a process of its own.

Flux runs each of its controllers as its own Deployment; this is canaryflow's equivalent: it connects to the API
server (kubeconfig, else the pod's service account), builds the controller with :func:`kube_gitops`, follows the
Flux objects with :func:`follow`, serves ``/healthz`` and ``/metrics`` for the kubelet's probes and, with
``--receiver-listen``, the Receivers' webhooks. SIGTERM or SIGINT stops it in order: the HTTP servers, the watches
(no new reconcile starts), the controller (running reconciles are cancelled and awaited), then the API client; the
process exits 0.

``--namespace`` limits which Flux objects are *followed* (as Flux's ``--watch-all-namespaces=false`` does); what a
Kustomization applies may still live anywhere its manifests say, which is why the install binds cluster-admin.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from canaryflow.gitops import receiver
from canaryflow.gitops.controller.loop import GitOpsController
from canaryflow.gitops.controller.receivers import targets as receiver_targets
from canaryflow.kube.api import Api, Json, JsonList, PatchType, WatchEvent
from canaryflow.kube.client import KubeApi
from canaryflow.kube.gitops.wiring import follow, kube_gitops
from canaryflow.kube.kinds import Kind
from canaryflow.kube.runtime import parse_listen

log = logging.getLogger(__name__)

DEFAULT_WORKDIR = Path("/tmp/canaryflow-gitops")
DEFAULT_LISTEN = "127.0.0.1:8081"


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
    # Not flags: for tests and embedding.
    server: str | None = None  # a plain-HTTP API server URL instead of kubeconfig / in-cluster credentials

    def __post_init__(self) -> None:
        if self.listen is not None:
            parse_listen(self.listen)
        if self.receiver_listen is not None:
            try:
                parse_listen(self.receiver_listen)
            except ValueError as exc:
                raise ValueError(str(exc).replace("--listen", "--receiver-listen", 1)) from None


class NamespacedWatch:
    """An ``Api`` whose cluster-wide watches of namespaced kinds are one watch per listed namespace, merged.

    Only watches are narrowed: they decide which Flux objects the controller follows. Everything else goes to
    the wrapped client unchanged (a Kustomization in a followed namespace still applies wherever it says).
    """

    def __init__(self, api: Api, namespaces: Sequence[str]) -> None:
        if not namespaces:
            raise ValueError("NamespacedWatch needs at least one namespace; use the client itself for all")
        self.api, self.namespaces = api, tuple(namespaces)

    async def watch(
        self, kind: Kind, namespace: str | None = None, *, labels: str | None = None
    ) -> AsyncIterator[WatchEvent]:
        if namespace is not None or not kind.namespaced:
            async for event in self.api.watch(kind, namespace, labels=labels):
                yield event
            return
        queue: asyncio.Queue[WatchEvent | BaseException] = asyncio.Queue()

        async def pump(where: str) -> None:
            try:
                async for event in self.api.watch(kind, where, labels=labels):
                    await queue.put(event)
            except Exception as exc:  # handed to the reader, who raises it
                await queue.put(exc)

        pumps = [asyncio.create_task(pump(ns), name=f"watch {kind.plural} in {ns}") for ns in self.namespaces]
        try:
            while True:
                item = await queue.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            for task in pumps:
                task.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)

    async def get(self, kind: Kind, namespace: str | None, name: str) -> Json | None:
        return await self.api.get(kind, namespace, name)

    async def list(self, kind: Kind, namespace: str | None = None, *, labels: str | None = None) -> JsonList:
        return await self.api.list(kind, namespace, labels=labels)

    async def create(self, kind: Kind, body: Mapping[str, Any]) -> Json:
        return await self.api.create(kind, body)

    async def replace(self, kind: Kind, body: Mapping[str, Any]) -> Json:
        return await self.api.replace(kind, body)

    async def replace_status(self, kind: Kind, body: Mapping[str, Any]) -> Json:
        return await self.api.replace_status(kind, body)

    async def patch(
        self, kind: Kind, namespace: str | None, name: str, patch: Any, *, type: PatchType = "merge"
    ) -> Json:
        return await self.api.patch(kind, namespace, name, patch, type=type)

    async def apply(
        self,
        kind: Kind,
        body: Mapping[str, Any],
        *,
        manager: str = "canaryflow",
        force: bool = True,
        dry_run: bool = False,
    ) -> Json:
        return await self.api.apply(kind, body, manager=manager, force=force, dry_run=dry_run)

    async def delete(self, kind: Kind, namespace: str | None, name: str) -> bool:
        return await self.api.delete(kind, namespace, name)

    async def discover(self, api_version: str, kind: str) -> Kind:
        return await self.api.discover(api_version, kind)

    async def close(self) -> None:
        await self.api.close()


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


def health_app(controller: GitOpsController, following: asyncio.Task[None]) -> Starlette:
    """``/healthz`` answers 200 while the watches run, 503 once they have stopped (the kubelet restarts the pod);
    ``/metrics`` is the Prometheus exposition of what the controller follows."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Tracked(controller))

    async def healthz(request: Request) -> Response:
        if following.done():
            return PlainTextResponse("watches stopped", status_code=503)
        return PlainTextResponse("OK")

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return Starlette(routes=[Route("/healthz", healthz), Route("/metrics", metrics)])


class _Server(uvicorn.Server):
    """uvicorn, minus its own SIGTERM/SIGINT handlers: it would take the signal from run(), stop only itself,
    and raise the signal again once stopped, killing the process before the controller has been closed."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


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


@contextlib.asynccontextmanager
async def serving(app: Starlette, listen: str) -> AsyncIterator[int]:
    """Serve ``app`` on ``listen`` (HOST:PORT) until the block ends; yields the bound port (``:0`` picks one)."""
    host, port = parse_listen(listen)
    server = _Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(), name="gitops health server")
    while not server.started:
        if task.done():
            task.result()  # raises why it could not start (port in use, say)
            raise OSError(f"--listen {listen}: the health server stopped at once")
        await asyncio.sleep(0.01)
    try:
        yield server.servers[0].sockets[0].getsockname()[1] if server.servers else port
    finally:
        server.should_exit = True
        await task


async def run(options: GitOpsOptions, stop: asyncio.Event | None = None) -> None:
    """Run until ``stop`` is set, SIGTERM or SIGINT arrives, or the watches fail (their error is raised)."""
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
            watched: Api = NamespacedWatch(api, options.namespaces) if options.namespaces else api
            following = asyncio.create_task(follow(watched, controller), name="gitops follow")
            stack.push_async_callback(_cancel, following)
            if options.listen is not None:
                port = await stack.enter_async_context(serving(health_app(controller, following), options.listen))
                log.info("serving /healthz and /metrics on port %d", port)
            if options.receiver_listen is not None:
                port = await stack.enter_async_context(serving(receiver_app(controller), options.receiver_listen))
                log.info("serving the Receivers' webhooks on port %d", port)
            where = ", ".join(options.namespaces) or "all namespaces"
            log.info("following Flux objects in %s; sources under %s", where, options.workdir)
            stopping = asyncio.create_task(stop.wait(), name="gitops stop")
            await asyncio.wait((following, stopping), return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if following.done():
                error = following.exception()
                raise WatchFailed(str(_first(error)) if error else "they ended without being stopped") from error
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
