"""Single faults of ``bench/chaos.py`` on a live runtime: Envoy killed, Prometheus stopped, a webhook that hangs,
a release whose process crash-loops."""

from __future__ import annotations

import copy
import itertools
import os
import select
import signal
import socketserver
import threading
import time
from typing import Any

import httpx
from _chaos_live import ANALYSIS, PRIMARY_CLUSTER, Live
from _dataplane_helpers import cmdline

Json = dict[str, Any]
#: A process that ran this long before it exited crashed once, not in a loop (``local/procs._STABLE`` + margin).
STABLE = 10.5


def wait_outcome(live: Live, before: str, timeout: float = 150.0) -> tuple[str, Json]:
    """The release's run once it has been seen under way and then ended."""
    deadline = time.monotonic() + timeout
    status: Json = {}
    started = False
    while time.monotonic() < deadline:
        status = live.status()
        final = status.get("phase") in ("Succeeded", "Failed")
        if status.get("last_applied_spec") != before:
            if started and final:
                return str(status["phase"]), status
            started |= not final
        time.sleep(0.1)
    return f"timed out in {status.get('phase')}", status


# -- Envoy killed -----------------------------------------------------------------------------------------------------
def envoy_recovery(live: Live, repetitions: int) -> list[float]:
    """SIGKILL Envoy, then ms until a request through the mesh proxy is answered 200 again; the routes served
    after must be the ones served before (the last good configuration). Each kill comes once Envoy has run
    ``STABLE`` seconds: the supervisor restarts a first crash at once and backs off only in a crash loop, and this
    measures the first."""
    out = []
    proxy = live.endpoint("meshProxy")
    for i in range(repetitions):
        if i:
            time.sleep(STABLE)
        pid = _fresh_envoy_pid(live)
        weights = live.canary_weights()
        os.kill(pid, signal.SIGKILL)
        killed = time.perf_counter()
        with httpx.Client(proxy=proxy, timeout=0.5, trust_env=False) as client:
            while time.perf_counter() - killed < 30:
                try:
                    if client.get("http://backend.prod:9898/", headers={"connection": "close"}).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.002)
        out.append((time.perf_counter() - killed) * 1000)
        if live.canary_weights() != weights:
            raise RuntimeError(f"Envoy came back with other routes: {weights} → {live.canary_weights()}")
    return out


def _fresh_envoy_pid(live: Live) -> int:
    """Envoy's PID once runtime.json (written every second) names a live Envoy."""
    for _ in range(100):
        pid = live.child_pid("envoy")
        if "envoy" in cmdline(pid):
            return pid
        time.sleep(0.1)
    raise RuntimeError("no live Envoy in runtime.json")


# -- Prometheus stopped -----------------------------------------------------------------------------------------------
def prometheus_down(live: Live, down_seconds: float) -> Json:
    """A healthy release; once it has weight, Prometheus is frozen (SIGSTOP: it keeps its port and answers nothing,
    which the runtime's supervisor cannot see as an exit) for ``down_seconds``, then thawed. While it is down the
    canary must not advance nor promote; after, it must finish the run. A failed query is a failed check, as in
    Flagger, so the threshold is 50 here: the point is the halt, not the rollback."""
    analysis = {**copy.deepcopy(ANALYSIS), "threshold": 50}
    before = live.release(analysis=analysis)
    while int(live.status().get("canary_weight", 0)) < 20 or live.status().get("last_applied_spec") == before:
        time.sleep(0.05)
    pid = live.child_pid("prometheus")
    at_stop = live.status()
    os.kill(pid, signal.SIGSTOP)
    advances = promotions = 0
    last = at_stop
    try:
        end = time.monotonic() + down_seconds
        while time.monotonic() < end:
            now = live.status()
            advances += int(now.get("canary_weight", 0)) > int(last.get("canary_weight", 0))
            promotions += now.get("phase") in ("Promoting", "Finalising", "Succeeded")
            last = now
            time.sleep(0.1)
    finally:
        os.kill(pid, signal.SIGCONT)
    halted_checks = int(last.get("failed_checks", 0)) - int(at_stop.get("failed_checks", 0))
    outcome, _ = wait_outcome(live, before)
    return {"advances_while_down": advances, "promotions_while_down": promotions,
            "failed_checks_while_down": halted_checks, "outcome_after": outcome}  # fmt: skip


