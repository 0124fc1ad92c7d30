"""Supervised helper processes of the local runtime (Envoy, Prometheus): start, readiness, restart, stop.

A ``Supervised`` process is restarted when it exits without being asked to: at once after its first crash (the
mesh must be back within a second), then with a backoff doubling up to ``max_backoff`` while it keeps crashing.
It runs in its own session so a terminal's Ctrl-C reaches the runtime only, which then stops it by its PID.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import random
import signal
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path

from canaryflow.clock.backoff import Backoff

logger = logging.getLogger(__name__)
_POLL = 0.02
#: How often a probe's sleep looks whether its process still runs.
_NAP = 0.05
_STABLE = 10.0  # a process that ran this long before exiting crashed once, not in a loop


class ProcessError(RuntimeError):
    """A helper process could not be started or did not become ready."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, below the kernel's ephemeral range.

    The port is handed to a process that binds it a moment later. A port from ``bind(0)`` comes from the ephemeral
    range, where every outgoing connection (``hey``, Envoy's upstreams, Prometheus' scrapes) takes its local port:
    under load one of them could take it in that moment, and the replica would fail to listen, or its readiness
    probe would reach someone else. Below that range only listeners that chose the port themselves compete."""
    first = _ephemeral_start()
    for _ in range(64):
        port = _random.randrange(_LOWEST, first)
        if port_is_free(port):
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:  # a crowded machine: any free port
        s.bind(("127.0.0.1", 0))
        found: int = s.getsockname()[1]
        return found


#: Where the runtime's ports start (above the registered ports most services use).
_LOWEST = 20_000
_random = random.SystemRandom()


def _ephemeral_start() -> int:
    try:
        start = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        start = 32_768  # Linux's default
    return max(start, _LOWEST + 1_000)


def port_is_free(port: int) -> bool:
    """True when a server could listen on 127.0.0.1:``port`` now. Binds as servers do (Envoy, Prometheus and
    uvicorn set SO_REUSEADDR): without it, connections of a previous run left in TIME_WAIT make a port look
    taken for a minute after every restart, though the servers would bind it fine."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@dataclasses.dataclass(frozen=True, slots=True)
class Command:
    name: str
    argv: Sequence[str]
    log_path: Path
    env: Mapping[str, str] | None = None


class Supervised:
    """One helper process, kept running until ``stop``.

    ``ready`` answers whether the process serves; ``before_restart`` runs before each restart (Envoy puts its
    last good configuration back there).
    """

    def __init__(
        self,
        command: Command,
        ready: Callable[[], Awaitable[bool]],
        *,
        before_restart: Callable[[], None] | None = None,
        max_backoff: float = 1.0,
    ) -> None:
        self.command = command
        self._ready = ready
        self._before_restart = before_restart
        self._max_backoff = max_backoff
        self._backoff = Backoff(first=0.1, cap=max_backoff)
        self._process: asyncio.subprocess.Process | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._stopping = False
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    async def nap(self, seconds: float) -> bool:
        """Sleep ``seconds``, waking early (and answering False) if the process stops; True if it still runs."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while loop.time() < deadline:
            if not self.running:
                return False
            await asyncio.sleep(min(_NAP, max(0.0, deadline - loop.time())))
        return self.running

    @property
    def returncode(self) -> int | None:
        """The exit status of the current child while it is down (before its restart), else None."""
        return self._process.returncode if self._process is not None else None

    async def start(self, timeout: float = 10.0) -> None:
        """Start the process and wait until it is ready; ``ProcessError`` with its log's tail otherwise."""
        self._stopping = False
        await self._spawn()
        await self.wait_ready(timeout)
        self._watcher = asyncio.create_task(self._watch(), name=f"supervise {self.command.name}")

    async def wait_ready(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if self._process is not None and self._process.returncode is not None and self._watcher is None:
                raise ProcessError(f"{self.command.name} exited with {self._process.returncode}: {self.log_tail()}")
            if await self._ready():
                return
            await asyncio.sleep(_POLL)
        raise ProcessError(f"{self.command.name} not ready after {timeout:g}s: {self.log_tail()}")

    async def stop(self, grace: float = 5.0) -> None:
        """Stop by PID: SIGTERM, then SIGKILL after ``grace`` seconds."""
        self._stopping = True
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
        await _end(self._process, grace)

    async def kill_child(self, grace: float = 5.0) -> None:
        """End the current child by PID (SIGTERM, then SIGKILL after ``grace`` seconds) and leave it to the
        supervisor to start again, counted in ``restarts``: what the kubelet does when a liveness probe fails."""
        await _end(self._process, grace)

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.command.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return " | ".join(text.strip().splitlines()[-lines:])

    async def _spawn(self) -> None:
        self.command.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **(self.command.env or {})}
        with self.command.log_path.open("ab") as log:
            try:
                self._process = await asyncio.create_subprocess_exec(
                    *self.command.argv, stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
                    env=env, start_new_session=True,
                )  # fmt: skip
            except OSError as exc:
                raise ProcessError(f"cannot start {self.command.name}: {exc}") from exc

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        crashes = 0  # in a row, each soon after its start
        while not self._stopping:
            assert self._process is not None
            started = loop.time()
            code = await self._process.wait()
            if self._stopping:
                return
            crash_loop = self.restarts > 0 and loop.time() - started < _STABLE
            crashes = crashes + 1 if crash_loop else 0
            backoff = self._backoff.delay(crashes) if crashes else 0.0
            logger.warning("%s exited with %s; restarting in %.1fs", self.command.name, code, backoff)
            await asyncio.sleep(backoff)
            if self._before_restart is not None:
                self._before_restart()
            try:
                await self._spawn()
            except ProcessError as exc:
                logger.error("%s", exc)
                await asyncio.sleep(self._max_backoff)
                continue
            self.restarts += 1


async def _end(process: asyncio.subprocess.Process | None, grace: float) -> None:
    """SIGTERM ``process`` (by PID), then SIGKILL after ``grace`` seconds; nothing when it has already ended."""
    if process is None or process.returncode is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        async with asyncio.timeout(grace):
            await process.wait()
    except TimeoutError:
        process.kill()
        await process.wait()
