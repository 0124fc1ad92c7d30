"""Build a Kustomization's path into plain objects, as kustomize-controller does.

A directory with a ``kustomization.yaml`` (or ``.yml``, or ``Kustomization``) is built by ``kubectl kustomize``,
so images, patches and generators mean exactly what they mean to kustomize. A directory without one gets what
Flux generates: every YAML file below it, except that a subdirectory with its own kustomization file is built as
a whole and not descended into (the seed's ``./apps`` is such a tree). Every document of a plain file must be a
Kubernetes object; a file that is not valid YAML, or a document without ``apiVersion``/``kind``, fails the whole
build with ``FILE:LINE`` relative to the source root. Nothing here writes to the artifact.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from canaryflow.api import loader
from canaryflow.gitops.target.base import ObjRef

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
#: kustomize on a large tree takes a second or two; a build that takes this long is stuck (a remote base).
KUSTOMIZE_TIMEOUT = 120.0


class KubeYamlLoader(yaml.CSafeLoader):
    """libyaml, read as the API server reads YAML: dates stay text, ``1e3`` is a number."""


KubeYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.CSafeLoader.yaml_implicit_resolvers.items()
}
KubeYamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9]+[eE][-+]?[0-9]+$"), list("-+0123456789")
)


class BuildError(Exception):
    """The revision cannot be built; the message names the file (and line when known)."""


class ArtifactError(BuildError):
    """The path is not in the artifact (missing, or outside it): Flux's ``ArtifactFailed``."""


def resolve(root: Path, path: str) -> Path:
    """``path`` inside ``root``; ``../`` or a symlink that leaves the artifact is refused."""
    base = root.resolve()
    target = (base / path.lstrip("/")).resolve()
    if target != base and base not in target.parents:
        raise ArtifactError(f"kustomization path '{path}' is outside the source artifact")
    if not target.is_dir():
        raise ArtifactError(f"kustomization path not found: '{path}' is not a directory in the source artifact")
    return target


def build(root: Path, path: str) -> list[dict[str, Any]]:
    """The objects at ``path`` of the artifact rooted at ``root``, in the order they were found."""
    directory = resolve(root, path)
    if _has_kustomization(directory):
        objects = kustomize(directory, root)
        return _unique(root, [(obj, _where(root, directory)) for obj in objects])
    return _unique(root.resolve(), _generated(root.resolve(), directory))


def kustomize(directory: Path, root: Path) -> list[dict[str, Any]]:
    """``kubectl kustomize DIRECTORY``; its error (with paths made relative to ``root``) in the BuildError."""
    where = _where(root, directory)
    try:
        built = subprocess.run(
            ["kubectl", "kustomize", str(directory)], capture_output=True, text=True, timeout=KUSTOMIZE_TIMEOUT
        )
    except FileNotFoundError as exc:
        raise BuildError("kubectl is needed to build kustomizations (kubectl kustomize); it is not on PATH") from exc
    except subprocess.TimeoutExpired as exc:
        raise BuildError(f"{where}: kustomize build timed out after {KUSTOMIZE_TIMEOUT:.0f}s") from exc
    if built.returncode != 0:
        stderr = built.stderr.replace(f"{root.resolve()}/", "").strip()
        raise BuildError(f"{where}: kustomize build failed: {stderr}")
    try:
        documents = list(yaml.load_all(built.stdout, Loader=KubeYamlLoader))
    except yaml.YAMLError as exc:  # kustomize wrote something it cannot read back: still the user's input
        raise BuildError(f"{where}: kustomize build produced unreadable YAML: {exc}") from exc
    return [d for d in documents if d is not None]


def _has_kustomization(directory: Path) -> bool:
    return any((directory / name).is_file() for name in KUSTOMIZATION_FILES)


def _where(root: Path, path: Path) -> str:
    relative = os.path.relpath(path, root.resolve())
    return "./" if relative == "." else relative


def _generated(root: Path, directory: Path) -> list[tuple[dict[str, Any], str]]:
    """What Flux's generated kustomization.yaml holds: plain files read here (with lines), kustomize
    directories built whole."""
    found: list[tuple[dict[str, Any], str]] = []
    for entry in sorted(os.scandir(directory), key=lambda e: e.name):
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            if entry.name.startswith("."):
                continue
            if _has_kustomization(path):
                found.extend((obj, _where(root, path)) for obj in kustomize(path, root))
            else:
                found.extend(_generated(root, path))
        elif entry.name.endswith(loader.YAML_SUFFIXES) and entry.is_file():
            found.extend(_manifests(root, path))
    return found


