"""What one tick knows and the few things every part of it does: move, emit an event, alert, call a hook,
roll back. ``tick.Tick`` (before a run) and ``run.Running`` (inside one) share one ``Context``."""

from __future__ import annotations

import functools
import hashlib

from canaryflow.api.canary import CanaryWebhook, HookType
from canaryflow.api.status import Phase
from canaryflow.engine import machine, steps
from canaryflow.engine.effects import (
    AlertSeverity,
    CallHook,
    Emit,
    EventType,
    HookOutcome,
    Routes,
    ScaleCanaryToZero,
    SendAlert,
    SetRoutes,
    Steps,
    ask,
)
from canaryflow.engine.inputs import TickInput, TickResult
from canaryflow.engine.machine import Move


@functools.lru_cache(maxsize=1 << 16)
def _digest(text: str) -> str:
    """The checksum webhooks are sent (remembered: a canary asks for the same one on every analysis tick)."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Context:
    def __init__(self, inp: TickInput) -> None:
        self.canary = inp.canary
        self.spec = inp.canary.spec
        self.analysis = inp.canary.spec.effective_analysis
        self.status = inp.status.copy()
        self.now = inp.now
        self.interval = inp.interval
        self.operation = inp.operation
        self.settings = inp.settings
        self.result = TickResult(self.status)
        meta = inp.canary.metadata
        self.ref = f"{meta.name}.{meta.namespace}"
        self.target_ref = f"{inp.canary.spec.target_ref.name}.{meta.namespace}"
        self.emitted = False
        self.last_warning = ""
        #: Why the canary is where it is, when a move says so (a rollback's reason): the status message.
        self.outcome = ""

    def move(self, what: Move) -> None:
        machine.move(self.status, what, self.now)

    def event(self, message: str, warning: bool = False) -> Steps[None]:
        self.emitted = True
        if warning:
            self.last_warning = message
        yield Emit(EventType.WARNING if warning else EventType.NORMAL, message)

    def alert(self, severity: AlertSeverity, message: str) -> Steps[None]:
        yield SendAlert(severity, message)

    def checksum(self) -> str:
        return _digest(self.status.last_applied_spec + repr(sorted(self.status.tracked_configs.items())))

    def hook(self, hook: CanaryWebhook, phase: Phase) -> Steps[HookOutcome]:
        return (yield from ask(CallHook(hook, phase.value, self.checksum()), HookOutcome))

    def rollback(self, message: str, severity: AlertSeverity | None, alert: str = "") -> Steps[None]:
        """All traffic to the primary, the canary to zero, Failed; ``message`` becomes the status message."""
        yield from self.event(message, warning=True)
        if severity is not None:
            yield from self.alert(severity, alert or message)
        if self.status.failed_checks >= self.analysis.effective_threshold:
            yield from self.event(f"Canary failed! Scaling down {self.target_ref}", warning=True)
        yield SetRoutes(Routes(steps.TOTAL, 0))
        yield ScaleCanaryToZero()
        self.move(Move.ROLL_BACK)
        self.outcome = message
        yield from self.post_rollout(Phase.FAILED)

    def post_rollout(self, phase: Phase) -> Steps[None]:
        for hook in self.analysis.hooks(HookType.POST_ROLLOUT):
            outcome = yield from self.hook(hook, phase)
            if outcome.ok:
                yield from self.event(f"Post-rollout check {hook.name} passed")
            else:
                yield from self.event(f"Post-rollout hook {hook.name} failed {outcome.message}", True)

    def finish(self) -> TickResult:
        # The status message says why the canary is where it is: the rollback's reason, or the last warning of
        # the last tick that had something to say (a tick with only good news clears it).
        if self.emitted:
            self.status.message = self.outcome or self.last_warning
        return self.result
