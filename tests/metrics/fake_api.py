"""A real HTTP server on 127.0.0.1 standing in for a metrics service that cannot run here: it records every
request (method, path, query parameters, headers, body) and answers with what the test set, in the service's
documented response shape."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclasses.dataclass(frozen=True)
class Seen:
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclasses.dataclass(frozen=True)
class Reply:
    status: int = 200
    body: Any = None  # JSON unless a str
    content_type: str = "application/json"

    def encoded(self) -> bytes:
        return (self.body if isinstance(self.body, str) else json.dumps(self.body)).encode()


Handler = Callable[[Seen], Reply]


class FakeApi:
    def __init__(self, handler: Handler | None = None) -> None:
        self.seen: list[Seen] = []
        self.handler: Handler = handler or (lambda seen: Reply(404, {"error": "not set"}))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def last(self) -> Seen:
        return self.seen[-1]

    def answer(self, reply: Reply | Handler) -> None:
        self.handler = reply if callable(reply) else (lambda seen: reply)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handle(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("content-length") or 0)
                seen = Seen(
                    self.command,
                    parts.path,
                    {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()},
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length),
                )
                api.seen.append(seen)
                reply = api.handler(seen)
                body = reply.encoded()
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_DELETE = _serve

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handle

    def __enter__(self) -> FakeApi:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def serving(handler: Handler | None = None) -> Iterator[FakeApi]:
    with FakeApi(handler) as api:
        yield api


def provider_template(kind: str, address: str | None, secret: bool = True, query: str = "q", **extra: Any) -> Any:
    """A MetricTemplate ``test/<kind>`` of provider ``kind`` at ``address`` (with a secretRef when ``secret``)."""
    from canaryflow.api.metrictemplate import MetricTemplate

    provider: dict[str, Any] = {"type": kind, **extra}
    if address is not None:
        provider["address"] = address
    if secret:
        provider["secretRef"] = {"name": f"{kind}-secret"}
    return MetricTemplate.model_validate(
        {"metadata": {"name": kind, "namespace": "test"}, "spec": {"provider": provider, "query": query}}
    )
