"""Helpers of ``bench/dataplane.py``: small upstreams, keep-alive clients, load generators, /proc readings.

Everything listens on and talks to 127.0.0.1 only. Run as a script (``python _dataplane_helpers.py serve PORT
NAME``) it is a fast single-process asyncio responder, the upstream of the throughput runs.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

Json = dict[str, Any]


# -- upstreams -----------------------------------------------------------------------------------------------------
class _Responder(asyncio.Protocol):
    """HTTP/1.1 keep-alive: answers every request (GET, no body expected) with 200 and a fixed body."""

    def __init__(self, answer: bytes) -> None:
        self._answer = answer
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        count = self._buffer.count(b"\r\n\r\n")
        if count and self._transport is not None:
            self._buffer = self._buffer[self._buffer.rfind(b"\r\n\r\n") + 4 :]
            self._transport.write(self._answer * count)


def answer(name: str) -> bytes:
    body = name.encode()
    return b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)


def serve_forever(port: int, name: str) -> None:
    """The responder as its own process (``python _dataplane_helpers.py serve PORT NAME``)."""

    async def main() -> None:
        reply = answer(name)
        server = await asyncio.get_running_loop().create_server(lambda: _Responder(reply), "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def direct_response_bootstrap(admin_port: int, upstreams: dict[str, int]) -> Json:
    """An Envoy that answers on each port with a fixed body (``upstreams``: body → port): a fast non-Python
    upstream."""
    listeners = []
    for name, port in upstreams.items():
        route_config = {
            "virtual_hosts": [
                {
                    "name": name,
                    "domains": ["*"],
                    "routes": [
                        {"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": name}}}
                    ],
                }
            ]
        }
        listeners.append(_listener(name, port, route_config))
    return {"admin": {"address": _address(admin_port)}, "static_resources": {"listeners": listeners}}


# -- the static Envoy the canaryflow-configured one is compared with -----------------------------------------------
def static_split_bootstrap(admin_port: int, listen_port: int, domains: list[str], clusters: dict[str, int]) -> Json:
    """A minimal hand-written Envoy config: one listener, ``domains`` split evenly over ``clusters`` (name → port)."""
    share = 100 // len(clusters)
    weights = [share] * len(clusters)
    weights[0] += 100 - share * len(clusters)
    weighted = [{"name": name, "weight": weight} for name, weight in zip(clusters, weights, strict=True)]
    route_config = {
        "virtual_hosts": [
            {
                "name": "split",
                "domains": domains,
                "routes": [{"match": {"prefix": "/"}, "route": {"weighted_clusters": {"clusters": weighted}}}],
            }
        ]
    }
    return {
        "admin": {"address": _address(admin_port)},
        "static_resources": {
            "listeners": [_listener("static", listen_port, route_config)],
            "clusters": [
                {
                    "name": name,
                    "type": "STATIC",
                    "connect_timeout": "1s",
                    "load_assignment": {
                        "cluster_name": name,
                        "endpoints": [{"lb_endpoints": [{"endpoint": {"address": _address(port)}}]}],
                    },
                }
                for name, port in clusters.items()
            ],
        },
    }


def _listener(name: str, port: int, route_config: Json) -> Json:
    manager = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3"
        ".HttpConnectionManager",
        "stat_prefix": name,
        "route_config": route_config,
        "http_filters": [
            {
                "name": "envoy.filters.http.router",
                "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
            }
        ],
    }
    return {
        "name": name,
        "address": _address(port),
        "filter_chains": [
            {"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": manager}]}
        ],
    }


def _address(port: int) -> Json:
    return {"socket_address": {"address": "127.0.0.1", "port_value": port}}


class Process:
    """A child process of the benchmark, stopped by its PID.

    Each runs in a session of its own, as the local runtime starts Envoy and the workloads: with the kernel's
    autogroup scheduling (``/proc/sys/kernel/sched_autogroup_enabled``) a session is scheduled as one group, so an
    Envoy sharing the load generator's session gets a different share of the CPU than the runtime's Envoy.
    """

    def __init__(self, name: str, argv: list[str], log: Path) -> None:
        self.name = name
        self._log = log.open("ab")
        self.popen = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log, start_new_session=True
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stop(self, timeout: float = 5.0) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout)
        self._log.close()


def start_envoy(binary: str, bootstrap: Json, directory: Path, name: str, concurrency: int) -> Process:
    path = directory / f"{name}.json"
    path.write_text(json.dumps(bootstrap))
    argv = [binary, "-c", str(path), "--disable-hot-restart", "--concurrency", str(concurrency)]
    argv += ["--log-level", "warning"]
    return Process(name, argv, directory / f"{name}.log")


async def wait_listening(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout:g}s") from None
            await asyncio.sleep(0.02)
            continue
        writer.close()
        return


# -- a keep-alive client ---------------------------------------------------------------------------------------------
class KeepAlive:
    """One keep-alive HTTP/1.1 connection to a listener; ``get`` returns the status and body."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> KeepAlive:
        self._reader, self._writer = await asyncio.open_connection("127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._writer is not None:
            self._writer.close()

    async def get(self, host: str, path: str = "/") -> tuple[int, bytes]:
        assert self._reader is not None and self._writer is not None
        self._writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        head = await asyncio.wait_for(self._reader.readuntil(b"\r\n\r\n"), 10)
        lines = head.decode("latin-1").split("\r\n")
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        body = await self._reader.readexactly(length)
        return int(lines[0].split()[1]), body


class BlockingKeepAlive:
    """One keep-alive HTTP/1.1 connection used from a thread, so a client does not share the event loop it
    measures."""

    def __init__(self, port: int) -> None:
        self._socket = socket.create_connection(("127.0.0.1", port), timeout=10)
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buffer = b""

    def close(self) -> None:
        self._socket.close()

    def get(self, host: str, path: str = "/") -> tuple[int, bytes]:
        self._socket.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        while b"\r\n\r\n" not in self._buffer:
            self._receive()
        head, _, self._buffer = self._buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        while len(self._buffer) < length:
            self._receive()
        body, self._buffer = self._buffer[:length], self._buffer[length:]
        return int(lines[0].split()[1]), body

    def _receive(self) -> None:
        chunk = self._socket.recv(65536)
        if not chunk:
            raise ConnectionError("the proxy closed the connection")
        self._buffer += chunk


def poll_until(conn: BlockingKeepAlive, host: str, expected: bytes, started: threading.Event) -> tuple[float, int]:
    """Request through ``conn`` until the answer is ``expected``: when it arrived, and how many others came first."""
    others = 0
    deadline = time.perf_counter() + 10.0
    while time.perf_counter() < deadline:
        status, body = conn.get(host)
        started.set()
        if status == 200 and body == expected:
            return time.perf_counter(), others
        others += 1
    raise TimeoutError(f"no answer {expected.decode()!r} within 10 s")


# -- load generators ------------------------------------------------------------------------------------------------
def load_tool(preferred: str) -> str:
    """``hey`` or ``wrk``: the preferred one when installed, else the other."""
    order = [preferred, *(t for t in ("hey", "wrk") if t != preferred)]
    for tool in order:
        if shutil.which(tool):
            return tool
    raise SystemExit("neither hey nor wrk is installed: `apt-get install hey` (or run `make setup`)")


def load(tool: str, port: int, host: str, seconds: float, connections: int) -> tuple[float, dict[str, int]]:
    """Requests per second through ``127.0.0.1:port`` with ``Host: host``, and the responses by status."""
    url = f"http://127.0.0.1:{port}/"
    if tool == "hey":
        argv = ["hey", "-z", f"{seconds:g}s", "-c", str(connections), "-host", host, url]
    else:
        threads = min(connections, os.cpu_count() or 1)
        argv = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds:g}s", "-H", f"Host: {host}", url]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False).stdout
    if tool == "hey":
        rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
        codes = {k: int(v) for k, v in re.findall(r"\[(\d{3})\]\s+(\d+) responses", out)}
        errors = re.search(r"Error distribution:(.*)", out, re.S)
        if errors and errors.group(1).strip():
            codes["errors"] = sum(int(n) for n in re.findall(r"\[(\d+)\]", errors.group(1)))
    else:
        rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
        total = re.search(r"(\d+) requests in", out)
        bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        codes = {"all": int(total.group(1)) if total else 0, "non-2xx": int(bad.group(1)) if bad else 0}
    if rate is None:
        raise RuntimeError(f"{tool} printed no rate: {out[-500:]}")
    return float(rate.group(1)), codes


# -- figures ------------------------------------------------------------------------------------------------------
def percentile(values: Iterable[float], p: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[round(p) - 1]


# -- /proc ---------------------------------------------------------------------------------------------------------
def descendants(pid: int) -> dict[int, int]:
    """Every live process below ``pid`` (children, grandchildren…) with its parent, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rfind(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out: dict[int, int] = {}
    todo = [pid]
    while todo:
        parent = todo.pop()
        for child in children.get(parent, []):
            out[child] = parent
            todo.append(child)
    return out


def memory_kb(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of a process in kB, from /proc/PID/smaps_rollup (0, 0 when it is gone)."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0, 0
    values = dict(re.findall(r"^(Rss|Pss):\s+(\d+) kB", text, re.M))
    return int(values.get("Rss", 0)), int(values.get("Pss", 0))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (all its threads)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "serve":
    serve_forever(int(sys.argv[2]), sys.argv[3])
