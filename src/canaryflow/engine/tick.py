"""One analysis tick of one canary, as a generator of effects (see ``canaryflow.engine`` for the style).

The order of a tick follows Flagger's control loop (flagger-behaviour.md §2); where canaryflow deliberately
differs, the docstring of the step says so, and docs/flagger-differences.md lists every difference.
"""

from __future__ import annotations

from canaryflow.api.canary import HookType
from canaryflow.api.status import RUNNING_PHASES, Phase
from canaryflow.engine import steps
from canaryflow.engine.context import Context
from canaryflow.engine.effects import (
    AlertSeverity,
    CheckProviders,
    GetRoutes,
    InitializeWorkload,
    ObserveRevision,
    PrimaryReadiness,
    Readiness,
    ReconcileRouting,
    Revision,
    Routes,
    ScaleCanaryToZero,
    ScaleCanaryUp,
    SetRoutes,
    Steps,
    ask,
)
from canaryflow.engine.inputs import TickInput, TickResult
from canaryflow.engine.machine import Move, Operation
from canaryflow.engine.run import Running

__all__ = ["Tick", "TickInput", "TickResult", "tick"]


def tick(inp: TickInput) -> Steps[TickResult]:
    return Tick(Context(inp)).run()


class Tick:
    """A tick in Flagger's order, up to the start of a run; inside a run, ``run.Running`` decides."""

    def __init__(self, ctx: Context) -> None:
        self.c = ctx
        self.spec = ctx.spec
        self.analysis = ctx.analysis
        self.status = ctx.status

    def _sync(self, revision: Revision) -> None:
        self.status.last_applied_spec = revision.spec_hash
        self.status.tracked_configs = dict(revision.configs)

    def _changed(self, revision: Revision) -> bool:
        st = self.status
        if revision.spec_hash not in (st.last_applied_spec, st.last_promoted_spec):
            return True
        return bool(st.tracked_configs) and dict(revision.configs) != st.tracked_configs

    # -- the tick --------------------------------------------------------------------------------------------
    def run(self) -> Steps[TickResult]:
        yield from self._run()
        return self.c.finish()

    def _run(self) -> Steps[None]:
        st = self.status
        if self.spec.suspend:
            yield from self.c.event("skipping canary run as object is suspended")
            return
        if not self.spec.skips_analysis and st.phase in (Phase.INITIALIZING, Phase.WAITING):
            errors = yield from ask(CheckProviders(), tuple)
            for error in errors:
                yield from self.c.event(f"Error checking metric providers: {error}", warning=True)
        yield InitializeWorkload()
        if st.phase is Phase.INITIALIZING:
            if not self.spec.skips_analysis:
                primary = yield from ask(PrimaryReadiness(), Readiness)
                if not primary.ready:
                    primary_ref = f"{self.spec.target_ref.name}-primary.{self.c.canary.metadata.namespace}"
                    yield from self.c.event(primary.message or f"{primary_ref} not ready", warning=True)
                    return
            yield ScaleCanaryToZero()
        yield ReconcileRouting()
        revision = yield from ask(ObserveRevision(), Revision)
        if self.c.operation is not None:
            yield from self._operation_before_run(self.c.operation)
        idle = st.phase not in RUNNING_PHASES and st.phase not in (Phase.INITIALIZING, Phase.WAITING)
        if idle and st.last_applied_spec and not self._changed(revision):
            return
        if not self.spec.skips_analysis:
            primary = yield from ask(PrimaryReadiness(), Readiness)
            if not primary.ready:
                yield from self._primary_not_ready(primary)
                return
        routes = yield from ask(GetRoutes(), Routes)
        if st.phase not in RUNNING_PHASES:
            yield from self._start(revision)
            return
        if st.phase in (Phase.PROGRESSING, Phase.WAITING_PROMOTION) and self._changed(revision):
            yield from self._restart(revision)
            return
        yield from Running(self.c, revision, routes).run()

    # -- operations ------------------------------------------------------------------------------------------
    def _operation_before_run(self, op: Operation) -> Steps[None]:
        """Retry re-arms a failed revision; promote and abort act inside a run (see ``_running``)."""
        if op is Operation.RETRY:
            self.c.result.operation_done = True
            if self.status.phase is Phase.FAILED:
                self.status.last_applied_spec = ""
                yield from self.c.event(f"Retry requested: restarting the analysis of {self.c.target_ref}")
            else:
                message = f"retry ignored: {self.c.ref} is {self.status.phase}, not Failed"
                yield from self.c.event(message, warning=True)
        elif self.status.phase not in (Phase.PROGRESSING, Phase.WAITING_PROMOTION, Phase.WAITING):
            self.c.result.operation_done = True
            yield from self.c.event(
                f"{op} ignored: {self.c.ref} is {self.status.phase}, no analysis is running", warning=True
            )

    # -- starting a run --------------------------------------------------------------------------------------
    def _start(self, revision: Revision) -> Steps[None]:
        st = self.status
        if st.phase is Phase.INITIALIZING:
            self.c.move(Move.INITIALIZE)
            self._sync(revision)
            st.last_promoted_spec = revision.spec_hash
            yield from self.c.event(f"Initialization done! {self.c.ref}")
            kind = self.spec.target_ref.kind
            yield from self.c.alert(AlertSeverity.INFO, f"New {kind} detected, initialization completed.")
            return
        if self.c.operation is Operation.ABORT and st.phase is Phase.WAITING:
            self.c.result.operation_done = True
            yield from self.c.rollback(f"Rolling back {self.c.ref}: abort requested", AlertSeverity.WARN)
            return
        for hook in self.analysis.hooks(HookType.CONFIRM_ROLLOUT):
            outcome = yield from self.c.hook(hook, Phase.PROGRESSING)
            if not outcome.ok:
                if st.phase is not Phase.WAITING:
                    self.c.move(Move.WAIT_FOR_APPROVAL)
                    yield from self.c.event(f"Halt {self.c.ref} advancement waiting for approval {hook.name}", True)
                    if not hook.mute_alert:
                        yield from self.c.alert(AlertSeverity.WARN, "Canary is waiting for approval.")
                return
        yield from self.c.event(f"New revision detected! Scaling up {self.c.target_ref}")
        yield from self.c.alert(AlertSeverity.INFO, "New revision detected, progressing canary analysis.")
        yield ScaleCanaryUp()
        self._begin_run(revision, Move.START)

    def _begin_run(self, revision: Revision, move: Move) -> None:
        st = self.status
        self.c.move(move)
        self._sync(revision)
        st.canary_weight = st.iterations = st.failed_checks = 0
        st.run_started_at = st.unready_since = self.c.now
        st.last_metrics.clear()
        st.last_checks = []
        st.last_analysis_at = 0.0
        st.judge = None

    def _restart(self, revision: Revision) -> Steps[None]:
        """Flagger restarts only from Progressing; a new revision during WaitingPromotion would be promoted
        unanalysed there. Here it restarts the analysis too."""
        yield from self.c.event(f"New revision detected! Restarting analysis for {self.c.ref}")
        yield SetRoutes(Routes(steps.TOTAL, 0))
        self._begin_run(revision, Move.RESTART)

    def _primary_not_ready(self, primary: Readiness) -> Steps[None]:
        yield from self.c.event(primary.message or f"{self.spec.target_ref.name}-primary not ready", True)
        if self.status.phase in (Phase.PROMOTING, Phase.FINALISING) and not primary.retriable:
            message = "Promotion failed, primary not ready"
            if self.status.message != message:
                self.c.outcome = message
                yield from self.c.alert(AlertSeverity.ERROR, message)
