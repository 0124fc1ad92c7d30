"""The part of a tick that runs inside an analysis run: readiness, gates, checks and one strategy step."""

from __future__ import annotations

from canaryflow.api.canary import HookType, Strategy
from canaryflow.api.status import Phase
from canaryflow.engine import checks, judging, sequential, steps
from canaryflow.engine.context import Context
from canaryflow.engine.effects import (
    AlertSeverity,
    CanaryReadiness,
    MeasureMetric,
    PromoteWorkload,
    Readiness,
    Reading,
    Revision,
    Routes,
    ScaleCanaryToZero,
    SetRoutes,
    Steps,
    ask,
)
from canaryflow.engine.machine import ANALYSING, Move, Operation


class Running:
    def __init__(self, ctx: Context, revision: Revision, routes: Routes) -> None:
        self.c = ctx
        self.st = ctx.status
        self.analysis = ctx.analysis
        self.revision = revision
        self.routes = routes

    def run(self) -> Steps[None]:
        """Every decision inside a run, in order of precedence: what each ``if`` finds decides the move."""
        c, st = self.c, self.st
        readiness = yield from ask(CanaryReadiness(), Readiness)
        if readiness.ready:
            st.unready_since = 0.0
            retriable, reason = True, ""
        else:
            retriable, reason = yield from self._unready(readiness)
            if retriable:
                return  # wait for the canary (an event says why)
        if c.operation is Operation.ABORT:
            c.result.operation_done = True
            yield from c.rollback(f"Rolling back {c.ref}: abort requested", AlertSeverity.WARN)
        elif c.spec.skips_analysis:
            yield from self._skip_analysis(retriable, reason)
        elif st.phase in ANALYSING and self.analysis.hooks(HookType.ROLLBACK) and (yield from self._rollback_hooks()):
            pass  # a rollback webhook said so
        elif st.phase is Phase.PROMOTING:
            yield from self._promotion_traffic()  # → FINALISE once all traffic is on the primary
        elif st.phase is Phase.FINALISING:
            yield from self._finalise()  # → SUCCEED
        elif not retriable:
            yield from self._deadline(reason)
        elif st.failed_checks >= self.analysis.effective_threshold:
            yield from c.rollback(
                f"Rolling back {c.ref} failed checks threshold reached {st.failed_checks}",
                AlertSeverity.ERROR,
                f"Failed checks threshold reached {st.failed_checks}",
            )
        elif c.operation is Operation.PROMOTE:
            c.result.operation_done = True
            yield from c.event(f"Promotion requested for {c.ref}: skipping the rest of the analysis")
            yield from self._promote()
        else:
            yield from self._analyse()

    def _analyse(self) -> Steps[None]:
        """The judge looks at every tick; the checks and one strategy step run once per analysis interval, or
        sooner when the judge has shown the canary is not worse than the primary."""
        c, st = self.c, self.st
        if self.routes.canary != st.canary_weight:
            yield from self._served_but_not_recorded()
        judge = judging.active(c.canary, c.settings)
        look = (yield from judging.look(c, judge, self.routes)) if judge is not None else judging.NOTHING
        if look.rollback:
            yield from c.rollback(look.message, AlertSeverity.ERROR)
            return
        if look.wait:
            return
        st.last_analysis_at = c.now
        if look.early:
            yield from c.event(look.message)
        if not (yield from self._checks_pass()):
            return
        strategy, weight = self.analysis.strategy, st.canary_weight
        if strategy is Strategy.AB_TESTING:
            yield from self._step_ab()
        elif strategy is Strategy.BLUE_GREEN:
            yield from self._step_blue_green()
        else:
            yield from self._step_canary()
        if st.judge is not None and st.canary_weight != weight and st.phase is Phase.PROGRESSING:
            st.judge = sequential.stepped(st.judge, st.canary_weight)

    def _served_but_not_recorded(self) -> Steps[None]:
        """The data plane serves the step after the recorded weight: the tick that set those routes stopped (a
        crash, a status write that failed) before its status was saved. Record the step and the event it may
        have lost, as if that tick had ended (the next step is taken from the served weight, as Flagger reads
        the router). Any other difference is not ours to explain: an edit the router reverts, or a user's."""
        st, served = self.st, self.routes  # (``_analyse`` asks only when the served weight is not the recorded one)
        if st.phase is not Phase.PROGRESSING or self.analysis.strategy is not Strategy.CANARY or self.analysis.mirror:
            return
        recorded = Routes(steps.TOTAL - st.canary_weight, st.canary_weight)
        if served.canary == st.canary_weight or served != steps.advance(self.analysis, recorded):
            return
        st.canary_weight = served.canary
        yield from self.c.event(f"Advance {self.c.ref} canary weight {served.canary}")
        if st.judge is not None:
            st.judge = sequential.stepped(st.judge, st.canary_weight)

    def _deadline(self, reason: str) -> Steps[None]:
        yield from self.c.rollback(
            f"Rolling back {self.c.ref} progress deadline exceeded {reason}",
            AlertSeverity.ERROR,
            f"Progress deadline exceeded {reason}",
        )

    # -- readiness -------------------------------------------------------------------------------------------
    def _unready(self, readiness: Readiness) -> Steps[tuple[bool, str]]:
        """A canary that never becomes ready is rolled back once the progress deadline has passed since the
        run started (or since it was last seen ready, see ``run``); Flagger waits for the Deployment's own
        deadline, which restarts with every pod restart (#1268, #1578)."""
        t, st = self.c, self.st
        if not st.unready_since:
            st.unready_since = t.now
        deadline = t.spec.progress_deadline_seconds
        message = readiness.message or "canary not ready"
        if readiness.retriable and t.now - st.unready_since < deadline:
            yield from t.event(message, warning=True)
            return True, message
        return False, f"{message} (not ready for {deadline}s)" if readiness.retriable else message

    # -- gates and checks ------------------------------------------------------------------------------------
    def _rollback_hooks(self) -> Steps[bool]:
        t = self.c
        for hook in self.analysis.hooks(HookType.ROLLBACK):
            outcome = yield from t.hook(hook, self.st.phase)
            if outcome.ok:
                yield from t.rollback(
                    f"Rolling back {t.ref} manual webhook invoked",
                    AlertSeverity.WARN,
                    "Rolling back manual webhook invoked",
                )
                return True
        return False

    def _checks_pass(self) -> Steps[bool]:
        """Pre-rollout hooks on the first analysis tick; rollout hooks and metrics on the others. A failure
        counts one failed check (a ``hold`` verdict halts without counting)."""
        t, st, routes = self.c, self.st, self.routes
        if routes.canary == 0 and st.iterations == 0 and not (self.analysis.mirror and routes.mirrored):
            yield from t.event(f"Starting canary analysis for {t.ref}")
            for hook in self.analysis.hooks(HookType.PRE_ROLLOUT):
                outcome = yield from t.hook(hook, Phase.PROGRESSING)
                if not outcome.ok:
                    st.failed_checks += 1
                    message = f"Halt {t.ref} advancement pre-rollout check {hook.name} failed {outcome.message}"
                    yield from t.event(message, warning=True)
                    # Flagger sends no alert here (#1663).
                    if not hook.mute_alert:
                        yield from t.alert(AlertSeverity.WARN, f"Pre-rollout check {hook.name} failed")
                    return False
                yield from t.event(f"Pre-rollout check {hook.name} passed")
            return True
        for hook in self.analysis.hooks(HookType.ROLLOUT):
            outcome = yield from t.hook(hook, Phase.PROGRESSING)
            if not outcome.ok:
                st.failed_checks += 1
                yield from t.event(
                    f"Halt {t.ref} advancement external check {hook.name} failed {outcome.message}", True
                )
                return False
        t.result.analysed = True
        results: list[dict[str, object]] = []
        st.last_checks = results
        for metric in self.analysis.metrics or ():
            reading = yield from ask(MeasureMetric(metric), Reading)
            if reading.value is not None:
                st.last_metrics[metric.name] = reading.value
            judgement = checks.judge(metric, reading, t.ref, t.settings)
            results.append(checks.record(metric, reading, judgement))
            if judgement.message:
                yield from t.event(judgement.message, warning=True)
            if judgement.verdict is checks.Verdict.FAIL:
                st.failed_checks += 1
                return False
            if judgement.verdict is checks.Verdict.HOLD:
                return False
        return True

    def _gate(self, kind: HookType, waiting: str, alert: str) -> Steps[bool]:
        t = self.c
        for hook in self.analysis.hooks(kind):
            outcome = yield from t.hook(hook, Phase.PROGRESSING)
            if not outcome.ok:
                if kind is HookType.CONFIRM_PROMOTION:
                    if self.st.phase is Phase.WAITING_PROMOTION:
                        return False
                    t.move(Move.WAIT_FOR_PROMOTION)
                yield from t.event(f"Halt {t.ref} advancement {waiting} {hook.name}", warning=True)
                if not hook.mute_alert:
                    yield from t.alert(AlertSeverity.WARN, alert)
                return False
        return True

    def _promotion_gate(self) -> Steps[bool]:
        return (
            yield from self._gate(
                HookType.CONFIRM_PROMOTION,
                "waiting for promotion approval",
                "Canary is waiting for promotion approval.",
            )
        )

    # -- strategies ------------------------------------------------------------------------------------------
    def _step_canary(self) -> Steps[None]:
        t, routes = self.c, self.routes
        if routes.canary < self.analysis.effective_max_weight:
            gated = not routes.mirrored and self.analysis.hooks(HookType.CONFIRM_TRAFFIC_INCREASE)
            if gated and not (
                yield from self._gate(
                    HookType.CONFIRM_TRAFFIC_INCREASE,
                    "waiting for traffic increase approval",
                    "Canary traffic increase is waiting for approval.",
                )
            ):
                return
            new = steps.advance(self.analysis, routes)
            yield SetRoutes(new)
            self.st.canary_weight = new.canary
            yield from t.event(f"Advance {t.ref} canary weight {new.canary}")
            return
        if (yield from self._promotion_gate()):
            yield from self._promote()

    def _step_ab(self) -> Steps[None]:
        t, st = self.c, self.st
        total = self.analysis.iterations or 0
        if st.iterations < total:
            yield SetRoutes(Routes(0, steps.TOTAL))
            st.iterations += 1
            yield from t.event(f"Advance {t.ref} canary iteration {st.iterations}/{total}")
            return
        if (yield from self._promotion_gate()):
            yield from self._promote()

    def _step_blue_green(self) -> Steps[None]:
        t, st = self.c, self.st
        total = self.analysis.iterations or 0
        if st.iterations < total:
            if self.analysis.mirror and not self.routes.mirrored:
                yield SetRoutes(Routes(steps.TOTAL, 0, mirrored=True))
            st.iterations += 1
            yield from t.event(f"Advance {t.ref} canary iteration {st.iterations}/{total}")
            return
        if not (yield from self._promotion_gate()):
            return
        if st.iterations == total:
            yield from t.event("Routing all traffic to canary")
            yield SetRoutes(Routes(0, steps.TOTAL))
            st.iterations += 1
            return
        yield from self._promote()

    # -- promotion -------------------------------------------------------------------------------------------
    def _copy_spec(self) -> Steps[None]:
        target, ns = self.c.spec.target_ref.name, self.c.canary.metadata.namespace
        yield from self.c.event(f"Copying {target}.{ns} template spec to {target}-primary.{ns}")
        yield PromoteWorkload()

    def _promote(self) -> Steps[None]:
        yield from self._copy_spec()
        self.c.move(Move.PROMOTE)

    def _promotion_traffic(self) -> Steps[None]:
        t, st = self.c, self.st
        step = self.analysis.step_weight_promotion
        if not step:
            yield from t.event("Routing all traffic to primary")
            yield SetRoutes(Routes(steps.TOTAL, 0))
        elif self.routes.canary > 0:
            new = steps.promotion_step(step, self.routes)
            yield SetRoutes(new)
            yield from t.event(f"Advance {t.ref} primary weight {new.primary}")
            if new.primary < steps.TOTAL:
                st.canary_weight = new.canary
                return
        t.move(Move.FINALISE)

    def _finalise(self) -> Steps[None]:
        t, st = self.c, self.st
        yield ScaleCanaryToZero()
        t.move(Move.SUCCEED)
        st.last_promoted_spec = st.last_applied_spec
        yield from t.post_rollout(Phase.SUCCEEDED)
        yield from t.event(f"Promotion completed! Scaling down {t.target_ref}")
        yield from t.alert(AlertSeverity.INFO, "Canary analysis completed successfully, promotion finished.")

    def _skip_analysis(self, retriable: bool, reason: str) -> Steps[None]:
        c, st = self.c, self.st
        if not retriable or st.failed_checks >= self.analysis.effective_threshold:
            yield from self._deadline(reason)
            return
        yield SetRoutes(Routes(steps.TOTAL, 0))
        yield from self._copy_spec()
        yield ScaleCanaryToZero()
        c.move(Move.SKIP_ANALYSIS)
        st.last_promoted_spec = st.last_applied_spec
        yield from c.event(f"Promotion completed! Canary analysis was skipped for {c.ref}")
        yield from c.alert(AlertSeverity.INFO, "Canary analysis was skipped, promotion finished.")
        yield from c.post_rollout(Phase.SUCCEEDED)
