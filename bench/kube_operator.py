"""Kubernetes operator figures: API writes per idle tick, and tick lag, CPU and memory for 1,000 canaries.

Issue "Kubernetes operator", Benchmark section. Prints figures beside their goals (no asserts on speed), on the
real parts: the operator's own code (kopf, KubeApi, KubeWorkload, KubeRouter, status store, event sink,
scheduler, /metrics server) in a child process, talking HTTP to the realistic kmock emulator the tests use,
which runs in this process (tests/kube/emulator, own thread and event loop, 127.0.0.1). Metric values come from
a fixed table and webhooks from memory, as in the lifecycle tests; nothing here needs them once a canary is
initialized. Deployment readiness is the Deployment controller's part: this process plays it (a watch that
writes each Deployment's status as a finished rollout) until every canary is Initialized, then stops it.

  (1) writes per tick when nothing changes (goal: 0): N canaries (default 50) are created and initialized, the
      API traffic settles, then every request the emulator receives during a window of several ticks is counted:
      POST/PUT/PATCH/DELETE per canary tick, GETs per canary tick, watch (re)connections. kopf's peering
      keep-alives are writes too but belong to leader election, not to ticks: they are listed apart.
  (2) 1,000 canaries at a 10 s interval (Flagger's minimum, so the heaviest real load), once initialized:
      - tick lag p50/p99/max: the child times every tick (start and end, monotonic clock); the scheduler starts
        a canary's next tick ``interval`` after its previous tick ended, so lag = start - previous end - interval
        (how long the event loop, kopf and the other canaries kept a due tick waiting). Beside it the drift,
        start - previous start - interval (lag plus the tick's own length: what an observer of the API traffic
        sees), the tick length, and ticks per second against the count / interval wanted;
      - the operator's CPU (its process's utime+stime from /proc per wall second) and memory (VmRSS, and VmHWM:
        the peak, reached while the 1,000 canaries were initialized), and beside them the CPU of this process,
        which is the emulated API server (the bench's own main thread sleeps during the window).
A run takes about 4 minutes with the defaults (most of it initializing 1,000 canaries), and the figures
depend on what else the machine runs: the load average at the start is printed. Every process started here
is stopped by its PID.

Run: .venv/bin/python bench/kube_operator.py [--idle-canaries 50] [--canaries 1000] [--interval 10] [--ticks 6]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from canaryflow.kube.client import CANARY, DEPLOYMENT, NAMESPACE, ApiError, KubeApi

sys.path.append(str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _operator_helpers import OperatorProcess, percentile, tick_times
from tests.kube.emulator import RunningEmulator
from tests.kube.emulator.core import RecordedRequest
from tests.kube.lifecycle_support import canary_doc, deployment_doc

Json = dict[str, Any]
NS = "bench"
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
WATCH = ("true", "1")
#: How long the canaries may take to initialize before the bench measures anyway (and says so).
SETTLE_TIMEOUT = 240.0


class TimedLog(list[RecordedRequest]):
    """The emulator's request log, with the time (monotonic) each request arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def append(self, request: RecordedRequest) -> None:
        self.times.append(time.monotonic())
        super().append(request)

    def between(self, since: float, until: float) -> list[RecordedRequest]:
        return [r for r, t in zip(self, self.times, strict=False) if since <= t < until]


def resource_of(request: RecordedRequest) -> str:
    """What a request addressed, by its path: "canaries/status", "events", "kopfpeerings", ..."""
    parts = request.path.strip("/").split("/")
    if "namespaces" in parts and len(parts) > parts.index("namespaces") + 2:
        parts = parts[parts.index("namespaces") + 2 :]
    else:
        parts = parts[2:] if parts[0] == "api" else parts[3:]
    return parts[0] + ("/" + parts[2] if len(parts) > 2 else "")


def rolled_out(deployment: Json) -> Json:
    """The status the Deployment controller writes once the current spec is fully rolled out."""
    generation = deployment["metadata"].get("generation", 1)
    replicas = int(deployment["spec"].get("replicas", 1))
    if replicas == 0:
        return {"observedGeneration": generation}
    return {"observedGeneration": generation, "replicas": replicas, "updatedReplicas": replicas,
            "readyReplicas": replicas, "availableReplicas": replicas}  # fmt: skip


