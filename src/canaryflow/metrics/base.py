"""The MetricsProvider seam and its errors."""

from __future__ import annotations

from typing import Protocol


class MetricError(Exception):
    """A query could not give a value (server unreachable, bad query, unexpected result type)."""


class NoValuesFound(MetricError):
    """The query returned no sample, or NaN: usually the workload receives no traffic."""


class MetricsProvider(Protocol):
    async def query(self, expr: str) -> float:
        """The value of ``expr`` (the last element of an instant vector); raises NoValuesFound or MetricError."""
        ...

    async def is_online(self) -> bool:
        """True when the provider answers (Prometheus: ``vector(1)`` returns 1); raises MetricError otherwise."""
        ...
