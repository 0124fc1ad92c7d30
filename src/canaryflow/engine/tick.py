"""One analysis tick of one canary, as a generator of effects (see ``canaryflow.engine`` for the style).

The order of a tick follows Flagger's control loop (flagger-behaviour.md §2); where canaryflow deliberately
differs, the docstring of the step says so, and docs/flagger-differences.md lists every difference.
"""

from __future__ import annotations

import dataclasses
import hashlib

from canaryflow.api.canary import Canary, CanaryWebhook, HookType
from canaryflow.api.status import RUNNING_PHASES, CanaryStatus, Phase
from canaryflow.engine import checks, machine, steps
from canaryflow.engine.effects import (
    AlertSeverity,
    CallHook,
    CheckProviders,
    Emit,
    EventType,
    GetRoutes,
    HookOutcome,
    InitializeWorkload,
    ObserveRevision,
    PrimaryReadiness,
    Readiness,
    ReconcileRouting,
    Revision,
    Routes,
    ScaleCanaryToZero,
    ScaleCanaryUp,
    SendAlert,
    SetRoutes,
    Steps,
    ask,
)
from canaryflow.engine.machine import Operation
from canaryflow.engine.run import Running


@dataclasses.dataclass(frozen=True, slots=True)
class TickInput:
    canary: Canary
    status: CanaryStatus
    now: float
    operation: Operation | None = None
    settings: checks.Settings = dataclasses.field(default_factory=checks.Settings)


@dataclasses.dataclass(slots=True)
class TickResult:
    status: CanaryStatus
    #: The requested operation was carried out, or refused with an event: the executor clears it.
    operation_done: bool = False
    #: Metrics were checked this tick (feeds ``flagger_canary_duration_seconds``).
    analysed: bool = False


def tick(inp: TickInput) -> Steps[TickResult]:
    return Tick(inp).run()


