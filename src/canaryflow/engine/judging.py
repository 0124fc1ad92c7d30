"""The judge's place in a tick: look at the counts, keep the evidence in the status, say what it decided."""

from __future__ import annotations

import dataclasses

from canaryflow.api.canary import Canary
from canaryflow.api.judge import CanaryJudge
from canaryflow.api.status import Phase
from canaryflow.engine import sequential
from canaryflow.engine.checks import Settings
from canaryflow.engine.context import Context
from canaryflow.engine.effects import ArmCounts, CountArms, Routes, Steps, ask


@dataclasses.dataclass(frozen=True, slots=True)
class Look:
    rollback: bool = False
    #: step now rather than at the next analysis interval
    early: bool = False
    #: a look between analyses: nothing more to do this tick
    wait: bool = False
    message: str = ""


#: What most looks find (the judge is off, or the interval is due): made once, a tick asks on every analysis.
NOTHING = Look()


def active(canary: Canary, settings: Settings) -> CanaryJudge | None:
    """The canary's own judge, else the runtime-wide default (``--judge``); None when off."""
    analysis = canary.spec.effective_analysis
    judge = analysis.judge if analysis.judge is not None else settings.judge
    return judge if judge is not None and judge.enabled and not canary.spec.skips_analysis else None


def look(c: Context, judge: CanaryJudge, routes: Routes) -> Steps[Look]:
    """The ``judge`` (``active``: a tick without one need not look) looks at the counts."""
    if c.status.phase not in (Phase.PROGRESSING, Phase.WAITING_PROMOTION):
        return NOTHING
    arms = yield from ask(CountArms(judge.counts), ArmCounts)
    if arms.error:
        # No data is no evidence: the judge neither rolls back nor promotes; the checks go on as configured.
        message = f"judge: no counts for {c.ref}: {arms.error}"
        if c.status.message != message:
            yield from c.event(message, warning=True)
        return Look(wait=not due(c))
    segment = routes.canary + (1000 if routes.mirrored else 0)
    verdict = sequential.update(c.status.judge, judge, arms.canary, arms.primary, segment)
    c.status.judge = dataclasses.replace(verdict.state, looked_at=c.now)
    if verdict.rollback is not None:
        return Look(rollback=True, message=f"Rolling back {c.ref}: the judge found the canary worse: {verdict.message}")
    if due(c):
        return NOTHING
    if judge.early_steps and verdict.not_worse:
        return Look(early=True, message=f"Advance {c.ref} early: {verdict.message}")
    return Look(wait=True)


def due(c: Context) -> bool:
    """Whether an analysis interval has passed since the last one (every tick is, without the judge)."""
    return not c.interval or c.now - c.status.last_analysis_at >= c.interval * 0.999
