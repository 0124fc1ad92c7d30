"""A container's readiness and liveness probes, run against the host process that stands in for the container.

``httpGet`` becomes a GET on ``127.0.0.1:<host port><path>`` (any answer 200 to 399 passes, as for the kubelet);
``exec`` runs the probe's command with ``localhost:<containerPort>`` (or ``127.0.0.1:``) rewritten to the host
port, with the container's environment, the catalog's tools first on ``PATH``, and ``timeoutSeconds`` as its limit;
``tcpSocket`` connects. A container without a readiness probe is ready once its port accepts connections: a
local process is not serving the moment it starts, and the mesh must not send it traffic before it does.

Timing keeps the kubelet's meaning, scaled by the runtime's time scale: no probe before ``initialDelaySeconds``,
then one every ``periodSeconds``; ``failureThreshold`` failures in a row make a ready process unready and
``successThreshold`` successes make it ready. Until a process has first been ready it is probed every
``STARTUP_PERIOD`` instead of every period: a local process starts in well under a second, and a probe that came
a little early should not hold a rollout back a whole period.

A liveness probe is read the same way (``Probe.liveness``); a container without one is never restarted for being
unresponsive. ``local/liveness.py`` runs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import re
from collections.abc import Mapping
from typing import Any

import httpx

STARTUP_PERIOD = 0.2
_ADDRESS = re.compile(r"\b(localhost|127\.0\.0\.1|0\.0\.0\.0):(\d+)\b")


@dataclasses.dataclass(frozen=True, slots=True)
class Timing:
    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    failure_threshold: int = 3
    success_threshold: int = 1


@dataclasses.dataclass(frozen=True, slots=True)
class Probe:
    """One readiness check of one process: ``kind`` is ``http``, ``exec`` or ``tcp``."""

    kind: str
    port: int
    path: str = "/"
    command: tuple[str, ...] = ()
    timing: Timing = Timing()

    @classmethod
    def from_container(cls, container: Mapping[str, Any], ports: Mapping[int, int], time_scale: float) -> Probe:
        """The container's readinessProbe with its container ports mapped to host ports by ``ports``.

        ``ports`` maps each port the container declares to the host port its process listens on; the first
        entry is the container's main port.
        """
        spec = container.get("readinessProbe")
        if not spec:
            return cls("tcp", next(iter(ports.values())))
        return cls._read(spec, "readinessProbe", container, ports, time_scale)

    @classmethod
    def liveness(cls, container: Mapping[str, Any], ports: Mapping[int, int], time_scale: float) -> Probe | None:
        """The container's livenessProbe (``ports`` as for ``from_container``), or None when it has none."""
        spec = container.get("livenessProbe")
        return cls._read(spec, "livenessProbe", container, ports, time_scale) if spec else None

    @classmethod
    def _read(
        cls, spec: Mapping[str, Any], field: str, container: Mapping[str, Any], ports: Mapping[int, int],
        time_scale: float,
    ) -> Probe:  # fmt: skip
        host_port = next(iter(ports.values()))
        timing = Timing(
            initial_delay=float(spec.get("initialDelaySeconds", 0)) * time_scale,
            period=float(spec.get("periodSeconds", 10)) * time_scale,
            timeout=float(spec.get("timeoutSeconds", 1)),
            failure_threshold=max(1, int(spec.get("failureThreshold", 3))),
            success_threshold=max(1, int(spec.get("successThreshold", 1))),
        )
        if "httpGet" in spec:
            http = spec["httpGet"]
            if str(http.get("scheme", "HTTP")).upper() != "HTTP":
                raise ValueError(f"{field} of {container.get('name')}: only HTTP httpGet probes run locally")
            port = _port(http.get("port"), container, ports, field)
            return cls("http", port, path=str(http.get("path") or "/"), timing=timing)
        if "exec" in spec:
            command = tuple(_rewrite(str(word), ports) for word in spec["exec"].get("command") or ())
            return cls("exec", host_port, command=command, timing=timing)
        if "tcpSocket" in spec:
            return cls("tcp", _port(spec["tcpSocket"].get("port"), container, ports, field), timing=timing)
        raise ValueError(f"{field} of {container.get('name')}: no httpGet, exec or tcpSocket")

    async def check(self, client: httpx.AsyncClient, env: Mapping[str, str]) -> str | None:
        """None when the probe passes, else why it failed."""
        try:
            if self.kind == "http":
                return await self._http(client)
            if self.kind == "exec":
                return await self._exec(env)
            return await self._tcp()
        except TimeoutError:
            return f"probe timed out after {self.timing.timeout:g}s"

    async def _http(self, client: httpx.AsyncClient) -> str | None:
        url = f"http://127.0.0.1:{self.port}{self.path}"
        try:
            reply = await client.get(url, timeout=self.timing.timeout)
        except httpx.HTTPError as exc:
            return f"GET {url}: {exc.__class__.__name__} {exc}".rstrip()
        return None if 200 <= reply.status_code < 400 else f"GET {url}: HTTP {reply.status_code}"

    async def _tcp(self) -> str | None:
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that arrives as the
            # awaited call finishes, and a prober that ignores its cancel never lets its replica stop.
            async with asyncio.timeout(self.timing.timeout):
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError as exc:
            return f"connect 127.0.0.1:{self.port}: {exc.strerror or exc}"
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return None

    async def _exec(self, env: Mapping[str, str]) -> str | None:
        if not self.command:
            return "exec probe without a command"
        try:
            process = await asyncio.create_subprocess_exec(
                *self.command, env=dict(env), stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
        except OSError as exc:
            return f"exec {self.command[0]}: {exc.strerror or exc}"
        try:
            async with asyncio.timeout(self.timing.timeout):  # not wait_for: see _tcp
                output, _ = await process.communicate()
        finally:
            if process.returncode is None:  # timed out, or the prober was stopped: end our own child by PID
                process.kill()
                await process.wait()
        if process.returncode == 0:
            return None
        tail = " | ".join(output.decode(errors="replace").strip().splitlines()[-2:])
        return f"exec {' '.join(self.command)}: exit code {process.returncode}" + (f": {tail}" if tail else "")


def _port(value: object, container: Mapping[str, Any], ports: Mapping[int, int], field: str) -> int:
    """A probe's port (a number or a named container port) as the host port serving it."""
    number: int | None = None
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        number = int(value)
    else:
        for declared in container.get("ports") or ():
            if declared.get("name") == value:
                number = int(declared["containerPort"])
    if number is None:
        raise ValueError(f"{field} of {container.get('name')}: no container port named {value!r}")
    return ports.get(number, number)


def _rewrite(word: str, ports: Mapping[int, int]) -> str:
    def sub(match: re.Match[str]) -> str:
        port = int(match[2])
        return f"{match[1]}:{ports[port]}" if port in ports else match[0]

    return _ADDRESS.sub(sub, word)


def probe_env(env: Mapping[str, str], bin_dir: str) -> dict[str, str]:
    """The environment an exec probe runs in: the container's, with the catalog's tools first on PATH."""
    path = env.get("PATH") or os.environ.get("PATH", "/usr/bin:/bin")
    if not path.startswith(f"{bin_dir}{os.pathsep}"):
        path = f"{bin_dir}{os.pathsep}{path}"
    return {**os.environ, **env, "PATH": path}
