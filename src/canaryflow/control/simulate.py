"""The simulator: predicts a rollout before it runs, by driving the real engine on fake time with in-memory
adapters (the same executor and state machine the runtimes use, nothing re-implemented).

``simulate`` releases a new revision of the canary's target and ticks until the run ends, with metric values and
gate answers the caller scripts; it reports every tick, the time to promote or roll back, and how much traffic
the canary received on the way (full-traffic-minutes: weight times time, the exposure measure of judge.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from canaryflow.api.canary import Canary, CanaryMetric, Strategy
from canaryflow.api.status import CanaryStatus, Phase
from canaryflow.control.clock import FakeClock
from canaryflow.control.executor import Adapters, Executor
from canaryflow.control.ownmetrics import Recorder
from canaryflow.control.scheduler import Timing
from canaryflow.engine.checks import Settings
from canaryflow.hooks.memory import MemoryHookRunner
from canaryflow.metrics.base import MetricError, NoValuesFound
from canaryflow.notify.base import Severity
from canaryflow.routing.memory import MemoryRouter
from canaryflow.store.memory import MemoryEventSink, MemoryStatusStore
from canaryflow.traffic.base import NoTraffic
from canaryflow.traffic.memory import SimulatedTraffic
from canaryflow.workloads.memory import MemoryWorkload

#: Makes a sandbox's simulated traffic (it needs the sandbox's clock and router).
Traffic = Callable[["Sandbox"], SimulatedTraffic]
#: A scripted metric: one value, a list used tick by tick (the last one repeats), or an error to raise.
Script = float | list[float | MetricError] | MetricError


class ScriptedMetrics:
    """A MetricsRunner answering from scripts per metric name (a healthy 100 when unscripted... unless the
    metric checks a maximum, where 0 is healthy)."""

    def __init__(self, values: Mapping[str, Script] | None = None) -> None:
        self.values: dict[str, Any] = {k: (list(v) if isinstance(v, list) else v) for k, v in (values or {}).items()}
        self.offline: list[str] = []
        self.calls: list[str] = []

    async def measure(self, canary: Canary, metric: CanaryMetric) -> float:
        self.calls.append(metric.name)
        value = self.values.get(metric.name)
        if value is None:
            low = metric.threshold_range is not None and metric.threshold_range.max is not None
            value = 0.0 if low and metric.name != "request-success-rate" else 100.0
        if isinstance(value, list):
            value = value.pop(0) if len(value) > 1 else value[0]
        if isinstance(value, MetricError):
            raise value
        return float(value)

    async def check_providers(self, canary: Canary) -> list[str]:
        return list(self.offline)


class RecordedAlerts:
    """An AlertSender that keeps (severity, message) pairs."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    async def send(
        self, canary: Canary, message: str, severity: Severity, fields: Iterable[tuple[str, str]] = ()
    ) -> list[str]:
        self.sent.append((severity.value, message))
        return []


@dataclasses.dataclass(frozen=True)
class Step:
    seconds: float
    phase: str
    primary: int
    canary: int
    iterations: int
    failed: int
    events: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Prediction:
    steps: list[Step]
    outcome: str
    seconds: float
    #: Canary traffic in full-traffic-minutes (100 % for one minute = 1.0); for an A/B test, of the traffic
    #: that matches the test's conditions only.
    exposure: float
    exposure_scope: str = "all traffic"


class Sandbox:
    """One canary on fake time, every adapter in memory."""

    def __init__(
        self,
        canary: Canary,
        settings: Settings | None = None,
        metrics: ScriptedMetrics | None = None,
        traffic: Traffic | None = None,
        timing: Timing | None = None,
    ):
        self.canary = canary
        self.timing = timing or Timing()
        self.clock = FakeClock()
        self.workload = MemoryWorkload()
        self.router = MemoryRouter()
        self.metrics = metrics or ScriptedMetrics()
        self.hooks = MemoryHookRunner()
        self.alerts = RecordedAlerts()
        self.store = MemoryStatusStore()
        self.events = MemoryEventSink()
        self.recorder = Recorder()
        self.traffic = traffic(self) if traffic else None
        adapters = Adapters(
            self.workload,
            self.router,
            self.metrics,
            self.hooks,
            self.alerts,
            self.store,
            self.events,
            self.recorder,
            settings or Settings(),
            self.traffic or NoTraffic(),
        )
        self.executor = Executor(adapters, self.clock)
        self.target_key = f"{canary.metadata.namespace}/{canary.spec.target_ref.name}"
        self.workload.deploy(self.target_key, "revision-1")
        self._seen = 0

    def release(self, spec_hash: str, **configs: str) -> None:
        self.workload.deploy(self.target_key, spec_hash, **configs)

    async def status(self) -> CanaryStatus:
        stored = await self.store.load(self.canary.key)
        return stored.status if stored else CanaryStatus()

    async def tick(self, seconds: float) -> Step:
        await self.clock.advance(seconds)
        await self.executor.tick(self.canary, self.timing.interval(self.canary) if self.traffic else 0.0)
        status = await self.status()
        routes = await self.router.get_routes(self.canary)
        new = list(self.events.events)[self._seen :]
        self._seen = len(self.events.events)
        return Step(
            0.0,
            status.phase.value,
            routes.primary,
            routes.canary,
            status.iterations,
            status.failed_checks,
            tuple(e.message for e in new),
        )


async def simulate(
    canary: Canary,
    values: Mapping[str, Script] | None = None,
    gates: Mapping[str, list[bool]] | None = None,
    timing: Timing | None = None,
    settings: Settings | None = None,
    max_ticks: int = 500,
) -> Prediction:
    """Predict the run of a new revision of ``canary``'s target, from its release to promotion or rollback."""
    box = Sandbox(canary, settings, ScriptedMetrics(values))
    for name, answers in (gates or {}).items():
        box.hooks.script(name, *answers)
    interval = (timing or Timing()).interval(canary)
    await box.tick(0)
    box.release("revision-2")
    steps: list[Step] = []
    exposure = 0.0
    for n in range(1, max_ticks + 1):
        before = await box.router.get_routes(canary)
        step = await box.tick(interval)
        exposure += before.canary / 100 * interval / 60
        steps.append(dataclasses.replace(step, seconds=n * interval))
        if step.phase in (Phase.SUCCEEDED, Phase.FAILED):
            break
    last = steps[-1]
    outcome = last.phase if last.phase in (Phase.SUCCEEDED, Phase.FAILED) else f"still {last.phase}"
    scope = "matching traffic" if canary.spec.effective_analysis.strategy is Strategy.AB_TESTING else "all traffic"
    return Prediction(steps, outcome, last.seconds, exposure, scope)


__all__ = ["NoValuesFound", "Prediction", "RecordedAlerts", "Sandbox", "ScriptedMetrics", "Step", "simulate"]
