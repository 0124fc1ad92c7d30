"""The Target seam: where a Kustomization's objects are applied (the local runtime's object store, a Kubernetes
cluster, or memory in tests).

A target answers four questions a reconcile asks: can you hold this kind, apply these objects (all of them or
none, writing only what differs from the live state), what is live, and is it healthy. Deciding *what* to apply,
prune or wait for stays in :mod:`canaryflow.gitops.kustomize`; a target never prunes on its own.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

#: Kinds that live outside any namespace (Kubernetes' built-in cluster-scoped kinds, by kind: API group).
#: A CustomResourceDefinition with ``scope: Cluster`` adds its own kind; see :func:`cluster_scoped_kinds`.
CLUSTER_SCOPED = {
    "Namespace": "",
    "Node": "",
    "PersistentVolume": "",
    "CustomResourceDefinition": "apiextensions.k8s.io",
    "ClusterRole": "rbac.authorization.k8s.io",
    "ClusterRoleBinding": "rbac.authorization.k8s.io",
    "StorageClass": "storage.k8s.io",
    "CSIDriver": "storage.k8s.io",
    "VolumeAttachment": "storage.k8s.io",
    "PriorityClass": "scheduling.k8s.io",
    "IngressClass": "networking.k8s.io",
    "RuntimeClass": "node.k8s.io",
    "ValidatingWebhookConfiguration": "admissionregistration.k8s.io",
    "MutatingWebhookConfiguration": "admissionregistration.k8s.io",
    "ValidatingAdmissionPolicy": "admissionregistration.k8s.io",
    "ValidatingAdmissionPolicyBinding": "admissionregistration.k8s.io",
    "APIService": "apiregistration.k8s.io",
    "CertificateSigningRequest": "certificates.k8s.io",
    "FlowSchema": "flowcontrol.apiserver.k8s.io",
    "PriorityLevelConfiguration": "flowcontrol.apiserver.k8s.io",
}


def group_of(api_version: str) -> str:
    """``apps/v1`` -> ``apps``; ``v1`` (the core group) -> ``""``."""
    return api_version.rpartition("/")[0]


def is_cluster_scoped(api_version: str, kind: str, extra: Mapping[str, str] = {}) -> bool:
    group = group_of(api_version)
    return CLUSTER_SCOPED.get(kind) == group or extra.get(kind) == group


def cluster_scoped_kinds(objects: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Kinds made cluster-scoped by CustomResourceDefinitions among ``objects`` (kind: group)."""
    found: dict[str, str] = {}
    for obj in objects:
        if obj.get("kind") != "CustomResourceDefinition":
            continue
        spec = obj.get("spec") or {}
        names = spec.get("names") or {}
        if spec.get("scope") == "Cluster" and isinstance(names.get("kind"), str):
            found[names["kind"]] = str(spec.get("group", ""))
    return found


@dataclasses.dataclass(frozen=True, order=True)
class ObjRef:
    """One object, as Flux's inventory names it. The version is kept to read the object back; identity (``id``)
    is group, kind, namespace and name, so moving from ``v1beta1`` to ``v1`` is the same object."""

    api_version: str
    kind: str
    namespace: str  # "" when cluster-scoped
    name: str

    @property
    def group(self) -> str:
        return group_of(self.api_version)

    @property
    def id(self) -> str:
        """Flux's inventory id: ``<namespace>_<name>_<group>_<kind>`` (``prod_backend_apps_Deployment``)."""
        return f"{self.namespace}_{self.name}_{self.group}_{self.kind}"

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> ObjRef:
        metadata = obj.get("metadata") or {}
        return cls(
            str(obj.get("apiVersion", "")),
            str(obj.get("kind", "")),
            str(metadata.get("namespace") or ""),
            str(metadata.get("name", "")),
        )

    def __str__(self) -> str:
        """As Flux writes it in messages: ``Deployment/prod/backend``, ``Namespace/prod``."""
        return f"{self.kind}/{self.namespace}/{self.name}" if self.namespace else f"{self.kind}/{self.name}"


class Support(enum.Enum):
    RUN = "run"  # the target stores and runs (or uses) this kind
    PROVIDED = "provided"  # the target does this kind's job itself: stored, reported as provided, never an error
    UNSUPPORTED = "unsupported"  # applying it would be a lie: the whole revision fails


@dataclasses.dataclass(frozen=True)
class Change:
    ref: ObjRef
    action: str  # created | configured | unchanged | deleted | provided

    def __str__(self) -> str:
        return f"{self.ref} {self.action}"


@dataclasses.dataclass(frozen=True)
class Health:
    state: str  # current | in-progress | failed
    message: str = ""


class ApplyError(Exception):
    """The target refused the apply; ``problems`` name each object and field. Nothing was applied."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class Target(Protocol):
    def support(self, api_version: str, kind: str) -> tuple[Support, str]:
        """Whether this target can hold the kind; the message says why not (and what it can) when UNSUPPORTED."""
        ...

    async def apply(self, objects: Sequence[Mapping[str, Any]], *, manager: str = "canaryflow") -> list[Change]:
        """All or nothing, in the order given (CRDs and Namespaces come first); only objects whose live state
        differs are written, the others are reported unchanged. Raises ApplyError."""
        ...

    async def get(self, ref: ObjRef) -> dict[str, Any] | None: ...

    async def delete(self, ref: ObjRef) -> bool:
        """False when it was already gone."""
        ...

    async def health(self, ref: ObjRef) -> Health: ...
