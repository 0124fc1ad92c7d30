"""Invariants of ``bench/chaos.py`` as pure functions over what the bench read: events, statuses, processes.

What is counted (the same text is in ``chaos.py``'s docstring):

- A run is the events of the backend canary between a release and the next one. Its *milestones* are the events
  Flagger emits once per run: ``New revision detected! Scaling up``, ``Starting canary analysis``, ``Advance …
  canary weight W`` (once for each W the run reached), and then either ``Copying … template spec``, ``Routing
  all traffic to primary``, ``Promotion completed!`` (promoted) or ``Rolling back … failed checks threshold
  reached``, ``Canary failed! Scaling down`` (rolled back).
- *Lost*: a milestone of the run's outcome that is missing (a weight counts when the run's stored status or a
  later milestone shows it was reached), or fewer failed-check events (``Halt … advancement``, ``Metric query
  failed``) than the failed checks stored.
- *Duplicated*: a second occurrence of a milestone is allowed only when a runtime kill lies between it and the
  previous occurrence (the tick in flight was not saved, and the next runtime redoes it: the executor's
  idempotence). Any other repeat is a duplicate.
- *Promoted twice*: more than one ``Promotion completed!`` not explained by a kill, or the stored phase entering
  Succeeded more than once. *Promoted after failure*: a faulty release that ends Succeeded, or a promotion event
  after ``failed checks threshold reached``.
- *Orphan*: a process that was below a killed runtime, still runs after the next runtime is up and settled, and is
  neither in the new ``runtime.json`` nor below the new runtime. A *port leak*: a listening socket held by one.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Iterable, Sequence
from typing import Any

Json = dict[str, Any]

NEW_REVISION = "New revision detected! Scaling up"
STARTING = "Starting canary analysis"
ADVANCE = re.compile(r"^Advance \S+ canary weight (\d+)$")
COPYING = "Copying "
ALL_TO_PRIMARY = "Routing all traffic to primary"
PROMOTED = "Promotion completed!"
THRESHOLD = "failed checks threshold reached"
FAILED = "Canary failed! Scaling down"
#: A failed check's event: a metric over its threshold or without values, a failed query, a failed hook.
HALT = re.compile(r"^(Halt (\S+ )?advancement |Metric query failed )")


@dataclasses.dataclass
class Run:
    number: int
    kind: str  # healthy | faulty
    events: list[Json]  # {"time", "message"} in order
    kill_times: list[float]
    outcome: str = ""  # Succeeded | Failed | timed out …
    failed_checks: int = 0
    max_weight: int = 0
    succeeded_entries: int = 0  # times the polled status entered Succeeded
    kill_moments: list[str] = dataclasses.field(default_factory=list)


def milestone(message: str) -> str | None:
    """The milestone an event message is (its identity for counting), or None."""
    for prefix in (NEW_REVISION, STARTING, COPYING, ALL_TO_PRIMARY, PROMOTED, FAILED):
        if message.startswith(prefix):
            return prefix
    if THRESHOLD in message and message.startswith("Rolling back"):
        return THRESHOLD
    match = ADVANCE.match(message)
    return f"weight {match.group(1)}" if match else None


def expected_milestones(run: Run, step: int, max_weight: int) -> list[str]:
    if run.outcome == "Succeeded":
        weights = list(range(step, max_weight + 1, step))
        tail = [COPYING, ALL_TO_PRIMARY, PROMOTED]
    elif run.outcome == "Failed":
        reached = max([run.max_weight, *(_weight(m) for m in _messages(run))], default=0)
        weights = list(range(step, reached + 1, step))
        tail = [THRESHOLD, FAILED] if run.failed_checks else []
    else:
        return []
    return [NEW_REVISION, STARTING, *(f"weight {w}" for w in weights), *tail]


def _messages(run: Run) -> list[str]:
    return [str(e["message"]) for e in run.events]


def _weight(message: str) -> int:
    match = ADVANCE.match(message)
    return int(match.group(1)) if match else 0


def _killed_between(kills: Sequence[float], start: float, end: float) -> bool:
    return any(start <= k <= end for k in kills)


def unexplained_repeats(run: Run, name: str) -> int:
    """Occurrences of milestone ``name`` after the first with no kill since the previous one."""
    times = [float(e["time"]) for e in run.events if milestone(str(e["message"])) == name]
    return sum(1 for a, b in itertools.pairwise(times) if not _killed_between(run.kill_times, a, b))


def lost_events(run: Run, step: int, max_weight: int) -> int:
    seen = {milestone(m) for m in _messages(run)}
    lost = sum(1 for m in expected_milestones(run, step, max_weight) if m not in seen)
    halts = sum(1 for m in _messages(run) if HALT.match(m))
    if run.outcome == "Failed":
        lost += max(0, run.failed_checks - halts)
    return lost


def duplicated_events(run: Run) -> int:
    names = {n for m in _messages(run) if (n := milestone(m)) is not None}
    return sum(unexplained_repeats(run, n) for n in names)


def double_promotion(run: Run) -> bool:
    return unexplained_repeats(run, PROMOTED) > 0 or run.succeeded_entries > 1


def promoted_after_failure(run: Run) -> bool:
    if run.kind == "faulty" and run.outcome == "Succeeded":
        return True
    messages = _messages(run)
    failed_at = next((i for i, m in enumerate(messages) if milestone(m) == THRESHOLD), None)
    return failed_at is not None and any(milestone(m) in (COPYING, PROMOTED) for m in messages[failed_at:])


# -- processes --------------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Proc:
    pid: int
    start: int  # start time in clock ticks since boot (a reused PID has another)
    cmdline: str


def orphans(before_kill: Iterable[Proc], alive: Iterable[Proc], adopted: Iterable[int]) -> list[Proc]:
    """Processes below the killed runtime that still run (same PID and start time) and the new runtime neither
    recorded nor started."""
    now = {(p.pid, p.start) for p in alive}
    keep = set(adopted)
    return [p for p in before_kill if (p.pid, p.start) in now and p.pid not in keep]


def leaked_ports(listening: dict[int, set[int]], leftover: Iterable[Proc]) -> set[int]:
    """Ports listened on by left-over processes (``listening``: PID → ports)."""
    return {port for p in leftover for port in listening.get(p.pid, set())}


def traffic_left(canary_weights: Sequence[int], canary_requests_after: int) -> bool:
    """After a rollback: any route still giving the canary weight, or requests that reached its cluster."""
    return any(w > 0 for w in canary_weights) or canary_requests_after > 0
