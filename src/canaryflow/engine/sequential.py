"""The sequential judge: one look at the arms' counters → the new evidence and what it says (pure).

Segments: the error and latency tests compare the canary's share of events with its share of requests, which
changes with the weight, so every weight change (and every counter reset: a restarted process) closes the
current segment and starts a new one; a test's e-value is the product of its segments' (a sum of logs).
Alpha is split evenly over the tests that are on, and the latency test's share over its bucket boundaries
(Bonferroni), so the whole judge rolls a healthy canary back with probability at most alpha.
"""

from __future__ import annotations

import dataclasses
import math

from canaryflow.api.evidence import Counts, Decision, Evidence, JudgeState
from canaryflow.api.judge import CanaryJudge, JudgeTest
from canaryflow.engine import stats

INF_LE = math.inf


@dataclasses.dataclass(frozen=True, slots=True)
class Verdict:
    state: JudgeState
    #: the test that crossed its bound, if any
    rollback: Evidence | None = None
    #: the canary has been shown not worse than the primary by more than the margin
    not_worse: bool = False
    #: the message for an event: why it rolls back, or why it steps early
    message: str = ""


def update(prev: JudgeState | None, judge: CanaryJudge, canary: Counts, primary: Counts, segment: int) -> Verdict:
    """Fold one look into the evidence; ``segment`` identifies the routing the counts were served under."""
    if prev is None or prev.alpha != judge.alpha:
        fresh = JudgeState(judge.alpha, segment, canary, primary, Counts(), Counts(), canary, primary)
        return Verdict(fresh)
    reset = canary.dropped_below(prev.last_canary) or primary.dropped_below(prev.last_primary)
    if segment != prev.weight or reset:
        state, looks = _new_segment(prev, segment, canary, primary), 0
    else:
        state, looks = prev, prev.segment_looks + (1 if canary.requests > prev.last_canary.requests else 0)
    seg_c, seg_p = canary.minus(state.segment_canary), primary.minus(state.segment_primary)
    tests = _tests(state, judge, seg_c, seg_p)
    state = dataclasses.replace(state, last_canary=canary, last_primary=primary, tests=tests, segment_looks=looks)
    worst = next((t for t in tests if t.decision == Decision.ROLLBACK), None)
    if worst is not None:
        return Verdict(state, rollback=worst, message=worst.message)
    run_c, run_p = _add(state.run_canary, seg_c), _add(state.run_primary, seg_p)
    nw = _not_worse(judge, run_c, run_p)
    state = dataclasses.replace(state, tests=(*tests, nw))
    proven = nw.decision == Decision.NOT_WORSE and looks > 0
    return Verdict(state, not_worse=proven, message=nw.message if proven else "")


def stepped(state: JudgeState, segment: int) -> JudgeState:
    """The engine just changed the routes: the next segment starts from the counts of this look."""
    return _new_segment(state, segment, state.last_canary, state.last_primary)


def _new_segment(prev: JudgeState, segment: int, canary: Counts, primary: Counts) -> JudgeState:
    closed = tuple(dataclasses.replace(t, closed=t.log_e, current=0.0) for t in prev.tests if t.name != "not-worse")
    return dataclasses.replace(
        prev,
        weight=segment,
        segment_canary=canary,
        segment_primary=primary,
        run_canary=_add(prev.run_canary, prev.last_canary.minus(prev.segment_canary)),
        run_primary=_add(prev.run_primary, prev.last_primary.minus(prev.segment_primary)),
        segment_looks=0,
        tests=closed,
    )


def _add(a: Counts, b: Counts) -> Counts:
    return Counts(a.requests + b.requests, a.errors + b.errors)


