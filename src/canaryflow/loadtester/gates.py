"""Manual gates: ``/gate/*`` holds a canary at confirm-rollout/confirm-promotion hooks until someone opens
its gate; ``/rollback/*`` lets someone ask for a rollback through a ``rollback`` hook.

A gate is keyed by the canary's ``name.namespace`` and is closed until opened, so a hook pointing at
``/gate/check`` waits for a person. Gates live in memory: a restarted load tester closes them all,
as Flagger's does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from canaryflow.loadtester import payload


class GateStore:
    """Open/closed flags by canary; closed unless opened."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._open: set[str] = set()

    def open(self, canary: str) -> None:
        self._open.add(canary)

    def close(self, canary: str) -> None:
        self._open.discard(canary)

    def is_open(self, canary: str) -> bool:
        return canary in self._open

    def opened(self) -> list[str]:
        return sorted(self._open)


Handler = Callable[[Request], Awaitable[Response]]


async def _approve(request: Request) -> Response:
    return PlainTextResponse("Approved")


async def _halt(request: Request) -> Response:
    return PlainTextResponse("Forbidden", status_code=403)


def _handlers(store: GateStore) -> tuple[Handler, Handler, Handler]:
    """check, open and close for one store."""

    async def check(request: Request) -> Response:
        try:
            canary = payload.parse(await request.body()).canary
        except payload.PayloadError as exc:
            return PlainTextResponse(str(exc), status_code=400)
        if store.is_open(canary):
            return PlainTextResponse("Approved")
        return PlainTextResponse("Forbidden", status_code=403)

    def setter(action: Callable[[str], None], done: str) -> Handler:
        async def handle(request: Request) -> Response:
            try:
                canary = payload.parse(await request.body()).canary
            except payload.PayloadError as exc:
                return PlainTextResponse(str(exc), status_code=400)
            action(canary)
            return PlainTextResponse(f"{store.kind} {done} for {canary}", status_code=202)

        return handle

    return check, setter(store.open, "opened"), setter(store.close, "closed")


def routes(gates: GateStore, rollbacks: GateStore) -> list[Route]:
    """``/gate/{approve,halt,check,open,close}`` and ``/rollback/{check,open,close}``."""
    any_method = ["GET", "POST", "PUT"]
    result = [
        Route("/gate/approve", _approve, methods=any_method),
        Route("/gate/halt", _halt, methods=any_method),
    ]
    for prefix, store in (("/gate", gates), ("/rollback", rollbacks)):
        check, open_, close = _handlers(store)
        result += [
            Route(f"{prefix}/check", check, methods=["POST", "PUT"]),
            Route(f"{prefix}/open", open_, methods=["POST", "PUT"]),
            Route(f"{prefix}/close", close, methods=["POST", "PUT"]),
        ]
    return result
