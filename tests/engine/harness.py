"""A canary on fake time with every adapter in memory: drive ticks, read back what a user would see."""

from __future__ import annotations

import dataclasses
from typing import Any

import yaml

from canaryflow.api.canary import Canary, CanaryMetric
from canaryflow.api.status import CanaryStatus, Phase
from canaryflow.control.clock import FakeClock
from canaryflow.control.executor import Adapters, Executor
from canaryflow.control.ownmetrics import Recorder
from canaryflow.engine.checks import Settings
from canaryflow.engine.machine import Operation
from canaryflow.hooks.memory import MemoryHookRunner
from canaryflow.metrics.base import MetricError, NoValuesFound
from canaryflow.routing.memory import MemoryRouter
from canaryflow.store.memory import MemoryEventSink, MemoryStatusStore
from canaryflow.workloads.memory import MemoryWorkload

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


class ScriptedMetrics:
    """Metric values per metric name: a float, NoValuesFound/MetricError instance, or a list used in order."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.offline: list[str] = []
        self.calls: list[str] = []

    async def measure(self, canary: Canary, metric: CanaryMetric) -> float:
        self.calls.append(metric.name)
        value = self.values.get(metric.name, 100.0)
        if isinstance(value, list):
            value = value.pop(0) if len(value) > 1 else value[0]
        if isinstance(value, MetricError):
            raise value
        return float(value)

    async def check_providers(self, canary: Canary) -> list[str]:
        return list(self.offline)


class RecordedAlerts:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    async def send(self, canary: Canary, message: str, severity: str) -> list[str]:
        self.sent.append((severity, message))
        return []


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


class Harness:
    def __init__(self, spec: Canary | None = None, settings: Settings | None = None) -> None:
        self.canary = spec or canary()
        self.clock = FakeClock()
        self.workload = MemoryWorkload()
        self.router = MemoryRouter()
        self.metrics = ScriptedMetrics()
        self.hooks = MemoryHookRunner()
        self.alerts = RecordedAlerts()
        self.store = MemoryStatusStore()
        self.events = MemoryEventSink()
        self.recorder = Recorder()
        adapters = Adapters(
            workload=self.workload,
            router=self.router,
            metrics=self.metrics,
            hooks=self.hooks,
            alerts=self.alerts,
            store=self.store,
            events=self.events,
            recorder=self.recorder,
            settings=settings or Settings(),
        )
        self.executor = Executor(adapters, self.clock)
        self.target_key = f"{self.canary.metadata.namespace}/{self.canary.spec.target_ref.name}"
        self.workload.deploy(self.target_key, "rev-1")
        self._seen = 0

    @property
    def target(self) -> Any:
        return self.workload.targets[self.target_key]

    def release(self, spec_hash: str, **configs: str) -> None:
        self.workload.deploy(self.target_key, spec_hash, **configs)

    async def status(self) -> CanaryStatus:
        stored = await self.store.load(self.canary.key)
        return stored.status if stored else CanaryStatus()

    async def request(self, operation: Operation) -> None:
        await self.store.request(self.canary.key, operation)

    async def tick(self) -> Row:
        await self.clock.advance(self.canary.spec.effective_analysis.interval_seconds)
        await self.executor.tick(self.canary)
        status = await self.status()
        routes = await self.router.get_routes(self.canary)
        new = list(self.events.events)[self._seen :]
        self._seen = len(self.events.events)
        return Row(
            status.phase.value,
            routes.primary,
            routes.canary,
            status.iterations,
            status.failed_checks,
            tuple(e.message for e in new),
        )

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
