"""The benchmark that decides (issue "The sequential judge"): exposure of faulty canaries and time to promote a
healthy one, Flagger's thresholds against the judge, on live traffic through the local runtime.

Real Envoy, Prometheus and workload processes; users are `hey` at a fixed rate through the mesh to
``backend.prod:9898`` (Envoy splits them by the canary's weights); the primary serves 0.1 % errors (the demo app's
fault knobs), the canary the fault under test. The seed's rollout load test is left out so that every request
counted is a user's. Canary and failed requests are counted from Envoy's cluster stats of the canary's cluster
until all traffic is back on the primary (or the canary is promoted).

Policies: ``flagger-seed`` (the seed's analysis, thresholds only), ``flagger-defaults`` (interval 1m, threshold 5,
stepWeight 10, maxWeight 50) and ``judge`` (the seed's analysis plus ``judge: {interval: 2s}``: the local
Prometheus scrapes every second). Faults: healthy, errors-2x/5x/10x/100x, latency-p99+50%/+200% (a fixed delay on
every request: 20 ms on the primary, 30 or 60 ms on the canary).

``--simulate-aa N`` adds N seeded A/A runs of the real engine and judge on simulated traffic (the false-rollback
rate); ``--no-live`` runs only those. The last line printed is one JSON object with every figure.

    .venv/bin/python bench/exposure.py --policies flagger-seed,judge --faults healthy,errors-5x --simulate-aa 1000
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml
from rich.console import Console

from canaryflow.api.canary import Canary
from canaryflow.api.judge import CanaryJudge
from canaryflow.cli import demo
from canaryflow.control import trials
from canaryflow.traffic.memory import Fault

BASELINE = 0.001
BASE_DELAY_MS = 20
FAULTS = {
    "healthy": {"errors": 1.0},
    "errors-2x": {"errors": 2.0},
    "errors-5x": {"errors": 5.0},
    "errors-10x": {"errors": 10.0},
    "errors-100x": {"errors": 100.0},
    "latency-p99+50%": {"latency": 1.5},
    "latency-p99+200%": {"latency": 3.0},
}
POLICIES = ("flagger-seed", "flagger-defaults", "judge")


def policy_analysis(analysis: dict[str, Any], policy: str) -> dict[str, Any]:
    out = dict(analysis)
    out["webhooks"] = [w for w in analysis["webhooks"] if w["type"] != "rollout"]
    if policy == "flagger-defaults":
        out.update(interval="1m", threshold=5, stepWeight=10, maxWeight=50)
        out["metrics"] = [{**m, "interval": "1m"} for m in analysis["metrics"]]
    if policy == "judge":
        out["judge"] = {"interval": "2s"}
    return out


class Bench:
    def __init__(self, work: Path, rps: int, time_scale: float) -> None:
        self.d = demo.Demo(demo.EXAMPLES, work, Console(file=io.StringIO()), time_scale)
        self.rps, self.time_scale, self.release_no = rps, time_scale, 0
        canary = self.d.repo / "apps" / "backend" / "canary.yaml"
        self.canary_doc = yaml.safe_load(canary.read_text())
        self.users: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.d.runtime.start(time_scale=self.time_scale, min_interval=10.0)
        self.write(skip_analysis=True, errors=BASELINE, delay_ms=BASE_DELAY_MS)
        if not self.d.first_deploy().ok:
            raise SystemExit("first deploy failed")
        record = self.d.runtime.dirs.record() or {}
        self.admin = record["endpoints"]["envoyAdmin"]
        workers = 10
        self.users = subprocess.Popen(
            ["hey", "-z", "6h", "-q", str(self.rps / workers), "-c", str(workers), "-x",
             record["endpoints"]["meshProxy"], "http://backend.prod:9898/"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def stop(self) -> None:
        if self.users is not None:
            self.users.terminate()
            self.users.wait(10)
        self.d.runtime.stop()

    def write(self, *, policy: str = "flagger-seed", skip_analysis: bool, errors: float, delay_ms: float) -> None:
        doc = json.loads(json.dumps(self.canary_doc))
        doc["spec"]["skipAnalysis"] = skip_analysis
        doc["spec"]["analysis"] = policy_analysis(doc["spec"]["analysis"], policy)
        (self.d.repo / "apps" / "backend" / "canary.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
        path = self.d.repo / "apps" / "backend" / "deployment.yaml"
        deployment = yaml.safe_load(path.read_text())
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        env = [e for e in container.get("env", []) if not e["name"].startswith("CANARYFLOW_FAULT")]
        env += [{"name": "CANARYFLOW_FAULT_ERROR_RATE", "value": str(min(errors, 1.0))},
                {"name": "CANARYFLOW_FAULT_DELAY", "value": f"{delay_ms / 1000:g}"}]  # fmt: skip
        container["env"] = env
        path.write_text(yaml.safe_dump(deployment, sort_keys=False))

    def release(self, **kwargs: Any) -> str:
        before = self.d.canary("backend")["status"].get("lastAppliedSpec", "")
        self.release_no += 1
        self.d.set_tag("backend", f"6.2.{self.release_no}")
        self.write(**kwargs)
        self.d.apply("apps/backend")
        return str(before)

    def canary_stats(self) -> tuple[float, float]:
        text = httpx.get(f"{self.admin}/stats", params={"filter": r"^cluster\.prod_backend\.upstream_rq_(total|5xx)$"},
                         trust_env=False, timeout=5).text  # fmt: skip
        values = dict(line.split(": ", 1) for line in text.strip().splitlines() if ": " in line)
        return (float(values.get("cluster.prod_backend.upstream_rq_total", 0)),
                float(values.get("cluster.prod_backend.upstream_rq_5xx", 0)))  # fmt: skip

    def run(self, policy: str, fault: str) -> dict[str, Any]:
        spec = FAULTS[fault]
        # Reset: the primary back to the baseline release, promoted at once.
        before = self.release(skip_analysis=True, errors=BASELINE, delay_ms=BASE_DELAY_MS)
        self.d.wait("backend", ("Succeeded",), since=before, timeout=120)
        before = self.release(
            policy=policy, skip_analysis=False, errors=BASELINE * spec.get("errors", 1.0),
            delay_ms=BASE_DELAY_MS * spec.get("latency", 1.0),
        )  # fmt: skip
        start, counted, failed = time.monotonic(), 0.0, 0.0
        last = self.canary_stats()
        outcome = ""
        while time.monotonic() - start < 1800:
            time.sleep(0.5)
            now = self.canary_stats()
            # Envoy's counters begin again when the canary's cluster is rebuilt: count positive steps only.
            counted += now[0] - last[0] if now[0] >= last[0] else now[0]
            failed += now[1] - last[1] if now[1] >= last[1] else now[1]
            last = now
            status = self.d.canary("backend").get("status", {})
            if status.get("lastAppliedSpec") != before and status.get("phase") in ("Succeeded", "Failed"):
                outcome = "promoted" if status["phase"] == "Succeeded" else "rolled-back"
                break
        return {"policy": policy, "fault": fault, "outcome": outcome or "timed-out",
                "seconds": round(time.monotonic() - start, 1), "canary_requests": int(counted),
                "failed_requests": int(failed)}  # fmt: skip


def simulate_aa(runs: int, rps: int) -> dict[str, Any]:
    doc = yaml.safe_load((demo.EXAMPLES / "apps" / "backend" / "canary.yaml").read_text())
    doc["spec"]["analysis"] = policy_analysis(doc["spec"]["analysis"], "judge")
    canary = Canary.model_validate(doc)
    judge = canary.spec.effective_analysis.judge or CanaryJudge()
    results = asyncio.run(trials.trials(canary, trials.Traffic(rps, BASELINE, Fault()), runs))
    return {"runs": runs, "false_rollbacks": sum(t.outcome == "rolled-back" for t in results), "alpha": judge.alpha,
            "promoted": sum(t.outcome == "promoted" for t in results)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rps", type=int, default=200, help="users' requests per second through the mesh")
    parser.add_argument("--policies", default=",".join(POLICIES))
    parser.add_argument("--faults", default=",".join(FAULTS))
    parser.add_argument("--time-scale", type=float, default=1.0, help="shorten analysis intervals (1: as written)")
    parser.add_argument("--simulate-aa", type=int, default=0, metavar="N", help="N seeded A/A runs (simulated)")
    parser.add_argument("--no-live", action="store_true", help="only the simulated A/A runs")
    args = parser.parse_args()
    policies, faults = args.policies.split(","), args.faults.split(",")
    unknown = [p for p in policies if p not in POLICIES] + [f for f in faults if f not in FAULTS]
    if unknown:
        parser.error(f"unknown {', '.join(unknown)}; policies: {', '.join(POLICIES)}; faults: {', '.join(FAULTS)}")
    results: list[dict[str, Any]] = []
    if not args.no_live:
        bench = Bench(Path(tempfile.mkdtemp(prefix="canaryflow-exposure-")), args.rps, args.time_scale)
        try:
            bench.start()
            print(f"{'policy':<18}{'fault':<20}{'outcome':<13}{'seconds':>8}{'canary req':>12}{'failed':>8}")
            for fault in faults:
                for policy in policies:
                    r = bench.run(policy, fault)
                    results.append(r)
                    print(f"{r['policy']:<18}{r['fault']:<20}{r['outcome']:<13}{r['seconds']:>8.0f}"
                          f"{r['canary_requests']:>12,}{r['failed_requests']:>8,}", flush=True)  # fmt: skip
        finally:
            bench.stop()
    aa = simulate_aa(args.simulate_aa, args.rps) if args.simulate_aa else None
    if aa:
        print(f"A/A (simulated, {args.rps} req/s): {aa['false_rollbacks']} false rollbacks in {aa['runs']} runs "
              f"(alpha {aa['alpha']})")  # fmt: skip
    print(json.dumps({"rps": args.rps, "baseline_error": BASELINE, "results": results, "aa": aa}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
