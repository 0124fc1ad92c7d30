"""A canary on fake time with every adapter in memory: drive ticks, read back what a user would see."""

from __future__ import annotations

import dataclasses
from typing import Any

import yaml

from canaryflow.api.canary import Canary
from canaryflow.api.status import Phase
from canaryflow.control.simulate import Sandbox
from canaryflow.engine.checks import Settings
from canaryflow.engine.machine import Operation
from canaryflow.metrics.base import NoValuesFound

BASE = """
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: podinfo, namespace: test}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  progressDeadlineSeconds: 60
  service: {port: 9898}
  analysis:
    interval: 10s
    threshold: 2
    maxWeight: 30
    stepWeight: 10
    metrics:
      - name: request-success-rate
        thresholdRange: {min: 99}
        interval: 1m
"""


def canary(**analysis: Any) -> Canary:
    """The base canary with ``analysis`` fields replaced (None removes a field); spec fields via ``spec_``."""
    doc = yaml.safe_load(BASE)
    for key, value in analysis.items():
        where, name = (doc["spec"], key[5:]) if key.startswith("spec_") else (doc["spec"]["analysis"], key)
        if value is None:
            where.pop(name, None)
        else:
            where[name] = value
    return Canary.model_validate(doc)


@dataclasses.dataclass(frozen=True)
class Row:
    """What ``kubectl get canary`` and ``kubectl describe`` show after one tick."""

    phase: str
    primary: int
    canary: int
    iterations: int
    failed: int
    events: tuple[str, ...]

    @property
    def brief(self) -> tuple[str, int, int, int, int]:
        return (self.phase, self.primary, self.canary, self.iterations, self.failed)


class Harness(Sandbox):
    def __init__(self, spec: Canary | None = None, settings: Settings | None = None) -> None:
        super().__init__(spec or canary(), settings)
        self.workload.deploy(self.target_key, "rev-1")

    @property
    def target(self) -> Any:
        return self.workload.targets[self.target_key]

    async def request(self, operation: Operation) -> None:
        await self.store.request(self.canary.key, operation)

    async def tick(self) -> Row:  # type: ignore[override]
        step = await super().tick(self.canary.spec.effective_analysis.interval_seconds)
        return Row(step.phase, step.primary, step.canary, step.iterations, step.failed, step.events)

    async def ticks(self, count: int) -> list[Row]:
        return [await self.tick() for _ in range(count)]

    async def until(self, *phases: Phase, limit: int = 60) -> list[Row]:
        """Tick until the phase is one of ``phases``; returns every row on the way."""
        rows: list[Row] = []
        for _ in range(limit):
            rows.append(await self.tick())
            if rows[-1].phase in phases:
                return rows
        raise AssertionError(f"never reached {phases}: {[r.brief for r in rows[-5:]]}")

    async def initialized(self) -> None:
        rows = await self.until(Phase.INITIALIZED)
        assert rows[-1].events == ("Initialization done! podinfo.test",)


def no_values() -> NoValuesFound:
    return NoValuesFound("no values found")
