"""What a Kustomization asks for, in plain values: the controller turns a Flux object (any accepted API version)
into a KustomizationSpec, so this package never reads Flux's YAML shapes itself."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from canaryflow.gitops.target.base import ObjRef


@dataclasses.dataclass(frozen=True)
class Image:
    """kustomize's ``images`` entry: replace the name, tag or digest of every container image called ``name``."""

    name: str
    new_name: str | None = None
    new_tag: str | None = None
    digest: str | None = None


@dataclasses.dataclass(frozen=True)
class Patch:
    """kustomize's ``patches`` entry: a strategic-merge or JSON6902 patch (YAML text), and which objects it hits
    (``group``, ``version``, ``kind``, ``name``, ``namespace``, ``labelSelector``, ``annotationSelector``)."""

    patch: str
    target: Mapping[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class SubstituteFrom:
    kind: str  # ConfigMap | Secret
    name: str
    optional: bool = False


@dataclasses.dataclass(frozen=True)
class KustomizationSpec:
    namespace: str
    name: str
    path: str = "./"
    prune: bool = False
    interval: float = 600
    timeout: float | None = None  # None: Flux's default, see effective_timeout
    target_namespace: str | None = None
    substitute: Mapping[str, str] = dataclasses.field(default_factory=dict)
    substitute_from: tuple[SubstituteFrom, ...] = ()  # resolved by the caller into reconcile(variables=...)
    wait: bool = False
    health_checks: tuple[ObjRef, ...] = ()
    force: bool = False
    images: tuple[Image, ...] = ()
    patches: tuple[Patch, ...] = ()
    name_prefix: str | None = None
    name_suffix: str | None = None
    common_labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    common_annotations: Mapping[str, str] = dataclasses.field(default_factory=dict)
    depends_on: tuple[tuple[str, str], ...] = ()  # (namespace, name); evaluated by the caller

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def effective_timeout(self) -> float:
        """``timeout``, else the interval less 30 s, but never under 30 s."""
        return self.timeout if self.timeout is not None else max(self.interval - 30.0, 30.0)

    @property
    def substitutes(self) -> bool:
        """Flux substitutes only when at least one variable or one ``substituteFrom`` source is declared."""
        return bool(self.substitute or self.substitute_from)

    @property
    def transforms(self) -> bool:
        """Whether the build output goes through a kustomize overlay (namespace, images, patches, names)."""
        return bool(self.target_namespace or self.images or self.patches or self.name_prefix or self.name_suffix)
