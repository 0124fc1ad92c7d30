"""Faults on the local runtime (issue 11, item 1): the runtime killed with SIGKILL mid-run, Envoy killed,
Prometheus stopped, a webhook that hangs, a release that crash-loops — with live users (``hey`` through the mesh)
and every invariant checked from outside the runtime.

The kill loop releases the demo backend again and again (healthy, or answering 100 % errors; a tick a second,
three steps to 60 %, rolled back after 3 failed checks), kills the runtime (``kill -9`` of the PID in
``runtime.json``) at a seeded moment — while Envoy already serves a weight the stored status does not have yet
(between the route write and the status write), right after the stored weight changed, while Promoting or
Finalising (a faulty run: right after a failed check), or after a random delay — starts it again with
``canaryflow up --detach`` on the same state directory, and lets the run finish. What it reads: Envoy's admin API
(route weights, cluster counters), ``state.db`` (status, events; read-only) and ``/proc``.

What is counted:

- ``double_promotions``: runs with two ``Promotion completed!`` events without a kill between them, or whose
  stored phase entered Succeeded twice. ``promoted_after_failure``: faulty releases that ended Succeeded, or a
  promotion event after ``failed checks threshold reached``.
- ``traffic_left_on_failed_canary``: rollbacks after which, one tick (1 s) after Failed is stored, a route still
  gives the canary weight or the canary's cluster still receives requests (upstream_rq_total plus 503s for no
  healthy host, over the next two ticks).
- ``lost_events``: milestones missing from a run (once per run: New revision detected, Starting canary
  analysis, each Advance canary weight W up to the weight reached, then Copying template spec, Routing all
  traffic to primary, Promotion completed — or Rolling back … threshold reached, Canary failed), plus failed
  checks stored without their Halt event. ``duplicated_events``: a milestone repeated with no kill since its
  previous occurrence; a repeat across a kill is the tick in flight redone from the last saved status (the
  executor's idempotence), and allowed. ``status_regressions``: a stored status version lower after a restart
  than it was before the kill.
- ``kills_between_route_and_status_write``: kills after which Envoy (not yet reaped) serves a canary weight the
  stored status does not hold. ``moved_endpoints``: restarts after which the mesh proxy had another port.
- ``orphan_processes``: processes below a killed runtime (and those it started after the bench last looked,
  found by the state directory in their command line or environment) still alive after the next runtime is up
  and settled (2 s) and neither in its ``runtime.json`` nor below it. ``leaked_ports``: ports they listen on.

Single scenarios: ``envoy_recovery_ms_p99``: SIGKILL Envoy, ms until a request through the mesh is answered 200
again, with the routes it served before (kills 10.5 s apart, so each is a first crash, not a crash loop).
Prometheus frozen with SIGSTOP (a killed one is restarted by the runtime within a second) while a healthy canary
runs: ``prometheus_down_promotions`` counts promotions and weight increases while it is down, and the run must
finish when it is back. A ``rollout`` webhook that never answers (timeout 2 s): every call cut within the
timeout, the next tick's call within timeout + tick, each a failed check, the run rolled back
(``hung_webhook_ticks_on_time``). A release whose process exits at start: rolled back at
the progress deadline, the primary answering no 5xx meanwhile.

The last line printed is one JSON object with every figure.

    .venv/bin/python bench/chaos.py --kills 50 --seed 1
    .venv/bin/python bench/chaos.py --quick          # CI smoke: 2 kills, 2 Envoy kills, every scenario
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _chaos_invariants import Run, double_promotion, duplicated_events, lost_events, promoted_after_failure
from _chaos_kills import MAX_WEIGHT, STEP, KillStats, kill_loop
from _chaos_live import Live, all_procs, mentions
from _chaos_scenarios import crash_loop, envoy_recovery, hung_webhook, prometheus_down
from _dataplane_helpers import percentile


def summary(stats: KillStats) -> dict[str, Any]:
    runs = stats.runs
    return {
        "kills": stats.kills,
        "runs": len(runs),
        "promoted": sum(r.outcome == "Succeeded" for r in runs),
        "rolled_back": sum(r.outcome == "Failed" for r in runs),
        "unfinished_runs": sum(r.outcome not in ("Succeeded", "Failed") for r in runs),
        "healthy_rolled_back": sum(r.kind == "healthy" and r.outcome == "Failed" for r in runs),
        "double_promotions": sum(double_promotion(r) for r in runs),
        "promoted_after_failure": sum(promoted_after_failure(r) for r in runs),
        "traffic_left_on_failed_canary": stats.traffic_left,
        "rollbacks_checked": stats.rollbacks_checked,
        "lost_events": sum(lost_events(r, STEP, MAX_WEIGHT) for r in runs),
        "duplicated_events": sum(duplicated_events(r) for r in runs),
        "status_regressions": stats.status_regressions,
        "moved_endpoints": stats.moved_endpoints,
        "orphan_processes": len(stats.orphans),
        "leaked_ports": len(stats.leaked_ports),
        "kills_between_route_and_status_write": stats.window_hits,
        "kill_moments": dict(sorted(stats.moments.items())),
        "restart_s_p50": round(percentile(stats.restart_seconds, 50), 2) if stats.restart_seconds else None,
    }


def print_run(run: Run, stats: KillStats) -> None:
    flags = [name for name, bad in (("LOST", lost_events(run, STEP, MAX_WEIGHT)), ("DUP", duplicated_events(run)),
             ("DOUBLE-PROMOTION", double_promotion(run)), ("PROMOTED-AFTER-FAILURE", promoted_after_failure(run)))
             if bad]  # fmt: skip
    print(f"{run.number:>4} {run.kind:<8} {run.outcome:<22} {','.join(run.kill_moments) or '-':<42}"
          f"{stats.kills:>6} {' '.join(flags) or 'ok'}", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=50, help="runtime kills in the kill loop (default 50)")
    parser.add_argument("--seed", type=int, default=1, help="seeds the runs' kinds and the kills' moments")
    parser.add_argument("--envoy-kills", type=int, default=10, help="Envoy kills, 10.5 s apart")
    parser.add_argument("--rps", type=int, default=40, help="users' requests per second through the mesh")
    parser.add_argument("--quick", action="store_true", help="CI smoke: --kills 2 --envoy-kills 2")
    parser.add_argument("--keep", action="store_true", help="keep the state directory")
    args = parser.parse_args()
    if args.quick:
        args.kills, args.envoy_kills = 2, 2
    work = Path(tempfile.mkdtemp(prefix="canaryflow-chaos-"))
    live = Live(work)
    started = time.monotonic()
    figures: dict[str, Any] = {}
    try:
        live.up()
        live.first_deploy()
        live.start_users(args.rps)
        time.sleep(2)
        print(f"{'run':>4} {'release':<8} {'outcome':<22} {'kill moments':<42}{'kills':>6} invariants", flush=True)
        figures.update(summary(kill_loop(live, args.kills, args.seed, print_run)))
        recovery = envoy_recovery(live, args.envoy_kills)
        figures.update(envoy_recovery_ms_p50=round(percentile(recovery, 50), 1),
                       envoy_recovery_ms_p99=round(percentile(recovery, 99), 1),
                       envoy_recovery_ms_max=round(max(recovery), 1), envoy_kills=len(recovery))  # fmt: skip
        prom = prometheus_down(live, down_seconds=12.0)
        figures.update(prometheus_down_promotions=prom["promotions_while_down"] + prom["advances_while_down"],
                       prometheus_down_failed_checks=prom["failed_checks_while_down"],
                       prometheus_back_outcome=prom["outcome_after"])  # fmt: skip
        hook = hung_webhook(live)
        figures.update(hung_webhook_ticks_on_time=hook["ticks_on_time"], hung_webhook_outcome=hook["outcome"],
                       hung_webhook_calls=hook["calls"], hung_webhook_longest_call_s=hook["longest_call_s"],
                       hung_webhook_longest_gap_s=hook["longest_gap_s"])  # fmt: skip
        crash = crash_loop(live)
        figures.update(crash_loop_outcome=crash["outcome"], crash_loop_seconds=crash["seconds"],
                       crash_loop_canary_restarts=crash["canary_restarts"],
                       crash_loop_primary_5xx=crash["primary_5xx"])  # fmt: skip
    finally:
        live.stop_users()
        live.down()
        figures["left_after_down"] = sum(mentions(p.pid, live.dirs.root) for p in all_procs())
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    figures["seed"], figures["seconds"] = args.seed, round(time.monotonic() - started)
    print()
    width = max(map(len, figures))
    for name, value in figures.items():
        print(f"{name:<{width}}  {value}")
    print(json.dumps(figures))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
