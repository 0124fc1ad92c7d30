"""The kill loop of ``bench/chaos.py``: canary runs on a live runtime, the runtime killed with SIGKILL at seeded
moments and started again with ``canaryflow up --detach``, every run checked from the outside."""

from __future__ import annotations

import dataclasses
import random
import time
from typing import Any

import httpx
from _chaos_invariants import Proc, Run, leaked_ports, orphans, traffic_left
from _chaos_live import ANALYSIS, CANARY_CLUSTER, QUIET, Live, all_procs, listening_ports, mentions, tree

#: Where a kill lands. ``route-before-status``: Envoy already serves a weight the stored status does not have yet
#: (between the route write and the status write); ``weight-change``: right after the stored weight changed;
#: ``promoting``: the stored phase is Promoting or Finalising (a faulty run: right after a failed check);
#: ``random``: a seeded delay after the release.
MOMENTS = ("route-before-status", "weight-change", "promoting", "random")
FAULTY_ENV = {"CANARYFLOW_FAULT_ERROR_RATE": "1"}
RUN_TIMEOUT = 150.0


@dataclasses.dataclass
class KillStats:
    kills: int = 0
    moments: dict[str, int] = dataclasses.field(default_factory=dict)
    window_hits: int = 0  # kills that landed with Envoy ahead of the stored status
    restart_seconds: list[float] = dataclasses.field(default_factory=list)
    orphans: list[str] = dataclasses.field(default_factory=list)
    leaked_ports: set[int] = dataclasses.field(default_factory=set)
    moved_endpoints: int = 0  # restarts after which the mesh proxy listened on another port
    status_regressions: int = 0  # stored status version lower after a restart than seen before the kill
    traffic_left: int = 0
    rollbacks_checked: int = 0
    runs: list[Run] = dataclasses.field(default_factory=list)
    last_run_end: float = 0.0


class Watcher:
    """Polls the stored status and Envoy's routes; remembers the tree below the runtime for the orphan check."""

    def __init__(self, live: Live, before: str) -> None:
        self.live, self.before = live, before
        self.max_weight = 0
        self.succeeded_entries = 0
        self.last_phase = ""
        self.started = False  # the release's run was seen under way (its spec stored, phase not yet final)
        self.last_version = 0
        self.tree: list[Proc] = []
        self._tree_at = 0.0

    def poll(self) -> dict[str, Any]:
        status = self.live.status()
        mine = status.get("last_applied_spec") != self.before
        phase = str(status.get("phase", "")) if mine else ""
        if phase == "Succeeded" and self.last_phase != "Succeeded":
            self.succeeded_entries += 1
        if mine:
            self.started |= phase not in ("Succeeded", "Failed")
            self.last_phase = phase
            self.max_weight = max(self.max_weight, int(status.get("canary_weight", 0)))
        self.last_version = max(self.last_version, int(status.get("version", 0)))
        if time.monotonic() - self._tree_at > 0.3:
            pid = self.live.runtime_pid()
            self.tree = tree(pid) if pid else self.tree
            self._tree_at = time.monotonic()
        return {"phase": phase, **status} if mine else {"phase": "", **status}

    def done(self, status: dict[str, Any]) -> bool:
        return self.started and status["phase"] in ("Succeeded", "Failed")


def wait_moment(w: Watcher, moment: str, rng: random.Random, faulty: bool) -> bool:
    """Poll until ``moment``; False when the run ended first (no kill). Returns True to kill now."""
    deadline = time.monotonic() + (rng.uniform(0.0, 9.0) if moment == "random" else 60.0)
    start_weight = None
    start_checks = None
    while time.monotonic() < deadline:
        status = w.poll()
        if w.done(status):
            return False
        weight, checks = int(status.get("canary_weight", 0)), int(status.get("failed_checks", 0))
        if moment == "route-before-status" and status["phase"] == "Progressing":
            try:
                served = w.live.canary_weights(timeout=0.5)
            except httpx.HTTPError:
                served = []
            if served and max(served) != weight:
                return True
        elif moment == "weight-change" and status["phase"]:
            start_weight = weight if start_weight is None else start_weight
            if weight != start_weight:
                return True
        elif moment == "promoting" and status["phase"]:
            if not faulty and status["phase"] in ("Promoting", "Finalising"):
                return True
            start_checks = checks if start_checks is None else start_checks
            if faulty and checks > start_checks:
                return True
        time.sleep(0.01 if moment == "route-before-status" else 0.03)
    return True  # the delay ran out, or the moment never came: kill anyway (counted under its name)