async def deployment_controller(api: KubeApi) -> None:
    """Plays the Deployment controller: every Deployment's status soon reports its spec rolled out.

    Status writes run concurrently (a real controller has workers too): one at a time, 1,000 canaries would
    wait on this loop rather than on the operator."""
    gate, writes = asyncio.Semaphore(16), set[asyncio.Task[None]]()

    async def write(obj: Json, status: Json) -> None:
        async with gate:
            with contextlib.suppress(ApiError):  # a newer version is on its way: its event comes next
                await api.replace_status(DEPLOYMENT, {**obj, "status": status})

    try:
        async for event in api.watch(DEPLOYMENT, NS):
            status = rolled_out(event.object)
            if event.type != "DELETED" and event.object.get("status") != status:
                task = asyncio.create_task(write(event.object, status))
                writes.add(task)
                task.add_done_callback(writes.discard)
    finally:
        for task in list(writes):
            task.cancel()


async def create_canaries(api: KubeApi, count: int) -> None:
    with contextlib.suppress(ApiError):
        await api.create(NAMESPACE, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    gate = asyncio.Semaphore(16)

    async def one(i: int) -> None:
        async with gate:
            await api.create(DEPLOYMENT, deployment_doc(f"app-{i}", NS))
            await api.create(CANARY, canary_doc(f"app-{i}", NS))

    await asyncio.gather(*(one(i) for i in range(count)))


async def settle(api: KubeApi, log: TimedLog, count: int, interval: float) -> tuple[float, str]:
    """Wait until every canary is Initialized and no write has been seen for 1.5 intervals.

    Returns the seconds it took and "" or, past SETTLE_TIMEOUT, what was still not settled."""
    start = time.monotonic()
    controller = asyncio.create_task(deployment_controller(api), name="deployment controller")
    problem = ""
    try:
        while True:
            phases = Counter(((c.get("status") or {}).get("phase") or "-") for c in await api.list(CANARY, NS))
            if phases["Initialized"] == count:
                break
            if time.monotonic() - start > SETTLE_TIMEOUT:
                problem = f"not all Initialized after {SETTLE_TIMEOUT:.0f} s: {dict(phases)}"
                break
            await asyncio.sleep(1.0)
    finally:
        controller.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await controller
    quiet = 1.5 * interval
    while not problem:
        await asyncio.sleep(interval / 2)
        now = time.monotonic()
        if not any(r.method in WRITES for r in log.between(now - quiet, now)):
            break
        if now - start > SETTLE_TIMEOUT:
            problem = f"writes continue {now - start:.0f} s after the canaries were created"
    return time.monotonic() - start, problem


async def measure(count: int, interval: float, ticks: int) -> Json:
    """Run ``count`` canaries to Initialized, then watch a window of ``ticks`` intervals."""
    with RunningEmulator() as emulator, tempfile.TemporaryDirectory() as tmp:
        log = TimedLog()
        emulator.emulator.recorded = log
        api = KubeApi.for_url(emulator.url)
        operator = OperatorProcess(emulator.url, NS, interval, Path(tmp) / "ticks.json")
        try:
            await create_canaries(api, count)
            await asyncio.to_thread(operator.start)
            settled_in, problem = await settle(api, log, count, interval)
            await api.close()  # nothing of the bench talks to the API server during the window
            since, cpu0, api_cpu0 = time.monotonic(), operator.cpu_seconds(), time.process_time()
            await asyncio.sleep(ticks * interval)
            until, cpu1, api_cpu1 = time.monotonic(), operator.cpu_seconds(), time.process_time()
            rss, peak = operator.memory_kib()
        finally:
            recorded = await asyncio.to_thread(operator.stop)
            await api.close()
    window = log.between(since, until)
    times = tick_times(recorded.get("ticks", []), interval, since, until)
    wall = until - since
    return {
        "count": count, "interval": interval, "settled_in": settled_in, "problem": problem, "wall": wall,
        "ticks": len(times.duration), "times": times,
        "writes": Counter(f"{r.method} {resource_of(r)}" for r in window if r.method in WRITES),
        "reads": Counter(resource_of(r) for r in window if r.method == "GET" and r.query.get("watch") not in WATCH),
        "watches": sum(1 for r in window if r.method == "GET" and r.query.get("watch") in WATCH),
        "cpu": (cpu1 - cpu0) / wall, "api_cpu": (api_cpu1 - api_cpu0) / wall, "rss": rss, "peak": peak,
    }  # fmt: skip


def print_writes(f: Json) -> None:
    ticks = max(f["ticks"], 1)
    election = sum(n for what, n in f["writes"].items() if what.endswith("kopfpeerings"))
    writes = sum(f["writes"].values()) - election
    print(f"  window {f['wall']:.1f} s, {f['ticks']} canary ticks (initialized and settled in {f['settled_in']:.0f} s)")
    print(f"  writes per tick        {writes / ticks:8.3f}   ({writes} in the window; goal: 0)")
    for what, n in sorted(f["writes"].items()):
        print(f"      {n:6d} {what}")
    reads = sum(f["reads"].values())
    print(f"  reads per tick         {reads / ticks:8.3f}   ({reads} GETs; watch (re)connections: {f['watches']})")
    for what, n in f["reads"].most_common():
        print(f"      {n / ticks:6.2f} GET {what}")
    per_minute = election * 60 / f["wall"]
    print(f"  leader election writes {per_minute:8.1f} per minute (kopf peering keep-alives: not per tick)")


def print_load(f: Json) -> None:
    t = f["times"]
    if not t.lag:
        print("  no canary ticked twice in the window: no tick lag to show")
        return
    for label, values, note in (
        ("tick lag  ", t.lag, f"{len(t.lag)} ticks; start - previous end - interval {f['interval']:g} s"),
        ("tick drift", t.drift, "start - previous start - interval: lag + the previous tick's length"),
        ("tick length", t.duration, "API round trips included"),
    ):
        print(f"  {label:<11} p50 {1000 * percentile(values, 50):7.1f} ms   p99 {1000 * percentile(values, 99):7.1f} ms"
              f"   max {1000 * max(values):7.1f} ms   ({note})")  # fmt: skip
    wanted = f["count"] / f["interval"]
    rate = f["ticks"] / f["wall"]
    print(f"  ticks per second {rate:.1f} (wanted {wanted:.1f}: {f['count']} canaries every {f['interval']:g} s)")
    per_tick = 1000 * f["cpu"] * f["wall"] / max(f["ticks"], 1)
    print(f"  operator CPU {f['cpu']:.3f} CPU-s per s ({100 * f['cpu']:.1f} % of a core; {per_tick:.2f} ms per tick)")
    print(f"  API server (the emulator, in the bench process) CPU {f['api_cpu']:.3f} CPU-s per s")
    print(f"  operator memory: RSS {f['rss'] / 1024:.1f} MiB, peak RSS {f['peak'] / 1024:.1f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--idle-canaries", type=int, default=50, help="canaries for (1); 0 skips it")
    parser.add_argument("--idle-interval", type=float, default=1.0, help="analysis interval in (1), seconds")
    parser.add_argument("--idle-ticks", type=int, default=10, help="intervals in the window of (1)")
    parser.add_argument("--canaries", type=int, default=1000, help="canaries for (2); 0 skips it")
    parser.add_argument("--interval", type=float, default=10.0, help="analysis interval in (2), seconds")
    parser.add_argument("--ticks", type=int, default=6, help="intervals in the window of (2)")
    args = parser.parse_args()
    print("canaryflow operator benchmark (operator in a child process; kmock emulator over HTTP in this one)")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"machine: {os.cpu_count()} CPUs, load average {load} at the start")
    results: list[Json] = []
    if args.idle_canaries:
        f = asyncio.run(measure(args.idle_canaries, args.idle_interval, args.idle_ticks))
        results.append(f)
        print(f"(1) {f['count']} idle canaries, interval {f['interval']:g} s")
        if f["problem"]:
            print(f"  NOTE: {f['problem']}")
        print_writes(f)
        print_load(f)
    if args.canaries:
        f = asyncio.run(measure(args.canaries, args.interval, args.ticks))
        results.append(f)
        print(f"(2) {f['count']} canaries, interval {f['interval']:g} s (no goal set in the issue for these figures)")
        if f["problem"]:
            print(f"  NOTE: {f['problem']}")
        print_load(f)
        print_writes(f)
    if len(results) == 2 and results[1]["count"] != results[0]["count"]:
        small, big = results
        per = (big["rss"] - small["rss"]) / (big["count"] - small["count"])
        print(f"memory per canary (RSS difference between (1) and (2)): {per:.1f} KiB")


if __name__ == "__main__":
    main()