# -- a webhook that hangs ---------------------------------------------------------------------------------------------
class _Hang(socketserver.BaseRequestHandler):
    """Reads a request and never answers; records when the call came and how long the caller waited."""

    def handle(self) -> None:
        start = time.monotonic()
        while select.select([self.request], [], [], 60)[0]:
            if not self.request.recv(65536):
                break
        self.server.calls.append((start, time.monotonic() - start))  # type: ignore[attr-defined]


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    calls: list[tuple[float, float]]


def hung_webhook(live: Live, timeout_s: float = 2.0, tick_s: float = 1.0) -> Json:
    """A ``rollout`` webhook that never answers. On time: every call is cut within ``timeout_s`` (+1 s), the
    next tick's call follows within ``timeout_s + tick_s`` (+1 s): the loop is not stuck behind the hook; each
    counts as a failed check and the run is rolled back at the threshold."""
    server = _Server(("127.0.0.1", 0), _Hang)
    server.calls = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hook = {"name": "hangs", "type": "rollout", "timeout": f"{timeout_s:g}s",
            "url": f"http://127.0.0.1:{server.server_address[1]}/"}  # fmt: skip
    analysis = {**copy.deepcopy(ANALYSIS), "webhooks": [hook]}
    started = time.monotonic()
    try:
        before = live.release(analysis=analysis)
        outcome, status = wait_outcome(live, before)
        time.sleep(0.5)
    finally:
        server.shutdown()
        server.server_close()
    calls = sorted(server.calls)
    waits = [w for _, w in calls]
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(calls)]
    failed = int(status.get("failed_checks", 0))
    on_time = (
        bool(calls)
        and max(waits) <= timeout_s + 1.0
        and max(gaps, default=0.0) <= timeout_s + tick_s + 1.0
        and outcome == "Failed"
        and failed >= int(ANALYSIS["threshold"])
    )
    return {"outcome": outcome, "calls": len(calls), "longest_call_s": round(max(waits, default=0.0), 2),
            "longest_gap_s": round(max(gaps, default=0.0), 2), "failed_checks": failed,
            "seconds": round(time.monotonic() - started, 1), "ticks_on_time": on_time}  # fmt: skip


# -- a crash-looping release ------------------------------------------------------------------------------------------
def crash_loop(live: Live, deadline: int = 20) -> Json:
    """A release whose process exits at start: the canary never becomes ready, the run is rolled back once the
    progress deadline passes, and the primary keeps serving (its cluster answers no 5xx meanwhile)."""
    primary_5xx = _primary_5xx(live)
    started = time.monotonic()
    before = live.release(env={"CANARYFLOW_FAULT_CRASH": "1"}, deadline=deadline)
    restarts = 0
    outcome, status, under_way = "", {}, False
    while time.monotonic() - started < 150:
        status = live.status()
        for p in live.runtime.json("GET", "/status")["processes"]:
            if p["name"].startswith("prod/backend-") and "primary" not in p["name"]:
                restarts = max(restarts, int(p.get("restarts") or 0))
        final = status.get("phase") in ("Succeeded", "Failed")
        if status.get("last_applied_spec") != before:
            if under_way and final:
                outcome = str(status["phase"])
                break
            under_way |= not final
        time.sleep(0.5)
    seconds = round(time.monotonic() - started, 1)
    return {"outcome": outcome or f"timed out in {status.get('phase')}", "seconds": seconds,
            "canary_restarts": restarts, "primary_5xx": _primary_5xx(live) - primary_5xx,
            "message": status.get("message", "")}  # fmt: skip


def _primary_5xx(live: Live) -> int:
    pattern = rf"^cluster\.{PRIMARY_CLUSTER}\.upstream_rq_5xx$"
    text = httpx.get(
        f"{live.endpoint('envoyAdmin')}/stats", params={"filter": pattern}, timeout=2.0, trust_env=False
    ).text
    return sum(int(v) for line in text.splitlines() if (v := line.partition(": ")[2].strip()).isdigit())
