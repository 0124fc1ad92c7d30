"""Kustomization (``kustomize.toolkit.fluxcd.io`` v1, and v1beta2 as the seed writes it).

Not kustomize's own ``kustomization.yaml`` (``kustomize.config.k8s.io``): that is a build input, read by the
build, not a resource. v1 adds ``namePrefix``/``nameSuffix``, ``commonMetadata``, ``deletionPolicy``... and drops
v1beta2's deprecated ``patchesStrategicMerge``, ``patchesJson6902`` and ``validation``.
"""

from __future__ import annotations

import json
from typing import Any, Final, Literal

from pydantic import Field, model_validator

from canaryflow.api.base import Model
from canaryflow.api.flux.common import (
    FluxObject,
    Interval,
    NamespacedObjectKindReference,
    SecretKeyReference,
    seconds,
)
from canaryflow.api.refs import LocalObjectReference, NamespacedObjectReference

VERSIONS: Final = ("v1", "v1beta2")
#: Flux never waits less than this for apply and health checks, whatever the interval.
MIN_TIMEOUT: Final = 30.0
PRUNE_ANNOTATION: Final = "kustomize.toolkit.fluxcd.io/prune"
SUBSTITUTE_ANNOTATION: Final = "kustomize.toolkit.fluxcd.io/substitute"
SSA_ANNOTATION: Final = "kustomize.toolkit.fluxcd.io/ssa"
DISABLED: Final = "disabled"


class Selector(Model):
    """Which objects of the build a patch (or an ignore rule) applies to."""

    group: str | None = None
    version: str | None = None
    kind: str | None = None
    name: str | None = None
    namespace: str | None = None
    annotation_selector: str | None = None
    label_selector: str | None = None


class Patch(Model):
    """A strategic-merge or JSON 6902 patch, as YAML text."""

    patch: str
    target: Selector | None = None


class JSON6902(Model):
    op: Literal["test", "remove", "add", "replace", "move", "copy"]
    path: str
    from_: str | None = Field(None, alias="from")
    value: Any = None


class JSON6902Patch(Model):
    patch: list[JSON6902]
    target: Selector


class Image(Model):
    """Kustomize's ``images`` entry: change an image's name, tag or digest everywhere in the build."""

    name: str = Field(min_length=1)
    new_name: str | None = None
    new_tag: str | None = None
    digest: str | None = None


class SubstituteReference(Model):
    kind: Literal["Secret", "ConfigMap"]
    name: str = Field(min_length=1, max_length=253)
    optional: bool = False


class PostBuildBase(Model):
    substitute: dict[str, str] | None = None
    substitute_from: list[SubstituteReference] | None = None


class PostBuildV1(PostBuildBase):
    substitute_strategy: Literal["WithVariables", "Always"] | None = None


class KubeConfigReference(Model):
    config_map_ref: LocalObjectReference | None = None
    secret_ref: SecretKeyReference | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> KubeConfigReference:
        if (self.config_map_ref is None) == (self.secret_ref is None):
            raise ValueError("exactly one of configMapRef or secretRef must be specified")
        return self


class Decryption(Model):
    provider: Literal["sops"]
    secret_ref: LocalObjectReference | None = None


class DecryptionV1(Decryption):
    service_account_name: str | None = None


class SourceReferenceV1(Model):
    api_version: str | None = None
    kind: Literal["OCIRepository", "GitRepository", "Bucket", "ExternalArtifact"]
    name: str = Field(min_length=1)
    namespace: str | None = None


class SourceReferenceV1beta2(Model):
    api_version: str | None = None
    kind: Literal["OCIRepository", "GitRepository", "Bucket"]
    name: str = Field(min_length=1)
    namespace: str | None = None


class DependencyReference(NamespacedObjectReference):
    ready_expr: str | None = None


class CommonMetadata(Model):
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class HealthCheckExpression(Model):
    api_version: str = Field(min_length=1)
    kind: str | None = None
    current: str = Field(min_length=1)
    failed: str | None = None
    in_progress: str | None = None


class IgnoreRule(Model):
    paths: list[str]
    target: Selector | None = None


class KustomizationSpecBase(Model):
    interval: Interval
    retry_interval: Interval | None = None
    timeout: Interval | None = None
    path: str | None = None
    prune: bool
    wait: bool = False
    force: bool = False
    suspend: bool = False
    target_namespace: str | None = Field(None, min_length=1, max_length=63)
    service_account_name: str | None = None
    kube_config: KubeConfigReference | None = None
    health_checks: list[NamespacedObjectKindReference] | None = None
    patches: list[Patch] | None = None
    images: list[Image] | None = None
    components: list[str] | None = None

    @property
    def interval_seconds(self) -> float:
        return seconds(self.interval)

    @property
    def timeout_seconds(self) -> float:
        """Apply and health-check deadline: ``timeout``, else interval - 30 s; never under 30 s (as Flux)."""
        wanted = seconds(self.timeout) if self.timeout else self.interval_seconds - 30.0
        return max(wanted, MIN_TIMEOUT)

    @property
    def retry_interval_seconds(self) -> float:
        """How soon a failed reconcile is retried: ``retryInterval``, else the interval."""
        return seconds(self.retry_interval) if self.retry_interval else self.interval_seconds

    @property
    def build_path(self) -> str:
        """The directory in the artifact to build: ``path``, else the root."""
        return self.path or "./"


