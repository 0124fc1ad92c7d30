"""GitOps figures: commit-to-applied latency, applying 1,000 manifests, a no-op reconcile of them.

Issue "GitOps", Benchmark section. Prints figures beside their goals (no asserts on speed), on the real parts:
git repositories served by ``git daemon`` on 127.0.0.1, canaryflow's GitSource, the local runtime's
LocalGitOps/LocalTarget/ObjectStore on a SQLite file (opened as the runtime opens it), and the Receiver's
``/hook/<digest>`` route from canaryflow.local.gitops_api served by uvicorn. Envoy, Prometheus and the canary
scheduler are not started: nothing here needs them, and they would only add noise.

  (1) commit → applied through a Receiver (goal: p50 < 1 s): each commit changes a ConfigMap; the clock starts
      when ``git push`` returns, a GitHub-style ``push`` event signed with X-Hub-Signature-256 is POSTed, and
      stops when the new content is committed to the object store. The GitRepository's own interval is 1h.
  (2) commit → applied by polling: the same with a GitRepository ``interval`` (default 5 s) and no webhook; each
      commit is made at a random moment (uniform over one interval) so the figures show the real distribution.
  (3) applying 1,000 manifests (ConfigMaps, Deployments, Services, one file each): wall time of the first
      Kustomization reconcile (build, validate, apply into SQLite), RSS growth and peak, and the Python heap peak
      (tracemalloc, measured on a second fresh store because tracing slows everything down).
  (4) a no-op reconcile of the same 1,000 unchanged objects (goal: < 1 s, 0 writes): SQLite ``total_changes`` on
      the store's connection (objects, statuses and events), status writes, objects reported as changed.
      Then one ConfigMap changed in git: what a reconcile writes (goal: exactly that object).

Every process started here (git daemon, git) is stopped by its PID; uvicorn runs in this process.
Run: .venv/bin/python bench/gitops.py [--commits 20] [--poll-commits 10] [--interval 5] [--objects 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import httpx
from _gitops_helpers import (
    FLUX_NS,
    GitDaemon,
    Harness,
    HookServer,
    Pusher,
    RepoDir,
    Writes,
    configmap,
    fleet,
    git_repository,
    kustomization,
    percentile,
    receiver,
    reset_peak_rss,
    rss_kib,
    secret,
    yaml_of,
)

from canaryflow.gitops.controller.objects import Key
from canaryflow.gitops.receiver import sign, webhook_path

Figures = dict[str, Any]
NS = "bench"
TOKEN = "bench-webhook-token"
#: How long one commit may take to arrive before the bench gives up (a stuck pipeline, not a slow one).
ARRIVAL_TIMEOUT = 120.0


def cm_file(name: str, value: str) -> dict[str, str]:
    return {"app/config.yaml": yaml_of(configmap(name, NS, value))}


async def first_arrival(harness: Harness, name: str, *bodies: dict[str, Any]) -> None:
    arrived = harness.expect(NS, name, "0")
    await harness.apply(*bodies)
    await asyncio.wait_for(arrived, ARRIVAL_TIMEOUT)


async def receiver_latency(work: Path, commits: int) -> Figures:
    repos = RepoDir(work / "repos")
    with GitDaemon(repos.root) as daemon:
        pusher = Pusher(repos, "hooked", cm_file("hooked", "0"), daemon.url("hooked"))
        harness = Harness(work / "runtime")
        await harness.start()
        try:
            await first_arrival(
                harness,
                "hooked",
                secret("webhook-token", TOKEN),
                git_repository("hooked", daemon.url("hooked"), "1h"),
                kustomization("hooked", "hooked", "./app"),
                receiver("github", "webhook-token", "hooked"),
            )
            path = webhook_path(TOKEN, "github", FLUX_NS)
            latencies, answered = [], []
            async with HookServer(harness).running() as server, httpx.AsyncClient(timeout=30) as client:
                for i in range(1, commits + 1):
                    arrived = harness.expect(NS, "hooked", str(i))
                    pushed, sha = await asyncio.to_thread(pusher.push, cm_file("hooked", str(i)))
                    payload = json.dumps({"ref": "refs/heads/master", "after": sha}).encode()
                    response = await client.post(
                        server.url(path),
                        content=payload,
                        headers={
                            "Content-Type": "application/json",
                            "X-GitHub-Event": "push",
                            "X-Hub-Signature-256": sign(TOKEN, payload),
                        },
                    )
                    answered.append(time.perf_counter() - pushed)
                    if response.status_code != 200:
                        raise RuntimeError(f"the receiver answered {response.status_code}: {response.text}")
                    latencies.append(await asyncio.wait_for(arrived, ARRIVAL_TIMEOUT) - pushed)
                    if harness.stored_value(NS, "hooked") != str(i):
                        raise RuntimeError(f"commit {i}: the store holds {harness.stored_value(NS, 'hooked')!r}")
            return {"commits": commits, "latency_s": latencies, "hook_answered_s": answered}
        finally:
            await harness.close()


async def polling_latency(work: Path, commits: int, interval: float, seed: int) -> Figures:
    repos = RepoDir(work / "repos")
    with GitDaemon(repos.root) as daemon:
        pusher = Pusher(repos, "polled", cm_file("polled", "0"), daemon.url("polled"))
        harness = Harness(work / "runtime")
        await harness.start()
        try:
            every = f"{round(interval * 1000)}ms"
            await first_arrival(
                harness,
                "polled",
                git_repository("polled", daemon.url("polled"), every),
                kustomization("polled", "polled", "./app"),
            )
            rng = random.Random(seed)
            latencies = []
            for i in range(1, commits + 1):
                await asyncio.sleep(rng.uniform(0, interval))
                arrived = harness.expect(NS, "polled", str(i))
                pushed, _ = await asyncio.to_thread(pusher.push, cm_file("polled", str(i)))
                latencies.append(await asyncio.wait_for(arrived, ARRIVAL_TIMEOUT + interval) - pushed)
            return {"commits": commits, "interval_s": interval, "latency_s": latencies}
        finally:
            await harness.close()


async def many_objects(work: Path, count: int, noops: int, trace: bool) -> Figures:
    repos = RepoDir(work / "repos")
    with GitDaemon(repos.root) as daemon:
        pusher = Pusher(repos, "fleet", fleet(count, NS), daemon.url("fleet"))
        url = daemon.url("fleet")
        figures: Figures = {"objects": count}
        harness = Harness(work / "runtime")
        await harness.start()
        try:
            figures["fetch_s"] = await fetch_source(harness, url)
            figures["first"] = await first_reconcile(harness, count)
            figures["noop"] = [
                await timed_reconcile(harness, Key("Kustomization", FLUX_NS, "fleet")) for _ in range(noops)
            ]
            figures["noop_source"] = await timed_reconcile(harness, Key("GitRepository", FLUX_NS, "fleet"))
            figures["one_changed"] = await one_changed(harness, pusher)
        finally:
            await harness.close()
        if trace:
            traced = Harness(work / "traced")
            await traced.start()
            try:
                await fetch_source(traced, url)
                gc.collect()
                tracemalloc.start()
                try:
                    started = time.perf_counter()
                    await traced.apply(kustomization("fleet", "fleet", "./apps"))
                    await traced.gitops.reconcile(Key("Kustomization", FLUX_NS, "fleet"), 600)
                    figures["traced_s"] = time.perf_counter() - started
                    figures["tracemalloc_peak_bytes"] = tracemalloc.get_traced_memory()[1]
                finally:
                    tracemalloc.stop()
                check_applied(traced, count)
            finally:
                await traced.close()
        return figures


async def fetch_source(harness: Harness, url: str) -> float:
    started = time.perf_counter()
    await harness.apply(git_repository("fleet", url, "1h"))
    await harness.gitops.reconcile(Key("GitRepository", FLUX_NS, "fleet"), 600)
    elapsed = time.perf_counter() - started
    status = harness.objects.status("GitRepository", FLUX_NS, "fleet")
    if "artifact" not in status:
        raise RuntimeError(f"the GitRepository has no artifact: {status}")
    return elapsed


async def first_reconcile(harness: Harness, count: int) -> Figures:
    gc.collect()
    reset_peak_rss()
    rss_before, _ = rss_kib()
    started = time.perf_counter()
    await harness.apply(kustomization("fleet", "fleet", "./apps"))
    before = Writes.of(
        harness
    )  # the Kustomization's own row is not the reconcile's write (its task is not running yet)
    await harness.gitops.reconcile(Key("Kustomization", FLUX_NS, "fleet"), 600)
    elapsed = time.perf_counter() - started
    rss_after, peak = rss_kib()
    writes = Writes.of(harness) - before
    check_applied(harness, count)
    return {
        "seconds": elapsed,
        "rss_delta_kib": rss_after - rss_before,
        "rss_peak_delta_kib": peak - rss_before,
        "writes": writes.__dict__,
    }


def check_applied(harness: Harness, count: int) -> None:
    status = harness.objects.status("Kustomization", FLUX_NS, "fleet")
    entries = (status.get("inventory") or {}).get("entries") or []
    stored = sum(len(harness.objects.list(kind, NS)) for kind in ("ConfigMap", "Deployment", "Service"))
    if not status.get("lastAppliedRevision") or len(entries) != count or stored != count:
        conditions = status.get("conditions")
        raise RuntimeError(
            f"expected {count} applied objects, have {stored} ({len(entries)} in the inventory): {conditions}"
        )


async def timed_reconcile(harness: Harness, key: Key) -> Figures:
    before = Writes.of(harness)
    started = time.perf_counter()
    await harness.gitops.reconcile(key, 600)
    elapsed = time.perf_counter() - started
    return {"seconds": elapsed, "writes": (Writes.of(harness) - before).__dict__}


async def one_changed(harness: Harness, pusher: Pusher) -> Figures:
    """One ConfigMap edited in git: the source reconcile wakes the Kustomization, which writes that object."""
    name = "app-0000"
    arrived = harness.expect(NS, name, "edited")
    before = Writes.of(harness)
    await asyncio.to_thread(pusher.push, {f"apps/{name}-configmap.yaml": yaml_of(configmap(name, NS, "edited"))})
    started = time.perf_counter()
    await harness.gitops.reconcile(Key("GitRepository", FLUX_NS, "fleet"), 600)
    fetched = time.perf_counter()
    applied = await asyncio.wait_for(arrived, ARRIVAL_TIMEOUT)
    # The Kustomization finishes its run (status, events) after the store write; a reconcile requested now waits
    # for that run and one more, which (a no-op) writes nothing.
    await harness.gitops.reconcile(Key("Kustomization", FLUX_NS, "fleet"), 600)
    return {
        "fetch_s": fetched - started,
        "applied_s": applied - started,
        "writes": (Writes.of(harness) - before).__dict__,
    }


# -- printing ----------------------------------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def _distribution(label: str, values: list[float], goal: str) -> None:
    p50, p90, p99 = (percentile(values, p) for p in (50, 90, 99))
    print(f"    {label}: p50 {_ms(p50)}   p90 {_ms(p90)}   p99 {_ms(p99)}   max {_ms(max(values))}   {goal}")
    print(f"      (mean {_ms(statistics.fmean(values))}, min {_ms(min(values))}, n={len(values)})")


def _writes(w: dict[str, int]) -> str:
    changes, statuses, objects, events = w["total_changes"], w["status_writes"], w["objects_written"], w["events"]
    return f"sqlite total_changes {changes} = objects changed {objects} + status writes {statuses} + events {events}"


def print_receiver(f: Figures) -> None:
    _distribution("push → applied", f["latency_s"], "goal: p50 < 1 s")
    _distribution("push → hook answered 200", f["hook_answered_s"], "(part of the above)")


def print_polling(f: Figures) -> None:
    _distribution("push → applied", f["latency_s"], f"expected: uniform over 0..{f['interval_s']:g} s + one fetch")


def print_many(f: Figures, count: int) -> None:
    first = f["first"]
    print(f"    source fetch + artifact ({count} files)  : {_ms(f['fetch_s'])}   (no goal)")
    print(f"    first reconcile, {count} objects        : {_ms(first['seconds'])}   (no goal)")
    growth, peak = first["rss_delta_kib"] / 1024, first["rss_peak_delta_kib"] / 1024
    print(f"      RSS growth {growth:.1f} MiB, RSS peak above start {peak:.1f} MiB")
    if "tracemalloc_peak_bytes" in f:
        print(f"      Python heap peak (tracemalloc, second fresh store): {f['tracemalloc_peak_bytes'] / 2**20:.1f} MiB"
              f" (that run took {f['traced_s']:.2f} s under tracing)")  # fmt: skip
    print(f"      {_writes(first['writes'])}")
    print("(4) no-op reconcile of the same objects (nothing changed in git or in the store)")
    for i, run in enumerate(f["noop"], 1):
        print(f"    Kustomization run {i}: {_ms(run['seconds'])}   goal: < 1 s")
        print(f"      {_writes(run['writes'])}   goal: 0 writes")
    source = f["noop_source"]
    print(f"    GitRepository (fetch, same revision): {_ms(source['seconds'])}; {_writes(source['writes'])}")
    one = f["one_changed"]
    fetched, applied = _ms(one["fetch_s"]), _ms(one["applied_s"])
    print(f"    one ConfigMap changed in git: source reconcile {fetched}, applied after {applied}")
    print(f"      {_writes(one['writes'])}   goal: 1 object changed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sections = ("receiver", "polling", "apply")
    add = parser.add_argument
    add("--sections", nargs="*", choices=sections, default=list(sections), help="what to measure (default: all)")
    add("--commits", type=int, default=20, help="commits timed through the Receiver in (1)")
    add("--poll-commits", type=int, default=10, help="commits timed by polling in (2) (each takes ~1 interval)")
    add("--interval", type=float, default=5.0, help="the GitRepository interval of (2), in seconds")
    add("--objects", type=int, default=1000, help="manifests applied in (3) and (4)")
    add("--noop-runs", type=int, default=3, help="no-op reconciles timed in (4)")
    add("--no-tracemalloc", action="store_true", help="skip the traced second apply of (3)")
    add("--seed", type=int, default=1, help="seed of the commit moments in (2)")
    add("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()

    print(f"canaryflow GitOps benchmark — {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    print("(git daemon, git and this process share the machine; the store is SQLite in WAL mode on a temp dir)\n")
    results: Figures = {}
    with tempfile.TemporaryDirectory(prefix="canaryflow-bench-gitops-") as tmp:
        work = Path(tmp)
        if "receiver" in args.sections:
            print(f"(1) commit → applied through a Receiver: {args.commits} commits, github push events over HTTP")
            results["receiver"] = asyncio.run(receiver_latency(work / "receiver", args.commits))
            print_receiver(results["receiver"])
        if "polling" in args.sections:
            every = f"GitRepository interval {args.interval:g} s"
            print(f"(2) commit → applied by polling: {args.poll_commits} commits, {every}")
            results["polling"] = asyncio.run(
                polling_latency(work / "polling", args.poll_commits, args.interval, args.seed)
            )
            print_polling(results["polling"])
        if "apply" in args.sections:
            print(f"(3) applying {args.objects} manifests from git (ConfigMaps, Deployments, Services)")
            results["apply"] = asyncio.run(
                many_objects(work / "apply", args.objects, args.noop_runs, not args.no_tracemalloc)
            )
            print_many(results["apply"], args.objects)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
