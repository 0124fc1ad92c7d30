"""The dashboard's web app (starlette): pages, server-sent-event streams, actions, the seed's Grafana view.

``Dashboard(backend, token)`` holds the app and the timeline history; ``serve`` runs both for as long as a
runtime does. Every response carries a Content-Security-Policy allowing only the dashboard's own scripts, so even
markup that slipped through escaping could not run.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from canaryflow.control.web import serving
from canaryflow.dashboard import auth, grafana, model, render
from canaryflow.dashboard.base import Backend, NotFound, Refused
from canaryflow.dashboard.history import History
from canaryflow.engine.machine import Operation

STATIC = Path(__file__).with_name("static")
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
GITOPS_KINDS = ("GitRepository", "Kustomization", "ImageRepository", "ImagePolicy", "ImageUpdateAutomation")


class Dashboard:
    def __init__(self, backend: Backend, token: str | None = None, period: float = 1.0) -> None:
        self.backend = backend
        self.guard = auth.Guard(token)
        self.history = History(backend, period)
        self.app = Starlette(routes=self._routes())
        self.app.add_middleware(_Headers)

    def _routes(self) -> list[Route | Mount]:
        return [
            Route("/", self.index), Route("/stream", self.list_stream), Route("/gitops", self.gitops),
            Route("/login", self.login, methods=["GET", "POST"]), Route("/logout", self.logout, methods=["POST"]),
            Route("/canaries/{namespace}/{name}", self.canary),
            Route("/canaries/{namespace}/{name}/stream", self.canary_stream),
            Route("/canaries/{namespace}/{name}/timeline", self.timeline),
            Route("/canaries/{namespace}/{name}/actions/{operation}", self.act, methods=["POST"]),
            Route("/canaries/{namespace}/{name}/gates/{webhook}/{verb}", self.gate, methods=["POST"]),
            Route("/d/flagger-istio/{slug}", self.grafana_page),
            Route("/d/flagger-istio/{slug}/data", self.grafana_data),
            Route("/healthz", lambda request: Response("OK")),
            Mount("/static", StaticFiles(directory=STATIC)),
        ]  # fmt: skip

    # -- pages --------------------------------------------------------------------------------------------------
    def _page(self, request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        context.setdefault("stream", "")
        html = render.page(template, read_only=self.guard.read_only, logged_in=self.guard.logged_in(request),
                           csrf=self.guard.csrf(request), **context)  # fmt: skip
        return HTMLResponse(html, status)

    async def index(self, request: Request) -> Response:
        canaries = await self.backend.canaries()
        return self._page(request, "list.html", title="Canaries", rows=render.rows(canaries), stream="/stream")

    async def canary(self, request: Request) -> Response:
        body = await self._find(request)
        if body is None:
            return self._message(request, 404, "Not found", f"canary {_key(request)} not found", "/")
        key = model.key_of(body)
        events = await self.backend.events(key, 100)
        fragments = render.canary_fragments(body, events, self.guard.csrf(request), self._can_act(request))
        return self._page(request, "canary.html", title=key, key=key, fragments=fragments,
                          notice=request.query_params.get("notice", ""), can_act=self._can_act(request),
                          stream=f"/canaries/{key}/stream")  # fmt: skip

    async def gitops(self, request: Request) -> Response:
        found = await self.backend.gitops()
        kinds = [(kind, [_flux_row(o) for o in found.get(kind, [])]) for kind in GITOPS_KINDS]
        return self._page(request, "gitops.html", title="GitOps", kinds=kinds)

    async def timeline(self, request: Request) -> Response:
        body = await self._find(request)
        if body is None:
            return JSONResponse({"error": f"canary {_key(request)} not found"}, 404)
        return JSONResponse(self._timeline(body))

    def _timeline(self, body: dict[str, Any]) -> dict[str, Any]:
        data = self.history.timeline(model.key_of(body))
        data["thresholds"] = {c.name: {"min": c.min, "max": c.max} for c in model.checks(body)}
        return data

    # -- live updates -------------------------------------------------------------------------------------------
    async def list_stream(self, request: Request) -> Response:
        async def fragments() -> dict[str, Any]:
            return {"html": {"rows": render.rows(self.history.latest or await self.backend.canaries())}}

        return self._stream(request, fragments)

    async def canary_stream(self, request: Request) -> Response:
        key, csrf, can_act = _key(request), self.guard.csrf(request), self._can_act(request)

        async def fragments() -> dict[str, Any]:
            body = next((c for c in self.history.latest if model.key_of(c) == key), None)
            if body is None:
                return {"html": {"phase": "deleted"}}
            events = await self.backend.events(key, 100)
            return {"html": render.canary_fragments(body, events, csrf, can_act), "timeline": self._timeline(body)}

        return self._stream(request, fragments)

    def _stream(self, request: Request, fragments: Any) -> Response:
        async def events() -> AsyncIterator[str]:
            sent: dict[str, str] = {}
            seen = -1
            while not await request.is_disconnected():
                seen = await self.history.changed(seen, timeout=15.0)
                for name, data in (await fragments()).items():
                    text = json.dumps(data, separators=(",", ":"))
                    if sent.get(name) != text:
                        sent[name] = text
                        yield f"event: {name}\ndata: {text}\n\n"
                yield ": keep-alive\n\n"

        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    # -- actions ------------------------------------------------------------------------------------------------
    async def login(self, request: Request) -> Response:
        if request.method == "GET":
            return self._page(request, "login.html", title="Log in", notice="")
        if not auth.same_origin(request):
            return self._message(request, 403, "Refused", "cross-site request refused", "/login")
        form = await _form(request)
        session = self.guard.login(str(form.get("token", "")))
        if session is None:
            return self._page(request, "login.html", 401, title="Log in", notice="Wrong token.")
        response = RedirectResponse("/", 303)
        response.set_cookie(auth.COOKIE, session, httponly=True, samesite="strict", path="/")
        return response

    async def logout(self, request: Request) -> Response:
        form = await _form(request)
        if self.guard.check(request, str(form.get("csrf", ""))) is None:
            self.guard.logout(request)
        response = RedirectResponse("/", 303)
        response.delete_cookie(auth.COOKIE, path="/")
        return response

    async def act(self, request: Request) -> Response:
        try:
            operation = Operation(request.path_params["operation"])
        except ValueError:
            return await self._answer(request, 400, "operation must be promote, abort or retry")
        denied = await self._denied(request)
        if denied is not None:
            return denied
        try:
            await self.backend.operate(_key(request), operation)
        except NotFound as exc:
            return await self._answer(request, 404, str(exc))
        return await self._answer(request, 200, f"{operation.value} requested")

    async def gate(self, request: Request) -> Response:
        verb = request.path_params["verb"]
        if verb not in ("open", "close"):
            return await self._answer(request, 400, "a gate is opened or closed: …/open or …/close")
        denied = await self._denied(request)
        if denied is not None:
            return denied
        try:
            said = await self.backend.gate(_key(request), request.path_params["webhook"], verb == "open")
        except NotFound as exc:
            return await self._answer(request, 404, str(exc))
        except Refused as exc:
            return await self._answer(request, 502, str(exc))
        return await self._answer(request, 200, said)

    async def _denied(self, request: Request) -> Response | None:
        form = await _form(request)
        denied = self.guard.check(request, str(form.get("csrf", "")) or None)
        return None if denied is None else await self._answer(request, denied.status, denied.reason)

    async def _answer(self, request: Request, status: int, message: str) -> Response:
        """A browser's form goes back to the canary's page (or sees why not); a script gets JSON."""
        if "text/html" not in request.headers.get("accept", ""):
            return JSONResponse({"canary": _key(request), "message": message}, status)
        if status == 200:
            return RedirectResponse(f"/canaries/{_key(request)}?notice={_quote(message)}", 303)
        return self._message(request, status, "Refused" if status in (401, 403) else "Error", message,
                             f"/canaries/{_key(request)}")  # fmt: skip

    def _message(self, request: Request, status: int, title: str, message: str, back: str) -> HTMLResponse:
        return self._page(request, "message.html", status, title=title, message=message, back=back)

    def _can_act(self, request: Request) -> bool:
        return not self.guard.read_only and self.guard.logged_in(request)

    async def _find(self, request: Request) -> dict[str, Any] | None:
        key = _key(request)
        return next((c for c in await self.backend.canaries() if model.key_of(c) == key), None)

    # -- the seed's Grafana view --------------------------------------------------------------------------------
    async def grafana_page(self, request: Request) -> Response:
        params = dict(request.query_params)
        rows = [model.row(c) for c in await self.backend.canaries()]
        if not any(k.startswith("var-") for k in params):
            return self._page(request, "grafana.html", title="Istio Canary", values=None, rows=rows, problem="")
        try:
            values = grafana.variables(params)
        except grafana.BadVariable as exc:
            return self._page(request, "grafana.html", 400, title="Istio Canary", values=None, rows=rows,
                              problem=str(exc))  # fmt: skip
        query = "&".join(f"var-{k}={_quote(v)}" for k, v in values.items())
        return self._page(request, "grafana.html", title="Istio Canary", values=values, rows=rows, problem="",
                          panels=grafana.panels(), data_url=f"{request.url.path}/data?{query}")  # fmt: skip

    async def grafana_data(self, request: Request) -> Response:
        try:
            values = grafana.variables(dict(request.query_params))
        except grafana.BadVariable as exc:
            return JSONResponse({"error": str(exc)}, 400)
        if self.backend.prometheus is None:
            return JSONResponse({"error": "this runtime has no Prometheus to query"}, 503)
        return JSONResponse(await grafana.query(self.backend.prometheus, values))


class _Headers:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] += [(k.lower().encode(), v.encode()) for k, v in HEADERS.items()]
            await send(message)

        await self.app(scope, receive, with_headers)


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded form's fields (the only kind the pages send; no multipart parser needed)."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return {}
    body = await request.body()
    if len(body) > 64 * 1024:
        return {}
    return {k: v[0] for k, v in urllib.parse.parse_qs(body.decode(errors="replace")).items()}


def _key(request: Request) -> str:
    return f"{request.path_params['namespace']}/{request.path_params['name']}"


def _quote(text: str) -> str:
    return urllib.parse.quote(text, safe="")


def _flux_row(body: dict[str, Any]) -> dict[str, str]:
    meta, status = body.get("metadata") or {}, body.get("status") or {}
    ready: dict[str, Any] = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
    revision = (status.get("artifact") or {}).get("revision") or status.get("lastAppliedRevision") or ""
    latest = (status.get("latestRef") or {}) or {}
    if not revision and latest:
        revision = f"{latest.get('name', '')}:{latest.get('tag', '')}"
    revision = revision or status.get("lastPushCommit") or ""
    return {"namespace": str(meta.get("namespace", "")), "name": str(meta.get("name", "")), "revision": str(revision),
            "ready": str(ready.get("status", "Unknown")), "message": str(ready.get("message", ""))}  # fmt: skip


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    """How a runtime serves its dashboard: where (HOST:PORT, loopback unless told otherwise) and the token."""

    listen: str = "127.0.0.1:0"
    token: str | None = None


@contextlib.asynccontextmanager
async def serve(backend: Backend, settings: Settings) -> AsyncIterator[int]:
    """Serve the dashboard (and keep its history) until the block ends; yields the bound port."""
    dashboard = Dashboard(backend, settings.token)
    async with dashboard.history.running(), serving(dashboard.app, settings.listen, "dashboard") as port:
        await asyncio.sleep(0)
        yield port
