"""A Deployment's pod template read as the local runtime needs it: its revision (hash and tracked configs, decided
by ``workloads/revision.py`` as for Kubernetes), and the environment each container gets.

Pure functions over plain dicts (the objects as ``kubectl apply`` stored them); ConfigMaps and Secrets come from
a ``ConfigSource``, so the primary can read the copies taken at promotion while the canary reads the live ones.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from canaryflow.workloads import revision

Obj = Mapping[str, Any]
#: ``(kind, name)`` → the object, ``kind`` being ``configmap`` or ``secret``; None when it does not exist.
ConfigSource = Callable[[str, str], Obj | None]

_VAR = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
_FIELD_KEY = re.compile(r"metadata\.(labels|annotations)\['([^']+)'\]")


class PodError(Exception):
    """A pod cannot be created from its template (Kubernetes: CreateContainerConfigError)."""


def template_of(deployment: Obj) -> Obj:
    template = (deployment.get("spec") or {}).get("template")
    if not isinstance(template, Mapping):
        raise PodError(f"deployment {(deployment.get('metadata') or {}).get('name')}: spec.template is missing")
    return template


def spec_hash(template: Obj) -> str:
    return revision.spec_hash(template)


def tracking(deployment: Obj, source: ConfigSource) -> revision.Tracking:
    """The tracked configs (``workloads/revision.py`` decides, as for Kubernetes); a missing one is not tracked
    (the pod reports it when it starts). ``flagger.app/config-tracking: disabled`` on the Deployment opts out
    all of them."""
    if revision.opted_out(deployment):
        return revision.Tracking((), ())
    spec = template_of(deployment).get("spec") or {}
    try:
        return revision.track(spec, lambda kind, name: source(kind.lower(), name))
    except revision.ConfigError as exc:
        raise PodError(str(exc)) from None


def tracked(deployment: Obj, source: ConfigSource) -> dict[str, Obj]:
    """The tracked configs by ``configmap/<name>`` / ``secret/<name>``."""
    refs = tracking(deployment, source).refs
    return {ref.key: obj for ref in refs if (obj := source(ref.kind, ref.name)) is not None}


def checksum(kind: str, obj: Obj) -> str:
    """Flagger's checksum of a ConfigMap's or Secret's data (``workloads/revision.py``)."""
    try:
        return revision.checksum(revision.data_of("secret" if kind == "secret" else "configmap", obj))
    except revision.ConfigError as exc:
        raise PodError(str(exc)) from None


def decoded(kind: str, obj: Obj) -> dict[str, bytes]:
    """The data of a ConfigMap (text) or Secret (base64 ``data``, plain ``stringData`` winning) as bytes."""
    out: dict[str, bytes] = {}
    encoded = "data" if kind == "secret" else "binaryData"
    for key, value in (obj.get(encoded) or {}).items():
        try:
            out[key] = base64.b64decode(str(value), validate=True)
        except binascii.Error as exc:
            raise PodError(f"{kind} {_name(obj)}: {encoded}.{key} is not base64: {exc}") from None
    plain = "stringData" if kind == "secret" else "data"
    out.update({k: str(v).encode() for k, v in (obj.get(plain) or {}).items()})
    return out


