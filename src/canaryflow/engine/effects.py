"""The effects the engine yields, and the results it expects back for each.

Observations (results needed): InitializeWorkload → None, ReconcileRouting → None, ObserveRevision → Revision,
PrimaryReadiness / CanaryReadiness → Readiness, GetRoutes → Routes, CheckProviders → tuple of error strings,
CallHook → HookOutcome, MeasureMetric → Reading, CountArms → ArmCounts (the judge's per-arm counters).
Actions (result ignored): SetRoutes, ScaleCanaryUp, ScaleCanaryToZero, PromoteWorkload, Emit (an event),
SendAlert.

An executor that fails to carry out an effect abandons the tick: the status is not saved, so the next tick
starts again from the last saved state (nothing half-applied).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Generator
from typing import TypeVar

from canaryflow.api.canary import CanaryMetric, CanaryWebhook
from canaryflow.api.evidence import Counts
from canaryflow.api.judge import JudgeCounts


class EventType(enum.StrEnum):
    NORMAL = "Normal"
    WARNING = "Warning"


class AlertSeverity(enum.StrEnum):
    INFO = "info"
    WARN = "warn"
    ERROR = "error"


# --- results -------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Revision:
    spec_hash: str
    configs: tuple[tuple[str, str], ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class Readiness:
    ready: bool
    message: str = ""
    retriable: bool = True


@dataclasses.dataclass(frozen=True, slots=True)
class Routes:
    primary: int
    canary: int
    mirrored: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class HookOutcome:
    ok: bool
    message: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class Reading:
    """A metric's value, or why there is none."""

    value: float | None = None
    no_values: bool = False
    error: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class ArmCounts:
    """Cumulative counters of the canary and the primary, or why there are none."""

    canary: Counts = dataclasses.field(default_factory=Counts)
    primary: Counts = dataclasses.field(default_factory=Counts)
    error: str = ""


# --- effects -------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class InitializeWorkload:
    pass


@dataclasses.dataclass(frozen=True, slots=True)
class ReconcileRouting:
    pass


@dataclasses.dataclass(frozen=True, slots=True)
class ObserveRevision:
    pass


@dataclasses.dataclass(frozen=True, slots=True)
class PrimaryReadiness:
    pass


@dataclasses.dataclass(frozen=True, slots=True)
class CanaryReadiness:
    pass


@dataclasses.dataclass(frozen=True, slots=True)
class GetRoutes:
    pass


@dataclasses.dataclass(frozen=True, slots=True)
class CheckProviders:
    pass


@dataclasses.dataclass(frozen=True, slots=True)
class CallHook:
    webhook: CanaryWebhook
    phase: str
    checksum: str


@dataclasses.dataclass(frozen=True, slots=True)
class MeasureMetric:
    metric: CanaryMetric


@dataclasses.dataclass(frozen=True, slots=True)
class CountArms:
    counts: JudgeCounts


@dataclasses.dataclass(frozen=True, slots=True)
class SetRoutes:
    routes: Routes


@dataclasses.dataclass(frozen=True, slots=True)
class ScaleCanaryUp:
    pass


@dataclasses.dataclass(frozen=True, slots=True)
class ScaleCanaryToZero:
    pass


@dataclasses.dataclass(frozen=True, slots=True)
class PromoteWorkload:
    pass


@dataclasses.dataclass(frozen=True, slots=True)
class Emit:
    type: EventType
    message: str


@dataclasses.dataclass(frozen=True, slots=True)
class SendAlert:
    severity: AlertSeverity
    message: str


Effect = (
    InitializeWorkload
    | ReconcileRouting
    | ObserveRevision
    | PrimaryReadiness
    | CanaryReadiness
    | GetRoutes
    | CheckProviders
    | CallHook
    | MeasureMetric
    | CountArms
    | SetRoutes
    | ScaleCanaryUp
    | ScaleCanaryToZero
    | PromoteWorkload
    | Emit
    | SendAlert
)


T = TypeVar("T")
#: A generator of effects that returns a T: what every engine step is.
Steps = Generator[Effect, object, T]


def ask(effect: Effect, kind: type[T]) -> Steps[T]:
    """Yield ``effect`` and check that the executor answered with a ``kind``."""
    result = yield effect
    if not isinstance(result, kind):
        raise TypeError(f"{type(effect).__name__} expects a {kind.__name__}, got {type(result).__name__}")
    return result
