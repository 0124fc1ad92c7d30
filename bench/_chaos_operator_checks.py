"""The invariants bench/chaos_operator.py checks, as pure functions of what the API server stored.

Input is the emulator's own record of every write (``Version``: the cluster-wide revision of the write and the
object as stored), never what the operator says about itself, plus what the bench did (``Run``: which image it
rolled out on which canary, at which revision, and whether the metrics it served would pass). A run's *window*
is the revisions from its image bump up to the next bump of the same canary (or the end of the record).

What is counted, per run:

- **double promotion**: the primary Deployment's pod template changed to the run's template more than once, or
  the status entered ``Succeeded`` more than once (each surplus counts 1). Re-writing an identical template, or
  re-writing ``Succeeded`` over ``Succeeded``, is no change in the record and is not counted: an idempotent tick
  repeated after a restart may do it.
- **promoted after failure**: a status version had ``failedChecks >= threshold``, and later in the window the
  primary took the run's template or the status entered Promoting, Finalising or Succeeded (1 per run).
- **faulty run promoted**: the bench served failing metrics for the whole run, yet the primary took its
  template (no check can pass, so no promotion is legitimate); **healthy run failed**: the reverse (every check
  passes and the Deployment controller keeps every rollout ready, so no rollback is legitimate).
- **traffic left on a failed canary**: the status entered ``Failed`` while the VirtualService still gave the
  canary traffic, or a later VirtualService version in the window did (1 per entry into Failed).
- **status transitions**: the phases of the window's status versions, with runs of equal phases collapsed (a
  tick that writes the same phase again is idempotent, not a transition), compared with the run's expected
  path (healthy: Progressing, Promoting, Finalising, Succeeded; faulty: Progressing, Failed) by their longest
  common subsequence: expected phases missing from it are *lost*, observed phases outside it *duplicated*.
  The traffic steps count the same way: the canary's weight in the VirtualService versions of the window
  (collapsed, zeros left out), against stepWeight, 2*stepWeight, ... maxWeight for a healthy run that
  succeeded (otherwise against the weights it did reach, so only repeats count). A phase change the state
  machine's table does not allow is *illegal*.
- **status weight gaps** (informational): traffic steps the status's ``canaryWeight`` never showed. The router
  is the truth for the weight, as in Flagger (the next tick steps on from the routes it reads), so a tick that
  routed a step and then lost its status write (killed, or the write failed) leaves the status one step behind
  until the next tick: a gap, not a lost step.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Sequence
from typing import Any

from canaryflow.engine import machine

Json = dict[str, Any]
HEALTHY_PATH = ("Progressing", "Promoting", "Finalising", "Succeeded")
FAULTY_PATH = ("Progressing", "Failed")
IDLE = frozenset({"Initialized", "Succeeded", "Failed"})
PROMOTED = frozenset({"Promoting", "Finalising", "Succeeded"})


@dataclasses.dataclass(frozen=True)
class Version:
    """One stored version of an object: the revision of its write and the object then."""

    revision: int
    obj: Json


@dataclasses.dataclass
class Run:
    """One release the bench started: ``image`` on canary ``name``, bumped at ``revision``."""

    name: str
    image: str
    faulty: bool
    revision: int
    outcome: str = ""  # the phase it ended in ("" while running; "stuck" if it never ended)


@dataclasses.dataclass
class Tally:
    double_promotions: int = 0
    promoted_after_failure: int = 0
    faulty_runs_promoted: int = 0
    healthy_runs_failed: int = 0
    traffic_left_on_failed_canary: int = 0
    lost_transitions: int = 0
    duplicated_transitions: int = 0
    illegal_transitions: int = 0
    status_weight_gaps: int = 0  # informational: a traffic step the status never showed (its write was lost)
    notes: list[str] = dataclasses.field(default_factory=list)

    def add(self, other: Tally) -> None:
        for field in dataclasses.fields(self):
            if field.name != "notes":
                setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))
        self.notes.extend(other.notes)


# -- projections ------------------------------------------------------------------------------------------------
def image_of(deployment: Json) -> str:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    return str(containers[0]["image"])


def template_of(deployment: Json) -> str:
    """The pod template minus what the operator changes in a copy (labels, annotations): its containers."""
    return json.dumps(deployment["spec"]["template"]["spec"], sort_keys=True)


def weights_of(virtual_service: Json) -> list[dict[str, int]]:
    """Each HTTP route's weight by destination host (a destination without a weight has 100)."""
    return [
        {d["destination"]["host"]: int(d.get("weight", 100)) for d in route.get("route", [])}
        for route in virtual_service["spec"].get("http", [])
    ]


