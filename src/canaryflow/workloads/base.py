"""The Workload seam."""

from __future__ import annotations

from typing import Protocol

from canaryflow.api.canary import Canary
from canaryflow.engine.effects import Readiness, Revision

__all__ = ["Readiness", "Revision", "Workload", "WorkloadError"]


class WorkloadError(Exception):
    """The workload could not be read or changed (e.g. the target does not exist)."""


class Workload(Protocol):
    async def initialize(self, canary: Canary) -> None:
        """Create or update ``<target>-primary`` (and its config copies and autoscaler); idempotent."""
        ...

    async def revision(self, canary: Canary) -> Revision: ...
    async def primary_readiness(self, canary: Canary) -> Readiness: ...
    async def canary_readiness(self, canary: Canary) -> Readiness: ...
    async def scale_canary_up(self, canary: Canary) -> None: ...
    async def scale_canary_to_zero(self, canary: Canary) -> None: ...
    async def promote(self, canary: Canary) -> None:
        """Copy the canary's template (and configs) to the primary."""
        ...

    async def finalize(self, canary: Canary) -> None:
        """Revert on deletion: give the target its replicas back."""
        ...