def _manifests(root: Path, path: Path) -> list[tuple[dict[str, Any], str]]:
    relative = _where(root, path)
    fast = _fast(path)
    if fast is not None:
        return [(body, relative) for body in fast]
    loaded = loader.load_file(path)
    if loaded.problems:
        problem = loaded.problems[0]
        at = f"{relative}:{problem.line}" if problem.line else relative
        raise BuildError(f"failed to decode Kubernetes YAML from {at}: {problem.message}")
    out: list[tuple[dict[str, Any], str]] = []
    for document in loaded.documents:
        where = f"{relative}:{document.line}"
        body = document.body
        if not isinstance(body, dict):
            raise BuildError(f"failed to decode Kubernetes YAML from {where}: not a Kubernetes object")
        missing = [f for f in ("apiVersion", "kind") if not isinstance(body.get(f), str) or not body[f]]
        if missing:
            raise BuildError(f"failed to decode Kubernetes YAML from {where}: missing {' and '.join(missing)}")
        items = body.get("items")
        if body["kind"].endswith("List") and isinstance(items, list):  # a v1 List: its items are the objects
            out.extend(_manifests_of_list(document, relative))
            continue
        name = (body.get("metadata") or {}).get("name") if isinstance(body.get("metadata"), dict) else None
        if not isinstance(name, str) or not name:
            raise BuildError(f"{where}: {body['kind']}: metadata.name is required")
        out.append((body, where))
    return out


def _fast(path: Path) -> list[dict[str, Any]] | None:
    """The file's objects read by libyaml (ten times faster than the line-keeping reader), or None when
    anything is unusual (bad YAML, custom tags, a non-object, a List, a non-text key): the careful reader
    then reads it again and says where the problem is."""
    try:
        documents = list(yaml.load_all(path.read_bytes().decode("utf-8-sig"), Loader=KubeYamlLoader))
    except (yaml.YAMLError, UnicodeDecodeError, OSError, RecursionError, ValueError, TypeError):
        return None
    out = []
    for body in documents:
        if body is None:
            continue
        if not isinstance(body, dict) or not _plain(body):
            return None
        metadata = body.get("metadata")
        if (
            not isinstance(body.get("apiVersion"), str)
            or not isinstance(body.get("kind"), str)
            or str(body["kind"]).endswith("List")
            or not isinstance(metadata, dict)
            or not isinstance(metadata.get("name"), str)
        ):
            return None
        out.append(body)
    return out


def _plain(value: Any) -> bool:
    """JSON-like all the way down: text keys, no dates or bytes (what the careful reader converts)."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, str | int | float | bool)


def _manifests_of_list(document: loader.Document, relative: str) -> list[tuple[dict[str, Any], str]]:
    out = []
    for index, _ in enumerate(document.body["items"]):
        item = document.part(("items", index))
        where = f"{relative}:{item.line}"
        if not isinstance(item.body, dict) or not item.body.get("apiVersion") or not item.body.get("kind"):
            raise BuildError(f"failed to decode Kubernetes YAML from {where}: list item is not a Kubernetes object")
        out.append((item.body, where))
    return out


def _unique(root: Path, found: list[tuple[dict[str, Any], str]]) -> list[dict[str, Any]]:
    """kustomize refuses two objects with one id; so does the generated build, naming both places."""
    seen: dict[str, str] = {}
    for obj, where in found:
        ref = ObjRef.of(obj)
        if ref.id in seen:
            first, second = _line(root, seen[ref.id], ref), _line(root, where, ref)
            raise BuildError(f"{second}: {ref} is also defined in {first}; an object may be defined once")
        seen[ref.id] = where
    return [obj for obj, _ in found]


def _line(root: Path, where: str, ref: ObjRef) -> str:
    """``FILE:LINE`` of ``ref`` in a plain file read by the fast reader (which keeps no lines)."""
    path = root / where
    if not path.is_file():
        return where
    for document in loader.load_file(path).documents:
        if isinstance(document.body, dict) and ObjRef.of(document.body).id == ref.id:
            return f"{where}:{document.line}"
    return where
