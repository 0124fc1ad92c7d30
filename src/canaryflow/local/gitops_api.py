"""The GitOps part of the local runtime's HTTP API: Flux objects with their status, on-demand reconciles,
inventories, diffs, and the Receivers' webhook endpoints (``/hook/<digest>``, as Flux's notification-controller
serves them). A tree marks the objects whose job the runtime does itself (Istio's and Flagger's installation) as
provided: they were stored, not run."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from canaryflow.gitops import receiver
from canaryflow.gitops.controller.objects import Key
from canaryflow.gitops.controller.receivers import targets as receiver_targets
from canaryflow.gitops.kustomize import inventory
from canaryflow.local import snapshot
from canaryflow.local.base import GitOpsRuntime

#: Resource names the CLI uses (``flux get sources git`` → gitrepositories), by kind.
KINDS = {
    "gitrepositories": "GitRepository", "gitrepository": "GitRepository", "sources": "GitRepository",
    "kustomizations": "Kustomization", "kustomization": "Kustomization", "ks": "Kustomization",
    "imagerepositories": "ImageRepository", "imagerepository": "ImageRepository",
    "imagepolicies": "ImagePolicy", "imagepolicy": "ImagePolicy",
    "imageupdateautomations": "ImageUpdateAutomation", "imageupdateautomation": "ImageUpdateAutomation",
    "receivers": "Receiver", "receiver": "Receiver",
}  # fmt: skip
#: How long ``canaryflow reconcile`` waits for the reconcile it asked for.
RECONCILE_TIMEOUT = 300.0


def routes(runtime: GitOpsRuntime) -> list[Route]:
    async def listing(request: Request) -> Response:
        kind = KINDS.get(request.path_params["kind"])
        if kind is None:
            known = ", ".join(sorted(KINDS))
            return JSONResponse(
                {"error": f"unknown GitOps resource type {request.path_params['kind']!r}; known: {known}"}, 404
            )
        namespace = request.query_params.get("namespace") or None
        return JSONResponse(snapshot.as_list(snapshot.gitops_items(runtime.objects, kind, namespace)))

    def of_object(handler: Callable[[Request, Key], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        """The route for ``handler``, called with the stored object the path names; 404 when there is none."""

        async def route(request: Request) -> Response:
            kind = KINDS.get(request.path_params["kind"])
            if kind is None:
                return JSONResponse({"error": f"unknown GitOps resource type {request.path_params['kind']!r}"}, 404)
            key = Key(kind, request.path_params["namespace"], request.path_params["name"])
            if runtime.objects.get(kind, key.namespace, key.name) is None:
                return JSONResponse({"error": snapshot.not_found(kind, key.namespace, key.name)}, 404)
            return await handler(request, key)

        return route

    async def reconcile(request: Request, key: Key) -> Response:
        try:
            if request.query_params.get("with_source") and key.kind == "Kustomization":
                body = runtime.objects.get(key.kind, key.namespace, key.name) or {}
                ref = (body.get("spec") or {}).get("sourceRef") or {}
                source = Key(
                    str(ref.get("kind") or "GitRepository"),
                    str(ref.get("namespace") or key.namespace),
                    str(ref.get("name")),
                )
                await runtime.gitops.reconcile(source, RECONCILE_TIMEOUT)
            await runtime.gitops.reconcile(key, RECONCILE_TIMEOUT)
        except KeyError as exc:
            return JSONResponse({"error": str(exc).strip("'\"")}, 404)
        except TimeoutError:
            return JSONResponse({"error": f"{key} did not finish reconciling in {RECONCILE_TIMEOUT:.0f}s"}, 504)
        return JSONResponse({"status": runtime.objects.status(key.kind, key.namespace, key.name)})

    async def tree(request: Request, key: Key) -> Response:
        status = runtime.objects.status(key.kind, key.namespace, key.name)
        entries = []
        for entry in (status.get("inventory") or {}).get("entries") or []:
            ref = inventory.from_entry(entry)
            entries.append({**entry, "provided": runtime.gitops.provided(ref.api_version, ref.kind)})
        return JSONResponse({"entries": entries})

    async def diff(request: Request, key: Key) -> Response:
        try:
            found = await runtime.gitops.diff(key)
        except LookupError as exc:
            return JSONResponse({"error": str(exc)}, 404)
        return JSONResponse({"differences": found})

    async def hook(request: Request) -> Response:
        path = "/hook/" + request.path_params["digest"]
        flux_objects = runtime.gitops.objects
        for body in runtime.objects.list("Receiver"):
            meta = body["metadata"]
            ref = (body.get("spec") or {}).get("secretRef") or {}
            token = (await flux_objects.data("Secret", meta["namespace"], str(ref.get("name")))) or {}
            if "token" not in token or receiver.webhook_path(token["token"], meta["name"], meta["namespace"]) != path:
                continue
            headers = {k.lower(): v for k, v in request.headers.items()}
            verdict = receiver.judge(body, token["token"], headers, await request.body())
            keys = await receiver_targets(flux_objects, verdict)
            for key in keys:
                runtime.gitops.request(key)
            return JSONResponse({"message": verdict.message, "reconciling": [str(k) for k in keys]}, verdict.status)
        return JSONResponse({"error": "no receiver for this path"}, 404)

    return [
        Route("/gitops/{kind}", listing),
        Route("/gitops/{kind}/{namespace}/{name}/reconcile", of_object(reconcile), methods=["POST"]),
        Route("/gitops/{kind}/{namespace}/{name}/tree", of_object(tree)),
        Route("/gitops/{kind}/{namespace}/{name}/diff", of_object(diff)),
        Route("/hook/{digest}", hook, methods=["POST"]),
    ]
