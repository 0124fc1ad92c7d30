"""Local data plane figures: weight-change latency, Envoy throughput, runtime memory, demo wall time.

Issue "Local runtime", Benchmark section. Prints figures (no asserts on speed), on the real parts:
  (1) decision-to-served latency of a weight change (goal: p99 < 50 ms): the real EnvoyRouter and EnvoyProcess;
      the time from ``set_routes`` to the first answer, on an open keep-alive connection through the mesh proxy,
      from the workload the new weights name (0/100 and 100/0 alternately; the connection polls all along);
  (2) throughput through Envoy as canaryflow configures it (a canary at 50/50) vs the same Envoy binary with a
      minimal static config to the same two upstreams, as a ratio (goal >= 0.98: no Python on the request path);
  (3) memory (RSS and PSS from /proc) of the local runtime with 20 canaries of the seed's backend, Initialized;
  (4) ``canaryflow demo`` wall time (about 2.5 minutes; ``--no-demo`` skips it).
Everything listens on 127.0.0.1; every process started here is stopped by its PID.

Run: .venv/bin/python bench/dataplane.py [--no-demo] [--sections latency throughput memory demo]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from _dataplane_helpers import (
    BlockingKeepAlive,
    KeepAlive,
    Process,
    cmdline,
    cpu_seconds,
    descendants,
    direct_response_bootstrap,
    load,
    load_tool,
    memory_kb,
    percentile,
    poll_until,
    start_envoy,
    static_split_bootstrap,
    wait_listening,
)

from canaryflow.api.canary import Canary
from canaryflow.cli.client import CliError, Runtime, kustomize, sources
from canaryflow.local.envoy import EnvoyProcess
from canaryflow.local.procs import free_port
from canaryflow.routing.base import Routes
from canaryflow.routing.envoy import Endpoint, EnvoyAdmin, EnvoyRouter, Mesh, Workload, XdsFiles
from canaryflow.routing.envoy import admin as envoy_admin

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "gitops-istio"
HELPERS = Path(__file__).resolve().with_name("_dataplane_helpers.py")
HOST = "backend.prod"  # the canary's apex service, as a client in the mesh names it
PRIMARY, CANARY = "backend-primary", "backend"
LATENCY_GOAL_MS = 50.0
RATIO_GOAL = 0.98
Figures = dict[str, Any]


def backend_canary() -> Canary:
    return Canary.model_validate(
        {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "Canary",
            "metadata": {"name": "backend", "namespace": "prod"},
            "spec": {
                "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "backend"},
                "service": {"port": 9898},
                "analysis": {"interval": "15s", "threshold": 5, "stepWeight": 10, "maxWeight": 50},
            },
        }
    )


class CanaryflowEnvoy:
    """The local mesh's Envoy as the runtime runs it (EnvoyProcess, default concurrency), routing one canary."""

    def __init__(self, workdir: Path, primary_port: int, canary_port: int) -> None:
        self.mesh = Mesh(
            proxy_port=free_port(),
            workloads=(
                Workload("prod", PRIMARY, (Endpoint(primary_port),)),
                Workload("prod", CANARY, (Endpoint(canary_port),)),
            ),
        )
        self.files = XdsFiles(workdir / "envoy")
        self.envoy = EnvoyProcess(self.files, admin_port=free_port(), log_path=workdir / "envoy.log")
        self.router = EnvoyRouter(self.files, EnvoyAdmin(self.envoy.admin_url), self.mesh)
        self.canary = backend_canary()

    @property
    def port(self) -> int:
        return self.mesh.proxy_port

    async def __aenter__(self) -> CanaryflowEnvoy:
        self.router.write()
        await self.envoy.start()
        await self.router.reconcile(self.canary)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.envoy.stop()
        await self.router.aclose()


