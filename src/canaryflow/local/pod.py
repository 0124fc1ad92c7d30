"""One replica of a workload: what its process runs (built from the pod template through the image catalog),
and the supervised process with its readiness prober (and its liveness prober, ``liveness``, when the container
has a livenessProbe).

The prober runs for as long as the replica does, so readiness is known without waiting when the engine asks and
the mesh hears at once when a replica stops serving (a crash takes it out of the endpoints within ``_POLL``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

from canaryflow.local import images, podspec, probes, procs, volumes
from canaryflow.local.liveness import Liveness
from canaryflow.local.probes import STARTUP_PERIOD, Probe

_POLL = 0.05
# A crash-looping process is restarted at most this far apart (the kubelet's CrashLoopBackOff, shortened).
MAX_BACKOFF = 5.0


@dataclasses.dataclass(frozen=True, slots=True)
class ProcessSpec:
    """What one replica runs: its command, full environment, probes and reported version."""

    argv: tuple[str, ...]
    env: Mapping[str, str]
    probe: Probe
    probe_env: Mapping[str, str]
    version: str
    liveness: Probe | None = None
    volume_dir: Path | None = None  # the pod's mounted volumes (``volumes``), removed when the replica stops


@dataclasses.dataclass(frozen=True, slots=True)
class Blueprint:
    """Everything a replica of one template needs besides its name and port."""

    namespace: str
    template: Mapping[str, Any]
    source: podspec.ConfigSource  # where its ConfigMaps and Secrets are read
    extra_env: Mapping[str, str]
    bin_dir: Path
    time_scale: float
    volumes_dir: Path  # each pod's volumes go in a directory of its name here


def builder(blueprint: Blueprint) -> Callable[[str, int], ProcessSpec]:
    """``make(pod name, host port)`` for the template's one application container (Istio's are the mesh's).

    Raises ``ImageError`` at once when the template has no single runnable container; ``make`` raises
    ``PodError`` (a missing ConfigMap), ``ImageError`` (an image or command the catalog cannot run) or
    ``ValueError`` (a probe or volume that cannot exist locally). ``make`` writes the pod's volumes; the
    replica removes them when it stops.
    """
    b = blueprint
    runnable = [c for c in podspec.containers(b.template) if not images.is_mesh_provided(c)]
    if len(runnable) != 1:
        names = ", ".join(str(c.get("name")) for c in runnable) or "none"
        raise images.ImageError(f"a pod runs exactly one application container locally (found: {names})")
    container = runnable[0]
    path = f"{b.bin_dir}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}"

    def make(pod_name: str, port: int) -> ProcessSpec:
        env = podspec.container_env(container, podspec.Pod(pod_name, b.namespace, b.template), b.source)
        volume_dir = b.volumes_dir / pod_name
        try:
            mounts = volumes.mount(b.template, container, b.source, volume_dir)
        except BaseException:
            volumes.remove(volume_dir)
            raise
        rewrite = volumes.rewriter(mounts)  # mount paths in the command line and environment → host paths
        words = {k: podspec.expand_all(container[k], env) for k in ("command", "args") if container.get(k)}
        words = {k: [rewrite(w) for w in ws] for k, ws in words.items()}
        env = {**{k: rewrite(v) for k, v in env.items()}, **volumes.env(mounts)}
        base = {**b.extra_env, "HOSTNAME": pod_name, "PATH": path}
        host = images.resolve({**container, **words}, port, {**base, **env})
        full = {**host.env, **base, **env}
        # The demo app serves everything on one port, so each declared container port maps to it.
        ports = {host.container_port: port} | {int(p["containerPort"]): port for p in container.get("ports") or ()}
        probed = volumes.with_probe_paths(container, rewrite)
        probe, liveness = Probe.from_container(probed, ports, b.time_scale), Probe.liveness(probed, ports, b.time_scale)
        probe_env = probes.probe_env(full, str(b.bin_dir))
        return ProcessSpec(host.argv, full, probe, probe_env, host.version, liveness, volume_dir if mounts else None)

    return make


class Replica:
    """One process and its readiness prober."""

    def __init__(self, name: str, index: int, port: int, revision: str, spec: ProcessSpec, log_path: Path) -> None:
        self.name, self.index, self.port, self.revision, self.spec = name, index, port, revision, spec
        command = procs.Command(name, spec.argv, log_path, spec.env)
        self.process = procs.Supervised(command, _serving, before_restart=self._exited, max_backoff=MAX_BACKOFF)
        self.ready = False
        self.problem = "starting"
        self.exit_code: int | None = None
        self._probers: list[asyncio.Task[None]] = []
        self._ready_after = -1  # the process.restarts count when this replica was last ready
        self.ready_at: float | None = None  # the event loop's time when it last became ready
        self.liveness = (
            None
            if spec.liveness is None
            else Liveness(name, self.process, spec.liveness, spec.probe_env, self._started)
        )

    @property
    def exits(self) -> int:
        if self.process.pid is None:  # not started yet
            return 0
        return self.process.restarts + (0 if self.process.running else 1)

    async def start(self, client: httpx.AsyncClient, changed: Callable[[], None]) -> None:
        log_path = self.process.command.log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("a") as out:
            out.write(f"--- {self.name} (revision {self.revision}, version {self.spec.version}) on port {self.port}\n")
        await self.process.start()
        self._probers.append(asyncio.create_task(self._probe_loop(client, changed), name=f"probe {self.name}"))
        if self.liveness is not None:
            self._probers.append(asyncio.create_task(self.liveness.run(client), name=f"liveness {self.name}"))

    async def stop(self) -> None:
        for prober in self._probers:
            # Cancel until the prober is really done: a cancellation delivered as an awaited call completes can
            # be lost, and waiting on the prober forever would freeze the replica set and its canary's ticks.
            while not prober.done():
                prober.cancel()
                await asyncio.wait({prober}, timeout=1.0)
            with contextlib.suppress(asyncio.CancelledError, Exception):
                prober.result()
        self._probers.clear()
        self.ready = False
        await self.process.stop()
        if self.spec.volume_dir is not None:
            volumes.remove(self.spec.volume_dir)

    def log_tail(self, lines: int = 3) -> str:
        try:
            text = self.process.command.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        tail: list[str] = []
        for line in reversed(text.strip().splitlines()):
            if line.startswith("--- "):
                break
            if line.strip() and (not tail or tail[-1] != line):  # a crash loop repeats the same line
                tail.append(line.strip())
            if len(tail) == lines:
                break
        return " | ".join(reversed(tail))

    def _exited(self) -> None:
        # Called by the supervisor just before a restart, while the exited child is still at hand.
        code = _exit_code(self.process)
        self.exit_code = self.exit_code if code is None else code

    async def _probe_loop(self, client: httpx.AsyncClient, changed: Callable[[], None]) -> None:
        timing, seen, ever_ready, successes, failures = self.spec.probe.timing, -1, False, 0, 0
        while True:
            if not self.process.running:
                self._exited()
                self._set(False, "process exited", changed)
                await asyncio.sleep(_POLL)
                continue
            if self.process.restarts != seen:  # a (re)started process: its initial delay applies again
                seen, ever_ready, successes, failures = self.process.restarts, False, 0, 0
                self._set(False, "starting", changed)
                if not await self.process.nap(timing.initial_delay):
                    continue
            try:
                problem = await self.spec.probe.check(client, self.spec.probe_env)
            except Exception as exc:  # a probe that cannot run fails; the prober itself must keep going
                problem = f"probe failed: {exc!r}"
            if problem is None:
                successes, failures = successes + 1, 0
                if successes >= timing.success_threshold:
                    ever_ready = True
                    self._set(True, "", changed)
            else:
                successes, failures = 0, failures + 1
                self.problem = problem
                if failures >= timing.failure_threshold or not ever_ready:
                    self._set(False, problem, changed)
            await self.process.nap(timing.period if ever_ready else min(timing.period, STARTUP_PERIOD))

    def available(self, min_ready: float, now: float) -> bool:
        """Ready for at least ``min_ready`` seconds (a Deployment's ``minReadySeconds``), as Kubernetes counts
        ``availableReplicas``."""
        return self.ready and self.ready_at is not None and now - self.ready_at >= min_ready

    def _started(self) -> bool:
        return self._ready_after == self.process.restarts

    def _set(self, ready: bool, problem: str, changed: Callable[[], None]) -> None:
        if ready:
            self._ready_after = self.process.restarts
        self.problem = "" if ready else (problem or self.problem)
        if ready != self.ready:
            self.ready = ready
            self.ready_at = asyncio.get_running_loop().time() if ready else None
            changed()


async def _serving() -> bool:
    return True  # Supervised.start returns at once; readiness is the prober's job


def _exit_code(process: procs.Supervised) -> int | None:
    # Supervised keeps only its current child; while the process is down, that child holds the exit status.
    child = getattr(process, "_process", None)
    code = getattr(child, "returncode", None)
    return code if isinstance(code, int) else None
