"""The control loop's HTTP surface: ``/metrics`` (Flagger's metric names) and ``/healthz``, and how a runtime
serves an app in its own event loop.

Runtimes mount it (the local runtime's API server, the operator's metrics port); it holds no state of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

import uvicorn
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


def parse_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"--listen {listen!r}: expected HOST:PORT, e.g. 0.0.0.0:8080")
    return host.strip("[]"), int(port)


class Server(uvicorn.Server):
    """uvicorn, minus its own SIGTERM/SIGINT handlers: it would take the signal from the runtime, stop only
    itself, and raise the signal again once stopped, ending the process before the runtime has stopped the rest."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def serving(app: Starlette, listen: str, what: str) -> AsyncIterator[int]:
    """Serve ``app`` on ``listen`` (HOST:PORT) until the block ends; yields the bound port (``:0`` picks one).
    A server that cannot start (port in use, say) raises why."""
    host, port = parse_listen(listen)
    server = Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(), name=what)
    while not server.started:
        if task.done():
            task.result()
            raise OSError(f"--listen {listen}: the {what} stopped at once")
        await asyncio.sleep(0.01)
    try:
        yield server.servers[0].sockets[0].getsockname()[1] if server.servers else port
    finally:
        server.should_exit = True
        await task
