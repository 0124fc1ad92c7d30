"""What a new revision of a workload is, decided once for both runtimes: the pod template's hash and the
checksums of the ConfigMaps and Secrets it reads (Flagger's config tracking).

A ConfigMap or Secret the pod template references (volumes, projected volumes, ``env`` and ``envFrom`` of
containers and init containers) is *tracked*, unless annotated ``flagger.app/config-tracking: disabled`` or a
Secret of a type other than Opaque, basic-auth, ssh-auth and TLS (registry credentials belong to service
accounts). The checksum is Flagger's (the first 8 bytes of the SHA-256 of the data as Go's JSON encoder writes
it), so the ``trackedConfigs`` of a canary Flagger managed stay valid and a migration does not start a run.

Pure functions over plain dicts: the local runtime (``local/workloads.py``) and the Kubernetes one
(``kube/workloads.py``, ``kube/render``) both call them, so they agree on when a canary run starts.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal

from canaryflow.engine.effects import Revision

ConfigKind = Literal["configmap", "secret"]
KINDS: dict[ConfigKind, str] = {"configmap": "ConfigMap", "secret": "Secret"}
TRACKING_ANNOTATION = "flagger.app/config-tracking"
TRACKED_SECRET_TYPES = ("Opaque", "kubernetes.io/basic-auth", "kubernetes.io/ssh-auth", "kubernetes.io/tls")
#: Finds a ConfigMap or Secret manifest by kind (``ConfigMap``/``Secret``) and name, in the canary's namespace.
Finder = Callable[[str, str], Mapping[str, Any] | None]


class ConfigError(ValueError):
    """A tracked ConfigMap or Secret whose data cannot be read (a Secret value that is not base64)."""


def spec_hash(template: Mapping[str, Any]) -> str:
    """The revision of a pod template: sha256 of its canonical JSON, 10 hex digits like Kubernetes' hashes."""
    canonical = json.dumps(template, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:10]


def revision(template: Mapping[str, Any], tracking: Tracking) -> Revision:
    """The engine's view of a revision: a new one starts a canary run."""
    return Revision(spec_hash(template), tuple((ref.key, ref.checksum) for ref in tracking.refs))


@dataclasses.dataclass(frozen=True, slots=True)
class ConfigRef:
    """A tracked ConfigMap or Secret and the checksum of its data."""

    kind: ConfigKind
    name: str
    checksum: str

    @property
    def key(self) -> str:
        """``configmap/<name>`` or ``secret/<name>``: the key of ``status.trackedConfigs``."""
        return f"{self.kind}/{self.name}"


@dataclasses.dataclass(frozen=True, slots=True)
class Tracking:
    """The tracked configs of a pod template, and those it references that could not be looked at."""

    refs: tuple[ConfigRef, ...]
    missing: tuple[tuple[ConfigKind, str], ...]

    @property
    def keys(self) -> frozenset[str]:
        return frozenset(ref.key for ref in self.refs)


def references(pod_spec: Mapping[str, Any]) -> dict[tuple[ConfigKind, str], bool]:
    """Every ConfigMap and Secret ``pod_spec`` reads, and whether the pods need it (the reference is not
    ``optional``); when one is referenced several times the last reference says."""
    found: dict[tuple[ConfigKind, str], bool] = {}
    for kind, holder, field in slots(pod_spec):
        found[(kind, str(holder[field]))] = not holder.get("optional", False)
    return found


def track(pod_spec: Mapping[str, Any], find: Finder) -> Tracking:
    """The configs of ``pod_spec`` that are tracked, sorted (ConfigMaps first), and the referenced ones ``find``
    does not know."""
    refs: list[ConfigRef] = []
    missing: list[tuple[ConfigKind, str]] = []
    for kind, name in sorted(references(pod_spec)):
        source = find(KINDS[kind], name)
        if source is None:
            missing.append((kind, name))
        elif is_tracked(kind, source):
            refs.append(ConfigRef(kind, name, checksum(data_of(kind, source))))
    return Tracking(tuple(refs), tuple(missing))


def checksum(data: Mapping[str, str] | None) -> str:
    """Flagger's checksum of a config's data: sha256 of Go's ``json.Marshal`` output, first 8 bytes in hex."""
    return hashlib.sha256(_go_json(dict(data) if data else None).encode()).hexdigest()[:16]


def _go_json(value: Any) -> str:
    # Go sorts map keys, adds no spaces, and escapes <, >, & and the two JavaScript line separators.
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028")):
        text = text.replace(char, escape)
    return text.replace("\u2029", "\\u2029")


def opted_out(obj: Mapping[str, Any]) -> bool:
    """``flagger.app/config-tracking: disabled`` on the object."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(TRACKING_ANNOTATION, "")).startswith("disable")


def is_tracked(kind: ConfigKind, source: Mapping[str, Any]) -> bool:
    if opted_out(source):
        return False
    return kind == "configmap" or (source.get("type") or "Opaque") in TRACKED_SECRET_TYPES


def data_of(kind: ConfigKind, source: Mapping[str, Any]) -> dict[str, str]:
    """The data as the API server stores it: a Secret's values base64-encoded, ``stringData`` merged in."""
    data = {str(k): str(v) for k, v in (source.get("data") or {}).items()}
    if kind == "configmap":
        return data
    out: dict[str, str] = {}
    for key, value in data.items():
        try:
            raw = base64.b64decode("".join(value.split()), validate=True)
        except binascii.Error as exc:
            name = (source.get("metadata") or {}).get("name")
            raise ConfigError(f"Secret {name}: data.{key} is not base64 ({exc})") from exc
        out[key] = base64.b64encode(raw).decode()
    for key, text in (source.get("stringData") or {}).items():
        out[str(key)] = base64.b64encode(str(text).encode()).decode()
    return out


def slots(pod_spec: Mapping[str, Any]) -> Iterator[tuple[ConfigKind, dict[str, Any], str]]:
    """Each place a pod spec names a config: ``(kind, the mapping holding the name, the name's key)``."""
    for volume in pod_spec.get("volumes") or []:
        if isinstance(volume.get("configMap"), dict) and "name" in volume["configMap"]:
            yield "configmap", volume["configMap"], "name"
        if isinstance(volume.get("secret"), dict) and "secretName" in volume["secret"]:
            yield "secret", volume["secret"], "secretName"
        for source in (volume.get("projected") or {}).get("sources") or []:
            if isinstance(source.get("configMap"), dict) and "name" in source["configMap"]:
                yield "configmap", source["configMap"], "name"
            if isinstance(source.get("secret"), dict) and "name" in source["secret"]:
                yield "secret", source["secret"], "name"
    for container in [*(pod_spec.get("containers") or []), *(pod_spec.get("initContainers") or [])]:
        for env in container.get("env") or []:
            value_from = env.get("valueFrom") or {}
            if isinstance(value_from.get("configMapKeyRef"), dict) and "name" in value_from["configMapKeyRef"]:
                yield "configmap", value_from["configMapKeyRef"], "name"
            elif isinstance(value_from.get("secretKeyRef"), dict) and "name" in value_from["secretKeyRef"]:
                yield "secret", value_from["secretKeyRef"], "name"
        for env_from in container.get("envFrom") or []:
            if isinstance(env_from.get("configMapRef"), dict) and "name" in env_from["configMapRef"]:
                yield "configmap", env_from["configMapRef"], "name"
            elif isinstance(env_from.get("secretRef"), dict) and "name" in env_from["secretRef"]:
                yield "secret", env_from["secretRef"], "name"