def all_to_primary(virtual_service: Json, primary_host: str) -> bool:
    """Every route sends 100 % to the primary and nothing to any other destination, and nothing is mirrored."""
    for route in virtual_service["spec"].get("http", []):
        if "mirror" in route:
            return False
        for weight in weights_of({"spec": {"http": [route]}}):
            if weight.get(primary_host) != 100 or any(w for host, w in weight.items() if host != primary_host):
                return False
    return True


def collapse(values: Sequence[Any]) -> list[Any]:
    """Runs of equal values as one value: [a, a, b, a] -> [a, b, a]."""
    out: list[Any] = []
    for value in values:
        if not out or out[-1] != value:
            out.append(value)
    return out


def lcs(a: Sequence[Any], b: Sequence[Any]) -> int:
    """Length of the longest common subsequence."""
    row = [0] * (len(b) + 1)
    for x in a:
        previous = 0
        for j, y in enumerate(b, 1):
            previous, row[j] = row[j], previous + 1 if x == y else max(row[j], row[j - 1])
    return row[-1]


def window(versions: Sequence[Version], start: int, end: int | None) -> list[Version]:
    return [v for v in versions if v.revision >= start and (end is None or v.revision < end)]


def before(versions: Sequence[Version], revision: int) -> Version | None:
    """The last version written before ``revision``."""
    found = None
    for version in versions:
        if version.revision >= revision:
            break
        found = version
    return found


# -- the checks -------------------------------------------------------------------------------------------------
def check_run(
    run: Run,
    end: int | None,
    canary: Sequence[Version],
    primary: Sequence[Version],
    virtual_service: Sequence[Version],
    analysis: Json,
    primary_host: str,
) -> Tally:
    """Every count above for one run; ``canary``, ``primary`` and ``virtual_service`` are whole histories,
    ``analysis`` the Canary's ``spec.analysis``, ``primary_host`` the primary Service's name."""
    t = Tally()
    label = f"{run.name} {run.image} ({'faulty' if run.faulty else 'healthy'})"
    statuses = [(v.revision, v.obj.get("status") or {}) for v in window(canary, run.revision, end)]
    threshold = int(analysis.get("threshold", 1))
    # The primary takes the run's template: each change of the primary's template to this image.
    promotions, last = [], before(primary, run.revision)
    for version in window(primary, run.revision, end):
        changed = last is None or template_of(last.obj) != template_of(version.obj)
        if changed and image_of(version.obj) == run.image:
            promotions.append(version.revision)
        last = version
    phases = collapse([(s.get("phase") or "") for _, s in statuses])
    entered = _entries(statuses)
    succeeded = [r for r, phase in entered if phase == "Succeeded"]
    surplus = max(0, len(promotions) - 1) + max(0, len(succeeded) - 1)
    if surplus:
        t.double_promotions += surplus
        t.notes.append(f"{label}: primary template changed {len(promotions)}x, Succeeded entered {len(succeeded)}x")
    failed_at = next((r for r, s in statuses if int(s.get("failedChecks") or 0) >= threshold), None)
    if failed_at is not None:
        late = [r for r in promotions if r > failed_at] + [r for r, p in entered if p in PROMOTED and r > failed_at]
        if late:
            t.promoted_after_failure += 1
            t.notes.append(f"{label}: promoted at revision {late[0]} after failedChecks reached {threshold}")
    if run.faulty and promotions:
        t.faulty_runs_promoted += 1
        t.notes.append(f"{label}: failing metrics, yet the primary took its template")
    if not run.faulty and run.outcome == "Failed":
        t.healthy_runs_failed += 1
        t.notes.append(f"{label}: passing metrics, yet it failed")
    for revision, phase in entered:
        if phase == "Failed" and not _traffic_restored(virtual_service, revision, end, primary_host):
            t.traffic_left_on_failed_canary += 1
            t.notes.append(f"{label}: Failed at revision {revision} with canary traffic left in the VirtualService")
    routes = window(virtual_service, run.revision, end)
    _count_transitions(t, label, run, statuses, phases, routes, analysis, primary_host)
    return t


def _entries(statuses: Sequence[tuple[int, Json]]) -> list[tuple[int, str]]:
    """(revision, phase) of every status version whose phase differs from the one before it in the window."""
    out, last = [], None
    for revision, status in statuses:
        phase = status.get("phase") or ""
        if phase != last and last is not None:
            out.append((revision, phase))
        last = phase
    return out


