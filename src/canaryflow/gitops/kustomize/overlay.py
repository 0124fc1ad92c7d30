"""The Kustomization's own transformations on top of the build: ``targetNamespace``, ``images``, ``patches``,
``namePrefix``/``nameSuffix`` and ``commonMetadata``.

Flux writes the first four into the kustomization it builds; here the built objects go into a throw-away overlay
whose ``kustomization.yaml`` carries them, built by ``kubectl kustomize`` again. So a name prefix also renames
the references to the object (a Deployment's ConfigMap volume), an image entry means what kustomize means, and
``targetNamespace`` leaves cluster-scoped objects alone, exactly as in Flux. ``commonMetadata`` is Flux's own
(applied after the build, overriding existing keys) and is done here directly.
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from canaryflow.api.flux.kustomize import KustomizationSpecV1
from canaryflow.gitops.kustomize.build import BuildError, kustomize


def transform(objects: list[dict[str, Any]], spec: KustomizationSpecV1) -> list[dict[str, Any]]:
    """``objects`` as the Kustomization's spec changes them (new dicts)."""
    out = _overlay(objects, spec) if _transforms(spec) and objects else copy.deepcopy(objects)
    if spec.common_labels or spec.common_annotations:
        out = [_with_metadata(obj, spec.common_labels, spec.common_annotations) for obj in out]
    return out


def kustomization(spec: KustomizationSpecV1) -> dict[str, Any]:
    """The overlay's kustomization.yaml over one file of resources."""
    doc: dict[str, Any] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["resources.yaml"],
    }
    if spec.target_namespace:
        doc["namespace"] = spec.target_namespace
    if spec.name_prefix:
        doc["namePrefix"] = spec.name_prefix
    if spec.name_suffix:
        doc["nameSuffix"] = spec.name_suffix
    if spec.images:
        doc["images"] = [{key: value for key, value in image.to_dict().items() if value} for image in spec.images]
    if spec.patches:
        doc["patches"] = [patch.to_dict() for patch in spec.patches]
    return doc


def _transforms(spec: KustomizationSpecV1) -> bool:
    """Whether the build output goes through a kustomize overlay (namespace, images, patches, names)."""
    return bool(spec.target_namespace or spec.images or spec.patches or spec.name_prefix or spec.name_suffix)


def _overlay(objects: list[dict[str, Any]], spec: KustomizationSpecV1) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="canaryflow-overlay-") as tmp:
        directory = Path(tmp)
        (directory / "resources.yaml").write_text(
            yaml.dump_all(objects, Dumper=yaml.CSafeDumper, sort_keys=False, allow_unicode=True)
        )
        (directory / "kustomization.yaml").write_text(yaml.dump(kustomization(spec), Dumper=yaml.CSafeDumper))
        try:
            return kustomize(directory, directory)
        except BuildError as exc:
            fields = "targetNamespace, images, patches, namePrefix, nameSuffix"
            message = str(exc).removeprefix("./: ")
            raise BuildError(f"the Kustomization's {fields} could not be applied: {message}") from None


def _with_metadata(obj: dict[str, Any], labels: Mapping[str, str], annotations: Mapping[str, str]) -> dict[str, Any]:
    metadata = dict(obj.get("metadata") or {})
    if labels:
        metadata["labels"] = {**(metadata.get("labels") or {}), **labels}
    if annotations:
        metadata["annotations"] = {**(metadata.get("annotations") or {}), **annotations}
    return {**obj, "metadata": metadata}
