"""Flux-shaped status conditions: ``Ready``, ``Reconciling``, ``Stalled``… each with a reason and a message.

A condition keeps its ``lastTransitionTime`` while its status stays the same, as Kubernetes' condition helpers do,
so ``kubectl``/``flux get`` show since when an object has been failing rather than when it was last checked.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from canaryflow.api.flux import common as flux
from canaryflow.api.timestamps import rfc3339

Condition = dict[str, Any]


def condition(kind: str, ok: bool | None, reason: str, message: str, generation: int | None, now: float) -> Condition:
    """One condition; ``generation`` None leaves ``observedGeneration`` out (the caller does not know it)."""
    status = "Unknown" if ok is None else ("True" if ok else "False")
    found: Condition = {"type": kind, "status": status, "reason": reason, "message": message}
    if generation is not None:
        found["observedGeneration"] = generation
    found["lastTransitionTime"] = rfc3339(now)
    return found


def merge(previous: Iterable[Condition], current: Iterable[Condition]) -> list[Condition]:
    """``current`` replaces ``previous``; a condition whose status did not change keeps its transition time."""
    before = {c.get("type"): c for c in previous}
    merged = []
    for cond in current:
        old = before.get(cond["type"])
        if old is not None and old.get("status") == cond["status"] and old.get("lastTransitionTime"):
            cond = {**cond, "lastTransitionTime": old["lastTransitionTime"]}
        merged.append(cond)
    return merged


def find(status: dict[str, Any], kind: str) -> Condition | None:
    for cond in status.get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == kind:
            return cond
    return None


def is_ready(status: dict[str, Any]) -> bool:
    cond = find(status, flux.READY)
    return cond is not None and cond.get("status") == "True"


def ready(ok: bool, reason: str, message: str, generation: int, now: float) -> list[Condition]:
    """The conditions of a finished reconcile: ``Ready`` and, on failure, ``Stalled`` stays off (Flux retries)."""
    return [condition(flux.READY, ok, reason, message, generation, now)]


def stalled(reason: str, message: str, generation: int, now: float) -> list[Condition]:
    """A spec that cannot succeed until it changes (Flux's ``conditions.MarkStalled``): ``Stalled=True`` and
    ``Ready=False`` with the same reason, no ``Reconciling`` (nothing is retried). The next successful reconcile
    writes ``Ready`` alone, so ``Stalled`` goes with it."""
    return [
        condition(flux.READY, False, reason, message, generation, now),
        condition(flux.STALLED, True, reason, message, generation, now),
    ]
