"""A pod's ConfigMap and Secret volumes as files on the host, and how the process finds them.

Each volume the application container mounts becomes a directory ``volumes/<namespace>/<pod>/<volume>/`` under
the state directory, written before the process starts, as the kubelet does for the pod:

- ``configMap`` and ``secret`` volumes: one file per key (a Secret's ``data`` decoded), or only the keys in
  ``items`` at their ``path``; file modes from ``items[].mode``, else ``defaultMode``, else 0644. A missing
  ConfigMap or Secret, or a missing key in ``items``, is an error unless ``optional`` (then the directory is
  empty, or the key left out).
- ``projected`` volumes of ``configMap`` and ``secret`` sources: all sources in one directory.
- ``emptyDir``: an empty directory.

Any other volume type a container mounts cannot run here and is an error naming it (never a silent empty
directory). A pod's directory is its own (pod names carry the revision) and goes when the replica stops; a change
to a tracked ConfigMap or Secret changes the revision, so the workload rolls to new pods reading the new files,
as Flagger's config tracking does in Kubernetes. An untracked one (``flagger.app/config-tracking: disabled``) is
read once, when a pod starts: the kubelet's later in-place update of mounted files is not reproduced.

How the process finds the files: a container cannot see the host's paths, and a host process cannot see a
container's, so every ``volumeMounts[].mountPath`` is **rewritten** to its host directory in the container's
command, arguments, environment values and exec probe commands (``--config=/etc/app/app.yaml`` becomes
``--config=<state>/volumes/prod/<pod>/config/app.yaml``; with ``subPath``, the mount path is the one file or
directory). A rewrite was chosen over an environment variable alone because the programs the image catalog runs
take their paths from flags and environment, as in Kubernetes manifests, so manifests run unchanged; the map is
also handed over as ``CANARYFLOW_MOUNTS`` (JSON, mount path → host path) for a program with a path built in.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from canaryflow.local import podspec
from canaryflow.local.podspec import ConfigSource, PodError

Obj = Mapping[str, Any]
MOUNTS_ENV = "CANARYFLOW_MOUNTS"
DEFAULT_MODE = 0o644


def mount(template: Obj, container: Obj, source: ConfigSource, pod_dir: Path) -> dict[str, str]:
    """Write the volumes ``container`` mounts under ``pod_dir``; ``{mountPath: host path}``.

    Raises ``PodError`` for a missing ConfigMap, Secret or key (it may be applied later) and ``ValueError`` for
    a volume that cannot exist here.
    """
    volumes = {str(v.get("name")): v for v in (template.get("spec") or {}).get("volumes") or ()}
    remove(pod_dir)  # what a previous run left under this pod's name
    mounts: dict[str, str] = {}
    for item in container.get("volumeMounts") or ():
        name, path = str(item.get("name")), str(item.get("mountPath") or "")
        volume = volumes.get(name)
        if volume is None:
            raise ValueError(f"container {container.get('name')} mounts volume {name!r}, which the pod does not have")
        directory = pod_dir / name
        if not directory.exists():
            _write(volume, source, directory)
        host = directory / _relative(str(item.get("subPath") or ""), f"volumeMounts {name} subPath")
        mounts[path] = str(host)
    return mounts


def remove(pod_dir: Path) -> None:
    shutil.rmtree(pod_dir, ignore_errors=True)


def rewriter(mounts: Mapping[str, str]) -> Callable[[str], str]:
    """Replace each mount path (a whole path or its start, never part of a longer name) by its host path."""
    if not mounts:
        return lambda text: text
    paths = sorted(mounts, key=len, reverse=True)
    pattern = re.compile(r"(?<![\w.\-/])(" + "|".join(re.escape(p.rstrip("/")) for p in paths) + r")(?![\w.\-])")
    hosts = {p.rstrip("/"): host for p, host in mounts.items()}
    return lambda text: pattern.sub(lambda m: hosts[m[1]], text)


def env(mounts: Mapping[str, str]) -> dict[str, str]:
    return {MOUNTS_ENV: json.dumps(mounts, sort_keys=True)} if mounts else {}


def with_probe_paths(container: Obj, rewrite: Callable[[str], str]) -> dict[str, Any]:
    """``container`` with its exec probes' commands rewritten."""
    out = dict(container)
    for field in ("readinessProbe", "livenessProbe"):
        probe = container.get(field)
        if probe and "exec" in probe:
            command = [rewrite(str(word)) for word in probe["exec"].get("command") or ()]
            out[field] = {**probe, "exec": {**probe["exec"], "command": command}}
    return out


def _write(volume: Obj, source: ConfigSource, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    name = volume.get("name")
    if "emptyDir" in volume:
        return
    if "configMap" in volume:
        _project(source, "configmap", volume["configMap"], "name", directory, _mode(volume["configMap"]))
    elif "secret" in volume:
        _project(source, "secret", volume["secret"], "secretName", directory, _mode(volume["secret"]))
    elif "projected" in volume:
        projected = volume["projected"] or {}
        for part in projected.get("sources") or ():
            for kind, key in (("configMap", "configmap"), ("secret", "secret")):
                if kind in part:
                    _project(source, key, part[kind], "name", directory, _mode(projected))
            if not {"configMap", "secret"} & set(part):
                raise ValueError(f"volume {name}: only configMap and secret projected sources mount locally")
    else:
        kinds = sorted(set(volume) - {"name"})
        raise ValueError(
            f"volume {name} ({', '.join(kinds) or 'no type'}) cannot be mounted locally: configMap, secret, "
            f"projected (configMap and secret) and emptyDir volumes can"
        )


def _project(source: ConfigSource, kind: str, ref: Obj, name_key: str, directory: Path, mode: int) -> None:
    name = str(ref.get(name_key))
    obj = source(kind, name)
    if obj is None:
        if ref.get("optional"):
            return
        raise PodError(f"{kind} {name} not found (mounted as a volume)")
    data = podspec.decoded(kind, obj)
    for key, path, file_mode in _items(ref, data, kind, name, mode):
        target = directory / _relative(path, f"{kind} {name} item {key}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data[key])
        target.chmod(file_mode)


def _items(ref: Obj, data: Mapping[str, bytes], kind: str, name: str, mode: int) -> Iterable[tuple[str, str, int]]:
    items = ref.get("items")
    if not items:
        return [(key, key, mode) for key in sorted(data)]
    out = []
    for item in items:
        key = str(item.get("key"))
        if key not in data:
            if ref.get("optional"):
                continue
            raise PodError(f"{kind} {name} has no key {key!r} (mounted as a volume)")
        out.append((key, str(item.get("path") or key), int(item.get("mode", mode))))
    return out


def _mode(spec: Obj) -> int:
    return int(spec.get("defaultMode", DEFAULT_MODE))


def _relative(path: str, where: str) -> PurePosixPath:
    """A path inside a volume: relative, without ``..`` (the API server rejects the others)."""
    relative = PurePosixPath(path)
    if relative.is_absolute() or ".." in relative.parts:
        raise ValueError(f"{where}: {path!r} must be a relative path without '..'")
    return relative