# -- (1) decision-to-served latency ---------------------------------------------------------------------------------
async def weight_change_latency(workdir: Path, samples: int) -> Figures:
    """The client polls from a thread and the upstreams are processes of their own, so the event loop holds only
    what the runtime's loop holds: the router."""
    upstreams, ports = start_upstreams("asyncio", workdir)
    served_ms: list[float] = []
    confirmed_ms: list[float] = []
    old_answers = 0
    try:
        for port in ports.values():
            await wait_listening(port)
        async with CanaryflowEnvoy(workdir, ports[PRIMARY], ports[CANARY]) as plane:
            conn = BlockingKeepAlive(plane.port)
            try:
                for i in range(samples + 1):  # the first is a warm-up
                    to_canary = i % 2 == 0
                    expected = (CANARY if to_canary else PRIMARY).encode()
                    polling = threading.Event()
                    poller = asyncio.create_task(asyncio.to_thread(poll_until, conn, HOST, expected, polling))
                    if not await asyncio.to_thread(polling.wait, 5.0):
                        raise RuntimeError("the polling client got no answer through the mesh proxy")
                    start = time.perf_counter()
                    await plane.router.set_routes(plane.canary, Routes(0, 100) if to_canary else Routes(100, 0))
                    confirmed = time.perf_counter() - start
                    served_at, others = await poller
                    if i:
                        served_ms.append((served_at - start) * 1000)
                        confirmed_ms.append(confirmed * 1000)
                        old_answers += others
                    await asyncio.sleep(0.05)
            finally:
                conn.close()
    finally:
        for process in upstreams:
            process.stop()
    return {
        "samples": len(served_ms),
        "served_ms": _distribution(served_ms),
        "set_routes_returned_ms": _distribution(confirmed_ms),
        "old_answers_per_change": old_answers / max(len(served_ms), 1),
    }


def _distribution(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(percentile(values, 50), 2),
        "p99": round(percentile(values, 99), 2),
        "min": round(min(values), 2),
        "max": round(max(values), 2),
        "mean": round(statistics.fmean(values), 2),
    }


# -- (2) throughput: canaryflow's Envoy vs a static Envoy ------------------------------------------------------------
def start_upstreams(kind: str, workdir: Path, binary: str = "") -> tuple[list[Process], dict[str, int]]:
    ports = {PRIMARY: free_port(), CANARY: free_port()}
    if kind == "envoy":
        boot = direct_response_bootstrap(free_port(), ports)
        return [start_envoy(binary, boot, workdir, "upstream-envoy", concurrency=1)], ports
    processes = []
    for name, port in ports.items():
        if kind == "asyncio":
            argv = [sys.executable, str(HELPERS), "serve", str(port), name]
        else:  # the demo app, as a workload runs it
            argv = [sys.executable, "-m", "canaryflow.demoapp", "--port", str(port), "--level", "error"]
        processes.append(Process(f"{kind}-{name}", argv, workdir / f"upstream-{name}.log"))
    return processes, ports


async def split_check(port: int, requests: int = 40) -> collections.Counter[str]:
    """Answers through a proxy listener by status and body: both upstreams must show up at 50/50."""
    seen: collections.Counter[str] = collections.Counter()
    async with KeepAlive(port) as conn:
        for _ in range(requests):
            status, body = await conn.get(HOST)
            seen[f"{status} {body.decode(errors='replace')[:20]}"] += 1
    return seen


