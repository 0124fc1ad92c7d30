"""The canary state machine: every phase transition the engine may make, in one table.

    from                                   to                when
    Initializing                        →  Initialized       primary ready, canary scaled to zero
    Initialized | Succeeded | Failed | W → Waiting           new revision, a confirm-rollout gate is closed
    Initialized | Succeeded | Failed | W → Progressing       new revision, gates open: canary scaled up
    Progressing | WaitingPromotion      →  Progressing       revision changed mid-run: analysis restarts
    Progressing | WaitingPromotion      →  WaitingPromotion  analysis done, a confirm-promotion gate closed
    Progressing | WaitingPromotion      →  Promoting         analysis done: canary spec copied to primary
    Promoting                           →  Finalising        all traffic back on the (updated) primary
    Finalising                          →  Succeeded         canary scaled to zero
    Progressing                         →  Succeeded         skipAnalysis: promoted at once
    Progressing | WaitingPromotion | W  →  Failed            threshold reached, deadline passed, rollback
                                                             hook, or abort requested
(W = Waiting.) ``tick.Tick._enter`` refuses any other transition, so this table is the whole truth.
"""

from __future__ import annotations

import enum

from canaryflow.api.status import Phase

P = Phase
_IDLE = (P.INITIALIZED, P.SUCCEEDED, P.FAILED, P.WAITING)

TRANSITIONS: frozenset[tuple[Phase, Phase]] = frozenset(
    [(P.INITIALIZING, P.INITIALIZED)]
    + [(p, P.WAITING) for p in _IDLE]
    + [(p, P.PROGRESSING) for p in _IDLE]
    + [(P.PROGRESSING, P.PROGRESSING), (P.WAITING_PROMOTION, P.PROGRESSING)]
    + [(P.PROGRESSING, P.WAITING_PROMOTION), (P.WAITING_PROMOTION, P.WAITING_PROMOTION)]
    + [(P.PROGRESSING, P.PROMOTING), (P.WAITING_PROMOTION, P.PROMOTING)]
    + [(P.PROMOTING, P.FINALISING), (P.FINALISING, P.SUCCEEDED), (P.PROGRESSING, P.SUCCEEDED)]
    + [(P.PROGRESSING, P.FAILED), (P.WAITING_PROMOTION, P.FAILED), (P.WAITING, P.FAILED)]
)


def allowed(current: Phase, target: Phase) -> bool:
    return (current, target) in TRANSITIONS


class Operation(enum.StrEnum):
    """What a user can ask of a canary without editing its spec (Flagger needs webhooks for this)."""

    PROMOTE = "promote"  # skip the rest of the analysis and promote now
    ABORT = "abort"  # roll back now
    RETRY = "retry"  # run the analysis of a failed revision again
