"""Which objects a revision owns, in which order they are applied, and which ones a prune may delete.

The inventory is the list of objects the last successful apply wrote, as Flux keeps it in
``status.inventory``. It is the only thing a prune looks at: an object that was never in it is never deleted,
whatever it is called and wherever it lives (a namespace someone created by hand stays). Pure functions only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from canaryflow.api.flux.status import InventoryEntry
from canaryflow.gitops.target.base import ObjRef

PRUNE_ANNOTATION = "kustomize.toolkit.fluxcd.io/prune"

#: Apply order: CRDs and Namespaces first (everything else may need them), then the kinds others refer to, then
#: workloads; kinds not listed (custom resources such as a Canary) come after the workloads they point at.
KIND_ORDER = (
    "CustomResourceDefinition",
    "Namespace",
    "ResourceQuota",
    "LimitRange",
    "StorageClass",
    "PriorityClass",
    "ServiceAccount",
    "ClusterRole",
    "Role",
    "ClusterRoleBinding",
    "RoleBinding",
    "Secret",
    "ConfigMap",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "Service",
    "DaemonSet",
    "Deployment",
    "StatefulSet",
    "HorizontalPodAutoscaler",
    "Job",
    "CronJob",
    "PodDisruptionBudget",
    "Ingress",
)
_RANK = {kind: rank for rank, kind in enumerate(KIND_ORDER)}
#: The first stage: what must exist before anything else can be applied.
FIRST_STAGE = frozenset({"CustomResourceDefinition", "Namespace"})


def rank(kind: str) -> int:
    return _RANK.get(kind, len(KIND_ORDER))


def ordered(objects: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """``objects`` in apply order (stable within a kind: namespace, then name)."""
    return sorted(objects, key=lambda obj: _key(ObjRef.of(obj)))


def _key(ref: ObjRef) -> tuple[int, str, str, str]:
    return rank(ref.kind), ref.kind, ref.namespace, ref.name


def stale(previous: Sequence[ObjRef], current: Sequence[ObjRef]) -> list[ObjRef]:
    """What ``previous`` held and ``current`` does not (by id: a new API version is the same object), in delete
    order: the reverse of the apply order, so Namespaces and CRDs go last."""
    keep = {ref.id for ref in current}
    gone: dict[str, ObjRef] = {}
    for ref in previous:
        if ref.id not in keep:
            gone.setdefault(ref.id, ref)
    return sorted(gone.values(), key=_key, reverse=True)


def prune_disabled(obj: Mapping[str, Any]) -> bool:
    """``kustomize.toolkit.fluxcd.io/prune: disabled`` as a label or an annotation on the live object."""
    metadata = obj.get("metadata") or {}
    marks = {**(metadata.get("labels") or {}), **(metadata.get("annotations") or {})}
    return str(marks.get(PRUNE_ANNOTATION, "")).lower() == "disabled"


def entry(ref: ObjRef) -> InventoryEntry:
    """An inventory entry as Flux writes it: ``{"id": ..., "v": <version>}``."""
    return InventoryEntry(id=ref.id, v=ref.api_version.rpartition("/")[2])


def from_entry(item: InventoryEntry | Mapping[str, Any]) -> ObjRef:
    """The inverse of :func:`entry`, also of an entry read back as JSON; a malformed id is a ValueError naming it."""
    if isinstance(item, InventoryEntry):
        item = {"id": item.id, "v": item.v}
    parts = str(item.get("id", "")).split("_")
    if len(parts) < 4:
        raise ValueError(f"inventory entry {item.get('id')!r} is not <namespace>_<name>_<group>_<kind>")
    # Names may not hold "_", but a group or kind never does either: split from both ends.
    namespace, name, group, kind = parts[0], "_".join(parts[1:-2]), parts[-2], parts[-1]
    version = str(item.get("v") or "v1")
    return ObjRef(f"{group}/{version}" if group else version, kind, namespace, name)
