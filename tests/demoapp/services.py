"""Start canaryflow's standalone services (demo app, load tester) as real processes on free loopback ports.

Each service is started with ``python -m``, waited for until it answers HTTP, and stopped by its PID at
the end of the test. The environment is scrubbed of proxy settings, podinfo configuration and fault knobs,
so only what a test passes reaches the process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import httpx

from tests.processes import free_port, stop

LISTEN_PORT = "CANARYFLOW_LISTEN_PORT"
START_LIMIT = 20.0  # seconds a service may take to answer its first request before the test gives up
_SCRUBBED_PREFIXES = ("PODINFO_", "CANARYFLOW_FAULT_")
_SCRUBBED = {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"}


@dataclasses.dataclass
class Service:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        stop(self.process)


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in _SCRUBBED and not key.startswith(_SCRUBBED_PREFIXES)
    }
    return env | dict(extra or {})


def launch(module: str, args: Sequence[str], env: Mapping[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """Start ``python -m module args`` with its output in ``log_path``; the caller waits and stops it."""
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", module, *args], env=dict(env), stdout=log, stderr=subprocess.STDOUT
        )


def start(module: str, log_path: Path, args: Sequence[str] = (), env: Mapping[str, str] | None = None) -> Service:
    """A started service that answers HTTP (any status) on its port.

    The port is a free one given with ``--port``, unless ``env`` chooses it with ``CANARYFLOW_LISTEN_PORT``.
    """
    env = clean_env(env)
    if LISTEN_PORT in env:
        port = int(env[LISTEN_PORT])
    else:
        port = free_port()
        args = ["--port", str(port), *args]
    process = launch(module, args, env, log_path)
    service = Service(process, port, log_path)
    deadline = time.monotonic() + START_LIMIT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{module} exited with {process.returncode}:\n{service.logs()}")
        with contextlib.suppress(httpx.TransportError):
            httpx.get(f"{service.url}/healthz", timeout=1.0)
            return service
        time.sleep(0.05)
    service.stop()
    raise RuntimeError(f"{module} did not answer within {START_LIMIT} s:\n{service.logs()}")


@contextlib.contextmanager
def starter(module: str, logs: Path) -> Iterator[Callable[..., Service]]:
    """Start ``module`` services with the given flags and environment (logs in ``logs``); all are stopped when
    the block ends."""
    started: list[Service] = []

    def start_one(args: Sequence[str] = (), env: Mapping[str, str] | None = None) -> Service:
        service = start(module, logs / f"{module.rpartition('.')[2]}-{len(started)}.log", args, env)
        started.append(service)
        return service

    try:
        yield start_one
    finally:
        for service in started:
            service.stop()


@contextlib.contextmanager
def running(
    module: str, log_path: Path, args: Sequence[str] = (), env: Mapping[str, str] | None = None
) -> Iterator[Service]:
    service = start(module, log_path, args, env)
    try:
        yield service
    finally:
        service.stop()


def process_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, dead but not yet reaped, counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def group_members(pgid: int) -> list[int]:
    """Live processes in process group ``pgid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rpartition(")")[2].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                members.append(int(entry.name))
    return members
