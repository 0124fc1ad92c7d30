"""insecureSkipVerify against a real HTTPS server with a self-signed certificate."""

from __future__ import annotations

import json
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from canaryflow.metrics.base import MetricError
from canaryflow.metrics.factory import PrometheusFactory

from .resources import template

ANSWER = {"status": "success", "data": {"resultType": "scalar", "result": [0, "1"]}}


class _Answer(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps(ANSWER).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def https_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An HTTPS server on a free loopback port whose certificate no one trusts."""
    workdir: Path = tmp_path_factory.mktemp("tls")
    cert, key = workdir / "cert.pem", workdir / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def test_insecure_skip_verify_accepts_a_self_signed_certificate(https_address: str) -> None:
    factory = PrometheusFactory()
    provider = factory.for_template(template("up", address=https_address, insecureSkipVerify=True), None)
    try:
        assert await provider.query("up") == 1.0
    finally:
        await factory.close()


async def test_certificates_are_verified_by_default(https_address: str) -> None:
    factory = PrometheusFactory()
    provider = factory.for_template(template("up", address=https_address), None)
    try:
        with pytest.raises(
            MetricError, match=f"prometheus {https_address} is unreachable: .*certificate verify failed"
        ):
            await provider.query("up")
    finally:
        await factory.close()
