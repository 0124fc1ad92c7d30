"""The local image catalog: which host command runs a container of a given image.

A machine without a container runtime cannot pull or run images, so each image the local runtime supports is
an entry here, keyed by its repository path without the registry (``stefanprodan/podinfo`` matches
``ghcr.io/stefanprodan/podinfo:6.1.0``, ``docker.io/stefanprodan/podinfo@sha256:…`` and a local mirror's
``127.0.0.1:5000/stefanprodan/podinfo:6.1.1``). An entry turns the container's command line into the command of
a built-in program, listening on the host port the runtime allocated. Istio's sidecar and init containers are
the local mesh's job: ``is_mesh_provided`` says so, and they are skipped. Any other image is an ``ImageError``
naming the image and the images that can run: never a silent fallback.

Entries may bring tools their image contains (podinfo's image has ``podcli``, which the seed's exec probes
call): ``install_tools`` writes them as shims into a bin directory that goes first on the probes' ``PATH``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["CATALOG", "Entry", "HostCommand", "ImageError", "ImageRef", "install_tools", "is_mesh_provided", "resolve"]

Container = Mapping[str, Any]

#: Containers the local mesh (Envoy as the HTTP proxy) stands in for, by name and by image repository.
MESH_CONTAINERS = frozenset({"istio-proxy", "istio-init", "istio-validation"})
MESH_IMAGES = frozenset({"istio/proxyv2", "istio/proxy_init"})


class ImageError(Exception):
    """A container whose image (or command line) cannot run on this host."""


@dataclasses.dataclass(frozen=True, slots=True)
class ImageRef:
    """A parsed image reference: ``[registry/]repository[:tag][@digest]``."""

    registry: str
    repository: str
    tag: str
    digest: str

    @classmethod
    def parse(cls, text: str) -> ImageRef:
        rest, _, digest = text.strip().partition("@")
        slash = rest.rfind("/")
        colon = rest.rfind(":")
        # A colon after the last slash separates the tag; one before it belongs to a registry's port.
        name, tag = (rest[:colon], rest[colon + 1 :]) if colon > slash else (rest, "")
        first, sep, remainder = name.partition("/")
        if sep and ("." in first or ":" in first or first == "localhost"):
            registry, repository = first, remainder
        else:
            registry, repository = "docker.io", name
        if registry == "docker.io" and "/" not in repository:
            repository = f"library/{repository}"
        if not repository:
            raise ImageError(f"{text!r} is not an image reference")
        return cls(registry, repository, tag or ("" if digest else "latest"), digest)

    @property
    def version(self) -> str:
        """What the image's program reports as its version: the tag, else the digest's start."""
        return self.tag or self.digest.partition(":")[2][:12] or "latest"


@dataclasses.dataclass(frozen=True, slots=True)
class HostCommand:
    """How one container runs on the host."""

    argv: tuple[str, ...]
    env: Mapping[str, str]  # the image's own environment; the container's env overrides it
    container_port: int  # the port the container listens on in Kubernetes, now served on the host port
    version: str


Build = Callable[[ImageRef, Container, int, Mapping[str, str]], HostCommand]


@dataclasses.dataclass(frozen=True, slots=True)
class Entry:
    """One runnable image: builds the host command from (image, container, host port, process env)."""

    build: Build
    tools: Mapping[str, str] = dataclasses.field(default_factory=dict)  # command name → Python module


def _command_line(container: Container, program: str) -> list[str]:
    """The container's flags, with the image's program (``./podinfo``, ``podinfo``) taken off the front."""
    words = [str(w) for w in (*(container.get("command") or ()), *(container.get("args") or ()))]
    if words and not words[0].startswith("-"):
        if Path(words[0]).name != program:
            raise ImageError(
                f"container {container.get('name')!r} runs {shlex.join(words)!r}; locally its image runs only "
                f"{program} with flags"
            )
        words = words[1:]
    return words


def _replace_flag(words: Sequence[str], names: Sequence[str], value: str) -> tuple[list[str], str | None]:
    """``words`` with every ``name=V`` / ``name V`` set to ``value`` (appended if absent), and the old V."""
    out: list[str] = []
    old: str | None = None
    skip = False
    for i, word in enumerate(words):
        if skip:
            skip = False
            continue
        flag, eq, given = word.partition("=")
        if flag in names:
            if eq:
                old = given
            elif i + 1 < len(words):
                old, skip = words[i + 1], True
            continue
        out.append(word)
    return [*out, f"{names[0]}={value}"], old


def _container_port(old_flag: str | None, container: Container, default: int) -> int:
    if old_flag is not None and old_flag.isdigit():
        return int(old_flag)
    ports = container.get("ports") or ()
    return int(ports[0]["containerPort"]) if ports else default


def _podinfo(image: ImageRef, container: Container, port: int, env: Mapping[str, str]) -> HostCommand:
    flags, old = _replace_flag(_command_line(container, "podinfo"), ("--port",), str(port))
    argv = (sys.executable, "-m", "canaryflow.demoapp", *flags)
    return HostCommand(argv, {"PODINFO_VERSION": image.version}, _container_port(old, container, 9898), image.version)


def _loadtester(image: ImageRef, container: Container, port: int, env: Mapping[str, str]) -> HostCommand:
    flags, old = _replace_flag(_command_line(container, "loadtester"), ("-port", "--port"), str(port))
    proxy = env.get("http_proxy") or env.get("HTTP_PROXY")
    if proxy:  # the mesh: tasks reach services by their Kubernetes names through it (hey needs -x)
        flags, _ = _replace_flag(flags, ("--proxy",), proxy)
    argv = (sys.executable, "-m", "canaryflow.loadtester", *flags)
    return HostCommand(argv, {}, _container_port(old, container, 8080), image.version)


#: Runnable images by repository path (registry left out). Add an image by adding an entry.
CATALOG: dict[str, Entry] = {
    "stefanprodan/podinfo": Entry(_podinfo, tools={"podcli": "canaryflow.demoapp.podcli"}),
    "fluxcd/flagger-loadtester": Entry(_loadtester),
    "weaveworks/flagger-loadtester": Entry(_loadtester),
}


def is_mesh_provided(container: Container) -> bool:
    """Istio's sidecar and init containers: the local mesh does their work, so they are not run."""
    if container.get("name") in MESH_CONTAINERS:
        return True
    image = container.get("image")
    return isinstance(image, str) and ImageRef.parse(image).repository in MESH_IMAGES