class KustomizationSpecV1(KustomizationSpecBase):
    source_ref: SourceReferenceV1
    depends_on: list[DependencyReference] | None = None
    post_build: PostBuildV1 | None = None
    decryption: DecryptionV1 | None = None
    name_prefix: str | None = Field(None, min_length=1, max_length=200)
    name_suffix: str | None = Field(None, min_length=1, max_length=200)
    common_metadata: CommonMetadata | None = None
    build_metadata: list[Literal["originAnnotations", "transformerAnnotations"]] | None = None
    deletion_policy: Literal["MirrorPrune", "Delete", "WaitForTermination", "Orphan"] | None = None
    health_check_exprs: list[HealthCheckExpression] | None = None
    ignore: list[IgnoreRule] | None = None
    ignore_missing_components: bool = False

    @property
    def variables(self) -> dict[str, str]:
        """The inline ``postBuild.substitute`` variables (``substituteFrom`` needs the cluster to resolve)."""
        return dict(self.post_build.substitute or {}) if self.post_build else {}

    @property
    def substitute_from(self) -> list[SubstituteReference]:
        """``postBuild.substituteFrom`` in order: later entries override earlier ones."""
        return list(self.post_build.substitute_from or ()) if self.post_build else []

    @property
    def substitutes(self) -> bool:
        """Flux substitutes only when at least one variable or one ``substituteFrom`` source is declared."""
        return bool(self.variables or self.substitute_from)

    @property
    def common_labels(self) -> dict[str, str]:
        return dict(self.common_metadata.labels or {}) if self.common_metadata else {}

    @property
    def common_annotations(self) -> dict[str, str]:
        return dict(self.common_metadata.annotations or {}) if self.common_metadata else {}


class KustomizationSpecV1beta2(KustomizationSpecBase):
    source_ref: SourceReferenceV1beta2
    depends_on: list[NamespacedObjectReference] | None = None
    post_build: PostBuildBase | None = None
    decryption: Decryption | None = None
    patches_strategic_merge: list[dict[str, Any]] | None = None
    patches_json6902: list[JSON6902Patch] | None = Field(None, alias="patchesJson6902")
    validation: Literal["none", "client", "server"] | None = None


class KustomizationV1(FluxObject):
    api_version: Literal["kustomize.toolkit.fluxcd.io/v1"] = "kustomize.toolkit.fluxcd.io/v1"
    kind: Literal["Kustomization"] = "Kustomization"
    spec: KustomizationSpecV1


class KustomizationV1beta2(FluxObject):
    api_version: Literal["kustomize.toolkit.fluxcd.io/v1beta2"] = "kustomize.toolkit.fluxcd.io/v1beta2"
    kind: Literal["Kustomization"] = "Kustomization"
    spec: KustomizationSpecV1beta2


Kustomization = KustomizationV1 | KustomizationV1beta2
"""A Kustomization of any accepted version (usable with ``isinstance``)."""


def source_key(kustomization: Kustomization) -> str:
    """``namespace/name`` of the source a Kustomization builds from (its own namespace unless it names one)."""
    return kustomization.ref_key(kustomization.spec.source_ref)


def dependency_keys(kustomization: Kustomization) -> list[str]:
    """``namespace/name`` of each Kustomization in ``dependsOn``, in order."""
    return [kustomization.ref_key(d) for d in kustomization.spec.depends_on or ()]


def substitutions(kustomization: Kustomization) -> dict[str, str]:
    """The inline ``postBuild.substitute`` variables (``substituteFrom`` needs the cluster to resolve)."""
    return as_v1(kustomization).spec.variables


def as_v1(kustomization: Kustomization) -> KustomizationV1:
    """A Kustomization in the v1 shape the controller reads. v1beta2's deprecated ``patchesStrategicMerge`` and
    ``patchesJson6902`` become ``patches`` entries (as kustomize-controller v1beta2 applied them: JSON is YAML
    text), its ``validation`` is dropped (v1 removed it: server-side apply validates); every other v1beta2 field
    has the same meaning in v1."""
    if isinstance(kustomization, KustomizationV1):
        return kustomization
    old = kustomization.spec
    spec = old.model_dump(by_alias=True, exclude_none=True, exclude={"patches_strategic_merge", "patches_json6902",
                                                                     "validation"})  # fmt: skip
    patches = [*(old.patches or ()), *(Patch(patch=json.dumps(p)) for p in old.patches_strategic_merge or ())]
    patches += [
        Patch(patch=json.dumps([op.to_dict() for op in p.patch]), target=p.target) for p in old.patches_json6902 or ()
    ]
    if patches:
        spec["patches"] = [p.to_dict() for p in patches]
    body = {"metadata": kustomization.metadata, "spec": spec, "status": kustomization.status}
    return KustomizationV1.model_validate(body, by_alias=True, by_name=False)
