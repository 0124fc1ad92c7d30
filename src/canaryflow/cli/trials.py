"""``canaryflow simulate --rps``: the canary with and without the judge on simulated Poisson traffic.

Prints, for each policy, what N seeded runs did: promoted or rolled back, the median time, canary requests and
failed requests, and the false-rollback rate (a healthy canary) or the miss rate (a faulty one).
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import TextIO

import yaml
from rich.console import Console
from rich.table import Table

from canaryflow.api.canary import Canary
from canaryflow.api.judge import CanaryJudge
from canaryflow.control import trials
from canaryflow.traffic.memory import Fault

_FAULT = re.compile(r"^(?:(?P<healthy>healthy|none)|errors\s*[x×*]\s*(?P<k>[0-9.]+)|latency\s*\+\s*(?P<p>[0-9.]+)%)$")


class UsageError(ValueError):
    pass


def parse_fault(text: str) -> Fault:
    """``healthy``, ``errors×K`` (also ``errorsxK``) or ``latency+P%``."""
    match = _FAULT.match(text.strip().lower())
    if match is None:
        raise UsageError(
            f"--fault {text!r}: expected healthy, errors×K (e.g. errors×5) or latency+P% (e.g. latency+50%)"
        )
    if match["k"]:
        return Fault(errors=float(match["k"]))
    if match["p"]:
        return Fault(latency=1 + float(match["p"]) / 100)
    return Fault()


def run(canary: Canary, rps: float, baseline_error: float, fault_text: str, runs: int, output: str, out: TextIO) -> int:
    fault = parse_fault(fault_text)
    if rps <= 0 or not 0 <= baseline_error < 1 or runs < 1:
        raise UsageError("--rps must be above 0, --baseline-error in [0, 1), --runs at least 1")
    judge = canary.spec.effective_analysis.judge or CanaryJudge()
    traffic = trials.Traffic(rps, baseline_error, fault)
    healthy = fault == Fault()
    rows: list[dict[str, object]] = []
    for policy, config in (("thresholds", None), ("judge", judge)):
        results = asyncio.run(trials.trials(trials.with_judge(canary, config), traffic, runs))
        summary = trials.Summary.of(results)
        misjudged = summary.rolled_back if healthy else summary.runs - summary.rolled_back
        rows.append({
            "policy": policy,
            "fault": fault_text,
            "runs": summary.runs,
            "promoted": summary.promoted,
            "rolledBack": summary.rolled_back,
            "seconds": summary.seconds,
            "canaryRequests": round(summary.canary_requests),
            "failedRequests": round(summary.failed_requests),
            ("falseRollbackRate" if healthy else "missRate"): misjudged / summary.runs,
        })  # fmt: skip
    if output in ("json", "yaml"):
        data = {"canary": canary.key, "rps": rps, "baselineError": baseline_error, "results": rows}
        out.write(json.dumps(data, indent=2) + "\n" if output == "json" else yaml.safe_dump(data, sort_keys=False))
        return 0
    table = Table(title=f"{canary.key} at {rps:g} req/s, {baseline_error:.2%} baseline errors, fault {fault_text}")
    rate = "false rollbacks" if healthy else "misses"
    for column in ("policy", "promoted", "rolled back", "median time", "canary requests", "failed requests", rate):
        table.add_column(column, justify="left" if column == "policy" else "right")
    for row in rows:
        wrong = float(str(row.get("falseRollbackRate", row.get("missRate", 0.0))))
        table.add_row(
            str(row["policy"]), str(row["promoted"]), str(row["rolledBack"]), f"{row['seconds']:.0f}s",
            f"{row['canaryRequests']:,}", f"{row['failedRequests']:,}", f"{wrong:.1%}",
        )  # fmt: skip
    Console(file=out, width=140).print(table)
    return 0
