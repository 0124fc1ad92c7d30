"""The chaos bench's invariants (bench/_chaos_operator_checks.py) on fixed write records: what each one counts,
and what an idempotent tick may repeat without being counted. The bench itself takes minutes and is not run here.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

PATH = Path(__file__).resolve().parents[2] / "bench" / "_chaos_operator_checks.py"
ANALYSIS = {"threshold": 2, "stepWeight": 10, "maxWeight": 30}
OLD, NEW = "podinfo:7.0.0", "podinfo:7.0.1"


@pytest.fixture(scope="module")
def checks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_chaos_operator_checks", PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


class Record:
    """A write record built step by step: each write gets the next revision, as on the API server."""

    def __init__(self, checks: ModuleType) -> None:
        self.c = checks
        self.revision = 0
        self.canary: list[Any] = []
        self.primary: list[Any] = []
        self.vs: list[Any] = []

    def _next(self) -> int:
        self.revision += 1
        return self.revision

    def status(self, phase: str, weight: int = 0, failed: int = 0) -> Record:
        status = {"phase": phase, "canaryWeight": weight, "failedChecks": failed}
        self.canary.append(self.c.Version(self._next(), {"status": status}))
        return self

    def promote(self, image: str) -> Record:
        spec = {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}
        self.primary.append(self.c.Version(self._next(), {"spec": spec}))
        return self

    def route(self, primary: int, canary: int) -> Record:
        route = [{"destination": {"host": "app-primary"}, "weight": primary},
                 {"destination": {"host": "app-canary"}, "weight": canary}]  # fmt: skip
        self.vs.append(self.c.Version(self._next(), {"spec": {"http": [{"route": route}]}}))
        return self

    def step(self, *weights: int) -> Record:
        """A tick per weight: the route, then the status (Progressing at that weight)."""
        for weight in weights:
            self.route(100 - weight, weight).status("Progressing", weight)
        return self

    def bump(self, image: str, faulty: bool) -> Any:
        return self.c.Run("app", image, faulty, self._next())

    def check(self, run: Any, outcome: str) -> Any:
        run.outcome = outcome
        return self.c.check_run(run, None, self.canary, self.primary, self.vs, ANALYSIS, "app-primary")


def initialized(checks: ModuleType) -> Record:
    return Record(checks).promote(OLD).route(100, 0).status("Initialized")


def healthy(record: Record) -> Any:
    run = record.bump(NEW, faulty=False)
    record.status("Progressing", 10).route(90, 10).status("Progressing", 20).route(80, 20)
    record.route(70, 30).status("Progressing", 30).promote(NEW).status("Promoting", 30).route(100, 0)
    record.status("Finalising").status("Succeeded")
    return run


def counts(tally: Any) -> dict[str, int]:
    return {k: v for k, v in vars(tally).items() if k != "notes" and v}


def test_a_clean_promotion_counts_nothing(checks: ModuleType) -> None:
    record = initialized(checks)
    assert counts(record.check(healthy(record), "Succeeded")) == {}


def test_idempotent_rewrites_of_a_phase_weight_or_template_count_nothing(checks: ModuleType) -> None:
    record = initialized(checks)
    run = record.bump(NEW, faulty=False)
    record.step(10, 10, 20).route(80, 20).step(30)
    record.promote(NEW).promote(NEW).status("Promoting", 30).status("Promoting", 30).route(100, 0)
    record.status("Finalising").status("Succeeded").status("Succeeded")
    assert counts(record.check(run, "Succeeded")) == {}


def test_a_second_copy_to_the_primary_and_a_second_success_are_double_promotions(checks: ModuleType) -> None:
    record = initialized(checks)
    run = healthy(record)
    record.promote(OLD).promote(NEW).status("Finalising").status("Succeeded")
    tally = record.check(run, "Succeeded")
    assert tally.double_promotions == 2
    assert tally.illegal_transitions == 1  # Succeeded -> Finalising is no move of the state machine


def test_promotion_after_the_failed_checks_reached_the_threshold(checks: ModuleType) -> None:
    record = initialized(checks)
    run = record.bump(NEW, faulty=True)
    record.status("Progressing", 10, failed=1).status("Progressing", 10, failed=2).promote(NEW)
    record.status("Promoting", 10, failed=2)
    tally = record.check(run, "Promoting")
    assert (tally.promoted_after_failure, tally.faulty_runs_promoted) == (1, 1)


def test_a_rollback_must_leave_all_traffic_on_the_primary(checks: ModuleType) -> None:
    record = initialized(checks)
    run = record.bump(NEW, faulty=True)
    record.status("Progressing", 10).route(90, 10).status("Progressing", 10, failed=1)
    record.status("Failed", 0, failed=2)  # the VirtualService still sends 10 % to the canary
    assert record.check(run, "Failed").traffic_left_on_failed_canary == 1
    record = initialized(checks)
    run = record.bump(NEW, faulty=True)
    record.status("Progressing", 10).route(90, 10).status("Progressing", 10, failed=1).route(100, 0)
    record.status("Failed", 0, failed=2)
    assert counts(record.check(run, "Failed")) == {}


def test_a_weight_stepped_again_is_duplicated_and_a_skipped_one_lost(checks: ModuleType) -> None:
    record = initialized(checks)
    run = record.bump(NEW, faulty=False)
    record.step(10, 20, 10, 20, 30).promote(NEW).status("Promoting").route(100, 0).status("Finalising")
    record.status("Succeeded")
    assert counts(record.check(run, "Succeeded")) == {"duplicated_transitions": 2}
    record = initialized(checks)
    run = record.bump(NEW, faulty=False)
    record.step(10, 30).promote(NEW).status("Promoting").route(100, 0)
    record.status("Succeeded")  # skipped 20, and Finalising
    tally = record.check(run, "Succeeded")
    assert (tally.lost_transitions, tally.duplicated_transitions) == (2, 0)
    assert tally.illegal_transitions == 1  # Promoting -> Succeeded


def test_a_step_routed_but_not_shown_in_the_status_is_a_gap_not_a_lost_step(checks: ModuleType) -> None:
    record = initialized(checks)
    run = record.bump(NEW, faulty=False)
    record.route(90, 10).step(20, 30).promote(NEW).status("Promoting", 30).route(100, 0)  # killed after routing 10
    record.status("Finalising").status("Succeeded")
    assert counts(record.check(run, "Succeeded")) == {"status_weight_gaps": 1}


def test_a_run_still_going_is_judged_on_what_it_did_so_far(checks: ModuleType) -> None:
    record = initialized(checks)
    run = record.bump(NEW, faulty=False)
    record.status("Progressing", 10).status("Progressing", 20)
    assert counts(record.check(run, "stuck")) == {}


def test_repeated_events_count_emissions_within_the_run_only(checks: ModuleType) -> None:
    def event(revision: int, count: int) -> Any:
        obj = {"metadata": {"name": "app.1"}, "involvedObject": {"name": "app"}, "count": count,
               "message": "Promotion completed! Scaling down app.chaos"}  # fmt: skip
        return checks.Version(revision, obj)

    events = [event(1, 1), event(2, 2), event(5, 3), event(6, 4)]  # runs from revision 4: two emissions there
    assert checks.repeated_events(events, "app", 4, None, ["Promotion completed!"]) == 1
    assert checks.repeated_events(events, "app", 4, 6, ["Promotion completed!"]) == 0
    assert checks.repeated_events(events, "other", 0, None, ["Promotion completed!"]) == 0


def test_spec_differences_allow_what_the_api_server_adds_to_a_service(checks: ModuleType) -> None:
    expected = {"kind": "Service", "metadata": {"name": "app", "labels": {"app": "app"}},
                "spec": {"selector": {"app": "app-primary"}, "ports": [{"port": 80}]}}  # fmt: skip
    live = {"metadata": {"name": "app", "labels": {"app": "app"}, "resourceVersion": "9"},
            "spec": {**expected["spec"], "clusterIP": "10.0.0.1"}}  # fmt: skip
    assert checks.spec_differences(expected, live) == []
    live["spec"]["selector"] = {"app": "app"}
    assert checks.spec_differences(expected, live) == ["Service app: spec differs"]
    assert checks.spec_differences(expected, None) == ["Service app: missing"]
    vs = {"kind": "VirtualService", "metadata": {"name": "app"}, "spec": {"http": []}}
    assert checks.spec_differences(vs, {"metadata": {"name": "app"}, "spec": {"http": [], "x": 1}}) == [
        "VirtualService app: spec differs"
    ]