def _name(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name", "?"))


def replicas(deployment: Obj) -> int | None:
    """``spec.replicas`` when set (Kubernetes defaults it to 1; with an autoscaler it is often left out)."""
    value = (deployment.get("spec") or {}).get("replicas")
    return int(value) if value is not None else None


def min_ready_seconds(deployment: Obj) -> int:
    """``spec.minReadySeconds``: how long a new pod must be ready before it counts as available (default 0)."""
    return int((deployment.get("spec") or {}).get("minReadySeconds") or 0)


@dataclasses.dataclass(frozen=True, slots=True)
class Pod:
    """What a container's environment may refer to about its pod (the downward API)."""

    name: str
    namespace: str
    template: Obj


def container_env(container: Obj, pod: Pod, source: ConfigSource) -> dict[str, str]:
    """The container's environment: ``envFrom`` first, then ``env`` (which wins), with ``$(VAR)`` expanded."""
    env: dict[str, str] = {}
    where = f"container {container.get('name')} of {pod.namespace}/{pod.name}"
    for item in container.get("envFrom") or ():
        for kind, key in (("configmap", "configMapRef"), ("secret", "secretRef")):
            ref = item.get(key)
            if ref is None:
                continue
            obj = _config(source, kind, ref, pod.namespace, where)
            for name, value in (decoded(kind, obj) if obj is not None else {}).items():
                env[f"{item.get('prefix', '')}{name}"] = value.decode(errors="replace")
    for item in container.get("env") or ():
        name = str(item.get("name"))
        value_from = item.get("valueFrom")
        env[name] = (
            expand(str(item.get("value", "")), env)
            if value_from is None
            else _value_from(value_from, container, pod, source, f"env {name} of {where}")
        )
    return env


def _config(source: ConfigSource, kind: str, ref: Obj, namespace: str, where: str) -> Obj | None:
    obj = source(kind, str(ref.get("name")))
    if obj is None and not ref.get("optional"):
        raise PodError(f"{kind} {namespace}/{ref.get('name')} not found ({where})")
    return obj


def _value_from(value_from: Obj, container: Obj, pod: Pod, source: ConfigSource, where: str) -> str:
    for kind, key in (("configmap", "configMapKeyRef"), ("secret", "secretKeyRef")):
        ref = value_from.get(key)
        if ref is None:
            continue
        obj = _config(source, kind, ref, pod.namespace, where)
        data = decoded(kind, obj) if obj is not None else {}
        if ref.get("key") not in data:
            if obj is None or ref.get("optional"):
                return ""
            raise PodError(f"{kind} {pod.namespace}/{ref.get('name')} has no key {ref.get('key')!r} ({where})")
        return data[ref["key"]].decode(errors="replace")
    if "fieldRef" in value_from:
        return _field(str(value_from["fieldRef"].get("fieldPath")), pod, where)
    if "resourceFieldRef" in value_from:
        resource = str(value_from["resourceFieldRef"].get("resource", ""))
        group, _, name = resource.partition(".")
        return str(((container.get("resources") or {}).get(group) or {}).get(name, "0"))
    raise PodError(f"unsupported valueFrom {sorted(value_from)} ({where})")


def _field(path: str, pod: Pod, where: str) -> str:
    spec = pod.template.get("spec") or {}
    simple = {
        "metadata.name": pod.name,
        "metadata.namespace": pod.namespace,
        "metadata.uid": pod.name,
        "spec.nodeName": "localhost",
        "spec.serviceAccountName": str(spec.get("serviceAccountName") or "default"),
        # Every process listens on loopback: the pod's and the node's address are both 127.0.0.1.
        "status.podIP": "127.0.0.1",
        "status.podIPs": "127.0.0.1",
        "status.hostIP": "127.0.0.1",
        "status.hostIPs": "127.0.0.1",
    }
    if path in simple:
        return simple[path]
    match = _FIELD_KEY.fullmatch(path)
    if match:
        values = (pod.template.get("metadata") or {}).get(match[1]) or {}
        return str(values.get(match[2], ""))
    raise PodError(f"unsupported fieldRef {path!r} ({where})")


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: defined variables are replaced, ``$$`` is a ``$``, the rest is kept."""

    def sub(match: re.Match[str]) -> str:
        if match[0] == "$$":
            return "$"
        return env.get(match[1], match[0])

    return _VAR.sub(sub, text)


def expand_all(words: Iterable[object], env: Mapping[str, str]) -> list[str]:
    return [expand(str(w), env) for w in words]


def containers(template: Obj) -> Iterator[Obj]:
    yield from (template.get("spec") or {}).get("containers") or ()
