"""What a tick is given and what it gives back."""

from __future__ import annotations

import dataclasses

from canaryflow.api.canary import Canary
from canaryflow.api.status import CanaryStatus
from canaryflow.engine import checks
from canaryflow.engine.machine import Operation


@dataclasses.dataclass(frozen=True, slots=True)
class TickInput:
    canary: Canary
    status: CanaryStatus
    now: float
    operation: Operation | None = None
    settings: checks.Settings = dataclasses.field(default_factory=checks.Settings)
    #: The analysis interval the scheduler runs this canary at (seconds). With the judge on, the scheduler also
    #: wakes the canary between analyses to let the judge look; 0 makes every tick an analysis tick.
    interval: float = 0.0


@dataclasses.dataclass(slots=True)
class TickResult:
    status: CanaryStatus
    #: The requested operation was carried out, or refused with an event: the executor clears it.
    operation_done: bool = False
    #: Metrics were checked this tick (feeds ``flagger_canary_duration_seconds``).
    analysed: bool = False
