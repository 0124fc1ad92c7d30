"""The demo app's HTTP surface: podinfo's endpoints, answered the way podinfo answers them.

Starlette on uvicorn: an asyncio server with a real listen backlog and TCP_NODELAY, so it does not stall
behind Envoy the way ``http.server`` does, and the project already depends on both. A hand-written asyncio
HTTP server would be faster per request, but the demo serves tens of requests per second, and the Envoy
throughput benchmark measures Envoy, not this app.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import platform
import sys
from collections.abc import AsyncIterator

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from canaryflow.api.timestamps import rfc3339
from canaryflow.demoapp import faults, metrics, tokens

DEFAULT_LOGO = "https://raw.githubusercontent.com/stefanprodan/podinfo/gh-pages/cuddle_clap.gif"
_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}
# Headers passed on to backends by /echo, so a request can be traced through the mesh.
_FORWARDED = ("user-agent", "x-request-id", "traceparent", "x-b3-traceid", "x-b3-spanid", "x-b3-sampled")


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    version: str
    hostname: str
    revision: str = "local"
    color: str = "#34577c"
    message: str = ""  # empty: podinfo's "greetings from podinfo v<version>"
    logo: str = DEFAULT_LOGO
    backend_urls: tuple[str, ...] = ()
    jwt_secret: str = "canaryflow-demo"
    unhealthy: bool = False
    unready: bool = False
    faults: faults.Faults = dataclasses.field(default_factory=faults.Faults)


class DemoApp:
    """Request handlers over the settings and the one piece of mutable state, readiness."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ready = not (settings.unready or settings.faults.unready)
        self._client: httpx.AsyncClient | None = None

    async def info(self, request: Request) -> Response:
        s = self.settings
        return JSONResponse(
            {
                "hostname": s.hostname,
                "version": s.version,
                "revision": s.revision,
                "color": s.color,
                "logo": s.logo,
                "message": s.message or f"greetings from podinfo v{s.version}",
                "goos": sys.platform,
                "goarch": _GOARCH.get(platform.machine(), platform.machine()),
                "runtime": f"python{platform.python_version()}",
                # Strings, as podinfo writes them.
                "num_goroutine": str(len(asyncio.all_tasks())),
                "num_cpu": str(os.cpu_count() or 1),
            }
        )

    async def version(self, request: Request) -> Response:
        return JSONResponse({"version": self.settings.version, "commit": self.settings.revision})

    async def healthz(self, request: Request) -> Response:
        if self.settings.unhealthy:
            return JSONResponse({"status": "UNHEALTHY"}, status_code=503)
        return JSONResponse({"status": "OK"})

    async def readyz(self, request: Request) -> Response:
        if not self.ready:
            return JSONResponse({"status": "NOT READY"}, status_code=503)
        return JSONResponse({"status": "OK"})

    async def readyz_enable(self, request: Request) -> Response:
        # The unready fault is part of the release: it cannot be switched off from outside.
        self.ready = not self.settings.faults.unready
        return JSONResponse({"ready": self.ready}, status_code=202)

    async def readyz_disable(self, request: Request) -> Response:
        self.ready = False
        return JSONResponse({"ready": False}, status_code=202)

    async def status(self, request: Request) -> Response:
        code = _int_param(request, "code")
        if code is None or not 200 <= code <= 599:
            return JSONResponse({"error": "the status code must be a number in 200..599"}, status_code=400)
        if code in (204, 304):  # HTTP forbids a body on these
            return Response(status_code=code)
        return JSONResponse({"status": code}, status_code=code)

    async def delay(self, request: Request) -> Response:
        try:
            seconds = float(request.path_params["seconds"])
        except ValueError:
            return JSONResponse({"error": "delay must be a number of seconds"}, status_code=400)
        if not 0 <= seconds <= 600:
            return JSONResponse({"error": "delay must be between 0 and 600 seconds"}, status_code=400)
        await asyncio.sleep(seconds)
        return JSONResponse({"delay": int(seconds) if seconds.is_integer() else seconds})

    async def token(self, request: Request) -> Response:
        name = (await request.body()).decode("utf-8", "replace").strip() or "anonymous"
        token, claims = tokens.issue(name, self.settings.jwt_secret)
        return JSONResponse({"token": token, "expires_at": rfc3339(claims.expires_at)})

    async def token_validate(self, request: Request) -> Response:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        claims = None
        if scheme.lower() == "bearer":
            claims = tokens.verify(token.strip(), self.settings.jwt_secret)
        if claims is None:
            return JSONResponse({"error": "invalid or expired token"}, status_code=401)
        return JSONResponse({"token_name": claims.name, "expires_at": rfc3339(claims.expires_at)})

    async def echo(self, request: Request) -> Response:
        body = await request.body()
        if not self.settings.backend_urls:
            # podinfo answers an echo with 202 Accepted.
            return Response(body, status_code=202, media_type=request.headers.get("content-type"))
        return await self._echo_through_backends(request, body)

    async def _echo_through_backends(self, request: Request, body: bytes) -> Response:
        """podinfo's frontend mode: pass the body to each backend (through the mesh) and list the answers."""
        if self._client is None:
            # trust_env: the runtime sets HTTP_PROXY to the mesh, which resolves names like ``backend``.
            self._client = httpx.AsyncClient(trust_env=True, timeout=10.0)
        headers = {name: value for name in _FORWARDED if (value := request.headers.get(name))}
        answers: list[str] = []
        for url in self.settings.backend_urls:
            try:
                reply = await self._client.post(url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                return JSONResponse({"error": f"backend {url} unreachable: {exc}"}, status_code=503)
            if reply.status_code >= 400:
                return JSONResponse({"error": f"backend {url} answered {reply.status_code}"}, status_code=503)
            answers.append(reply.text)
        return JSONResponse(answers, status_code=202)

    async def env(self, request: Request) -> Response:
        return JSONResponse([f"{key}={value}" for key, value in sorted(os.environ.items())])

    async def headers(self, request: Request) -> Response:
        grouped: dict[str, list[str]] = {}
        for name, value in request.headers.items():
            grouped.setdefault(name.title(), []).append(value)
        return JSONResponse(grouped)

    async def panic(self, request: Request) -> Response:
        # podinfo's /panic kills the process: the supervisor's restart path can be exercised on demand.
        os._exit(255)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()


def build_app(settings: Settings) -> ASGIApp:
    """The ASGI application: routes, then fault injection, then request metrics outermost."""
    demo = DemoApp(settings)
    request_metrics = metrics.RequestMetrics()
    routes = [
        Route("/", demo.info),
        Route("/api/info", demo.info),
        Route("/version", demo.version),
        Route("/healthz", demo.healthz),
        Route("/readyz", demo.readyz),
        Route("/readyz/enable", demo.readyz_enable, methods=["POST"]),
        Route("/readyz/disable", demo.readyz_disable, methods=["POST"]),
        Route("/status/{code}", demo.status, methods=["GET", "POST", "PUT", "DELETE", "HEAD"]),
        Route("/delay/{seconds}", demo.delay),
        Route("/token", demo.token, methods=["POST"]),
        Route("/token/validate", demo.token_validate),
        Route("/echo", demo.echo, methods=["POST", "PUT"]),
        Route("/api/echo", demo.echo, methods=["POST", "PUT"]),
        Route("/env", demo.env),
        Route("/headers", demo.headers),
        Route("/metrics", request_metrics.endpoint),
        Route("/panic", demo.panic),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await demo.close()

    starlette = Starlette(routes=routes, lifespan=lifespan)
    injected = faults.FaultInjector(starlette, settings.faults)
    return request_metrics.middleware(injected, routes)


def _int_param(request: Request, name: str) -> int | None:
    try:
        return int(request.path_params[name])
    except ValueError:
        return None