def _traffic_restored(virtual_service: Sequence[Version], failed: int, end: int | None, primary: str) -> bool:
    at = before(virtual_service, failed)
    later = window(virtual_service, failed, end)
    return at is not None and all(all_to_primary(v.obj, primary) for v in [at, *later])


def _count_transitions(
    t: Tally,
    label: str,
    run: Run,
    statuses: Sequence[tuple[int, Json]],
    phases: list[str],
    routes: Sequence[Version],
    analysis: Json,
    primary_host: str,
) -> None:
    if phases and phases[0] in IDLE:  # the phase the previous run ended in, until this one starts
        phases = phases[1:]
    for a, b in itertools.pairwise(phases):
        if not machine.allowed(machine.Phase(a), machine.Phase(b)):
            t.illegal_transitions += 1
            t.notes.append(f"{label}: illegal phase change {a} -> {b}")
    expected = list(FAULTY_PATH if run.faulty else HEALTHY_PATH)
    if run.outcome in ("", "stuck"):  # unfinished: only what it did so far can be lost or repeated
        expected = expected[: len(phases)]
    common = lcs(phases, expected)
    lost, duplicated = len(expected) - common, len(phases) - common
    # Traffic steps: the canary's weight in the VirtualService (the router is the truth, as in Flagger).
    canary_host = primary_host.removesuffix("-primary") + "-canary"
    weights = [w for w in collapse([_weight(v.obj, canary_host) for v in routes]) if w]  # 0: before and after
    step, top = int(analysis.get("stepWeight", 0)), int(analysis.get("maxWeight", 0))
    if step and top and not run.faulty and run.outcome == "Succeeded":
        wanted = list(range(step, top + 1, step))
    else:
        wanted = sorted(set(weights))
    common = lcs(weights, wanted)
    lost, duplicated = lost + len(wanted) - common, duplicated + len(weights) - common
    if lost or duplicated:
        t.notes.append(f"{label}: phases {phases} (expected {expected}), weights {weights} (expected {wanted})")
    t.lost_transitions += lost
    t.duplicated_transitions += duplicated
    shown = {int(s.get("canaryWeight") or 0) for _, s in statuses if s.get("phase") == "Progressing"}
    t.status_weight_gaps += len(set(weights) - shown)


def _weight(virtual_service: Json, host: str) -> int:
    routes = weights_of(virtual_service)
    return routes[0].get(host, 0) if routes else 0


def repeated_events(events: Sequence[Version], name: str, start: int, end: int | None, messages: Sequence[str]) -> int:
    """How many times more than once each of ``messages`` was emitted about canary ``name`` in the window.

    An Event's ``count`` going up is one more emission (the sink aggregates equal messages into one Event, so
    the count carries over from earlier runs: only the increase within the window counts). Informational: a
    tick repeated after a restart emits its events again, as Flagger's does."""
    emitted: dict[str, int] = {}
    counts: dict[str, int] = {}
    for version in events:
        if end is not None and version.revision >= end:
            break
        event = version.obj
        message = str(event.get("message") or "")
        if (event.get("involvedObject") or {}).get("name") != name or not message.startswith(tuple(messages)):
            continue
        uid, count = event["metadata"]["name"], int(event.get("count") or 1)
        if version.revision >= start:
            emitted[message] = emitted.get(message, 0) + max(0, count - counts.get(uid, 0))
        counts[uid] = count
    return sum(max(0, n - 1) for n in emitted.values())


def spec_differences(expected: Json, live: Json | None) -> list[str]:
    """Where ``live`` differs from what render says (``expected``): its spec, labels, annotations and owners.

    A Service's spec is compared on the fields render sets (the API server adds clusterIP and friends)."""
    kind, name = expected["kind"], expected["metadata"]["name"]
    if live is None:
        return [f"{kind} {name}: missing"]
    problems = []
    spec = live.get("spec") or {}
    if kind == "Service":
        spec = {k: spec.get(k) for k in expected.get("spec") or {}}
    if spec != expected.get("spec"):
        problems.append(f"{kind} {name}: spec differs")
    for field in ("labels", "annotations", "ownerReferences"):
        if (live["metadata"].get(field) or None) != (expected["metadata"].get(field) or None):
            problems.append(f"{kind} {name}: metadata.{field} differs")
    return problems
