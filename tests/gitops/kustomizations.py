"""Kustomizations for tests: the typed v1 model the reconcile reads, written as in YAML."""

from __future__ import annotations

from typing import Any

from canaryflow.api.flux.kustomize import KustomizationV1


def kustomization(name: str = "apps", namespace: str = "flux-system", **spec: Any) -> KustomizationV1:
    """A Kustomization ``namespace/name`` with ``spec`` (camelCase, as YAML spells it) over ``interval: 10m``,
    ``prune: false`` and the ``flux-system`` GitRepository."""
    body = {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"interval": "10m", "prune": False, "sourceRef": {"kind": "GitRepository", "name": "flux-system"}}
        | spec,
    }
    return KustomizationV1.model_validate(body, strict=True, by_alias=True, by_name=False)
