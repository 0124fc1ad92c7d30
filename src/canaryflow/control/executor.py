"""The executor: runs one engine tick, carrying each effect out through the adapters.

It is the only place where the engine's effects meet I/O. An adapter failure abandons the tick with a warning
event and saves nothing, so the next tick starts again from the last saved status (nothing half-applied); one
canary's failure never touches another's tick.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Generator, Iterable, Sequence
from typing import Any, Protocol, TypeVar

from canaryflow.api.canary import Canary, CanaryMetric, HookType
from canaryflow.api.status import CanaryStatus
from canaryflow.control.clock import Clock
from canaryflow.control.deadlines import WEBHOOK_TIMED, Deadlines
from canaryflow.control.ownmetrics import Recorder
from canaryflow.control.watchdog import Expired, Watch, Watchdog
from canaryflow.engine import effects as fx
from canaryflow.engine import tick as engine
from canaryflow.engine.checks import Settings
from canaryflow.hooks.base import HookCall, HookRunner
from canaryflow.metrics.base import MetricError, NoValuesFound
from canaryflow.notify.base import Severity
from canaryflow.notify.dispatch import canary_fields
from canaryflow.routing.base import Router
from canaryflow.store.base import Conflict, Event, EventSink, StatusStore
from canaryflow.traffic.base import NoTraffic, TrafficCounter, TrafficError
from canaryflow.workloads.base import Workload

log = logging.getLogger(__name__)
T = TypeVar("T")


class MetricsRunner(Protocol):
    async def measure(self, canary: Canary, metric: CanaryMetric) -> float: ...
    async def check_providers(self, canary: Canary) -> list[str]: ...


class AlertSender(Protocol):
    async def send(
        self, canary: Canary, message: str, severity: Severity, fields: Iterable[tuple[str, str]] = ()
    ) -> list[str]:
        """Deliver to the canary's alert providers; returns delivery errors, never raises."""
        ...


@dataclasses.dataclass(slots=True)
class Adapters:
    """Everything one runtime plugs into the control loop."""

    workload: Workload
    router: Router
    metrics: MetricsRunner
    hooks: HookRunner
    alerts: AlertSender
    store: StatusStore
    events: EventSink
    recorder: Recorder
    settings: Settings = dataclasses.field(default_factory=Settings)
    #: The judge's per-arm counters (only asked for when a canary's judge is on).
    traffic: TrafficCounter = dataclasses.field(default_factory=NoTraffic)
    #: How long each adapter call and each tick may take (control/deadlines.py).
    deadlines: Deadlines = dataclasses.field(default_factory=Deadlines)


class EffectFailed(Exception):
    pass


def _name(canary: Canary) -> str:
    return f"{canary.metadata.name}.{canary.metadata.namespace}"


def _hung(call: str, canary: Canary, seconds: float) -> str:
    return f"{call} for {_name(canary)} did not answer within {seconds:g}s"


#: Calls whose missed deadline is a failed check (as Flagger counts a query error or a webhook timeout), not an
#: abandoned tick: the engine sees the failure and counts it towards the threshold.
_FAILED_CHECK: dict[type, Callable[[str], object]] = {
    fx.MeasureMetric: lambda message: fx.Reading(error=message),
    fx.CountArms: lambda message: fx.ArmCounts(error=message),
    fx.CallHook: lambda message: fx.HookOutcome(False, message),
}


Handler = Callable[[Canary, Any], Awaitable[object]]


def _alone(effect: fx.Effect) -> Generator[fx.Effect, object, object]:
    """One effect, as steps that return its result (for ``Executor._carry_out``)."""
    return (yield effect)


