"""Set one Deployment's image, as ``fluxctl release --workload=NS:deployment/NAME --update-image=IMAGE:TAG`` does.

In a repository checkout, the value edited is where the image is set for the build Flux applies: the ``images:``
entry of a ``kustomization.yaml`` beside or above the Deployment's manifest whose ``name`` is the container's
image name (its ``newTag``; its ``newName`` too when the name changes), else the container's ``image:`` in the
manifest. The file is edited as text at the scalar's position (PyYAML's composer gives it), so indentation,
comments, quoting and line endings stay as they were and the diff is that one line.

Which containers are released is decided as fluxctl does, by image name: every container whose image has the
new image's name (``podinfo`` and ``docker.io/library/podinfo`` are one name). A different name is refused
unless forced, and then only for a Deployment with a single container.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from canaryflow.gitops.image.setters import encode_scalar, split_image

__all__ = ["Edit", "NameMismatch", "ReleaseError", "canonical", "set_in_object", "set_in_tree"]

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


class ReleaseError(Exception):
    """The image cannot be set; the message says why, for the user."""


class NameMismatch(ReleaseError):
    """No container runs an image of that name (forcing replaces the single container's image)."""


@dataclasses.dataclass(frozen=True)
class Edit:
    """One value changed: in ``file`` (relative to the checkout; empty for an object), at ``field``."""

    file: str
    field: str
    old: str
    new: str


def canonical(name: str) -> str:
    """An image name as registries resolve it: ``podinfo`` is ``docker.io/library/podinfo``."""
    first, _, rest = name.partition("/")
    if not rest:
        return f"docker.io/library/{name}"
    if "." not in first and ":" not in first and first != "localhost":
        return f"docker.io/{name}"
    return name


def requested(image: str) -> tuple[str, str]:
    """(name, tag) of ``IMAGE:TAG``; anything else is refused."""
    name, tag, digest = split_image(image)
    if not name or not tag or digest:
        raise ReleaseError(f"{image!r}: expected IMAGE:TAG, e.g. ghcr.io/stefanprodan/podinfo:6.1.1")
    return name, tag


def choose(running: Sequence[tuple[str, str]], image: str, force: bool) -> list[int]:
    """Which of the (container, image) pairs take ``image``: those running an image of its name."""
    name = canonical(requested(image)[0])
    chosen = [i for i, (_, current) in enumerate(running) if canonical(split_image(current)[0]) == name]
    if chosen:
        return chosen
    images = ", ".join(f"{container}: {current}" for container, current in running) or "no containers"
    if force and len(running) == 1:
        return [0]
    if force:
        raise ReleaseError(f"no container runs an image named {requested(image)[0]} ({images}); with several "
                           "containers, use the name of the image the container to release runs")  # fmt: skip
    raise NameMismatch(f"no container runs an image named {requested(image)[0]} ({images})")


def set_in_object(deployment: dict[str, Any], image: str, force: bool = False) -> list[Edit]:
    """Set ``image`` in a Deployment object (its containers, then init containers) in place."""
    spec = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
    containers = [c for key in ("containers", "initContainers") for c in spec.get(key) or []]
    edits = []
    for i in choose([(str(c.get("name")), str(c.get("image"))) for c in containers], image, force):
        if containers[i].get("image") != image:
            edits.append(Edit("", f"containers[{containers[i].get('name')}].image", containers[i]["image"], image))
            containers[i]["image"] = image
    return edits


@dataclasses.dataclass
class _File:
    path: Path
    text: str
    changes: list[tuple[int, int, str]] = dataclasses.field(default_factory=list)

    def replace(self, node: yaml.Node, value: str) -> None:
        raw = self.text[node.start_mark.index : node.end_mark.index]
        style = raw[:1] if raw[:1] in ("'", '"') else ""
        self.changes.append((node.start_mark.index, node.end_mark.index, encode_scalar(value, style)))

    def add_after(self, key: yaml.Node, value: yaml.Node, field: str, new: str) -> None:
        """Insert ``field: new`` as the line after ``key: value``, at ``key``'s indentation."""
        end = self.text.find("\n", value.end_mark.index)
        end = len(self.text) if end < 0 else end - (self.text[end - 1 : end] == "\r")
        newline = "\r\n" if "\r\n" in self.text else "\n"
        line = f"{newline}{' ' * key.start_mark.column}{field}: {encode_scalar(new, '')}"
        self.changes.append((end, end, line))

    def write(self) -> None:
        text = self.text
        for start, end, value in sorted(set(self.changes), reverse=True):
            text = text[:start] + value + text[end:]
        self.path.write_bytes(text.encode())


def set_in_tree(root: Path, path: str, namespace: str, name: str, image: str, force: bool = False) -> list[Edit]:
    """Set ``image`` for Deployment ``namespace/name`` in the files under ``root/path``; the files are written
    only when a value changes. Returns the changes (none: the Deployment already runs ``image``)."""
    root = root.resolve()
    base = (root / path).resolve()
    if not base.is_relative_to(root) or not base.is_dir():
        raise ReleaseError(f"path {path!r}: no such directory in the repository")
    new_name, new_tag = requested(image)
    manifest, document = _deployment(root, base, namespace, name)
    entries = list(_image_entries(manifest.path, base))
    containers = []
    for container in _containers(document):
        written = _scalar(_get(container, "image"))
        found = next(((f, e) for f, e in entries if _scalar(_get(e, "name")) == split_image(written)[0]), None)
        containers.append((container, written, found))
    effective = [(_scalar(_get(c, "name")), _effective(w, found[1] if found else None)) for c, w, found in containers]
    edits: list[Edit] = []
    files: dict[Path, _File] = {}
    for i in choose(effective, image, force):
        (container, _, found), (container_name, old) = containers[i], effective[i]
        if old == image:
            continue
        if found is None:
            node = _get(container, "image")
            assert node is not None
            files.setdefault(manifest.path, manifest).replace(node, image)
            edits.append(Edit(_rel(manifest.path, root), f"containers[{container_name}].image", old, image))
            continue
        kustomization, entry = found
        if any(e.field.startswith(f"images[{_scalar(_get(entry, 'name'))}]") for e in edits):
            continue  # one entry sets the image of several containers
        files.setdefault(kustomization.path, kustomization)
        edits.append(_set_entry(kustomization, entry, new_name, new_tag, _rel(kustomization.path, root), old))
    for changed in files.values():
        changed.write()
    return edits


def _set_entry(file: _File, entry: yaml.Node, name: str, tag: str, rel: str, old: str) -> Edit:
    label = f"images[{_scalar(_get(entry, 'name'))}]"
    if _get(entry, "digest") is not None:
        raise ReleaseError(f"{rel}: {label} pins a digest; change it by hand")
    if not isinstance(entry, yaml.MappingNode) or entry.flow_style:
        raise ReleaseError(f"{rel}: {label} is written in flow style; change it by hand")
    fields = ["newTag"]
    current_name = _scalar(_get(entry, "newName")) or _scalar(_get(entry, "name"))
    if current_name != name:
        fields.insert(0, "newName")
    for field, value in zip(fields, (name, tag)[-len(fields) :], strict=True):
        node = _get(entry, field)
        if node is not None:
            file.replace(node, value)
            continue
        key = next(k for k, v in entry.value if k.value == "name")
        file.add_after(key, _get(entry, "name") or key, field, value)
    return Edit(rel, f"{label}.{'/'.join(fields)}", old, f"{name}:{tag}")


def _effective(written: str, entry: yaml.Node | None) -> str:
    """The image a kustomize ``images:`` entry makes of the one written in the manifest."""
    name, tag, digest = split_image(written)
    if entry is None:
        return written
    name = _scalar(_get(entry, "newName")) or name
    if _get(entry, "digest") is not None:
        return f"{name}@{_scalar(_get(entry, 'digest'))}"
    tag = _scalar(_get(entry, "newTag")) or tag
    return f"{name}:{tag}" if tag else f"{name}@{digest}" if digest else name


def _deployment(root: Path, base: Path, namespace: str, name: str) -> tuple[_File, yaml.Node]:
    found: list[tuple[_File, yaml.Node, str]] = []
    for path in _yaml_files(base):
        text = _read(path)
        if text is None or "Deployment" not in text or name not in text:
            continue
        try:
            documents = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
        except yaml.YAMLError:
            continue
        for document in documents:
            meta = _get(document, "metadata")
            if _scalar(_get(document, "kind")) == "Deployment" and _scalar(_get(meta, "name")) == name:
                found.append((_File(path, text), document, _scalar(_get(meta, "namespace"))))
    exact = [f for f in found if f[2] == namespace] or [f for f in found if not f[2]]
    if not exact:
        raise ReleaseError(f"no manifest of Deployment {namespace}/{name} under {_rel(base, root) or './'}")
    if len(exact) > 1:
        raise ReleaseError(f"Deployment {namespace}/{name} is in {', '.join(_rel(f[0].path, root) for f in exact)}")
    return exact[0][0], exact[0][1]


def _image_entries(manifest: Path, base: Path) -> Iterator[tuple[_File, yaml.Node]]:
    """The ``images:`` entries of the kustomization files from the manifest's directory up to ``base``."""
    directory = manifest.parent
    while directory.is_relative_to(base):
        for candidate in KUSTOMIZATION_FILES:
            path = directory / candidate
            text = _read(path) if path.is_file() else None
            if text is not None:
                file = _File(path, text)
                try:
                    document = yaml.compose(text, Loader=yaml.SafeLoader)
                except yaml.YAMLError:
                    break
                images = _get(document, "images")
                for entry in images.value if isinstance(images, yaml.SequenceNode) else []:
                    yield file, entry
                break
        directory = directory.parent


def _containers(document: yaml.Node) -> list[yaml.Node]:
    spec = _get(_get(_get(document, "spec"), "template"), "spec")
    found = []
    for key in ("containers", "initContainers"):
        listed = _get(spec, key)
        if isinstance(listed, yaml.SequenceNode):
            found += [c for c in listed.value if isinstance(_get(c, "image"), yaml.ScalarNode)]
    return found


def _get(node: yaml.Node | None, key: str) -> yaml.Node | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    return next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == key), None)


def _scalar(node: yaml.Node | None) -> str:
    return str(node.value) if isinstance(node, yaml.ScalarNode) else ""


def _yaml_files(base: Path) -> Iterator[Path]:
    for directory, dirs, files in os.walk(base):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not (Path(directory) / d).is_symlink())
        for name in sorted(files):
            path = Path(directory) / name
            if name.endswith((".yaml", ".yml")) and not path.is_symlink():
                yield path


def _read(path: Path) -> str | None:
    """The file's text, None when it is not UTF-8 (never rewritten, so never corrupted)."""
    try:
        return path.read_bytes().decode()
    except UnicodeDecodeError:
        return None


def _rel(path: Path, root: Path) -> str:
    relative = path.relative_to(root).as_posix()
    return "" if relative == "." else relative
