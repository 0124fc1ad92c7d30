"""Parts of bench/kube_operator.py: the operator process it measures, and what the bench does around it.

The operator runs in a child process (``python bench/_operator_helpers.py --server URL ...``) so that its CPU
time and memory can be read from /proc apart from the emulated API server, which runs in the bench's process.
The child is the operator's real code: ``OperatorRuntime`` with kopf, KubeApi, KubeWorkload, KubeRouter, the
status store, the event sink, the scheduler and the /metrics server, talking HTTP to the emulator. Only two
adapters are stand-ins, as in the lifecycle tests: metric values come from a fixed table (there is no
Prometheus), and webhooks answer from memory (there is no load tester).

Tick lag is measured inside the child by timing the executor: every tick's start and end (``time.monotonic``,
the same clock in both processes on Linux) is written to a JSON file when the child stops. The scheduler starts
a canary's next tick ``interval`` after its previous tick ended, so a tick's lag is
``start(n) - end(n-1) - interval``: the time the event loop, kopf and the other canaries kept it waiting.

The child stops when a line arrives on its stdin (kopf's stop flag, as an embedding program would use): a
SIGTERM would start kopf's "ultimate exit" timer instead.

bench/chaos_operator.py runs the same child with per-canary metric values from a table file (``--metrics``),
without leader election (``--standalone``), and ends it with ``OperatorProcess.kill`` (``kill -9``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from canaryflow.api.canary import Canary, CanaryMetric
from canaryflow.control.executor import Executor
from canaryflow.control.scheduler import Timing
from canaryflow.engine.tick import TickResult
from canaryflow.hooks.memory import MemoryHookRunner
from canaryflow.kube.runtime import OperatorOptions, OperatorRuntime

Json = dict[str, Any]
#: The canaries' own ``analysis.interval``; ``Timing.scale`` turns it into the interval asked for.
SPEC_INTERVAL = 10.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# -- in the child -----------------------------------------------------------------------------------------------
class FixedMetrics:
    """Every metric answers a passing value (no Prometheus here); idle canaries query none anyway.

    With a ``table`` file (JSON ``{"namespace/name": {"metric": value}}``, read at every measurement, so the
    bench that writes it decides what the next check sees, across operator restarts too), a canary named in it
    gets its own values."""

    def __init__(self, values: Mapping[str, float] | None = None, table: Path | None = None) -> None:
        self.values = dict(values or {"request-success-rate": 99.9, "request-duration": 100.0})
        self.table = table

    async def measure(self, canary: Canary, metric: CanaryMetric) -> float:
        if self.table is not None and self.table.exists():
            own: Mapping[str, float] = json.loads(self.table.read_text()).get(canary.key, {})
            if metric.name in own:
                return float(own[metric.name])
        return self.values[metric.name]

    async def check_providers(self, canary: Canary) -> list[str]:
        return []


class TickTimer:
    """Records (canary, start, end) of every tick the executor runs, by wrapping its ``tick``."""

    def __init__(self, executor: Executor) -> None:
        self.ticks: list[tuple[str, float, float]] = []
        self._tick = executor.tick
        executor.tick = self.tick  # type: ignore[method-assign]  # the scheduler calls executor.tick

    async def tick(self, canary: Canary, *args: Any, **kwargs: Any) -> TickResult | None:
        start = time.monotonic()
        try:
            return await self._tick(canary, *args, **kwargs)
        finally:
            self.ticks.append((canary.key, start, time.monotonic()))


async def serve_operator(
    server: str, namespace: str, interval: float, dump: Path, *, metrics: Path | None = None, standalone: bool = False
) -> None:
    options = OperatorOptions(
        namespaces=(namespace,),
        listen="127.0.0.1:0",
        server=server,
        log_level="warning",
        timing=Timing(scale=interval / SPEC_INTERVAL, min_interval=SPEC_INTERVAL),
        **({"peering": None} if standalone else {}),
    )
    runtime = OperatorRuntime(options, metrics=FixedMetrics(table=metrics), hooks=MemoryHookRunner())
    stop, ready = asyncio.Event(), asyncio.Event()
    await runtime.start()
    timer = TickTimer(runtime.executor)
    try:
        kopf_task = asyncio.create_task(runtime.run_kopf(stop, ready), name="kopf")
        readiness = asyncio.create_task(ready.wait())
        await asyncio.wait({kopf_task, readiness}, return_when=asyncio.FIRST_COMPLETED)
        if kopf_task.done():
            kopf_task.result()  # raises what stopped kopf
            raise RuntimeError("kopf stopped before it was ready")
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)  # the parent's stop signal (or its end: EOF)
        stop.set()
        await kopf_task
    finally:
        await runtime.stop()
        dump.write_text(json.dumps({"ticks": timer.ticks}))


def child_main() -> None:
    parser = argparse.ArgumentParser(description="The operator under measurement (started by bench/kube_operator.py).")
    parser.add_argument("--server", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--interval", type=float, required=True)
    parser.add_argument("--dump", type=Path, required=True)
    parser.add_argument("--metrics", type=Path, help="per-canary metric values (JSON), read at every check")
    parser.add_argument("--standalone", action="store_true", help="no leader election (kopf peering)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="operator: %(levelname)s %(name)s: %(message)s")
    asyncio.run(
        serve_operator(
            args.server, args.namespace, args.interval, args.dump, metrics=args.metrics, standalone=args.standalone
        )
    )


# -- in the bench -----------------------------------------------------------------------------------------------
class OperatorProcess:
    """The child above: started, read from /proc while it runs, stopped by its PID (stdin line, then kill)."""

    def __init__(
        self, server: str, namespace: str, interval: float, dump: Path, *extra: str, stderr: IO[str] | None = None
    ) -> None:
        self.dump = dump
        self.argv = [sys.executable, "-P", __file__, "--server", server, "--namespace", namespace,
                     "--interval", str(interval), "--dump", str(dump), *extra]  # fmt: skip
        self.stderr = stderr
        self.proc: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 60.0) -> None:
        self.proc = subprocess.Popen(
            self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, text=True
        )
        line = _readline(self.proc.stdout, timeout)
        if line.strip() != "ready":
            self.stop()
            raise RuntimeError(f"the operator did not start (exit code {self.proc.poll()}): {line!r}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def cpu_seconds(self) -> float:
        """User + system CPU time of the operator process so far (all its threads)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime: fields 14 and 15 of stat

    def memory_kib(self) -> tuple[int, int]:
        """(VmRSS, VmHWM): resident memory now and at its peak."""
        found: dict[str, int] = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                found[name] = int(value.split()[0])
        return found["VmRSS"], found["VmHWM"]

    def kill(self) -> int:
        """``kill -9`` the operator (no stop flag, no cleanup: a crash or an OOM kill) and reap it; its exit code."""
        proc = self.proc
        assert proc is not None
        proc.send_signal(signal.SIGKILL)
        code = proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        self.proc = None
        return code

    def stop(self, timeout: float = 60.0) -> Json:
        """Stop the operator; what it recorded (ticks), or {} if it had to be killed."""
        proc = self.proc
        if proc is None:
            return {}
        with contextlib.suppress(OSError):
            assert proc.stdin is not None
            proc.stdin.write("stop\n")
            proc.stdin.close()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return {}
        finally:
            if proc.stdout is not None:
                proc.stdout.close()
        recorded: Json = json.loads(self.dump.read_text()) if self.dump.exists() else {}
        return recorded


def _readline(stream: IO[str] | None, timeout: float) -> str:
    """One line from the child's stdout, or "" if none comes within ``timeout`` seconds."""
    assert stream is not None
    readable, _, _ = select.select([stream], [], [], timeout)
    return stream.readline() if readable else ""


@dataclasses.dataclass
class TickTimes:
    """The ticks that started in a window, seen three ways (seconds each)."""

    lag: list[float]  # start - previous end - interval: how late by the scheduler's own rule
    drift: list[float]  # start - previous start - interval: what an observer of the API traffic sees
    duration: list[float]  # end - start: API round trips and CPU of one tick


def tick_times(ticks: list[list[Any]], interval: float, since: float, until: float) -> TickTimes:
    """Lag, drift and duration of every tick (canary, start, end) that started in [since, until)."""
    previous: dict[str, tuple[float, float]] = {}
    times = TickTimes([], [], [])
    for key, start, end in sorted(ticks, key=lambda t: float(t[1])):
        if since <= start < until:
            times.duration.append(end - start)
            if key in previous:
                times.lag.append(start - previous[key][1] - interval)
                times.drift.append(start - previous[key][0] - interval)
        previous[key] = (start, end)
    return times


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


if __name__ == "__main__":
    child_main()
