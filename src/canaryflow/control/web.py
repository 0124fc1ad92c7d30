"""The control loop's HTTP surface: ``/metrics`` (Flagger's metric names) and ``/healthz``.

Runtimes mount it (the local runtime's API server, the operator's metrics port); it holds no state of its own.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from canaryflow.control.ownmetrics import Recorder


def metrics_app(recorder: Recorder) -> Starlette:
    async def metrics(request: Request) -> Response:
        return Response(recorder.exposition(), media_type=CONTENT_TYPE_LATEST)

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("OK")

    return Starlette(routes=[Route("/metrics", metrics), Route("/healthz", healthz)])
