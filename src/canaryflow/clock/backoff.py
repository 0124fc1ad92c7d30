"""The one backoff policy: capped exponential waits between consecutive failures.

Every retry in canaryflow waits through this (API calls, watches that fail to start, webhooks, GitOps
reconciles and finalizers, crash-looping processes). A library (tenacity, stamina) would own the retry loop, but
most of these are not loops around one call: a GitOps object's next reconcile, a watch restarted by its task, a
process restarted by its supervisor. What they share is the arithmetic, so that is what lives here; each caller
waits on its Clock.
"""

from __future__ import annotations

import dataclasses

#: Past this many doublings every reasonable ``first`` is above its ``cap`` (and ``2.0 ** n`` stays finite).
_MAX_EXPONENT = 64


@dataclasses.dataclass(frozen=True, slots=True)
class Backoff:
    """After the n-th consecutive failure wait ``min(cap, first * factor ** (n - 1))`` seconds."""

    first: float
    cap: float
    factor: float = 2.0

    def __post_init__(self) -> None:
        if self.first < 0 or self.cap < 0 or self.factor < 1:
            raise ValueError(f"Backoff needs non-negative delays and a factor >= 1, got {self}")

    def delay(self, failures: int) -> float:
        """The wait after ``failures`` consecutive failures (1 = the first failure)."""
        if failures < 1:
            raise ValueError(f"a backoff delay follows at least one failure, got {failures}")
        return float(min(self.cap, self.first * self.factor ** min(failures - 1, _MAX_EXPONENT)))
