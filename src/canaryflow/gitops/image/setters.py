"""The ``Setters`` update strategy: rewrite values marked with ``$imagepolicy`` comments.

A marker is an end-of-line comment naming an ImagePolicy, optionally with the part of the image it sets::

    image: ghcr.io/org/app:4.0.6 # {"$imagepolicy": "flux-system:app"}          whole reference
    newName: ghcr.io/org/app # {"$imagepolicy": "flux-system:app:name"}          repository only
    newTag: 4.0.6 # {"$imagepolicy": "flux-system:app:tag"}                      tag only
    digest: sha256:... # {"$imagepolicy": "flux-system:app:digest"}             digest (when known)

Files are edited as text, one line at a time, and only the scalar in front of the marker is replaced: the
key, indentation, comment, quote style and line ending stay byte-for-byte as they were, and a file without
a change is never written. This is what users see in their diffs, and it is why we do not round-trip the
YAML through a parser. A plain scalar that would stop being a string (``6.10`` would become a float) is
written double-quoted instead. A marker naming a policy we were not given is left alone, as Flux does.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from pathlib import Path

import yaml

__all__ = [
    "Change",
    "ObjectId",
    "Result",
    "SetterError",
    "encode_scalar",
    "split_image",
    "update_text",
    "update_tree",
    "update_tree_result",
]


class SetterError(Exception):
    """The update path cannot be walked (missing, outside the repository, unreadable file)."""


@dataclasses.dataclass(frozen=True, order=True)
class ObjectId:
    """The object a change was made in (empty fields for files that are not Kubernetes objects)."""

    name: str = ""
    namespace: str = ""
    api_version: str = ""
    kind: str = ""


@dataclasses.dataclass(frozen=True)
class Change:
    """One rewritten value; ``setter`` is the marker's policy reference, e.g. ``flux-system:app:tag``."""

    old_value: str
    new_value: str
    setter: str


@dataclasses.dataclass
class Result:
    """Changes by file (relative to the update path, as in Flux's template data) and object."""

    file_changes: dict[str, dict[ObjectId, list[Change]]] = dataclasses.field(default_factory=dict)

    def changes(self) -> list[Change]:
        return [c for objects in self.file_changes.values() for cs in objects.values() for c in cs]

    def objects(self) -> dict[ObjectId, list[Change]]:
        merged: dict[ObjectId, list[Change]] = {}
        for objects in self.file_changes.values():
            for obj, cs in objects.items():
                merged.setdefault(obj, []).extend(cs)
        return merged


def split_image(image: str) -> tuple[str, str | None, str | None]:
    """``repo[:tag][@digest]`` -> (repo, tag, digest); a ``:`` before the last ``/`` is a registry port."""
    rest, _, digest = image.partition("@")
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        return rest[:colon], rest[colon + 1 :], digest or None
    return rest, None, digest or None


_MARKER = re.compile(r'(?P<gap>[ \t]+)#[ \t]*\{[ \t]*"\$imagepolicy"[ \t]*:[ \t]*"(?P<ref>[^"]*)"[ \t]*\}[ \t]*$')
_DQ = r'"(?:[^"\\]|\\.)*"'
_SQ = r"'(?:[^']|'')*'"
_SCALAR_LINE = re.compile(
    rf"^(?P<lead>[ \t]*(?:-[ \t]+)*(?:(?:{_DQ}|{_SQ}|[^\s#'\"-][^#]*?|-[^\s#][^#]*?)[ \t]*:[ \t]+)?)"
    # a plain scalar has no ": " and does not end in ":" (that would make it a key)
    rf"(?P<value>{_DQ}|{_SQ}|[^\s#'\"\[\]{{}}&*!|>%@`:](?:[^#:]|:(?=\S))*)$"
)


def _decode(raw: str) -> str | None:
    if raw.startswith('"'):
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            return None
        return value if isinstance(value, str) else None
    if raw.startswith("'"):
        return raw[1:-1].replace("''", "'")
    return raw


def _plain_ok(value: str) -> bool:
    if not value or value != value.strip() or ": " in value or " #" in value or value[0] in "-?:,[]{}#&*!|>'\"%@`":
        return False
    try:
        loaded: object = yaml.safe_load(f"k: {value}")
    except yaml.YAMLError:
        return False
    return loaded == {"k": value}


