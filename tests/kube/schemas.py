"""Validation of rendered objects against the schemas the API server would use.

Core kinds: ``kubernetes_validate`` (Kubernetes 1.30, strict: unknown fields are errors). Istio kinds and Flux's:
the ``openAPIV3Schema`` of the version the object names in Istio's CRDs (``tests/fixtures/istio-crd``) or in the
Flux CRDs canaryflow ships (``deploy/gitops/crds``: a version they do not serve is refused), made strict
the way ``kubectl apply --validate=strict`` is: a field the schema does not declare is an error rather than
silently pruned (a pruned match field would widen what a route matches). Their ``metadata`` is checked as an
ObjectMeta by ``kubernetes_validate``.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # comes with kubernetes-validate
import kubernetes_validate
import yaml

KUBERNETES_VERSION = "1.30.0"
ISTIO_CRDS = Path(__file__).resolve().parents[1] / "fixtures" / "istio-crd" / "networking-crds.yaml"
ISTIO_GROUP = "networking.istio.io"
FLUX_CRDS = Path(__file__).resolve().parents[2] / "deploy" / "gitops" / "crds"


def validate(obj: dict[str, Any]) -> None:
    """Raise if the API server would refuse ``obj`` (or silently drop part of it)."""
    group, _, version = str(obj["apiVersion"]).rpartition("/")
    if group != ISTIO_GROUP and group not in flux_groups():
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        return
    holder = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": obj["metadata"]}
    kubernetes_validate.validate(holder, KUBERNETES_VERSION, strict=True)
    if group == ISTIO_GROUP:
        assert set(obj) == {"apiVersion", "kind", "metadata", "spec"}, f"unexpected top-level fields: {sorted(obj)}"
        istio_validator(obj["kind"], version).validate(obj["spec"])
        return
    assert set(obj) <= {"apiVersion", "kind", "metadata", "spec", "status"}, f"unexpected fields: {sorted(obj)}"
    top = {k: v for k, v in obj.items() if k != "metadata"}
    flux_validator(group, obj["kind"], version).validate(top)


@functools.cache
def flux_groups() -> frozenset[str]:
    return frozenset(crd["spec"]["group"] for crd in _flux_crds())


@functools.cache
def flux_validator(group: str, kind: str, version: str) -> Any:
    """The shipped CRD's schema of ``version`` (without ``metadata``, checked as an ObjectMeta), strict."""
    for crd in _flux_crds():
        if crd["spec"]["group"] != group or crd["spec"]["names"]["kind"] != kind:
            continue
        for served in crd["spec"]["versions"]:
            if served["name"] == version and served.get("served"):
                schema = dict(served["schema"]["openAPIV3Schema"])
                schema["properties"] = {k: v for k, v in schema["properties"].items() if k != "metadata"}
                strict = _strict(schema)
                jsonschema.Draft7Validator.check_schema(strict)
                return jsonschema.Draft7Validator(strict)
    raise AssertionError(f"the shipped Flux CRDs serve no {kind} {group}/{version}")


def validate_flux_status(kind: str, status: dict[str, Any]) -> None:
    """Raise if ``status`` holds what the shipped CRD of ``kind`` (its stored version) does not declare, strictly:
    the API server would prune it, so nothing reading the cluster could rely on it."""
    flux_status_validator(kind).validate(status)


@functools.cache
def flux_status_validator(kind: str) -> Any:
    for crd in _flux_crds():
        if crd["spec"]["names"]["kind"] != kind:
            continue
        stored = next(version for version in crd["spec"]["versions"] if version.get("storage"))
        strict = _strict(stored["schema"]["openAPIV3Schema"]["properties"]["status"])
        jsonschema.Draft7Validator.check_schema(strict)
        return jsonschema.Draft7Validator(strict)
    raise AssertionError(f"the shipped Flux CRDs have no {kind}")


@functools.cache
def _flux_crds() -> list[dict[str, Any]]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return [
        doc
        for path in sorted(FLUX_CRDS.glob("*_*.yaml"))
        for doc in yaml.load_all(path.read_text(), Loader=loader)
        if doc and doc.get("kind") == "CustomResourceDefinition"
    ]


@functools.cache
def istio_validator(kind: str, version: str) -> Any:
    """A compiled validator: checking the 10,000-line schema itself on every call would dominate the tests."""
    schema = istio_spec_schema(kind, version)
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


@functools.cache
def istio_spec_schema(kind: str, version: str) -> dict[str, Any]:
    for crd in _istio_crds():
        if crd["spec"]["names"]["kind"] != kind:
            continue
        for served in crd["spec"]["versions"]:
            if served["name"] == version and served.get("served"):
                strict: dict[str, Any] = _strict(served["schema"]["openAPIV3Schema"]["properties"]["spec"])
                return strict
    raise AssertionError(f"Istio's CRDs serve no {kind} {version}")


@functools.cache
def _istio_crds() -> list[dict[str, Any]]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return [doc for doc in yaml.load_all(ISTIO_CRDS.read_text(), Loader=loader) if doc]


def _strict(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _strict(value) for key, value in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out