class Tick:
    def __init__(self, inp: TickInput) -> None:
        self.canary = inp.canary
        self.spec = inp.canary.spec
        self.analysis = inp.canary.spec.effective_analysis
        self.status = inp.status.copy()
        self.now = inp.now
        self.operation = inp.operation
        self.settings = inp.settings
        self.result = TickResult(self.status)
        meta = inp.canary.metadata
        self.ref = f"{meta.name}.{meta.namespace}"
        self.target_ref = f"{inp.canary.spec.target_ref.name}.{meta.namespace}"
        self._emitted = False
        self._last_warning = ""
        self._outcome_message = ""

    # -- helpers ---------------------------------------------------------------------------------------------
    def _enter(self, phase: Phase) -> None:
        if not machine.allowed(self.status.phase, phase):
            raise AssertionError(f"transition {self.status.phase} → {phase} is not in the state machine")
        self.status.enter(phase, self.now)

    def _event(self, message: str, warning: bool = False) -> Steps[None]:
        self._emitted = True
        if warning:
            self._last_warning = message
        yield Emit(EventType.WARNING if warning else EventType.NORMAL, message)

    def _alert(self, severity: AlertSeverity, message: str) -> Steps[None]:
        yield SendAlert(severity, message)

    def _sync(self, revision: Revision) -> None:
        self.status.last_applied_spec = revision.spec_hash
        self.status.tracked_configs = dict(revision.configs)

    def _changed(self, revision: Revision) -> bool:
        st = self.status
        if revision.spec_hash not in (st.last_applied_spec, st.last_promoted_spec):
            return True
        return bool(st.tracked_configs) and dict(revision.configs) != st.tracked_configs

    def _checksum(self) -> str:
        text = self.status.last_applied_spec + repr(sorted(self.status.tracked_configs.items()))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def _hook(self, hook: CanaryWebhook, phase: Phase) -> Steps[HookOutcome]:
        return (yield from ask(CallHook(hook, phase.value, self._checksum()), HookOutcome))

    # -- the tick --------------------------------------------------------------------------------------------
    def run(self) -> Steps[TickResult]:
        result = yield from self._run()
        # The status message says why the canary is where it is: the rollback's reason, or the last warning of
        # the last tick that had something to say (a tick with only good news clears it).
        if self._emitted:
            self.status.message = self._outcome_message or self._last_warning
        return result

    def _run(self) -> Steps[TickResult]:
        st = self.status
        if self.spec.suspend:
            yield from self._event("skipping canary run as object is suspended")
            return self.result
        if not self.spec.skips_analysis and st.phase in (Phase.INITIALIZING, Phase.WAITING):
            errors = yield from ask(CheckProviders(), tuple)
            for error in errors:
                yield from self._event(f"Error checking metric providers: {error}", warning=True)
        yield InitializeWorkload()
        if st.phase is Phase.INITIALIZING:
            if not self.spec.skips_analysis:
                primary = yield from ask(PrimaryReadiness(), Readiness)
                if not primary.ready:
                    primary_ref = f"{self.spec.target_ref.name}-primary.{self.canary.metadata.namespace}"
                    yield from self._event(primary.message or f"{primary_ref} not ready", warning=True)
                    return self.result
            yield ScaleCanaryToZero()
        yield ReconcileRouting()
        revision = yield from ask(ObserveRevision(), Revision)
        yield from self._operation_before_run(revision)
        idle = st.phase not in RUNNING_PHASES and st.phase not in (Phase.INITIALIZING, Phase.WAITING)
        if idle and st.last_applied_spec and not self._changed(revision):
            return self.result
        if not self.spec.skips_analysis:
            primary = yield from ask(PrimaryReadiness(), Readiness)
            if not primary.ready:
                yield from self._primary_not_ready(primary)
                return self.result
        routes = yield from ask(GetRoutes(), Routes)
        if st.phase not in RUNNING_PHASES:
            yield from self._start(revision)
            return self.result
        if st.phase in (Phase.PROGRESSING, Phase.WAITING_PROMOTION) and self._changed(revision):
            yield from self._restart(revision)
            return self.result
        yield from self._running(revision, routes)
        return self.result

    # -- operations ------------------------------------------------------------------------------------------
    def _operation_before_run(self, revision: Revision) -> Steps[None]:
        """Retry re-arms a failed revision; promote and abort act inside a run (see ``_running``)."""
        op = self.operation
        if op is None:
            return
        if op is Operation.RETRY:
            self.result.operation_done = True
            if self.status.phase is Phase.FAILED:
                self.status.last_applied_spec = ""
                yield from self._event(f"Retry requested: restarting the analysis of {self.target_ref}")
            else:
                yield from self._event(f"retry ignored: {self.ref} is {self.status.phase}, not Failed", warning=True)
        elif self.status.phase not in (Phase.PROGRESSING, Phase.WAITING_PROMOTION, Phase.WAITING):
            self.result.operation_done = True
            yield from self._event(
                f"{op} ignored: {self.ref} is {self.status.phase}, no analysis is running", warning=True
            )

    # -- starting a run --------------------------------------------------------------------------------------
    def _start(self, revision: Revision) -> Steps[None]:
        st = self.status
        if st.phase is Phase.INITIALIZING:
            self._enter(Phase.INITIALIZED)
            self._sync(revision)
            st.last_promoted_spec = revision.spec_hash
            yield from self._event(f"Initialization done! {self.ref}")
            kind = self.spec.target_ref.kind
            yield from self._alert(AlertSeverity.INFO, f"New {kind} detected, initialization completed.")
            return
        if self.operation is Operation.ABORT and st.phase is Phase.WAITING:
            self.result.operation_done = True
            yield from self._rollback(f"Rolling back {self.ref}: abort requested", AlertSeverity.WARN)
            return
        for hook in self.analysis.hooks(HookType.CONFIRM_ROLLOUT):
            outcome = yield from self._hook(hook, Phase.PROGRESSING)
            if not outcome.ok:
                if st.phase is not Phase.WAITING:
                    self._enter(Phase.WAITING)
                    yield from self._event(f"Halt {self.ref} advancement waiting for approval {hook.name}", True)
                    if not hook.mute_alert:
                        yield from self._alert(AlertSeverity.WARN, "Canary is waiting for approval.")
                return
        yield from self._event(f"New revision detected! Scaling up {self.target_ref}")
        yield from self._alert(AlertSeverity.INFO, "New revision detected, progressing canary analysis.")
        yield ScaleCanaryUp()
        self._begin_run(revision)

    def _begin_run(self, revision: Revision) -> None:
        st = self.status
        self._enter(Phase.PROGRESSING)
        self._sync(revision)
        st.canary_weight = st.iterations = st.failed_checks = 0
        st.run_started_at = st.unready_since = self.now
        st.last_metrics.clear()

    def _restart(self, revision: Revision) -> Steps[None]:
        """Flagger restarts only from Progressing; a new revision during WaitingPromotion would be promoted
        unanalysed there. Here it restarts the analysis too."""
        yield from self._event(f"New revision detected! Restarting analysis for {self.ref}")
        yield SetRoutes(Routes(steps.TOTAL, 0))
        self._begin_run(revision)

    def _primary_not_ready(self, primary: Readiness) -> Steps[None]:
        yield from self._event(primary.message or f"{self.spec.target_ref.name}-primary not ready", True)
        if self.status.phase in (Phase.PROMOTING, Phase.FINALISING) and not primary.retriable:
            message = "Promotion failed, primary not ready"
            if self.status.message != message:
                self._outcome_message = message
                yield from self._alert(AlertSeverity.ERROR, message)

    # -- inside a run ----------------------------------------------------------------------------------------
    def _running(self, revision: Revision, routes: Routes) -> Steps[None]:
        yield from Running(self, revision, routes).run()

    def _rollback(self, message: str, severity: AlertSeverity | None, alert: str = "") -> Steps[None]:
        st = self.status
        yield from self._event(message, warning=True)
        if severity is not None:
            yield from self._alert(severity, alert or message)
        if st.failed_checks >= self.analysis.effective_threshold:
            yield from self._event(f"Canary failed! Scaling down {self.target_ref}", warning=True)
        yield SetRoutes(Routes(steps.TOTAL, 0))
        yield ScaleCanaryToZero()
        self._enter(Phase.FAILED)
        self._outcome_message = message
        yield from self._post_rollout(Phase.FAILED)

    def _post_rollout(self, phase: Phase) -> Steps[None]:
        for hook in self.analysis.hooks(HookType.POST_ROLLOUT):
            outcome = yield from self._hook(hook, phase)
            if outcome.ok:
                yield from self._event(f"Post-rollout check {hook.name} passed")
            else:
                yield from self._event(f"Post-rollout hook {hook.name} failed {outcome.message}", True)