def kill_and_restart(live: Live, w: Watcher, stats: KillStats, moment: str, kill_times: list[float]) -> None:
    before_kill = list(w.tree)
    old = live.kill_runtime()
    kill_times.append(time.time())
    stats.kills += 1
    stats.moments[moment] = stats.moments.get(moment, 0) + 1
    # The runtime is dead and its Envoy not reaped yet: a weight Envoy serves that the store does not hold means
    # the kill fell between a route write and its status write.
    try:
        served = live.canary_weights(timeout=0.5)
    except httpx.HTTPError:
        served = []
    stored = live.status()
    if stored.get("phase") in ("Progressing", "Promoting") and served:
        stats.window_hits += max(served) != int(stored.get("canary_weight", 0))
    # Children started after the last look at the tree: reparented now, known by the state directory in their
    # command line (Envoy, Prometheus) or environment (workloads' PATH has its bin/).
    known = {p.pid for p in before_kill}
    before_kill += [p for p in all_procs() if p.pid not in known and p.pid != old and mentions(p.pid, live.dirs.root)]
    version_before = w.last_version
    proxy = live.endpoint("meshProxy")
    while live.runtime_pid() == old:
        time.sleep(0.05)
    stats.restart_seconds.append(live.up())
    if live.endpoint("meshProxy") != proxy:  # the users' proxy moved: count it, and follow it
        stats.moved_endpoints += 1
        live.start_users(live.rps)
    if int(live.status().get("version", 0)) < version_before:
        stats.status_regressions += 1
    time.sleep(2.0)  # the new runtime reaps, adopts and starts its parts
    new_pid = live.runtime_pid()
    adopted = {int(c["pid"]) for c in live.record().get("children", [])}
    adopted |= {p.pid for p in tree(new_pid)} if new_pid else set()
    left = orphans(before_kill, all_procs(), adopted)
    stats.orphans += [f"{p.pid} {p.cmdline[:100]}" for p in left]
    stats.leaked_ports |= leaked_ports(listening_ports(), left)


def check_rollback(live: Live, stats: KillStats, tick: float) -> None:
    """Right after Failed is stored: the routes give the canary nothing, and within one tick no request reaches
    its cluster (the counter must not move over the two ticks after that)."""
    time.sleep(tick)
    try:
        weights = live.canary_weights()
        first = live.cluster_requests(CANARY_CLUSTER)
        time.sleep(2 * tick)
        second = live.cluster_requests(CANARY_CLUSTER)
    except httpx.HTTPError:
        return
    stats.rollbacks_checked += 1
    after = second - first if second >= first else second
    if traffic_left(weights, after):
        stats.traffic_left += 1


def one_run(live: Live, stats: KillStats, rng: random.Random, number: int, budget: int) -> Run:
    kind = rng.choice(("healthy", "faulty"))
    if kind == "faulty":
        time.sleep(max(0.0, QUIET - (time.monotonic() - stats.last_run_end)))
    first_event = live.last_event_id()
    before = live.release(env=FAULTY_ENV if kind == "faulty" else {})
    w = Watcher(live, before)
    kill_times: list[float] = []
    moments: list[str] = []
    kills = 1 if budget == 1 else rng.choice((1, 1, 2))
    for _ in range(kills):
        moment = rng.choice(MOMENTS)
        if not wait_moment(w, moment, rng, kind == "faulty"):
            break
        moments.append(moment)
        kill_and_restart(live, w, stats, moment, kill_times)
    deadline = time.monotonic() + RUN_TIMEOUT
    status = w.poll()
    while not w.done(status) and time.monotonic() < deadline:
        time.sleep(0.05)
        status = w.poll()
    outcome = status["phase"] if w.done(status) else f"timed out in {status.get('phase')}"
    stats.last_run_end = time.monotonic()
    if outcome == "Failed":
        check_rollback(live, stats, tick=1.0)
    run = Run(number, kind, [{"time": e["time"], "message": e["message"]} for e in live.events(first_event)],
              kill_times, outcome, int(status.get("failed_checks", 0)), w.max_weight, w.succeeded_entries,
              moments)  # fmt: skip
    stats.runs.append(run)
    return run


def kill_loop(live: Live, kills: int, seed: int, progress: Any) -> KillStats:
    rng = random.Random(seed)
    stats = KillStats()
    number = 0
    while stats.kills < kills:
        number += 1
        run = one_run(live, stats, rng, number, kills - stats.kills)
        progress(run, stats)
    return stats


STEP, MAX_WEIGHT, THRESHOLD = int(ANALYSIS["stepWeight"]), int(ANALYSIS["maxWeight"]), int(ANALYSIS["threshold"])
