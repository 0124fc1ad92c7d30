"""Traffic arithmetic of the strategies: the next weights of a progressive canary, with or without mirroring.

Pure integer functions, separated from the tick so their edge cases are tested one by one.
"""

from __future__ import annotations

from canaryflow.api.canary import CanaryAnalysis
from canaryflow.engine.effects import Routes

TOTAL = 100


def next_step(analysis: CanaryAnalysis, canary_weight: int) -> int:
    """How much weight the next step adds: ``stepWeight``, or the gap to the next ``stepWeights`` entry,
    never more than what is left to 100."""
    if analysis.step_weights:
        upcoming = next((w for w in analysis.step_weights if w > canary_weight), None)
        step = upcoming - canary_weight if upcoming is not None else 0
    else:
        step = analysis.step_weight or 0
    return max(0, min(step, TOTAL - canary_weight))


def advance(analysis: CanaryAnalysis, routes: Routes) -> Routes:
    """The routes after one progressive step.

    With ``mirror`` the first step mirrors the canary at weight 0 (users only see the primary's answers), the
    next one stops mirroring and shifts the first step. The weight never passes ``maxWeight``: Flagger
    overshoots it when ``stepWeight`` does not divide ``maxWeight`` (step 20, max 50 gives 60); we stop at 50.
    """
    step = next_step(analysis, routes.canary)
    if analysis.mirror and routes.canary == 0:
        if not routes.mirrored:
            return Routes(TOTAL, 0, mirrored=True)
        return Routes(TOTAL - step, step, mirrored=False)
    canary = min(routes.canary + step, analysis.effective_max_weight, TOTAL)
    return Routes(TOTAL - canary, canary, mirrored=False)


def promotion_step(step_promotion: int | None, routes: Routes) -> Routes:
    """The routes after one promotion step back to the primary (all at once when no step is set)."""
    if not step_promotion:
        return Routes(TOTAL, 0)
    primary = min(TOTAL, routes.primary + step_promotion)
    canary = max(0, routes.canary - step_promotion)
    return Routes(primary, canary)