class Executor:
    def __init__(self, adapters: Adapters, clock: Clock) -> None:
        self.a = adapters
        self.clock = clock
        self._watchdog = Watchdog()
        a = adapters
        self._handlers: dict[type, Handler] = {
            fx.InitializeWorkload: lambda c, e: a.workload.initialize(c),
            fx.ReconcileRouting: lambda c, e: a.router.reconcile(c),
            fx.ObserveRevision: lambda c, e: a.workload.revision(c),
            fx.PrimaryReadiness: lambda c, e: a.workload.primary_readiness(c),
            fx.CanaryReadiness: lambda c, e: a.workload.canary_readiness(c),
            fx.GetRoutes: lambda c, e: a.router.get_routes(c),
            fx.CheckProviders: self._check_providers,
            fx.CallHook: self._call_hook,
            fx.MeasureMetric: self._measure,
            fx.CountArms: self._count_arms,
            fx.SetRoutes: self._set_routes,
            fx.ScaleCanaryUp: lambda c, e: a.workload.scale_canary_up(c),
            fx.ScaleCanaryToZero: lambda c, e: a.workload.scale_canary_to_zero(c),
            fx.PromoteWorkload: lambda c, e: a.workload.promote(c),
            fx.Emit: self._emit,
            fx.SendAlert: self._alert,
        }

    async def tick(self, canary: Canary, interval: float = 0.0) -> engine.TickResult | None:
        """One tick; returns its result, or None when it was abandoned (the reason is in the events).
        ``interval`` is the analysis interval the scheduler runs the canary at (see ``TickInput``)."""
        deadlines = self.a.deadlines
        watch = self._watchdog.watch(lambda: deadlines.for_tick(canary), lambda: deadlines.period)
        try:
            try:
                return await self._tick(canary, interval, watch)
            except EffectFailed as failure:
                message = str(failure)
            except Expired as expired:  # the budget ran out (a call's own deadline is handled in _perform)
                waited = f"waiting on {expired.call}"
                message = f"tick of {_name(canary)} abandoned after {expired.seconds:g}s (its budget) {waited}"
            watch.extend(3 * deadlines.call)
            await self._warn(canary, message, watch)
            return None
        finally:
            self._watchdog.forget(watch)

    async def _tick(self, canary: Canary, interval: float, watch: Watch) -> engine.TickResult | None:
        key = canary.key
        store = self.a.store
        stored = await self._own_call(canary, watch, "StatusStore.load", store.load(key))
        status = stored.status if stored else CanaryStatus()
        operation = await self._own_call(canary, watch, "StatusStore.pending", store.pending(key))
        started = time.perf_counter()
        steps = engine.tick(engine.TickInput(canary, status, self.clock.now(), operation, self.a.settings, interval))
        outcome = await self._carry_out(canary, steps, watch)
        if outcome.status != status:
            saving = store.save(key, outcome.status, stored.version if stored else None)
            try:
                await self._own_call(canary, watch, "StatusStore.save", saving)
            except Conflict as conflict:
                log.warning("%s: status not saved: %s", key, conflict)
                return None
        if outcome.operation_done and operation is not None:
            await self._own_call(canary, watch, "StatusStore.clear", store.clear(key, operation))
        seconds = time.perf_counter() - started if outcome.analysed else None
        self.a.recorder.observe(canary, status.phase, outcome.status, seconds)
        return outcome

    async def _own_call(self, canary: Canary, watch: Watch, call: str, awaitable: Awaitable[T]) -> T:
        """A call the tick makes itself, not for an effect (the store; the runtime's report of an abandoned tick),
        under the call deadline; its other errors propagate as before."""
        watch.begin(call, self.a.deadlines.call)
        try:
            result = await awaitable
        except asyncio.CancelledError:
            expired = watch.expired()
            if expired.budget:
                raise expired from None
            raise EffectFailed(_hung(call, canary, expired.seconds)) from None
        watch.answered()
        return result

    async def _warn(self, canary: Canary, message: str, watch: Watch) -> None:
        """The abandoned tick's warning event, then the runtime's own report; neither may hang the worker."""
        try:
            await self._perform(canary, fx.Emit(fx.EventType.WARNING, message), watch)
        except (EffectFailed, Expired) as failure:
            log.warning("%s: %s (the warning event was not recorded either: %s)", canary.key, message, failure)
        try:
            await self._own_call(canary, watch, "abandoned", self.abandoned(canary, message))
        except Exception:  # a runtime's report of an abandoned tick is best effort
            log.warning("%s: could not report the abandoned tick", canary.key, exc_info=True)

    async def abandoned(self, canary: Canary, message: str) -> None:
        """A tick was abandoned because an adapter failed or hung (``message`` says which and why); the warning
        event is already recorded. A runtime may say more (the operator puts it in the Canary's status)."""

    async def _perform(self, canary: Canary, effect: fx.Effect, watch: Watch) -> object:
        return await self._carry_out(canary, _alone(effect), watch)

    async def _carry_out(self, canary: Canary, steps: Generator[fx.Effect, object, T], watch: Watch) -> T:
        """Carry out every effect ``steps`` yields, sending back its result; returns what ``steps`` returns. (One
        loop for all the effects of a tick rather than a coroutine per effect: this is the hot path.)"""
        handlers, deadlines = self._handlers, self.a.deadlines
        try:
            effect = next(steps)
            while True:
                kind = type(effect)
                name = kind.__name__
                seconds = deadlines.for_effect(canary, effect) if kind in WEBHOOK_TIMED else deadlines.call
                watch.begin(name, seconds)
                try:
                    result = await handlers[kind](canary, effect)
                    if watch.fired:  # (the rare case: see Watch.answered)
                        watch.answered()
                except asyncio.CancelledError:
                    expired = watch.expired()
                    if expired.budget:
                        raise expired from None
                    hung = _hung(name, canary, seconds)
                    if kind is fx.SendAlert:  # alerts are best effort: say so, and go on
                        message = f"alert not delivered: the notifier did not answer within {seconds:g}s"
                        result = await self._perform(canary, fx.Emit(fx.EventType.WARNING, message), watch)
                    elif kind in _FAILED_CHECK:  # a query or webhook that never answers fails its check
                        result = _FAILED_CHECK[kind](hung)
                    else:
                        raise EffectFailed(hung) from None
                except EffectFailed:
                    raise
                except Exception as exc:  # an adapter failed: abandon this tick, keep the loop alive
                    log.debug("%s: %s failed", canary.key, name, exc_info=True)
                    raise EffectFailed(f"{name} failed for {_name(canary)}: {exc}") from exc
                effect = steps.send(result)
        except StopIteration as stop:
            returned: T = stop.value
            return returned
        finally:
            steps.close()

    # -- effects that need more than one adapter call -----------------------------------------------------
    async def _check_providers(self, canary: Canary, effect: fx.CheckProviders) -> tuple[str, ...]:
        return tuple(await self.a.metrics.check_providers(canary))

    async def _measure(self, canary: Canary, effect: fx.MeasureMetric) -> fx.Reading:
        try:
            return fx.Reading(value=await self.a.metrics.measure(canary, effect.metric))
        except NoValuesFound:
            return fx.Reading(no_values=True)
        except MetricError as exc:
            return fx.Reading(error=str(exc) or type(exc).__name__)

    async def _count_arms(self, canary: Canary, effect: fx.CountArms) -> fx.ArmCounts:
        try:
            return await self.a.traffic.count(canary, effect.counts)
        except TrafficError as exc:
            return fx.ArmCounts(error=str(exc) or type(exc).__name__)

    async def _call_hook(self, canary: Canary, effect: fx.CallHook) -> fx.HookOutcome:
        call = HookCall(canary.metadata.name, canary.metadata.namespace, effect.phase, effect.checksum, effect.webhook)
        result = await self.a.hooks.call(call)
        return fx.HookOutcome(result.ok, result.message)

    async def _set_routes(self, canary: Canary, effect: fx.SetRoutes) -> None:
        await self.a.router.set_routes(canary, effect.routes)
        self.a.recorder.set_weight(canary, effect.routes.primary, effect.routes.canary)

    async def _emit(self, canary: Canary, effect: fx.Emit) -> None:
        now = self.clock.now()
        await self.a.events.record(Event(now, canary.key, effect.type, effect.message))
        event_hooks: Sequence[Any] = canary.spec.effective_analysis.hooks(HookType.EVENT)
        for hook in event_hooks:
            extra = (
                ("eventMessage", effect.message),
                ("eventType", effect.type.value),
                ("timestamp", str(int(now * 1000))),
            )
            await self.a.hooks.call(HookCall(canary.metadata.name, canary.metadata.namespace, "", "", hook, extra))

    async def _alert(self, canary: Canary, effect: fx.SendAlert) -> None:
        for error in await self.a.alerts.send(canary, effect.message, effect.severity, canary_fields(canary)):
            await self.a.events.record(
                Event(self.clock.now(), canary.key, fx.EventType.WARNING, f"alert not delivered: {error}")
            )
