"""The local runtime's HTTP API on 127.0.0.1: what the CLI (``apply``, ``get``, ``promote``…) talks to.

Objects are served in Kubernetes' shapes (``kubectl get -o json`` prints a ``List`` whose items have
apiVersion, kind, metadata, spec and status), so scripts written against kubectl keep working.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from canaryflow.api import loader
from canaryflow.api.status import Phase
from canaryflow.control.web import metrics_app
from canaryflow.engine.machine import Operation
from canaryflow.local import cadvisor, gitops_api, snapshot
from canaryflow.local.base import Runtime
from canaryflow.local.objects import Rejected

#: Where each operation applies (the engine ignores it elsewhere, with a warning that would replace the message).
APPLIES = {
    Operation.PROMOTE: frozenset({Phase.PROGRESSING, Phase.WAITING_PROMOTION, Phase.WAITING}),
    Operation.ABORT: frozenset({Phase.PROGRESSING, Phase.WAITING_PROMOTION, Phase.WAITING}),
    Operation.RETRY: frozenset({Phase.FAILED}),
}  # fmt: skip


def refusal(operation: Operation, key: str, phase: Phase) -> str | None:
    """Why ``operation`` cannot apply to a canary in ``phase`` (None when it can): said at once, with 409,
    instead of queueing an operation the engine would ignore."""
    if phase in APPLIES[operation]:
        return None
    if operation is Operation.RETRY:
        return f"cannot retry canary {key}: it is {phase}; retry re-runs the analysis of a Failed revision"
    if phase in (Phase.PROMOTING, Phase.FINALISING):
        return f"cannot {operation} canary {key}: it is {phase}, the analysis is over"
    return f"cannot {operation} canary {key}: it is {phase}, no analysis is running"


def build(runtime: Runtime) -> Starlette:
    async def status(request: Request) -> Response:
        return JSONResponse(
            {
                "endpoints": runtime.endpoints(),
                "processes": runtime.process_health(),
                "canaries": runtime.canaries.keys,
                "pid": os.getpid(),
                "globalNotifier": runtime.global_notifier or None,
            }
        )

    async def apply(request: Request) -> Response:
        return await _change(request, runtime, delete=False)

    async def delete(request: Request) -> Response:
        return await _change(request, runtime, delete=True)

    async def objects(request: Request) -> Response:
        kind = snapshot.KINDS.get(request.path_params["kind"])
        if kind is None:
            return JSONResponse({"error": snapshot.unknown_kind(request.path_params["kind"], snapshot.KINDS)}, 404)
        namespace = request.query_params.get("namespace") or None
        items = await listing(runtime, kind, namespace)
        name = request.query_params.get("name")
        if name is not None:
            items = [i for i in items if i["metadata"]["name"] == name]
            if not items:
                return JSONResponse({"error": snapshot.not_found(kind, namespace or "", name)}, status_code=404)
        return JSONResponse(snapshot.as_list(items))

    async def events(request: Request) -> Response:
        canary = request.query_params.get("canary") or None
        namespace = request.query_params.get("namespace") or None
        limit = int(request.query_params.get("limit", "100"))
        return JSONResponse(await snapshot.recent_events(runtime.events, canary, namespace, limit))

    async def operate(request: Request) -> Response:
        key = f"{request.path_params['namespace']}/{request.path_params['name']}"
        try:
            operation = Operation(request.path_params["operation"])
        except ValueError:
            return JSONResponse({"error": "operation must be promote, abort or retry"}, status_code=400)
        if key not in runtime.canaries.keys:
            return JSONResponse({"error": snapshot.not_found("Canary", *key.split("/", 1))}, status_code=404)
        stored = await runtime.status_store.load(key)
        reason = refusal(operation, key, stored.status.phase if stored else Phase.INITIALIZING)
        if reason is not None:
            return JSONResponse({"error": reason}, status_code=409)
        await runtime.status_store.request(key, operation)
        runtime.canaries.wake(key)
        return JSONResponse({"canary": key, "operation": operation.value, "accepted": True})

    async def logs(request: Request) -> Response:
        lines = int(request.query_params.get("lines", "100"))
        text = runtime.replicas.logs(request.path_params["namespace"], request.path_params["name"], lines)
        return Response(text, media_type="text/plain")

    async def containers(request: Request) -> Response:
        return Response(cadvisor.exposition(runtime.replicas.processes), media_type=CONTENT_TYPE_LATEST)

    return Starlette(
        routes=[
            Route("/status", status),
            Route("/apply", apply, methods=["POST"]),
            Route("/delete", delete, methods=["POST"]),
            Route("/objects/{kind}", objects),
            Route("/events", events),
            Route("/canaries/{namespace}/{name}/{operation}", operate, methods=["POST"]),
            Route("/logs/{namespace}/{name}", logs),
            Route("/metrics/cadvisor", containers),
            *gitops_api.routes(runtime),
            Mount("/", metrics_app(runtime.recorder)),
        ]
    )


async def _change(request: Request, runtime: Runtime, delete: bool) -> Response:
    body = await request.json()
    namespace = body.get("namespace") or "default"
    loaded = loader.Loaded()
    for source in body.get("sources", []):
        loaded.extend(loader.load_text(source["text"], source["source"]))
    if loaded.problems:
        return JSONResponse({"problems": [str(p) for p in loaded.problems]}, status_code=422)
    try:
        if delete:
            changes = runtime.objects.delete(loaded.documents, namespace)
        else:
            changes = runtime.objects.apply(loaded.documents, namespace)
    except Rejected as rejected:
        return JSONResponse({"problems": rejected.problems}, status_code=422)
    warnings = [] if delete else runtime.objects.dangling(loaded.documents, namespace)
    await runtime.changed(changes)
    return JSONResponse({"changes": [str(c) for c in changes], "warnings": warnings})


async def listing(runtime: Runtime, kind: str, namespace: str | None) -> list[dict[str, Any]]:
    if kind == "Service":
        return runtime.services(namespace)
    if kind == "Deployment":
        return runtime.deployments(namespace)
    if kind == "Canary":
        return await snapshot.canaries_with_status(runtime.objects, runtime.status_store, namespace)
    return runtime.objects.list(kind, namespace)
