"""What the judge remembers between ticks and shows to users, as it is stored in the canary's status.

Frozen, so a status copy shares it; the engine replaces it whole on every look (``engine/judging.py``).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any


@dataclasses.dataclass(frozen=True, slots=True)
class Counts:
    """One arm's cumulative counters as last read: requests, errors, and the latency histogram's cumulative
    buckets ``(le in ms, requests at most that slow)``."""

    requests: float = 0.0
    errors: float = 0.0
    buckets: tuple[tuple[float, float], ...] = ()

    def minus(self, start: Counts) -> Counts:
        """The counts since ``start`` (buckets matched by boundary)."""
        before = dict(start.buckets)
        return Counts(
            self.requests - start.requests,
            self.errors - start.errors,
            tuple((le, n - before.get(le, 0.0)) for le, n in self.buckets),
        )

    def dropped_below(self, earlier: Counts) -> bool:
        """A counter went down: a process restarted and its counters began again."""
        return self.requests < earlier.requests or self.errors < earlier.errors

    def to_json(self) -> dict[str, Any]:
        # JSON has no infinity: the +Inf bucket is written as Prometheus writes it.
        buckets = [["+Inf" if math.isinf(le) else le, n] for le, n in self.buckets]
        return {"requests": self.requests, "errors": self.errors, "buckets": buckets}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Counts:
        buckets = tuple((float(le), float(n)) for le, n in data.get("buckets") or ())
        return cls(float(data.get("requests", 0)), float(data.get("errors", 0)), buckets)


def _finite(value: float) -> float:
    return max(min(value, 1e300), -1e300)


class Decision:
    CONTINUE = "continue"
    ROLLBACK = "rollback"
    NOT_WORSE = "not-worse"
    NO_DATA = "no-data"


@dataclasses.dataclass(frozen=True, slots=True)
class Evidence:
    """One test: its e-value (log), the bound it is compared with (log), and what it decided."""

    name: str
    #: log of the e-value of the segments already closed (segments multiply)
    closed: float = 0.0
    #: log of the e-value of the current segment
    current: float = 0.0
    log_bound: float = 0.0
    decision: str = Decision.NO_DATA
    message: str = ""

    @property
    def log_e(self) -> float:
        total = self.closed + self.current
        return 0.0 if math.isnan(total) else total


@dataclasses.dataclass(frozen=True, slots=True)
class JudgeState:
    alpha: float
    #: the canary weight the current segment runs at (a weight change starts a new segment)
    weight: int = -1
    #: counters at the start of the current segment, and at the start of the run
    segment_canary: Counts = Counts()
    segment_primary: Counts = Counts()
    run_canary: Counts = Counts()
    run_primary: Counts = Counts()
    #: counters at the last look (a drop means a restart: a new segment)
    last_canary: Counts = Counts()
    last_primary: Counts = Counts()
    #: looks in the current segment that saw new canary traffic
    segment_looks: int = 0
    tests: tuple[Evidence, ...] = ()
    looked_at: float = 0.0

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, Counts):
                value = value.to_json()
            elif field.name == "tests":
                value = [{**dataclasses.asdict(t), "closed": _finite(t.closed), "current": _finite(t.current)}
                         for t in value]  # fmt: skip
            out[field.name] = value
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JudgeState:
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            if field.name not in data:
                continue
            value = data[field.name]
            if field.type == "Counts":
                value = Counts.from_json(value)
            elif field.name == "tests":
                value = tuple(Evidence(**t) for t in value)
            values[field.name] = value
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """What users see (status, describe, the dashboard): each test's e-value against its bound."""
        return {
            "alpha": self.alpha,
            "tests": [
                {
                    "name": t.name,
                    "statistic": round(math.exp(max(min(t.log_e, 700.0), -700.0)), 4),
                    "bound": round(math.exp(t.log_bound), 4),
                    "decision": t.decision,
                    "message": t.message,
                }
                for t in self.tests
            ],
        }
