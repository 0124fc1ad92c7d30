"""Simulated traffic on fake time: Poisson arrivals split by the router's weights, errors and latencies drawn
per arm (the canary's possibly faulty), as cumulative counters — what Prometheus would report."""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Callable

from canaryflow.api.canary import Canary
from canaryflow.api.evidence import Counts
from canaryflow.api.judge import JudgeCounts
from canaryflow.engine.effects import ArmCounts, Routes

#: Istio's default buckets for istio_request_duration_milliseconds (ms).
ISTIO_BUCKETS = (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000)


@dataclasses.dataclass(frozen=True, slots=True)
class Arm:
    """One arm's behaviour: its error rate and its latency distribution (log-normal)."""

    error_rate: float = 0.001
    median_ms: float = 20.0
    sigma: float = 0.6

    def at_most(self, le: float) -> float:
        """P(latency <= le)."""
        z = (math.log(le) - math.log(self.median_ms)) / self.sigma
        return 0.5 * math.erfc(-z / math.sqrt(2))


@dataclasses.dataclass(frozen=True, slots=True)
class Fault:
    """How the canary differs from the primary: errors times ``errors``, every latency times ``latency``."""

    errors: float = 1.0
    latency: float = 1.0

    def apply(self, arm: Arm) -> Arm:
        return Arm(min(arm.error_rate * self.errors, 1.0), arm.median_ms * self.latency, arm.sigma)


class SimulatedTraffic:
    """``rps`` requests per second in all, routed by ``routes(canary)`` (a MemoryRouter's current routes)."""

    def __init__(
        self,
        now: Callable[[], float],
        routes: Callable[[Canary], Routes],
        rps: float,
        primary: Arm | None = None,
        fault: Fault | None = None,
        seed: int = 0,
    ) -> None:
        self._now, self._routes, self.rps = now, routes, rps
        self.primary = primary or Arm()
        self.canary = (fault or Fault()).apply(self.primary)
        self._random = random.Random(seed)
        self._last: float | None = None
        self._totals = {"canary": _Totals(), "primary": _Totals()}
        #: requests and errors served by each arm (for exposure figures)
        self.served = {"canary": [0.0, 0.0], "primary": [0.0, 0.0]}

    def advance(self, routes: Routes) -> None:
        """Serve the traffic of the time since the last call under ``routes``."""
        now = self._now()
        elapsed = 0.0 if self._last is None else now - self._last
        self._last = now
        if elapsed <= 0:
            return
        share = {"canary": routes.canary / 100, "primary": routes.primary / 100}
        if routes.mirrored:
            share["canary"] = 1.0  # a mirror copies every request to the canary
        for name, arm in (("canary", self.canary), ("primary", self.primary)):
            expected = self.rps * elapsed * share[name]
            if expected > 0:
                served = self._totals[name].serve(arm, expected, self._random)
                if name == "canary" and routes.mirrored:
                    continue  # mirrored responses never reach users
                self.served[name][0] += served[0]
                self.served[name][1] += served[1]

    def totals(self, arm: str) -> Counts:
        """The counters of ``arm`` ("canary" or "primary") as last advanced."""
        return self._totals[arm].counts()

    async def count(self, canary: Canary, counts: JudgeCounts) -> ArmCounts:
        self.advance(self._routes(canary))
        return ArmCounts(self._totals["canary"].counts(), self._totals["primary"].counts())


class _Totals:
    def __init__(self) -> None:
        self.requests = 0.0
        self.errors = 0.0
        self.buckets = [0.0] * len(ISTIO_BUCKETS)

    def serve(self, arm: Arm, expected: float, rng: random.Random) -> tuple[float, float]:
        """Draw the requests of one interval (each histogram bin and the errors are independent Poisson
        counts, which is what Poisson arrivals split by a fixed probability are)."""
        below, served = 0.0, 0.0
        for i, le in enumerate(ISTIO_BUCKETS):
            p = arm.at_most(le)
            n = poisson(rng, expected * (p - below))
            below = p
            served += n
            for j in range(i, len(ISTIO_BUCKETS)):
                self.buckets[j] += n
        served += poisson(rng, expected * (1 - below))
        errors = min(poisson(rng, expected * arm.error_rate), served)
        self.requests += served
        self.errors += errors
        return served, errors

    def counts(self) -> Counts:
        buckets = (*zip(ISTIO_BUCKETS, self.buckets, strict=True), (math.inf, self.requests))
        return Counts(self.requests, self.errors, tuple((float(le), n) for le, n in buckets))


def poisson(rng: random.Random, mean: float) -> float:
    """A Poisson draw: exact (Knuth) for small means, the normal approximation above 50."""
    if mean <= 0:
        return 0.0
    if mean > 50:
        return float(max(0, round(rng.gauss(mean, math.sqrt(mean)))))
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return float(k)
        k += 1
