"""The local runtime's HTTP API on 127.0.0.1: what the CLI (``apply``, ``get``, ``promote``…) talks to.

Objects are served in Kubernetes' shapes (``kubectl get -o json`` prints a ``List`` whose items have
apiVersion, kind, metadata, spec and status), so scripts written against kubectl keep working.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from canaryflow.api import loader
from canaryflow.api.status import CanaryStatus
from canaryflow.control.web import metrics_app
from canaryflow.engine.machine import Operation
from canaryflow.local import cadvisor, gitops_api
from canaryflow.local.objects import Rejected

if TYPE_CHECKING:
    from canaryflow.local.runtime import LocalRuntime

KINDS = {
    "canaries": "Canary", "canary": "Canary", "deployments": "Deployment", "deployment": "Deployment",
    "services": "Service", "service": "Service", "metrictemplates": "MetricTemplate",
    "alertproviders": "AlertProvider", "configmaps": "ConfigMap", "secrets": "Secret",
}  # fmt: skip


def build(runtime: LocalRuntime) -> Starlette:
    async def status(request: Request) -> Response:
        return JSONResponse(
            {
                "endpoints": runtime.endpoints(),
                "processes": runtime.process_health(),
                "canaries": runtime.scheduler.keys,
            }
        )

    async def apply(request: Request) -> Response:
        return await _change(request, runtime, delete=False)

    async def delete(request: Request) -> Response:
        return await _change(request, runtime, delete=True)

    async def objects(request: Request) -> Response:
        kind = KINDS.get(request.path_params["kind"])
        if kind is None:
            return JSONResponse({"error": f"unknown resource type {request.path_params['kind']!r}; known: "
                                 + ", ".join(sorted(set(KINDS)))}, status_code=404)  # fmt: skip
        namespace = request.query_params.get("namespace") or None
        items = await listing(runtime, kind, namespace)
        name = request.query_params.get("name")
        if name is not None:
            items = [i for i in items if i["metadata"]["name"] == name]
            if not items:
                return JSONResponse({"error": f"{kind.lower()} {name!r} not found"}, status_code=404)
        return JSONResponse({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items})

    async def events(request: Request) -> Response:
        canary = request.query_params.get("canary") or None
        limit = int(request.query_params.get("limit", "100"))
        found = await runtime.events.recent(canary, limit)
        return JSONResponse(
            [{"time": e.time, "object": e.canary, "type": e.type.value, "reason": e.reason, "message": e.message}
             for e in found]
        )  # fmt: skip

    async def operate(request: Request) -> Response:
        key = f"{request.path_params['namespace']}/{request.path_params['name']}"
        try:
            operation = Operation(request.path_params["operation"])
        except ValueError:
            return JSONResponse({"error": "operation must be promote, abort or retry"}, status_code=400)
        if key not in runtime.scheduler.keys:
            return JSONResponse({"error": f"canary {key} not found"}, status_code=404)
        await runtime.status_store.request(key, operation)
        runtime.scheduler.wake(key)
        return JSONResponse({"canary": key, "operation": operation.value, "accepted": True})

    async def logs(request: Request) -> Response:
        lines = int(request.query_params.get("lines", "100"))
        text = runtime.workloads.logs(request.path_params["namespace"], request.path_params["name"], lines)
        return Response(text, media_type="text/plain")

    async def containers(request: Request) -> Response:
        return Response(cadvisor.exposition(runtime.workloads.processes), media_type=CONTENT_TYPE_LATEST)

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


async def _change(request: Request, runtime: LocalRuntime, delete: bool) -> Response:
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
    await runtime.changed(changes)
    return JSONResponse({"changes": [str(c) for c in changes]})


async def listing(runtime: LocalRuntime, kind: str, namespace: str | None) -> list[dict[str, Any]]:
    if kind == "Service":
        return runtime.services(namespace)
    if kind == "Deployment":
        return runtime.deployments(namespace)
    items = runtime.objects.list(kind, namespace)
    if kind == "Canary":
        for item in items:
            stored = await runtime.status_store.load(f"{item['metadata']['namespace']}/{item['metadata']['name']}")
            item["status"] = (stored.status if stored else CanaryStatus()).to_dict()
    return items