async def throughput(workdir: Path, kind: str, tool: str, runs: int, seconds: float, connections: int) -> Figures:
    binary = envoy_admin.envoy_binary()
    kind_dir = workdir / f"throughput-{kind}"
    kind_dir.mkdir()
    upstreams, ports = start_upstreams(kind, kind_dir, binary)
    static: Process | None = None
    try:
        for port in ports.values():
            await wait_listening(port)
        async with CanaryflowEnvoy(kind_dir, ports[PRIMARY], ports[CANARY]) as plane:
            await plane.router.set_routes(plane.canary, Routes(50, 50))
            static_port = free_port()
            hosts = [HOST, f"{HOST}:9898"]
            boot = static_split_bootstrap(
                free_port(), static_port, hosts, {PRIMARY: ports[PRIMARY], CANARY: ports[CANARY]}
            )
            static = start_envoy(binary, boot, kind_dir, "static-envoy", concurrency=2)  # the runtime's concurrency
            await wait_listening(static_port)
            targets = {"canaryflow": plane.port, "static": static_port}
            pids = {"canaryflow": plane.envoy.pid, "static": static.pid}
            checks = {name: dict(await split_check(port)) for name, port in targets.items()}
            for port in targets.values():  # warm-up
                await asyncio.to_thread(load, tool, port, HOST, 1, connections)
            rates: dict[str, list[float]] = {name: [] for name in targets}
            cpu_us: dict[str, list[float]] = {name: [] for name in targets}
            codes: dict[str, collections.Counter[str]] = {name: collections.Counter() for name in targets}
            python_cpu = 0.0
            for run in range(runs):
                order = list(targets) if run % 2 == 0 else list(reversed(targets))  # no order bias
                for name in order:
                    pid = pids[name]
                    assert pid is not None
                    before, own_before = cpu_seconds(pid), cpu_seconds(os.getpid())
                    rate, by_status = await asyncio.to_thread(load, tool, targets[name], HOST, seconds, connections)
                    used = cpu_seconds(pid) - before
                    if name == "canaryflow":  # the router's process, idle while Envoy serves
                        python_cpu += cpu_seconds(os.getpid()) - own_before
                    requests = sum(v for k, v in by_status.items() if k not in ("errors", "non-2xx"))
                    rates[name].append(rate)
                    cpu_us[name].append(used / max(requests, 1) * 1e6)
                    codes[name].update({str(k): v for k, v in by_status.items()})
    finally:
        if static is not None:
            static.stop()
        for process in upstreams:
            process.stop()
    medians = {name: statistics.median(values) for name, values in rates.items()}
    return {
        "upstream": kind,
        "tool": tool,
        "connections": connections,
        "seconds_per_run": seconds,
        "rps": {name: [round(r) for r in values] for name, values in rates.items()},
        "median_rps": {name: round(m) for name, m in medians.items()},
        "ratio": round(medians["canaryflow"] / medians["static"], 3),
        "paired_ratios": [round(c / s, 3) for c, s in zip(rates["canaryflow"], rates["static"], strict=True)],
        "envoy_cpu_us_per_request": {name: round(statistics.median(v), 1) for name, v in cpu_us.items()},
        "python_cpu_seconds_during_canaryflow_runs": round(python_cpu, 2),
        "canaryflow_run_seconds": runs * seconds,
        "responses": {name: dict(c) for name, c in codes.items()},
        "split_check": checks,
    }


# -- (3) memory of the runtime with N canaries -------------------------------------------------------------------
def runtime_memory(count: int, timeout: float) -> Figures:
    work = Path(tempfile.mkdtemp(prefix="canaryflow-bench-"))
    runtime = Runtime(str(work / "state"))
    seen_pids: set[int] = set()
    figures: Figures = {"canaries": count}
    complete = False
    try:
        started = time.monotonic()
        pid = runtime.start(time_scale=1.0, min_interval=10.0)
        figures["start_seconds"] = round(time.monotonic() - started, 1)
        figures["idle"] = _tree_memory(runtime, pid, seen_pids)
        docs = sources([str(EXAMPLES / "apps" / "namespace.yaml"), str(EXAMPLES / "istio" / "gateway")])
        backend = kustomize(EXAMPLES / "apps" / "backend")
        docs += [{"source": f"app-{n}", "text": re.sub(r"\bbackend\b", f"app-{n}", backend)} for n in range(count)]
        applied = time.monotonic()
        response = runtime.request("POST", "/apply", json={"sources": docs, "namespace": None})
        if response.status_code != 200:
            raise CliError(f"apply refused ({response.status_code}): {response.text[:500]}")
        phases = _wait_initialized(runtime, count, timeout)
        figures["phases"] = dict(phases)
        complete = phases["Initialized"] >= count
        figures["initialized_seconds"] = round(time.monotonic() - applied, 1)
        time.sleep(5.0)  # past the start-up transients (probes, first scrapes)
        figures["loaded"] = _tree_memory(runtime, pid, seen_pids)
    finally:
        runtime.stop()
        time.sleep(0.5)
        figures["left_running_after_stop"] = sorted(p for p in seen_pids if Path(f"/proc/{p}").exists())
        if complete:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"    the state directory is kept for a look at its logs: {work / 'state'}")
    return figures