def encode_scalar(value: str, style: str) -> str:
    """``value`` as a YAML scalar in ``style`` ('', "'" or '"'); a plain scalar that would not read back as this
    string is double-quoted."""
    if style == "'":
        return "'" + value.replace("'", "''") + "'"
    if style == "" and _plain_ok(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _wanted(ref: str, images: Mapping[str, str]) -> str | None:
    """The value the marker ``ref`` asks for, or None when it is not ours to set."""
    parts = ref.split(":")
    if len(parts) not in (2, 3):
        return None
    image = images.get(f"{parts[0]}:{parts[1]}")
    if image is None:
        return None
    name, tag, digest = split_image(image)
    field = parts[2] if len(parts) == 3 else None
    return {None: image, "name": name, "tag": tag, "digest": digest}.get(field)


def _rewrite(text: str, images: Mapping[str, str]) -> tuple[str, list[tuple[int, Change]]]:
    lines = text.splitlines(keepends=True)
    changes: list[tuple[int, Change]] = []
    for i, line in enumerate(lines):
        if "$imagepolicy" not in line:
            continue
        content = line.rstrip("\r\n")
        ending = line[len(content) :]
        marker = _MARKER.search(content)
        if marker is None:
            continue
        new = _wanted(marker.group("ref"), images)
        scalar = _SCALAR_LINE.match(content[: marker.start()])
        if new is None or scalar is None:
            continue
        raw = scalar.group("value")
        old = _decode(raw)
        if old is None or old == new:
            continue
        style = raw[0] if raw[0] in "'\"" else ""
        lines[i] = scalar.group("lead") + encode_scalar(new, style) + content[marker.start() :] + ending
        changes.append((i, Change(old, new, marker.group("ref"))))
    return "".join(lines), changes


def update_text(text: str, images: Mapping[str, str]) -> tuple[str, list[str]]:
    """Apply ``images`` (``"ns:policy" -> "repo:tag"``) to the markers in ``text``.

    Returns the new text and the setters (marker references) whose value changed, in file order.
    """
    new, changes = _rewrite(text, images)
    return new, [c.setter for _, c in changes]


_DOC_START = re.compile(r"^---(?:[ \t]|$)")


def _objects_by_line(text: str) -> list[ObjectId]:
    """For every line, the identity of the YAML document it belongs to (best effort)."""
    lines = text.splitlines(keepends=True)
    docs: list[list[str]] = [[]]
    owner: list[int] = []
    for line in lines:
        if _DOC_START.match(line):
            docs.append([])
        docs[-1].append(line)
        owner.append(len(docs) - 1)
    ids = []
    for doc in docs:
        try:
            body = yaml.safe_load("".join(doc))
        except yaml.YAMLError:
            body = None
        if not isinstance(body, dict):
            ids.append(ObjectId())
            continue
        meta = body.get("metadata")
        meta = meta if isinstance(meta, dict) else {}
        ids.append(
            ObjectId(
                name=str(meta.get("name") or ""),
                namespace=str(meta.get("namespace") or ""),
                api_version=str(body.get("apiVersion") or ""),
                kind=str(body.get("kind") or ""),
            )
        )
    return [ids[o] for o in owner]


def _walk(base: Path) -> list[Path]:
    found = []
    for directory, dirs, files in os.walk(base):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not (Path(directory) / d).is_symlink())
        for name in sorted(files):
            path = Path(directory) / name
            if name.endswith((".yaml", ".yml")) and not path.is_symlink():
                found.append(path)
    return found


def update_tree_result(root: Path, path: str, images: Mapping[str, str]) -> tuple[list[str], Result]:
    """``update_tree`` plus the per-file, per-object changes the commit message template is given."""
    root = root.resolve()
    base = (root / path).resolve()
    if not base.is_relative_to(root):
        raise SetterError(f"spec.update.path {path!r}: outside the repository")
    if not base.is_dir():
        raise SetterError(f"spec.update.path {path!r}: no such directory in the repository")
    changed: list[str] = []
    result = Result()
    for file in _walk(base):
        try:
            data = file.read_bytes()
        except OSError as e:
            raise SetterError(f"{file.relative_to(root)}: cannot read: {e.strerror}") from None
        if b"$imagepolicy" not in data:
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise SetterError(f"{file.relative_to(root)}: not UTF-8 text") from None
        new, changes = _rewrite(text, images)
        if not changes:
            continue
        file.write_bytes(new.encode("utf-8"))
        changed.append(file.relative_to(root).as_posix())
        owners = _objects_by_line(text)
        objects: dict[ObjectId, list[Change]] = {}
        for line_no, change in changes:
            objects.setdefault(owners[line_no], []).append(change)
        result.file_changes[file.relative_to(base).as_posix()] = objects
    return changed, result


def update_tree(root: Path, path: str, images: Mapping[str, str]) -> list[str]:
    """Rewrite markers in every ``.yaml``/``.yml`` file under ``root/path`` (hidden directories skipped).

    Returns the changed files relative to ``root`` (what a commit adds), sorted.
    """
    return update_tree_result(root, path, images)[0]