def resolve(
    container: Container, port: int, env: Mapping[str, str], catalog: Mapping[str, Entry] = CATALOG
) -> HostCommand:
    """The host command running ``container`` on ``port``; ``ImageError`` if no entry can run its image."""
    image = container.get("image")
    if not isinstance(image, str) or not image:
        raise ImageError(f"container {container.get('name')!r} has no image")
    ref = ImageRef.parse(image)
    entry = catalog.get(ref.repository)
    if entry is None:
        known = ", ".join(sorted(catalog))
        raise ImageError(
            f"image {image} cannot run locally: the local image catalog runs {known} "
            f"(and Istio's istio-proxy/istio-init are provided by the local mesh)"
        )
    return entry.build(ref, container, port, env)


def install_tools(bin_dir: Path, catalog: Mapping[str, Entry] = CATALOG) -> Path:
    """Write each entry's tools as executables in ``bin_dir`` (run with this interpreter); returns ``bin_dir``."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for entry in catalog.values():
        for name, module in entry.tools.items():
            if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
                raise ValueError(f"tool name {name!r} is not a file name")
            script = f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m {shlex.quote(module)} "$@"\n'
            path = bin_dir / name
            tmp = path.with_name(f".{name}.tmp")
            tmp.write_text(script)
            tmp.chmod(0o755)
            os.replace(tmp, path)  # a probe running the old shim never sees a half-written file
    return bin_dir
