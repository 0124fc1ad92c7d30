"""Serve one ASGI app as the whole process: uvicorn's own signal handlers, since the process is the server."""

from __future__ import annotations

import dataclasses

import uvicorn
from starlette.types import ASGIApp


@dataclasses.dataclass(frozen=True, slots=True)
class Listen:
    host: str
    port: int
    #: uvicorn's level name; ``debug`` also logs every request.
    level: str = "info"
    #: Seconds an idle keep-alive connection stays open.
    keep_alive: int = 5
    #: Seconds open requests get to finish on SIGTERM.
    graceful_shutdown: int = 5


def run(app: ASGIApp, listen: Listen) -> int:
    """Serve ``app`` until SIGTERM or SIGINT; the exit code: 0 after a clean stop, 1 when it could not start."""
    config = uvicorn.Config(
        app,
        host=listen.host,
        port=listen.port,
        log_level=listen.level,
        access_log=listen.level == "debug",
        timeout_keep_alive=listen.keep_alive,
        timeout_graceful_shutdown=listen.graceful_shutdown,
        server_header=False,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    server.run()
    return 0 if server.started else 1
