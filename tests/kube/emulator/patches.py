"""The patch formats the API server accepts (kubernetes.io, "API concepts" / "Update API Objects in Place").

- JSON merge patch (RFC 7386): dicts merge, ``null`` deletes, lists replace.
- JSON patch (RFC 6902): add/remove/replace/move/copy/test; a failing ``test`` fails the whole patch (422).
- Strategic merge patch: like a merge patch, except lists whose items all carry a ``name`` (containers, ports,
  env, volumes...) merge item by item on that key; ``$patch: delete`` removes an item or a map, ``$patch:
  replace`` replaces a map. This is the subset of the patchMergeKey metadata canaryflow's objects use (the real
  keys differ for e.g. Service ports, keyed by port); other lists replace as in a merge patch.
"""

from __future__ import annotations

import copy
from typing import Any

Json = dict[str, Any]


class PatchError(ValueError):
    """A patch the server rejects; ``status`` is the HTTP code it would answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _keyed(items: Any) -> bool:
    return isinstance(items, list) and bool(items) and all(isinstance(i, dict) and "name" in i for i in items)


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    if isinstance(patch, list):
        if _keyed(patch) and (not target or _keyed(target)):
            merged = [copy.deepcopy(item) for item in (target or [])]
            for item in patch:
                index = next((i for i, old in enumerate(merged) if old["name"] == item["name"]), None)
                if item.get("$patch") == "delete":
                    if index is not None:
                        del merged[index]
                elif index is None:
                    merged.append(strategic_merge_patch({}, item))
                else:
                    merged[index] = strategic_merge_patch(merged[index], item)
            return merged
        return copy.deepcopy(patch)
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return {key: copy.deepcopy(value) for key, value in patch.items() if key != "$patch"}
    if directive == "delete":
        return None
    if directive not in (None, "merge"):
        raise PatchError(400, f"strategic merge patch: unknown $patch directive {directive!r}")
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key == "$patch" or key.startswith("$setElementOrder/"):
            continue  # $setElementOrder only orders lists kubectl already merged; no effect on content here
        if key.startswith("$"):
            raise PatchError(400, f"strategic merge patch: directive {key!r} is not supported by the emulator")
        if value is None:
            result.pop(key, None)
        else:
            merged = strategic_merge_patch(result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
    return result


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(422, f"json patch: path {path!r} must start with '/'")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _parent(doc: Any, parts: list[str], path: str) -> Any:
    node = doc
    for part in parts[:-1]:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise PatchError(422, f"json patch: path {path!r} does not exist")
    return node


def _get(doc: Any, path: str) -> Any:
    parts = _pointer(path)
    if not parts:
        return doc
    parent, last = _parent(doc, parts, path), parts[-1]
    if isinstance(parent, dict) and last in parent:
        return parent[last]
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return parent[int(last)]
    raise PatchError(422, f"json patch: path {path!r} does not exist")


def _remove(doc: Any, path: str) -> Any:
    parts = _pointer(path)
    parent, last = _parent(doc, parts, path), parts[-1]
    value = _get(doc, path)
    if isinstance(parent, dict):
        del parent[last]
    else:
        del parent[int(last)]
    return value


def _add(doc: Any, path: str, value: Any) -> Any:
    parts = _pointer(path)
    if not parts:
        return copy.deepcopy(value)
    parent, last = _parent(doc, parts, path), parts[-1]
    if isinstance(parent, dict):
        parent[last] = copy.deepcopy(value)
    elif isinstance(parent, list):
        index = len(parent) if last == "-" else int(last) if last.isdigit() else -1
        if not 0 <= index <= len(parent):
            raise PatchError(422, f"json patch: index {last!r} out of range in {path!r}")
        parent.insert(index, copy.deepcopy(value))
    else:
        raise PatchError(422, f"json patch: {path!r} is not inside an object or a list")
    return doc


def json_patch(target: Json, operations: Any) -> Json:
    if not isinstance(operations, list):
        raise PatchError(400, "json patch: the body must be a list of operations")
    doc: Any = copy.deepcopy(target)
    for number, op in enumerate(operations):
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError(400, f"json patch: operation {number} needs 'op' and 'path'")
        kind, path = op["op"], op["path"]
        if kind == "test":
            if _get(doc, path) != op.get("value"):
                raise PatchError(
                    422, f"the server rejected our request due to an error in our request: testing value {path} failed"
                )
        elif kind == "remove":
            _remove(doc, path)
        elif kind == "add":
            doc = _add(doc, path, op.get("value"))
        elif kind == "replace":
            _get(doc, path)  # must exist
            if _pointer(path):
                _remove(doc, path)
            doc = _add(doc, path, op.get("value"))
        elif kind == "move":
            doc = _add(doc, path, _remove(doc, op["from"]))
        elif kind == "copy":
            doc = _add(doc, path, _get(doc, op["from"]))
        else:
            raise PatchError(400, f"json patch: unknown operation {kind!r}")
    if not isinstance(doc, dict):
        raise PatchError(422, "json patch: the result is not an object")
    return doc
