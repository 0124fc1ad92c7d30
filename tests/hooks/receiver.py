"""An HTTP receiver on 127.0.0.1 for webhook and notifier tests: records each POST and answers from a script.

It runs in a thread, so a hook that hangs blocks only the receiver, never the event loop under test. It
also serves as a plain HTTP proxy: a request sent through a proxy arrives with the absolute URL as its
target, which ``Received.target`` keeps. The notifier tests use it too.
"""

from __future__ import annotations

import dataclasses
import json
import ssl
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

# A self-signed certificate for 127.0.0.1 (valid until 2126), made for these tests only: it protects nothing.
TEST_KEY = """-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgsjDm4dCBMp91QL3m
HUhrh5hgpS0JSInGYxP3S5UeccOhRANCAASaOo7QywIa4ZM5L2PsPRgEVajdSib9
sKFB8V2AJRd6KWHwqxLlhGrvfQuoqOG+daikNHYOBhow/QOqBb9sjnf8
-----END PRIVATE KEY-----
"""
TEST_CERT = """-----BEGIN CERTIFICATE-----
MIIBpjCCAU2gAwIBAgIUOyctBEc2wK9RAeESa+Ie5TO/wskwCgYIKoZIzj0EAwIw
GjEYMBYGA1UEAwwPY2FuYXJ5Zmxvdy10ZXN0MCAXDTI2MTEyNjExMjkyNVoYDzIx
MjYxMTAyMTEyOTI1WjAaMRgwFgYDVQQDDA9jYW5hcnlmbG93LXRlc3QwWTATBgcq
hkjOPQIBBggqhkjOPQMBBwNCAASaOo7QywIa4ZM5L2PsPRgEVajdSib9sKFB8V2A
JRd6KWHwqxLlhGrvfQuoqOG+daikNHYOBhow/QOqBb9sjnf8o28wbTAdBgNVHQ4E
FgQUiz3SpPtkp+/gr4AtVIoZoncfv38wHwYDVR0jBBgwFoAUiz3SpPtkp+/gr4At
VIoZoncfv38wDwYDVR0TAQH/BAUwAwEB/zAaBgNVHREEEzARhwR/AAABgglsb2Nh
bGhvc3QwCgYIKoZIzj0EAwIDRwAwRAIgOlSGrLw5N2V7mDk4kucyJUSfP/x3QyOl
wXFRW35GEbgCIA+wE9F8Q/H0a21Bss45kdxuR9KDIeomxKyT69mmMlHI
-----END CERTIFICATE-----
"""


@dataclasses.dataclass(frozen=True)
class Answer:
    status: int = 200
    body: str = "ok"
    content_type: str = "text/plain"


HANG = Answer(status=-1)
"""An answer that never comes: the handler waits until the receiver stops."""


@dataclasses.dataclass(frozen=True)
class Received:
    target: str
    headers: dict[str, str]
    json: Any


class Receiver:
    def __init__(self, certs_dir: Path | None = None) -> None:
        self.requests: list[Received] = []
        self._answers: deque[Answer] = deque([Answer()])
        self._release = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        scheme = "http"
        if certs_dir is not None:
            self._server.socket = _tls_context(certs_dir).wrap_socket(self._server.socket, server_side=True)
            scheme = "https"
        self.origin = f"{scheme}://127.0.0.1:{self._server.server_address[1]}"
        # shutdown() waits up to one poll interval; the default half second would dominate every test.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()

    def url(self, path: str = "/hook") -> str:
        return self.origin + path

    def answer(self, *answers: Answer) -> None:
        """Answer the next requests with these, in order; the last one repeats."""
        self._answers = deque(answers)

    @property
    def last(self) -> Received:
        assert self.requests, "the receiver got no request"
        return self.requests[-1]

    def stop(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _next(self) -> Answer:
        return self._answers.popleft() if len(self._answers) > 1 else self._answers[0]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver.requests.append(Received(self.path, headers, json.loads(raw or b"null")))
                answer = receiver._next()
                if answer is HANG:
                    receiver._release.wait()
                    return
                data = answer.body.encode()
                self.send_response(answer.status)
                self.send_header("content-type", answer.content_type)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

        return Handler


def _tls_context(certs_dir: Path) -> ssl.SSLContext:
    key, cert = certs_dir / "key.pem", certs_dir / "cert.pem"
    key.write_text(TEST_KEY)
    cert.write_text(TEST_CERT)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context
