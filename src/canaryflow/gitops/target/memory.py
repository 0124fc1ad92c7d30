"""An in-memory Target for tests and simulations: a dict of live objects, a count of writes, and health that a
test sets by hand."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from canaryflow.gitops.target.base import ApplyError, Change, Health, ObjRef, Support

#: Fields the server owns: never part of what a manifest asks for, so never a difference.
SERVER_METADATA = ("creationTimestamp", "generation", "resourceVersion", "uid", "managedFields")


def desired_state(obj: Mapping[str, Any]) -> dict[str, Any]:
    """What an apply asks for: the object without ``status`` and without server-owned metadata."""
    out = {k: copy.deepcopy(v) for k, v in obj.items() if k != "status"}
    metadata = {k: v for k, v in (out.get("metadata") or {}).items() if k not in SERVER_METADATA}
    out["metadata"] = metadata
    return out


class MemoryTarget:
    def __init__(self, *, unsupported: Iterable[str] = (), provided: Iterable[str] = ()) -> None:
        self.unsupported = frozenset(unsupported)
        self.provided = frozenset(provided)
        self.objects: dict[str, dict[str, Any]] = {}
        self.healths: dict[str, Health] = {}
        self.writes = 0
        self.deleted: list[ObjRef] = []
        self.failing_deletes: set[str] = set()
        self.health_calls = 0

    def support(self, api_version: str, kind: str) -> tuple[Support, str]:
        if kind in self.unsupported:
            return Support.UNSUPPORTED, f"kind {kind} is not supported by this target"
        return (Support.PROVIDED if kind in self.provided else Support.RUN), ""

    async def apply(self, objects: Sequence[Mapping[str, Any]], *, manager: str = "canaryflow") -> list[Change]:
        problems = []
        for obj in objects:
            ref = ObjRef.of(obj)
            if not ref.name:
                problems.append(f"{ref.kind}: metadata.name: required")
            elif ref.kind in self.unsupported:
                problems.append(f"{ref}: kind {ref.kind} is not supported by this target")
        if problems:
            raise ApplyError(problems)
        changes = []
        for obj in objects:
            ref = ObjRef.of(obj)
            wanted = desired_state(obj)
            live = self.objects.get(ref.id)
            provided = ref.kind in self.provided
            if live is not None and desired_state(live) == wanted:
                changes.append(Change(ref, "provided" if provided else "unchanged"))
                continue
            generation = int((live or {}).get("metadata", {}).get("generation", 0)) + 1
            self.objects[ref.id] = {**wanted, "metadata": {**wanted["metadata"], "generation": generation}}
            self.writes += 1
            changes.append(Change(ref, "provided" if provided else ("configured" if live else "created")))
        return changes

    async def get(self, ref: ObjRef) -> dict[str, Any] | None:
        live = self.objects.get(ref.id)
        return copy.deepcopy(live) if live is not None else None

    async def delete(self, ref: ObjRef) -> bool:
        if ref.id in self.failing_deletes:
            raise RuntimeError(f"{ref}: delete refused")
        if self.objects.pop(ref.id, None) is None:
            return False
        self.deleted.append(ref)
        return True

    async def health(self, ref: ObjRef) -> Health:
        self.health_calls += 1
        if ref.id in self.healths:
            return self.healths[ref.id]
        if ref.id not in self.objects:
            return Health("in-progress", "not found")
        return Health("current")

    # -- what tests do to the "cluster" ------------------------------------------------------------------------
    def set_health(self, ref: ObjRef, health: Health) -> None:
        self.healths[ref.id] = health

    def edit(self, ref: ObjRef, change: Callable[[dict[str, Any]], None]) -> None:
        """Change a live object behind the reconciler's back (a ``kubectl edit``): drift."""
        change(self.objects[ref.id])

    def put(self, obj: Mapping[str, Any]) -> None:
        """An object someone else created (not in any inventory)."""
        self.objects[ObjRef.of(obj).id] = copy.deepcopy(dict(obj))