def _wait_initialized(runtime: Runtime, count: int, timeout: float) -> collections.Counter[str]:
    deadline = time.monotonic() + timeout
    phases: collections.Counter[str] = collections.Counter()
    while time.monotonic() < deadline:
        items = runtime.json("GET", "/objects/canaries", params={"namespace": "prod"})["items"]
        phases = collections.Counter(i.get("status", {}).get("phase") or "(none)" for i in items)
        if phases["Initialized"] >= count:
            return phases
        time.sleep(1.0)
    print(f"  warning: not all canaries Initialized after {timeout:.0f}s: {dict(phases)}")
    for item in items:
        status = item.get("status", {})
        if status.get("phase") != "Initialized":
            name = item["metadata"]["name"]
            conditions = [c.get("message") for c in status.get("conditions", [])]
            print(f"    {name}: phase {status.get('phase')!r}, conditions {conditions}")
            events = runtime.json("GET", "/events", params={"canary": f"prod/{name}", "limit": "5"})
            for event in events:
                print(f"      event {event['type']} {event['reason']}: {event['message']}")
            for process in runtime.json("GET", "/status")["processes"]:
                if str(process.get("name", "")).startswith(f"prod/{name}-"):
                    print(f"      process {process}")
    print("    runtime log: " + runtime.log_tail(5).replace("\n", "\n    runtime log: "))
    return phases


def _tree_memory(runtime: Runtime, pid: int, seen: set[int]) -> Figures:
    """RSS and PSS of the runtime process and of every process below it, grouped by part."""
    record = runtime.dirs.record() or {}
    names = {c["pid"]: c["name"] for c in record.get("children", [])}
    tree = descendants(pid)
    seen.update(tree)
    groups: dict[str, dict[str, int]] = collections.defaultdict(lambda: {"processes": 0, "rss_kb": 0, "pss_kb": 0})
    for child in tree:
        owner = child
        while owner not in names and owner in tree:  # a recorded part's own children count with it
            owner = tree[owner]
        group = _group(names.get(owner), cmdline(child))
        rss, pss = memory_kb(child)
        groups[group]["processes"] += 1
        groups[group]["rss_kb"] += rss
        groups[group]["pss_kb"] += pss
    rss, pss = memory_kb(pid)
    return {
        "runtime_rss_mb": round(rss / 1024, 1),
        "runtime_pss_mb": round(pss / 1024, 1),
        "total_rss_mb": round((rss + sum(g["rss_kb"] for g in groups.values())) / 1024, 1),
        "total_pss_mb": round((pss + sum(g["pss_kb"] for g in groups.values())) / 1024, 1),
        "processes": 1 + len(tree),
        "by_part": {
            name: {
                "processes": g["processes"],
                "rss_mb": round(g["rss_kb"] / 1024, 1),
                "pss_mb": round(g["pss_kb"] / 1024, 1),
            }
            for name, g in sorted(groups.items())
        },
    }


def _group(recorded: str | None, line: str) -> str:
    if recorded in ("envoy", "prometheus", "loadtester"):
        return recorded
    if recorded is not None:
        return "workloads"
    return "other (" + (Path(line.split()[0]).name if line else "?") + ")"


