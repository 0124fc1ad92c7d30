"""The demo app's own Prometheus metrics: request counts and durations per route, as podinfo exports them.

The canary analysis reads Envoy's statistics, not these; they are here so ``/metrics`` behaves like
podinfo's, and so a user can see from the app itself what it served, injected faults included (this
middleware sits outside the fault injector).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Finer than the client's defaults below 100 ms, where a healthy demo app answers.
_LABELS = ("method", "path", "status")
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class RequestMetrics:
    """Holds the registry; ``middleware`` records every HTTP request, ``endpoint`` serves the text format."""

    def __init__(self) -> None:
        # podinfo exports no ``*_created`` series; they only double the text a scrape reads.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry()
        self.requests = Counter("http_requests_total", "HTTP requests answered.", _LABELS, registry=self.registry)
        self.duration = Histogram(
            "http_request_duration_seconds",
            "Time spent answering HTTP requests.",
            _LABELS,
            buckets=_BUCKETS,
            registry=self.registry,
        )

    def middleware(self, app: ASGIApp, routes: Sequence[BaseRoute]) -> ASGIApp:
        async def record(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            status = 500  # what the client sees if the app raises before answering
            started = time.perf_counter()

            async def send_and_note(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                await send(message)

            try:
                await app(scope, receive, send_and_note)
            finally:
                labels = (scope["method"], _route_label(scope, routes), str(status))
                self.requests.labels(*labels).inc()
                self.duration.labels(*labels).observe(time.perf_counter() - started)

        return record

    async def endpoint(self, request: Request) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


def _route_label(scope: Scope, routes: Sequence[BaseRoute]) -> str:
    """The route's template (``/status/{code}``), so a label never takes one value per URL."""
    for route in routes:
        match, _ = route.matches(scope)
        if match is not Match.NONE and isinstance(route, Route):
            return route.path
    return "other"
