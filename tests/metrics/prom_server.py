"""Real servers for the metrics tests: a tiny exporter of Istio-style metrics and a Prometheus scraping it.

The exporter plays Istio's sidecars: on every scrape it counts, for each workload, the traffic it was told
that workload receives (so rates are steady and ratios exact, however fast the machine scrapes). Prometheus is
Debian's binary, started on a free loopback port with its data in a temporary directory, and stopped by PID.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.processes import stop

PROMETHEUS = "/usr/bin/prometheus"
BUCKETS = (10.0, 50.0, 100.0)  # milliseconds; +Inf is implied


@dataclass
class Traffic:
    """Requests a workload receives between two scrapes: ``fast`` ones take ≤ 10 ms, ``slow`` ones ≤ 50 ms."""

    ok: int = 0
    errors: int = 0
    fast: int = 0
    slow: int = 0


class Exporter:
    """Serves ``/metrics`` with ``istio_requests_total`` and ``istio_request_duration_milliseconds``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._traffic: dict[tuple[str, str], Traffic] = {}
        self._requests: dict[tuple[str, str, str], float] = {}
        self._buckets: dict[tuple[str, str], list[float]] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def receive(self, namespace: str, workload: str, traffic: Traffic) -> None:
        """From the next scrape on, ``workload`` gets ``traffic`` per scrape (all zeros: series, no requests)."""
        with self._lock:
            self._traffic[(namespace, workload)] = traffic

    def render(self) -> str:
        with self._lock:
            for (ns, wl), t in self._traffic.items():
                for code, n in (("200", t.ok), ("500", t.errors)):
                    self._requests[(ns, wl, code)] = self._requests.get((ns, wl, code), 0.0) + n
                counts = self._buckets.setdefault((ns, wl), [0.0] * (len(BUCKETS) + 1))
                counts[0] += t.fast  # cumulative: a fast request is also under every larger bound
                for i in range(1, len(counts)):
                    counts[i] += t.fast + t.slow
            lines = ["# TYPE istio_requests_total counter"]
            for (ns, wl, code), value in self._requests.items():
                lines.append(f'istio_requests_total{{{_labels(ns, wl)},response_code="{code}"}} {value!r}')
            lines.append("# TYPE istio_request_duration_milliseconds histogram")
            for (ns, wl), counts in self._buckets.items():
                bounds = [f"{b:g}" for b in BUCKETS] + ["+Inf"]
                for le, value in zip(bounds, counts, strict=True):
                    lines.append(f'istio_request_duration_milliseconds_bucket{{{_labels(ns, wl)},le="{le}"}} {value!r}')
                lines.append(f"istio_request_duration_milliseconds_count{{{_labels(ns, wl)}}} {counts[-1]!r}")
                lines.append(f"istio_request_duration_milliseconds_sum{{{_labels(ns, wl)}}} 0")
        return "\n".join(lines) + "\n"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = exporter.render().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep test output readable

        return Handler


def _labels(namespace: str, workload: str) -> str:
    return f'reporter="destination",destination_workload="{workload}",destination_workload_namespace="{namespace}"'


class PrometheusServer:
    """One Prometheus process scraping ``targets`` every second."""

    def __init__(self, workdir: Path, targets: list[str]) -> None:
        self.workdir = workdir
        self.targets = targets
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, attempts: int = 3) -> None:
        """Start and wait until ready; a port taken between choosing and binding gets another try."""
        config = self.workdir / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: istio\n    static_configs:\n"
            f"      - targets: [{', '.join(repr(t) for t in self.targets)}]\n"
        )
        log = self.workdir / "prometheus.log"
        for _ in range(attempts):
            self.port = _free_port()
            with log.open("wb") as out:
                self._process = subprocess.Popen(
                    [
                        PROMETHEUS,
                        f"--config.file={config}",
                        f"--storage.tsdb.path={self.workdir / 'data'}",
                        f"--web.listen-address=127.0.0.1:{self.port}",
                    ],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            if self._wait_ready(timeout=60.0):
                return
            self.stop()
        raise RuntimeError(f"prometheus did not become ready; log:\n{log.read_text()[-3000:]}")

    def stop(self) -> None:
        stop(self._process, grace=20.0)
        self._process = None

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        return True
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