def _tests(state: JudgeState, judge: CanaryJudge, seg_c: Counts, seg_p: Counts) -> tuple[Evidence, ...]:
    closed = {t.name: t.closed for t in state.tests}
    units = math.log(len(judge.tests) / judge.alpha)
    share = seg_c.requests / (seg_c.requests + seg_p.requests) if seg_c.requests > 0 and seg_p.requests > 0 else 0.0
    out: list[Evidence] = []
    for test in judge.tests:
        if test == JudgeTest.ERRORS.value:
            current = stats.log_bf_greater(seg_c.errors, seg_p.errors, share)
            detail = (
                f"canary {seg_c.errors:.0f} errors in {seg_c.requests:.0f} requests, "
                f"primary {seg_p.errors:.0f} in {seg_p.requests:.0f}"
            )
            out.append(_evidence("errors", closed, current, units, detail))
        elif test == JudgeTest.LATENCY.value:
            out.extend(_latency(closed, seg_c, seg_p, share, units))
        else:
            p0 = judge.slo_error_rate / 100
            alone = seg_c.requests > 0 and seg_p.requests == 0
            current = stats.log_lr_slo(seg_c.requests, seg_c.errors, p0, min(2 * p0, 0.99)) if alone else 0.0
            detail = f"canary {seg_c.errors:.0f} errors in {seg_c.requests:.0f} requests, SLO {judge.slo_error_rate:g}%"
            out.append(_evidence("slo", closed, max(current, -50.0), units, detail))
    return tuple(out)


def _latency(closed: dict[str, float], seg_c: Counts, seg_p: Counts, share: float, units: float) -> list[Evidence]:
    primary = dict(seg_p.buckets)
    bounds = [le for le, _ in seg_c.buckets if le != INF_LE and le in primary]
    if not bounds:
        return [_evidence("latency", closed, 0.0, units, "no latency histogram")]
    log_bound = units + math.log(len(bounds))
    total_c = dict(seg_c.buckets).get(INF_LE, seg_c.requests)
    total_p = primary.get(INF_LE, seg_p.requests)
    out = []
    for le, at_most in seg_c.buckets:
        if le not in bounds:
            continue
        slow_c, slow_p = max(total_c - at_most, 0.0), max(total_p - primary[le], 0.0)
        current = stats.log_bf_greater(slow_c, slow_p, share)
        detail = f"slower than {le:g}ms: canary {slow_c:.0f} of {total_c:.0f}, primary {slow_p:.0f} of {total_p:.0f}"
        out.append(_evidence(f"latency>{le:g}ms", closed, current, log_bound, detail))
    return out


def _evidence(name: str, closed: dict[str, float], current: float, log_bound: float, detail: str) -> Evidence:
    past = closed.get(name, 0.0)
    total = past + current
    if total >= log_bound:
        decision = Decision.ROLLBACK
        message = f"{name} e-value {math.exp(min(total, 700)):.3g} ≥ {math.exp(log_bound):.3g} ({detail})"
    else:
        decision = Decision.CONTINUE if current or past else Decision.NO_DATA
        message = detail
    return Evidence(name, past, current, log_bound, decision, message)


def _not_worse(judge: CanaryJudge, run_c: Counts, run_p: Counts) -> Evidence:
    rate_p = run_p.errors / run_p.requests if run_p.requests > 0 else 0.0
    p_ref = rate_p + judge.margin / 100
    log_e = stats.log_e_not_worse(run_c.requests, run_c.errors, p_ref) if judge.margin > 0 else 0.0
    log_bound = math.log(1 / judge.alpha)
    detail = (
        f"canary error rate {_pct(run_c)} vs primary {_pct(run_p)} + margin {judge.margin:g} points "
        f"({run_c.requests:.0f} canary requests)"
    )
    if run_c.requests <= 0:
        return Evidence("not-worse", 0.0, 0.0, log_bound, Decision.NO_DATA, "no canary traffic yet")
    if log_e >= log_bound:
        message = (
            f"not worse than the primary (e-value {math.exp(min(log_e, 700)):.3g} ≥ {1 / judge.alpha:g}): {detail}"
        )
        return Evidence("not-worse", 0.0, log_e, log_bound, Decision.NOT_WORSE, message)
    return Evidence("not-worse", 0.0, log_e, log_bound, Decision.CONTINUE, detail)


def _pct(counts: Counts) -> str:
    return f"{100 * counts.errors / counts.requests:.2f}%" if counts.requests > 0 else "n/a"
