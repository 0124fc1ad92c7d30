"""The TrafficCounter seam."""

from __future__ import annotations

from typing import Protocol

from canaryflow.api.canary import Canary
from canaryflow.api.judge import JudgeCounts
from canaryflow.engine.effects import ArmCounts


class TrafficError(Exception):
    """The counters could not be read (the message names the source and the cause)."""


class TrafficCounter(Protocol):
    async def count(self, canary: Canary, counts: JudgeCounts) -> ArmCounts:
        """Cumulative counters of ``canary``'s canary and primary workloads now; raises TrafficError."""
        ...


class NoTraffic:
    """A runtime without a counter source: every look is "no data", so the judge never decides."""

    async def count(self, canary: Canary, counts: JudgeCounts) -> ArmCounts:
        raise TrafficError("this runtime has no traffic counters")
