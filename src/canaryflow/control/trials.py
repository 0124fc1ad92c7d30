"""Seeded trials: the real engine, judge and checks on simulated Poisson traffic and fake time.

A trial releases a new revision of a canary whose canary arm may be faulty (errors times K, latencies times F)
and runs it to promotion or rollback, counting what users would have seen: canary requests and the canary's failed
requests. Threshold checks read the same simulated traffic (``SimulatedChecks``: error rate, success rate and
p99 over each metric's window), so a run with the judge and one without it judge the same kind of traffic.
``canaryflow simulate --rps`` and ``bench/exposure.py --simulate-aa`` use these; so do the judge's tests.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Sequence

from canaryflow.api.canary import Canary, CanaryMetric
from canaryflow.api.duration import parse_duration
from canaryflow.api.judge import CanaryJudge
from canaryflow.api.status import Phase
from canaryflow.control.scheduler import Timing
from canaryflow.control.simulate import Sandbox
from canaryflow.engine.effects import Routes
from canaryflow.metrics.base import NoValuesFound
from canaryflow.traffic.memory import ISTIO_BUCKETS, Arm, Fault, SimulatedTraffic


@dataclasses.dataclass(frozen=True, slots=True)
class Traffic:
    rps: float
    baseline_error: float = 0.001
    fault: Fault = dataclasses.field(default_factory=Fault)
    median_ms: float = 20.0


@dataclasses.dataclass(frozen=True, slots=True)
class Trial:
    outcome: str  # "promoted", "rolled-back" or "still <phase>"
    seconds: float
    canary_requests: float
    failed_requests: float
    message: str
    #: steps taken before their analysis interval, on the judge's "not worse" evidence
    early_steps: int = 0
    #: analyses that halted the advance (a failed check, no values, a closed gate)
    halts: int = 0


class SimulatedChecks:
    """A MetricsRunner over simulated traffic: Flagger's built-in checks and templates named like the seed's
    (``error-rate``: percent of 5xx; ``latency``/``duration``: p99 in ms); any other metric reads as healthy."""

    def __init__(self, box: Sandbox, traffic: SimulatedTraffic) -> None:
        self.box, self.traffic = box, traffic
        self.history: list[tuple[float, float, float, tuple[float, ...]]] = []

    async def sample(self, canary: Canary) -> None:
        """Scrape the canary's counters now (Prometheus scrapes them from the moment the canary runs, so the first
        check's window holds what it served since then, not nothing)."""
        await self.traffic.count(canary, _COUNTS)
        totals = self.traffic.totals("canary")
        self.history.append((self.box.clock.now(), totals.requests, totals.errors, tuple(n for _, n in totals.buckets)))

    async def measure(self, canary: Canary, metric: CanaryMetric) -> float:
        await self.sample(canary)
        now = self.box.clock.now()
        totals = self.traffic.totals("canary")
        window = parse_duration(metric.interval)
        # The counters as last scraped at or before the window's start (as a range query sees them), else at start.
        start = next((h for h in reversed(self.history) if h[0] <= now - window), self.history[0])
        requests, errors = totals.requests - start[1], totals.errors - start[2]
        if requests <= 0:
            raise NoValuesFound(f"no values found for {metric.name}")
        name = metric.name
        if name == "request-success-rate":
            return 100 * (1 - errors / requests)
        if "error" in name:
            return 100 * errors / requests
        if "latency" in name or "duration" in name:
            buckets = [n - s for n, s in zip((n for _, n in totals.buckets), start[3], strict=True)]
            return p99(buckets)
        return 0.0 if metric.threshold_range is not None and metric.threshold_range.max is not None else 100.0

    async def check_providers(self, canary: Canary) -> list[str]:
        return []


_COUNTS = CanaryJudge().counts


def p99(cumulative: Sequence[float]) -> float:
    """histogram_quantile(0.99) over Istio's buckets (the last entry is +Inf), interpolating as Prometheus does."""
    total = cumulative[-1]
    rank, below, lower = 0.99 * total, 0.0, 0.0
    for le, count in zip((*ISTIO_BUCKETS, math.inf), cumulative, strict=True):
        if count >= rank:
            if le == math.inf:
                return lower
            return lower + (le - lower) * (rank - below) / max(count - below, 1e-12)
        below, lower = count, le
    return lower


def with_judge(canary: Canary, judge: CanaryJudge | None) -> Canary:
    """``canary`` with its analysis's judge replaced (None: the thresholds alone, as in Flagger)."""
    doc = canary.model_dump(by_alias=True, exclude_none=True, mode="json")
    analysis = doc["spec"].setdefault("analysis", {})
    if judge is None:
        analysis.pop("judge", None)
    else:
        analysis["judge"] = judge.to_dict()
    return Canary.model_validate(doc)


async def trial(canary: Canary, traffic: Traffic, seed: int, timing: Timing | None = None) -> Trial:
    primary = Arm(traffic.baseline_error, traffic.median_ms)
    made: list[SimulatedTraffic] = []

    def make(box: Sandbox) -> SimulatedTraffic:
        made.append(SimulatedTraffic(box.clock.now, lambda c: box.router.routes.get(c.key) or Routes(100, 0),
                                     traffic.rps, primary, traffic.fault, seed))  # fmt: skip
        return made[0]

    box = Sandbox(canary, traffic=make, timing=timing)
    checks = box.executor.a.metrics = SimulatedChecks(box, made[0])
    await box.tick(0)
    box.release("revision-2")
    simulated = made[0]
    await checks.sample(canary)  # start serving the new revision's traffic now
    start_served = [list(v) for v in simulated.served.values()]
    step = box.timing.wake_every(canary, box.executor.a.settings)
    elapsed, phase = 0.0, ""
    while elapsed < 7200:
        result = await box.tick(step)
        elapsed += step
        phase = result.phase
        if phase in (Phase.SUCCEEDED, Phase.FAILED):
            break
        if phase == Phase.PROMOTING:
            await simulated.count(canary, _COUNTS)
    await simulated.count(canary, _COUNTS)
    canary_served = simulated.served["canary"]
    status = await box.status()
    outcome = {Phase.SUCCEEDED: "promoted", Phase.FAILED: "rolled-back"}.get(Phase(phase), f"still {phase}")
    return Trial(
        outcome,
        elapsed,
        canary_served[0] - start_served[0][0],
        canary_served[1] - start_served[0][1],
        status.message,
        sum(" early: " in e.message for e in box.events.events),
        sum(e.message.startswith("Halt advancement") for e in box.events.events),
    )


@dataclasses.dataclass(frozen=True, slots=True)
class Summary:
    runs: int
    promoted: int
    rolled_back: int
    seconds: float
    canary_requests: float
    failed_requests: float

    @classmethod
    def of(cls, trials: Sequence[Trial]) -> Summary:
        return cls(
            len(trials),
            sum(t.outcome == "promoted" for t in trials),
            sum(t.outcome == "rolled-back" for t in trials),
            statistics.median(t.seconds for t in trials),
            statistics.median(t.canary_requests for t in trials),
            statistics.median(t.failed_requests for t in trials),
        )


async def trials(canary: Canary, traffic: Traffic, runs: int, timing: Timing | None = None) -> list[Trial]:
    return [await trial(canary, traffic, seed, timing) for seed in range(runs)]
