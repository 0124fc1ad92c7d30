"""What a Canary keeps of its target Deployment in the local runtime, and Flagger's rules for the target's scale.

In Kubernetes the primary Deployment and the target's scale are objects in the cluster; locally they are one
JSON file per target, ``workloads/<namespace>/<target>.json`` under the state directory:
``{"primary": {"template", "configs", "replicas", "minReadySeconds"} | None, "canaryReplicas": int | None}``.
It outlives the Canary: the scale Flagger gave the target stays with the Deployment (a Canary deleted without
``revertOnDeletion`` leaves its target at zero), until the Deployment itself is deleted.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from canaryflow.api.canary import Canary
from canaryflow.local import podspec

#: ``(kind, namespace, name)`` → the stored object, or None.
Lookup = Callable[[str, str, str], Mapping[str, Any] | None]
_COPIED_FIELDS = ("data", "binaryData", "stringData", "type")


def primary_copy(deployment: Mapping[str, Any], live: podspec.ConfigSource, replicas: int) -> dict[str, Any]:
    """What the primary runs: the template and the tracked configs' data as they are now. Flagger copies
    ``minReadySeconds`` to the primary with the template, at initialization and promotion."""
    configs = podspec.tracked(deployment, live)
    copies = {key: {f: obj[f] for f in _COPIED_FIELDS if f in obj} for key, obj in configs.items()}
    return {"template": podspec.template_of(deployment), "configs": copies, "replicas": replicas,
            "minReadySeconds": podspec.min_ready_seconds(deployment)}  # fmt: skip


def rollout_hash(template: Mapping[str, Any], configs: Mapping[str, Mapping[str, Any]]) -> str:
    """The revision a replica set runs: the template's hash and its tracked configs' checksums (a change of
    either rolls the workload, as Flagger's config tracking makes Kubernetes do)."""
    sums = sorted(f"{key}={podspec.checksum(key.split('/')[0], obj)}" for key, obj in configs.items())
    return hashlib.sha256(" ".join([podspec.spec_hash(template), *sums]).encode()).hexdigest()[:10]


def path(state_dir: Path, namespace: str, name: str) -> Path:
    return state_dir / "workloads" / namespace / f"{name}.json"


def load(state_dir: Path, namespace: str, name: str) -> dict[str, Any]:
    state: dict[str, Any] = {"primary": None, "canaryReplicas": None}
    file = path(state_dir, namespace, name)
    if file.exists():
        state |= json.loads(file.read_text())
    return state


def save(state_dir: Path, namespace: str, name: str, state: Mapping[str, Any]) -> None:
    file = path(state_dir, namespace, name)
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, sort_keys=True))
    os.replace(tmp, file)  # a crash leaves the old copy or the new one, never half of one


def forget(state_dir: Path, namespace: str, name: str) -> None:
    path(state_dir, namespace, name).unlink(missing_ok=True)


def own_replicas(lookup: Lookup, canary: Canary, deployment: Mapping[str, Any]) -> int:
    """The target's own scale: ``spec.replicas``, else its autoscaler's minimum, else 1."""
    replicas = podspec.replicas(deployment)
    return replicas if replicas is not None else max(1, autoscaler_min(lookup, canary))


def scale_from_zero(lookup: Lookup, canary: Canary, deployment: Mapping[str, Any], state: Mapping[str, Any]) -> int:
    """Flagger's ScaleFromZero: the target's replicas if > 0, else the primary's, else the HPA's min if > 1."""
    replicas = podspec.replicas(deployment) or 0
    primary = state["primary"]
    if replicas <= 0 and primary is not None:
        replicas = int(primary["replicas"])
    return replicas if replicas > 0 else max(1, autoscaler_min(lookup, canary))


def autoscaler_min(lookup: Lookup, canary: Canary) -> int:
    ref = canary.spec.autoscaler_ref
    if ref is None or ref.kind != "HorizontalPodAutoscaler":
        return 1
    hpa = lookup("HorizontalPodAutoscaler", canary.metadata.namespace, ref.name) or {}
    return int((hpa.get("spec") or {}).get("minReplicas") or 1)
