"""``bench/chaos.py``'s invariants on fixed inputs: what counts as lost, duplicated, promoted twice, an orphan.

The bench itself takes minutes on a live runtime and is not part of ``make test``; its judgements are pure
functions, checked here on event logs written by hand.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def inv() -> ModuleType:
    sys.path.insert(0, str(BENCH))  # the bench imports its helpers as top-level modules, as `python bench/X.py` does
    try:
        return importlib.import_module("_chaos_invariants")
    finally:
        sys.path.remove(str(BENCH))


PROMOTED_RUN = [
    "New revision detected! Scaling up backend.prod",
    "Starting canary analysis for backend.prod",
    "Advance backend.prod canary weight 20",
    "Advance backend.prod canary weight 40",
    "Advance backend.prod canary weight 60",
    "Copying backend.prod template spec to backend-primary.prod",
    "Routing all traffic to primary",
    "Promotion completed! Scaling down backend.prod",
]
FAILED_RUN = [
    "New revision detected! Scaling up backend.prod",
    "Starting canary analysis for backend.prod",
    "Advance backend.prod canary weight 20",
    "Halt backend.prod advancement error-rate 12.45 > 5",
    "Halt backend.prod advancement error-rate 23.49 > 5",
    "Halt backend.prod advancement error-rate 33.17 > 5",
    "Rolling back backend.prod failed checks threshold reached 3",
    "Canary failed! Scaling down backend.prod",
]


def run(inv: ModuleType, messages: list[str], outcome: str, kills: tuple[float, ...] = (), **kw: Any) -> Any:
    """A run whose events come one a second, in order; a kill at time t lies between events t-½ and t+½."""
    events = [{"time": float(i), "message": m} for i, m in enumerate(messages)]
    kind = kw.pop("kind", "healthy" if outcome == "Succeeded" else "faulty")
    return inv.Run(1, kind, events, list(kills), outcome, **kw)


def test_a_clean_promotion_and_a_clean_rollback_break_nothing(inv: ModuleType) -> None:
    for r in (run(inv, PROMOTED_RUN, "Succeeded"), run(inv, FAILED_RUN, "Failed", failed_checks=3, max_weight=20)):
        assert inv.lost_events(r, 20, 60) == 0
        assert inv.duplicated_events(r) == 0
        assert not inv.double_promotion(r)
        assert not inv.promoted_after_failure(r)


def test_a_repeat_across_a_kill_is_the_redone_tick_and_allowed(inv: ModuleType) -> None:
    messages = PROMOTED_RUN[:4] + PROMOTED_RUN[3:]  # weight 40 twice
    assert inv.duplicated_events(run(inv, messages, "Succeeded", kills=(3.5,))) == 0
    assert inv.duplicated_events(run(inv, messages, "Succeeded")) == 1  # no kill between: a duplicate
    assert inv.duplicated_events(run(inv, messages, "Succeeded", kills=(1.5,))) == 1  # the kill was earlier


def test_missing_milestones_and_halts_are_lost(inv: ModuleType) -> None:
    without_weight_40 = [m for m in PROMOTED_RUN if not m.endswith("weight 40")]
    assert inv.lost_events(run(inv, without_weight_40, "Succeeded"), 20, 60) == 1
    one_halt_missing = [m for i, m in enumerate(FAILED_RUN) if i != 4]
    assert inv.lost_events(run(inv, one_halt_missing, "Failed", failed_checks=3), 20, 60) == 1


def test_two_promotions_without_a_kill_or_two_entries_into_succeeded_are_a_double_promotion(inv: ModuleType) -> None:
    twice = PROMOTED_RUN + PROMOTED_RUN[-1:]
    assert inv.double_promotion(run(inv, twice, "Succeeded"))
    assert not inv.double_promotion(run(inv, twice, "Succeeded", kills=(7.5,)))
    assert inv.double_promotion(run(inv, PROMOTED_RUN, "Succeeded", succeeded_entries=2))


def test_a_faulty_release_that_ends_promoted_is_promoted_after_failure(inv: ModuleType) -> None:
    assert inv.promoted_after_failure(run(inv, PROMOTED_RUN, "Succeeded", kind="faulty"))
    after_threshold = FAILED_RUN[:-1] + PROMOTED_RUN[-3:]
    assert inv.promoted_after_failure(run(inv, after_threshold, "Failed", kind="healthy"))


def test_orphans_are_left_over_processes_nobody_adopted(inv: ModuleType) -> None:
    before = [inv.Proc(10, 100, "envoy"), inv.Proc(11, 101, "demoapp"), inv.Proc(12, 102, "prometheus")]
    alive = [inv.Proc(10, 100, "envoy"), inv.Proc(11, 999, "reused pid"), inv.Proc(12, 102, "prometheus")]
    left = inv.orphans(before, alive, adopted=[12])
    assert [p.pid for p in left] == [10]  # 11 is another process now, 12 was adopted
    assert inv.leaked_ports({10: {8080}, 12: {9090}}, left) == {8080}


def test_traffic_left_on_a_failed_canary(inv: ModuleType) -> None:
    assert not inv.traffic_left([0, 0], 0)
    assert inv.traffic_left([0, 10], 0)
    assert inv.traffic_left([0], 3)