# -- (4) canaryflow demo ----------------------------------------------------------------------------------------------
def demo_wall_time(timeout: float) -> Figures:
    exe = Path(sys.executable).with_name("canaryflow")
    command = str(exe) if exe.exists() else shutil.which("canaryflow") or "canaryflow"
    start = time.monotonic()
    process = subprocess.Popen([command, "demo"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGINT)  # the demo stops its runtime on the way out
        try:
            output, _ = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
    seconds = time.monotonic() - start
    return {"seconds": round(seconds, 1), "exit_code": process.returncode, "output_tail": output.splitlines()[-22:]}


# -- the report -------------------------------------------------------------------------------------------------------
def _load_average() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sections = ("latency", "throughput", "memory", "demo")
    upstreams = ("envoy", "asyncio", "demoapp")
    add = parser.add_argument
    add("--sections", nargs="*", choices=sections, default=list(sections), help="what to measure (default: all)")
    add("--no-demo", action="store_true", help="skip (4), the ~2.5 min demo run")
    add("--samples", type=int, default=100, help="weight changes timed in (1)")
    add("--upstreams", nargs="*", choices=upstreams, default=["envoy", "asyncio"], help=UPSTREAMS_HELP)
    add("--runs", type=int, default=5, help="load runs per config in (2), interleaved; the median is reported")
    add("--seconds", type=float, default=5.0, help="length of one load run in (2)")
    add("--connections", type=int, default=50, help="concurrent connections in (2)")
    add("--load", choices=("hey", "wrk"), default="hey", help="load generator of (2) (the other if it is missing)")
    add("--canaries", type=int, default=20, help="canaries in (3)")
    add("--init-timeout", type=float, default=300.0, help="how long (3) waits for every canary to be Initialized")
    add("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    chosen = [s for s in args.sections if not (s == "demo" and args.no_demo)]

    print(f"canaryflow data plane benchmark — {os.cpu_count()} CPUs, load average {_load_average()}")
    print("(one machine: the load generator, Envoy, the upstreams and Python share the same cores)\n")
    results: Figures = {"cpus": os.cpu_count(), "load_average_before": _load_average()}
    with tempfile.TemporaryDirectory(prefix="canaryflow-bench-") as tmp:
        workdir = Path(tmp)
        if "latency" in chosen:
            print(f"(1) weight change → served: {args.samples} changes (0/100 ⇄ 100/0), a keep-alive client polling")
            (workdir / "latency").mkdir()
            results["latency"] = asyncio.run(weight_change_latency(workdir / "latency", args.samples))
            _print_latency(results["latency"])
        if "throughput" in chosen:
            tool = load_tool(args.load)
            results["throughput"] = []
            for kind in args.upstreams:
                runs = f"{args.runs} runs of {args.seconds:g} s per config"
                print(f"(2) throughput, upstream {kind}: {tool}, {args.connections} connections, {runs}")
                figures = asyncio.run(throughput(workdir, kind, tool, args.runs, args.seconds, args.connections))
                results["throughput"].append(figures)
                _print_throughput(figures)
    if "memory" in chosen:
        print(f"(3) memory of the local runtime with {args.canaries} canaries (copies of the seed's backend)")
        results["memory"] = runtime_memory(args.canaries, timeout=args.init_timeout)
        _print_memory(results["memory"])
    if "demo" in chosen:
        print("(4) canaryflow demo (about 2.5 minutes)")
        results["demo"] = demo_wall_time(timeout=900.0)
        print("    " + "\n    ".join(results["demo"]["output_tail"]) + "\n")
    results["load_average_after"] = _load_average()
    _print_summary(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


UPSTREAMS_HELP = (
    "upstreams of (2), each measured separately: an Envoy answering with direct_response (fast, not Python), "
    "an asyncio responder, the demo app (default: envoy asyncio)"
)


def _print_latency(f: Figures) -> None:
    s, c = f["served_ms"], f["set_routes_returned_ms"]
    served = f"p50 {s['p50']:.1f} ms, p99 {s['p99']:.1f} ms, min {s['min']:.1f} ms, max {s['max']:.1f} ms"
    returned = f"p50 {c['p50']:.1f} ms, p99 {c['p99']:.1f} ms, max {c['max']:.1f} ms"
    print(f"    first answer from the new weights: {served}")
    print(f"    set_routes returned (Envoy confirmed through its admin API): {returned}")
    print(f"    answers under the old weights per change: {f['old_answers_per_change']:.1f}\n")


def _print_throughput(f: Figures) -> None:
    for name in ("canaryflow", "static"):
        rates = ", ".join(str(r) for r in f["rps"][name])
        print(f"    {name:<10} {rates} req/s → median {f['median_rps'][name]} req/s")
        print(f"    {'':<10} responses {f['responses'][name]}; 40 requests went to {f['split_check'][name]}")
    cpu = f["envoy_cpu_us_per_request"]
    print(f"    ratio of medians canaryflow/static: {f['ratio']:.3f}; run by run: {f['paired_ratios']}")
    print(f"    proxy Envoy CPU per request (median): canaryflow {cpu['canaryflow']} µs, static {cpu['static']} µs")
    python_cpu, run_seconds = f["python_cpu_seconds_during_canaryflow_runs"], f["canaryflow_run_seconds"]
    print(
        f"    CPU of the Python process holding the router during the canaryflow runs: {python_cpu} s in "
        f"{run_seconds:g} s (it is not on the request path)\n"
    )


def _print_memory(f: Figures) -> None:
    for label in ("idle", "loaded"):
        if label not in f:
            continue
        m = f[label]
        runtime = f"runtime process RSS {m['runtime_rss_mb']} MB (PSS {m['runtime_pss_mb']} MB)"
        total = f"with its {m['processes'] - 1} children RSS {m['total_rss_mb']} MB (PSS {m['total_pss_mb']} MB)"
        print(f"    {label:<6} {runtime}; {total}")
        for part, g in m["by_part"].items():
            print(f"           {part:<22} {g['processes']:>3} proc  RSS {g['rss_mb']:>7} MB  PSS {g['pss_mb']:>7} MB")
    left = f["left_running_after_stop"] or "none"
    print(f"    runtime start {f.get('start_seconds')} s; apply → all Initialized {f.get('initialized_seconds')} s")
    print(f"    phases {f.get('phases')}; processes left running after Runtime.stop(): {left}\n")


def _print_summary(r: Figures) -> None:
    print("=" * 110)
    print(
        f"summary ({r['cpus']} CPUs; load average before {r['load_average_before']}, after {r['load_average_after']})"
    )
    if "latency" in r:
        s, n = r["latency"]["served_ms"], r["latency"]["samples"]
        verdict = "met" if s["p99"] < LATENCY_GOAL_MS else "MISSED"
        print(f"  (1) weight change → served ({n} changes): p50 {s['p50']:.1f} ms, p99 {s['p99']:.1f} ms")
        print(f"      goal p99 < {LATENCY_GOAL_MS:g} ms: {verdict}")
    for t in r.get("throughput", []):
        verdict = "met" if t["ratio"] >= RATIO_GOAL else "MISSED"
        rps, cpu = t["median_rps"], t["envoy_cpu_us_per_request"]
        print(
            f"  (2) throughput, upstream {t['upstream']} ({t['tool']}): canaryflow {rps['canaryflow']} req/s, "
            f"static {rps['static']} req/s, ratio {t['ratio']:.3f}"
        )
        print(
            f"      goal ratio ≥ {RATIO_GOAL}: {verdict}; Envoy CPU per request {cpu['canaryflow']} µs (canaryflow) "
            f"vs {cpu['static']} µs (static)"
        )
    if "memory" in r and "loaded" in r["memory"]:
        m, n = r["memory"]["loaded"], r["memory"]["canaries"]
        ready = r["memory"]["phases"].get("Initialized", 0)
        print(
            f"  (3) runtime with {n} canaries ({ready} Initialized): runtime process RSS {m['runtime_rss_mb']} MB; "
            f"runtime and its {m['processes'] - 1} children RSS {m['total_rss_mb']} MB (PSS {m['total_pss_mb']} MB)"
        )
    if "demo" in r:
        d = r["demo"]
        print(
            f"  (4) canaryflow demo: {d['seconds']:.0f} s wall time ({d['seconds'] / 60:.1f} min), "
            f"exit code {d['exit_code']}"
        )
    print("=" * 110)


if __name__ == "__main__":
    try:
        main()
    except (CliError, httpx.HTTPError) as exc:
        raise SystemExit(f"benchmark stopped: {exc}") from None
