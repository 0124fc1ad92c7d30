"""Server-side apply and field ownership (kubernetes.io, "Server-Side Apply").

Every write records which manager set which fields in ``metadata.managedFields``. An apply by manager M:
- conflicts (409) when it sets a field to a different value than another manager owns, unless ``force``;
  forcing takes the field over;
- removes the fields M applied before and no longer applies, unless another manager also owns them;
- merges the applied configuration into the live object (lists of named items merge by ``name``).
An update (PUT/PATCH) never conflicts: it takes over the fields whose values it changed.
Fields are paths; an item of a list keyed by ``name`` is ``("name", value)`` in the path.
"""

from __future__ import annotations

import json
from typing import Any

from tests.kube.emulator.patches import strategic_merge_patch

Json = dict[str, Any]
Step = str | tuple[str, str]
Path = tuple[Step, ...]
Owners = dict[tuple[str, str], set[Path]]  # (manager, "Apply" | "Update") -> fields

IDENTITY = {("apiVersion",), ("kind",), ("metadata", "name"), ("metadata", "namespace")}
SYSTEM_METADATA = {"uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "deletionTimestamp"}


class ApplyConflict(Exception):
    def __init__(self, conflicts: list[tuple[str, Path]]) -> None:
        lines = [f'conflict with "{manager}": {render_path(path)}' for manager, path in conflicts]
        super().__init__(f"Apply failed with {len(conflicts)} conflict(s): " + "; ".join(lines))


def _keyed(items: Any) -> bool:
    return isinstance(items, list) and bool(items) and all(isinstance(i, dict) and "name" in i for i in items)


def leaf_values(obj: Any, prefix: Path = ()) -> dict[Path, Any]:
    """Every leaf field of ``obj`` with its value, skipping the fields the server itself owns."""
    leaves: dict[Path, Any] = {}
    if not isinstance(obj, dict):
        return leaves
    for key, value in obj.items():
        path = (*prefix, key)
        if prefix == ("metadata",) and key in SYSTEM_METADATA:
            continue
        if isinstance(value, dict) and value:
            leaves.update(leaf_values(value, path))
        elif _keyed(value):
            for item in value:
                leaves.update(leaf_values(item, (*path, ("name", str(item["name"])))))
        else:
            leaves[path] = value
    return {path: value for path, value in leaves.items() if path not in IDENTITY}


def render_path(path: Path) -> str:
    return "".join(f"[name={step[1]}]" if isinstance(step, tuple) else f".{step}" for step in path)


def fields_v1(paths: set[Path]) -> Json:
    """The ``fieldsV1`` trie the API server shows: ``f:<field>`` and ``k:{"name":...}`` for keyed items."""
    root: Json = {}
    for path in paths:
        node = root
        for step in path:
            key = (
                f"k:{json.dumps({'name': step[1]}, separators=(',', ':'))}" if isinstance(step, tuple) else f"f:{step}"
            )
            node = node.setdefault(key, {})
            if isinstance(step, tuple):
                node.setdefault(".", {})
    return root


def _remove_path(obj: Json, path: Path) -> None:
    node: Any = obj
    for step in path[:-1]:
        if isinstance(step, tuple):
            node = next((item for item in node or [] if str(item.get("name")) == step[1]), None)
        else:
            node = node.get(step) if isinstance(node, dict) else None
        if node is None:
            return
    last = path[-1]
    if last == "name" and len(path) >= 2 and isinstance(path[-2], tuple):
        return  # the item itself is removed through its parent list below
    if isinstance(node, dict):
        node.pop(last, None)


def _remove_items(obj: Json, path: Path) -> None:
    """Remove a keyed list item when its ``name`` field is no longer owned by anyone."""
    parent: Any = obj
    for step in path[:-2]:
        if isinstance(step, tuple):
            parent = next((item for item in parent or [] if str(item.get("name")) == step[1]), None)
        else:
            parent = parent.get(step) if isinstance(parent, dict) else None
        if parent is None:
            return
    if isinstance(parent, list):
        parent[:] = [item for item in parent if str(item.get("name")) != path[-2][1]]  # type: ignore[index]


def apply(live: Json | None, config: Json, manager: str, force: bool, owners: Owners) -> Json:
    """The object after ``manager`` applies ``config``; ``owners`` is updated in place."""
    applied = leaf_values(config)
    live_values = leaf_values(live or {})
    me = (manager, "Apply")
    conflicts = [
        (other[0], path)
        for other, fields in owners.items()
        if other[0] != manager
        for path in fields & applied.keys()
        if path in live_values and live_values[path] != applied[path]
    ]
    if conflicts and not force:
        raise ApplyConflict(sorted(conflicts, key=lambda c: (c[0], render_path(c[1]))))
    for other, fields in owners.items():
        if other[0] != manager:
            fields -= {path for _, path in conflicts}
    result: Json = strategic_merge_patch(live or {}, config)
    others = set().union(*(fields for key, fields in owners.items() if key != me)) if owners else set()
    for path in sorted(owners.get(me, set()) - applied.keys() - others, key=len, reverse=True):
        if path[-1] == "name" and len(path) >= 2 and isinstance(path[-2], tuple):
            _remove_items(result, path)
        else:
            _remove_path(result, path)
    owners[me] = set(applied)
    for key in [key for key, fields in owners.items() if not fields and key != me]:
        del owners[key]  # a manager that owns nothing any more is dropped from managedFields
    return result


def record_update(old: Json | None, new: Json, manager: str, owners: Owners) -> None:
    """An update takes over the fields it changed (no conflicts for updates)."""
    before, after = leaf_values(old or {}), leaf_values(new)
    changed = {path for path, value in after.items() if before.get(path, object()) != value}
    gone = before.keys() - after.keys()
    for fields in owners.values():
        fields -= changed | gone
    if changed:
        owners.setdefault((manager, "Update"), set()).update(changed)
    for key in [key for key, fields in owners.items() if not fields]:
        del owners[key]


def managed_fields(owners: Owners, api_version: str, times: dict[tuple[str, str], str]) -> list[Json]:
    return [
        {
            "manager": manager,
            "operation": operation,
            "apiVersion": api_version,
            "time": times.get((manager, operation), ""),
            "fieldsType": "FieldsV1",
            "fieldsV1": fields_v1(fields),
        }
        for (manager, operation), fields in sorted(owners.items())
    ]
