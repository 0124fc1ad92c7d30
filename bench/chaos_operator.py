"""The operator under chaos: canary releases while the operator is killed, the API server fails and watches break.

Issue 11, item 1 (the operator half). The emulated API server (tests/kube/emulator, real HTTP on 127.0.0.1, in
this process) serves the operator's real code in a child process (bench/_operator_helpers.py: kopf, KubeApi,
KubeWorkload, KubeRouter, the status store, the scheduler; standalone, no leader election). This process plays
the cluster around it: the Deployment controller (every Deployment soon reports its spec rolled out, as in the
lifecycle tests) and a user who releases a new image on each canary as soon as the previous release ended,
healthy or faulty at random. Metric values come from a table file the child reads at every check (there is no
Prometheus): 99.9 % success for a healthy release, 80 % for a faulty one, against a 99 % minimum.

Meanwhile, at random moments (``--seed``): the operator is ``kill -9``-ed and started again (a quarter of the
time killed once more while it starts); faults are queued on the API server for the operator's next 1-6
requests of one kind it sends (409 on writes, 429, 500, a dropped connection, or a 504 after a stall: a request
that timed out; the client makes 5 attempts, so a long burst reaches the operator's code); every watch stream
is cut (and one time in four the change log is compacted too, so resuming watches get 410 Gone). After
``--kills`` kills the chaos stops, every release in flight must end within ``--settle`` seconds, and the final
objects are compared with what ``canaryflow kube render`` prints for the final state.

The checks read the API server's record of every write, never the operator (see _chaos_operator_checks.py for
exactly what is counted). The seed fixes the chaos schedule and the releases; timings still vary run to run.
Output: a table, then, as the last line, one JSON object with the figures.

Run: .venv/bin/python bench/chaos_operator.py [--kills 50] [--seed 1] [--canaries 4] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import random
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from canaryflow.kube.client import CANARY, DEPLOYMENT, NAMESPACE, Conflict

sys.path.append(str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _chaos_operator_checks import IDLE, Run, Tally, check_run, repeated_events
from _chaos_operator_cluster import (
    FAULTS,
    BenchApi,
    ChaosEmulator,
    final_differences,
    inject,
    live_canary,
    random_fault,
)
from _operator_helpers import OperatorProcess
from tests.kube.emulator import RunningEmulator
from tests.kube.lifecycle_support import PODINFO, Rollouts, canary_doc, deployment_doc

Json = dict[str, Any]
NS = "chaos"
CANARIES, DEPLOYMENTS = ("flagger.app", "canaries"), ("apps", "deployments")
VIRTUAL_SERVICES, EVENTS = ("networking.istio.io", "virtualservices"), ("", "events")
HEALTHY, FAULTY = 99.9, 80.0  # request-success-rate served; the canaries want at least 99
#: Events a tick emits once per run; a repeat means a tick was done again (after a restart, say).
ONCE_PER_RUN = ("Copying ", "Promotion completed!", "Canary failed!", "New revision detected!")


@dataclasses.dataclass
class Chaos:
    kills: int = 0
    restarts: list[float] = dataclasses.field(default_factory=list)  # seconds from kill -9 to ready again
    failed_starts: int = 0
    early_kills: int = 0  # of the kills, those while the operator was starting (before it was ready)
    crashes: int = 0  # the operator exited without being killed
    faults: Counter[str] = dataclasses.field(default_factory=Counter)  # queued, by what
    watch_cuts: int = 0
    compactions: int = 0


class Cluster:
    """The emulator, the operator child, the user's releases, and the chaos."""

    def __init__(self, args: argparse.Namespace, emulator: ChaosEmulator, url: str, tmp: Path) -> None:
        self.args, self.emulator, self.url = args, emulator, url
        self.api = BenchApi.for_url(url)
        self.rng = random.Random(args.seed)
        self.names = [f"app-{i}" for i in range(args.canaries)]
        self.table = tmp / "metrics.json"
        self.table_values: dict[str, Json] = {}
        self.log_path = args.log or tmp / "operator.log"
        self.log = self.log_path.open("w")
        extra = ("--metrics", str(self.table), "--standalone")
        self.operator = OperatorProcess(url, NS, args.interval, tmp / "ticks.json", *extra, stderr=self.log)
        self.runs: list[Run] = []
        self.chaos = Chaos()
        self.stopping = asyncio.Event()
        self.deadline = float("inf")  # when releases still in flight count as stuck

    # -- the user ------------------------------------------------------------------------------------------------
    async def create(self) -> None:
        with contextlib.suppress(Conflict):
            await self.api.create(NAMESPACE, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        for name in self.names:
            self._serve(name, HEALTHY)
            await self.api.create(DEPLOYMENT, deployment_doc(name, NS, PODINFO))
            await self.api.create(CANARY, canary_doc(name, NS))

    def _serve(self, name: str, value: float) -> None:
        """What the next checks of canary ``name`` measure (written whole, then renamed: never read half)."""
        self.table_values[f"{NS}/{name}"] = {"request-success-rate": value}
        part = self.table.with_suffix(".part")
        part.write_text(json.dumps(self.table_values))
        os.replace(part, self.table)

    async def release(self, name: str) -> None:
        """Release one image after another on canary ``name`` until the chaos stops."""
        rng = random.Random(f"{self.args.seed}/{name}")
        number = 0
        while not self.stopping.is_set():
            number += 1
            faulty = rng.random() < self.args.faulty
            self._serve(name, FAULTY if faulty else HEALTHY)
            image = f"{PODINFO.rpartition(':')[0]}:7.0.{number}"
            run = Run(name, image, faulty, await self._set_image(name, image))
            self.runs.append(run)
            run.outcome = await self._ended(run)
            await asyncio.sleep(rng.uniform(0.0, 1.0))

    async def _set_image(self, name: str, image: str) -> int:
        """``kubectl set image``: read, change, replace (again on a 409); the revision of the write."""
        while True:
            live = await self.api.get(DEPLOYMENT, NS, name)
            assert live is not None
            live["spec"]["template"]["spec"]["containers"][0]["image"] = image
            with contextlib.suppress(Conflict):
                written = await self.api.replace(DEPLOYMENT, live)
                return int(written["metadata"]["resourceVersion"])

    async def _ended(self, run: Run) -> str:
        """The phase the run ended in (by the API server's record), or "stuck" past the deadline."""
        record, started, read = self.emulator.record, False, 0
        while time.monotonic() < self.deadline:
            versions, read = record.tail(CANARIES, read)
            for version in (v for v in versions if v.obj["metadata"]["name"] == run.name):
                phase = (version.obj.get("status") or {}).get("phase")
                if version.revision > run.revision and phase not in IDLE:
                    started = True
                if started and phase in ("Succeeded", "Failed"):
                    return str(phase)
            await asyncio.sleep(0.05)
        return "stuck"

    # -- the chaos -----------------------------------------------------------------------------------------------
    async def start_operator(self) -> None:
        for _ in range(3):
            try:
                await asyncio.to_thread(self.operator.start)
                return
            except RuntimeError as exc:
                self.chaos.failed_starts += 1
                print(f"  the operator did not start: {exc}", file=sys.stderr)
        raise RuntimeError("the operator failed to start 3 times in a row: see its log")

    async def kill_while_starting(self, delay: float) -> int:
        """Start the operator and ``kill -9`` it ``delay`` seconds later if it is not ready by then (importing,
        or kopf starting up); 1 if it was killed so, 0 if it was ready first (then it is left running)."""
        starting = asyncio.create_task(asyncio.to_thread(self.operator.start))
        await asyncio.wait({starting}, timeout=delay)
        proc = self.operator.proc
        if starting.done() or proc is None:
            try:
                await starting
            except RuntimeError as exc:
                self.chaos.failed_starts += 1
                print(f"  the operator did not start: {exc}", file=sys.stderr)
            if proc is not None and proc.poll() is None:
                await asyncio.to_thread(self.operator.kill)  # ready first: not this chaos; back to a fresh start
            return 0
        proc.send_signal(signal.SIGKILL)
        with contextlib.suppress(RuntimeError):  # start() reads EOF instead of "ready"
            await starting
        proc.wait()
        self.operator.proc = None
        self.chaos.early_kills += 1
        return 1

    async def rampage(self) -> None:
        """Kill, fault and cut at random moments until ``--kills`` kills are done."""
        c, rng = self.chaos, self.rng
        while c.kills < self.args.kills:
            await asyncio.sleep(rng.uniform(*self.args.gap))
            proc = self.operator.proc
            if proc is None or proc.poll() is not None:
                c.crashes += 1
                self.operator.proc = None
                await self.start_operator()
            roll = rng.random()
            if roll < 0.4:
                killed, kills_before = time.monotonic(), c.kills
                self.operator.kill()
                c.kills += 1
                await asyncio.sleep(rng.uniform(0.0, 0.5))
                if c.kills < self.args.kills and rng.random() < 0.25:
                    c.kills += await self.kill_while_starting(rng.uniform(0.5, 2.5))
                await self.start_operator()
                c.restarts.append(time.monotonic() - killed)
                if c.kills // 10 > kills_before // 10:
                    print(f"  {c.kills} kills, {len(self.runs)} releases so far", file=sys.stderr, flush=True)
            elif roll < 0.8:
                fault = random_fault(rng, self.emulator.recorded[-500:])
                inject(self.emulator, fault)
                c.faults[fault.what] += fault.times
            else:
                compact = rng.random() < 0.25
                if compact:
                    self.emulator.compact()
                    c.compactions += 1
                self.emulator.break_watches()
                c.watch_cuts += 1

    async def initialized(self, limit: float = 180.0) -> None:
        end = time.monotonic() + limit
        while time.monotonic() < end:
            phases = [(c.get("status") or {}).get("phase") for c in await self.api.list(CANARY, NS)]
            if phases.count("Initialized") == len(self.names):
                return
            await asyncio.sleep(0.1)
        raise RuntimeError(f"the canaries were not Initialized within {limit:.0f} s: {phases}")

    # -- the verdict ---------------------------------------------------------------------------------------------
    def check(self) -> tuple[Tally, int]:
        tally, repeats = Tally(), 0
        record = self.emulator.record
        for name in self.names:
            canary, primary = record.versions(CANARIES, name), record.versions(DEPLOYMENTS, f"{name}-primary")
            vs, events = record.versions(VIRTUAL_SERVICES, name), record.versions(EVENTS)
            analysis = canary[0].obj["spec"]["analysis"]
            runs = [r for r in self.runs if r.name == name]
            for run, after in zip(runs, [*runs[1:], None], strict=True):
                end = after.revision if after else None
                tally.add(check_run(run, end, canary, primary, vs, analysis, f"{name}-primary"))
                repeats += repeated_events(events, name, run.revision, end, ONCE_PER_RUN)
        return tally, repeats

    async def final(self) -> tuple[list[str], int]:
        problems, compared = [], 0
        for name in self.names:
            live = await live_canary(self.api, NS, name)
            phase = (live.get("status") or {}).get("phase") or ""
            if phase not in IDLE:
                problems.append(f"Canary {name}: still {phase or 'without a phase'} at the end; not compared")
                continue
            promoted = [r.image for r in self.runs if r.name == name and r.outcome == "Succeeded"]
            applied = canary_doc(name, NS)
            applied["metadata"]["uid"] = live["metadata"]["uid"]
            target = deployment_doc(name, NS, promoted[-1] if promoted else PODINFO)
            found, n = await final_differences(self.api, applied, target, phase)
            problems += [f"{name}: {p}" for p in found]
            compared += n
        return problems, compared


async def bench(args: argparse.Namespace) -> Json:
    started = time.monotonic()
    with RunningEmulator(ChaosEmulator(stall=args.stall)) as running, tempfile.TemporaryDirectory() as tmp:
        emulator = running.emulator
        assert isinstance(emulator, ChaosEmulator)
        cluster = Cluster(args, emulator, running.url, Path(tmp))
        users: list[asyncio.Task[None]] = []
        try:
            await cluster.create()
            async with Rollouts(cluster.api, NS):
                await cluster.start_operator()
                await cluster.initialized()
                users += [asyncio.create_task(cluster.release(name), name=f"release {name}") for name in cluster.names]
                await cluster.rampage()
                cluster.stopping.set()
                left = emulator.clear_faults()
                cluster.deadline = time.monotonic() + args.settle
                await asyncio.gather(*users)
                await asyncio.sleep(5 * args.interval)  # let the last ticks' writes land
                tally, repeats = cluster.check()
                final, compared = await cluster.final()
        finally:
            for user in users:
                user.cancel()
            if cluster.operator.proc is not None:
                await asyncio.to_thread(cluster.operator.stop)
            await cluster.api.close()
            cluster.log.close()
        tracebacks = cluster.log_path.read_text().count("Traceback")
    c = cluster.chaos
    outcomes = Counter(r.outcome for r in cluster.runs)
    return {
        "kills": c.kills, "runs": len(cluster.runs), "api_faults": sum(emulator.served.values()),
        "watch_cuts": c.watch_cuts, **{k: v for k, v in dataclasses.asdict(tally).items() if k != "notes"},
        "final_objects_differ": len(final), "stuck_runs": outcomes["stuck"], "operator_crashes": c.crashes,
        "failed_starts": c.failed_starts, "repeated_events": repeats, "early_kills": c.early_kills,
        # the table's extras
        "seed": args.seed, "canaries": args.canaries, "wall": time.monotonic() - started, "outcomes": outcomes,
        "faulty_runs": sum(r.faulty for r in cluster.runs), "restarts": c.restarts, "queued": c.faults,
        "served": emulator.served, "left": left, "compactions": c.compactions, "compared": compared,
        "notes": tally.notes + final, "tracebacks": tracebacks,
    }  # fmt: skip


VIOLATIONS = ("double_promotions", "promoted_after_failure", "faulty_runs_promoted", "healthy_runs_failed",
              "traffic_left_on_failed_canary", "final_objects_differ", "lost_transitions",
              "duplicated_transitions", "illegal_transitions", "stuck_runs", "operator_crashes",
              "failed_starts")  # fmt: skip
LAST_LINE = ("kills", "runs", "api_faults", "watch_cuts", *VIOLATIONS, "repeated_events", "status_weight_gaps",
             "early_kills", "seed")  # fmt: skip


def report(f: Json) -> None:
    o = f["outcomes"]
    restarts = sorted(f["restarts"]) or [0.0]
    by_status = {status: what for what, status in FAULTS.items()}
    served = ", ".join(f"{by_status[s]} {n}" for s, n in sorted(f["served"].items())) or "none"
    rows = [
        ("runs", f"{f['runs']} on {f['canaries']} canaries ({f['faulty_runs']} faulty): {o['Succeeded']} "
                 f"succeeded, {o['Failed']} failed, {o['stuck']} stuck"),
        ("kill -9", f"{f['kills']}, {f['early_kills']} of them while it was starting (kill to ready again: "
                    f"median {restarts[len(restarts) // 2]:.1f} s, max {restarts[-1]:.1f} s)"),
        ("API faults served", f"{f['api_faults']} ({served}); queued {sum(f['queued'].values())}, "
                              f"never taken {f['left']}"),
        ("watch cuts", f"{f['watch_cuts']} ({f['compactions']} with the change log compacted)"),
        ("final objects", f"{f['compared']} compared with canaryflow kube render"),
        ("repeated events", f"{f['repeated_events']} (a once-per-run event emitted again: informational)"),
        ("status weight gaps", f"{f['status_weight_gaps']} (a routed step the status never showed: informational)"),
        ("operator tracebacks", f"{f['tracebacks']} in its log (informational)"),
    ]  # fmt: skip
    rows += [(name.replace("_", " "), f"{f[name]}" + ("   <-- VIOLATION" if f[name] else "")) for name in VIOLATIONS]
    width = max(len(label) for label, _ in rows)
    print(f"canaryflow operator under chaos: seed {f['seed']}, {f['wall']:.0f} s")
    for label, value in rows:
        print(f"  {label:<{width}}  {value}")
    for note in f["notes"][:40]:
        print(f"  ! {note}")
    print(json.dumps({key: f[key] for key in LAST_LINE}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=50, help="kill -9s of the operator before the chaos ends")
    parser.add_argument("--seed", type=int, default=1, help="seeds the chaos schedule and the releases")
    parser.add_argument("--canaries", type=int, default=4, help="canaries releasing concurrently")
    parser.add_argument("--faulty", type=float, default=0.4, help="share of releases with failing metrics")
    parser.add_argument("--interval", type=float, default=0.25, help="analysis interval, seconds")
    parser.add_argument("--gap", type=float, nargs=2, default=(0.3, 2.5), metavar=("MIN", "MAX"),
                        help="seconds between chaos actions, drawn uniformly")  # fmt: skip
    parser.add_argument("--stall", type=float, default=1.0, help="seconds a timeout fault holds a request")
    parser.add_argument("--settle", type=float, default=90.0, help="seconds the last releases get after the chaos")
    parser.add_argument("--log", type=Path, help="keep the operator's log (stderr) in this file")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 3 kills, 2 canaries")
    parser.add_argument("--strict", action="store_true", help="exit 1 when any violation is counted")
    args = parser.parse_args()
    if args.quick:
        args.kills, args.canaries = 3, 2
    figures = asyncio.run(bench(args))
    report(figures)
    if args.strict and any(figures[name] for name in VIOLATIONS):
        sys.exit(1)


if __name__ == "__main__":
    main()
