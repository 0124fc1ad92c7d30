"""The canary state machine: every phase transition, named, in one table that drives them.

    move                 from                                   to                when
    INITIALIZE           Initializing                        →  Initialized       primary ready, canary at zero
    WAIT_FOR_APPROVAL    Initialized | Succeeded | Failed | W → Waiting           new revision, confirm-rollout closed
    START                Initialized | Succeeded | Failed | W → Progressing       new revision, gates open
    RESTART              Progressing | WaitingPromotion      →  Progressing       revision changed mid-run
    WAIT_FOR_PROMOTION   Progressing                         →  WaitingPromotion  analysis done, gate closed
    PROMOTE              Progressing | WaitingPromotion      →  Promoting         canary spec copied to the primary
    FINALISE             Promoting                           →  Finalising        all traffic back on the primary
    SUCCEED              Finalising                          →  Succeeded         canary scaled to zero
    SKIP_ANALYSIS        Progressing                         →  Succeeded         skipAnalysis: promoted at once
    ROLL_BACK            Progressing | WaitingPromotion | W  →  Failed            threshold, deadline, rollback hook,
                                                                                  the judge, or abort requested
    TERMINATE            any but Terminated                  →  Terminating       the Canary is being deleted
    TERMINATED           Terminating                         →  Terminated        its routing and workload reverted
(W = Waiting.) Every phase change of the engine and of the operator goes through ``move``, which refuses any
other, so this table is the whole truth. What *decides* a move inside a run is ``engine.run.Running.decide``.
"""

from __future__ import annotations

import enum

from canaryflow.api.status import CanaryStatus, Phase

P = Phase
_IDLE = frozenset({P.INITIALIZED, P.SUCCEEDED, P.FAILED, P.WAITING})
ANALYSING = frozenset({P.PROGRESSING, P.WAITING_PROMOTION})


class Move(enum.StrEnum):
    INITIALIZE = "initialize"
    WAIT_FOR_APPROVAL = "wait-for-approval"
    START = "start"
    RESTART = "restart"
    WAIT_FOR_PROMOTION = "wait-for-promotion"
    PROMOTE = "promote"
    FINALISE = "finalise"
    SUCCEED = "succeed"
    SKIP_ANALYSIS = "skip-analysis"
    ROLL_BACK = "roll-back"
    TERMINATE = "terminate"
    TERMINATED = "terminated"


#: move → (the phases it may start from, the phase it ends in)
TABLE: dict[Move, tuple[frozenset[Phase], Phase]] = {
    Move.INITIALIZE: (frozenset({P.INITIALIZING}), P.INITIALIZED),
    Move.WAIT_FOR_APPROVAL: (_IDLE, P.WAITING),
    Move.START: (_IDLE, P.PROGRESSING),
    Move.RESTART: (ANALYSING, P.PROGRESSING),
    Move.WAIT_FOR_PROMOTION: (frozenset({P.PROGRESSING}), P.WAITING_PROMOTION),
    Move.PROMOTE: (ANALYSING, P.PROMOTING),
    Move.FINALISE: (frozenset({P.PROMOTING}), P.FINALISING),
    Move.SUCCEED: (frozenset({P.FINALISING}), P.SUCCEEDED),
    Move.SKIP_ANALYSIS: (frozenset({P.PROGRESSING}), P.SUCCEEDED),
    Move.ROLL_BACK: (ANALYSING | {P.WAITING}, P.FAILED),
    Move.TERMINATE: (frozenset(Phase) - {P.TERMINATED}, P.TERMINATING),
    Move.TERMINATED: (frozenset({P.TERMINATING}), P.TERMINATED),
}

#: Every (from, to) pair the table allows.
TRANSITIONS: frozenset[tuple[Phase, Phase]] = frozenset(
    (source, target) for sources, target in TABLE.values() for source in sources
)


class IllegalMove(AssertionError):
    """An engine bug: a move from a phase the table does not allow it from."""


def allowed(current: Phase, target: Phase) -> bool:
    return (current, target) in TRANSITIONS


def move(status: CanaryStatus, what: Move, now: float) -> Phase:
    """Carry out ``what`` on ``status`` (in place) and return the new phase."""
    sources, target = TABLE[what]
    if status.phase not in sources:
        raise IllegalMove(f"{what}: {status.phase} → {target} is not in the state machine")
    status.enter(target, now)
    return target


class Operation(enum.StrEnum):
    """What a user can ask of a canary without editing its spec (Flagger needs webhooks for this)."""

    PROMOTE = "promote"  # skip the rest of the analysis and promote now
    ABORT = "abort"  # roll back now
    RETRY = "retry"  # run the analysis of a failed revision again
