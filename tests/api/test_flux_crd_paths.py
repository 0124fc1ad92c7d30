"""The Flux models against Flux's own CRDs: every property a CRD lets a user write is accepted, the models
accept no property the CRD lacks (an extra one would be refused by a cluster running Flux), and the status
canaryflow writes passes the CRDs' status schemas."""

from __future__ import annotations

import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # comes with kubernetes-validate
import pydantic
import pytest
import yaml

from canaryflow.api import flux, loader, suggest, validate

# Flux's CRDs, kept beside the project's shared reference (see the PROVENANCE file).
FLUX_CRD = Path(__file__).resolve().parents[1] / "fixtures" / "flux-crd"
Token = str  # a property name, "[]" (any item) or "{}" (any map value)

# Values for the patterns Flux's CRDs use; any other string gets "x".
PATTERNED = {
    r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$": "1m30s",
    r"^([0-9]+(\.[0-9]+)?(ms|s|m))+$": "60s",
    r"^(http|https|ssh)://.*$": "https://example.com/org/repo.git",
    r"^(http|https)://.*$": "https://proxy.example.com",
    r"^https?://": "https://issuer.example.com",
}
# Strings the CRD leaves free but Kubernetes itself checks (a label selector's operator).
NAMED = {"operator": "In"}


def flux_crds() -> list[tuple[str, str, str, dict[str, Any]]]:
    """(group, version, kind, spec schema) of every version the CRDs serve."""
    found = []
    for path in sorted(FLUX_CRD.glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            for version in crd["spec"]["versions"]:
                if version["served"]:
                    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
                    found.append((crd["spec"]["group"], version["name"], crd["spec"]["names"]["kind"], spec))
    return found


CRDS = flux_crds()
IDS = [f"{kind}-{version}" for _, version, kind, _ in CRDS]


def property_paths(schema: dict[str, Any], prefix: tuple[Token, ...] = ()) -> Iterator[tuple[Token, ...]]:
    if prefix:
        yield prefix
    for name, sub in (schema.get("properties") or {}).items():
        yield from property_paths(sub, (*prefix, name))
    if isinstance(schema.get("items"), dict):
        yield from property_paths(schema["items"], (*prefix, "[]"))
    if isinstance(schema.get("additionalProperties"), dict):
        yield from property_paths(schema["additionalProperties"], (*prefix, "{}"))


def minimal(schema: dict[str, Any]) -> Any:
    """The smallest value the schema accepts: required properties only, one item per list."""
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "string":
        return PATTERNED.get(schema.get("pattern", ""), "x")
    if kind == "boolean":
        return True
    if kind in ("integer", "number"):
        return 1
    if kind == "array":
        return [minimal(schema["items"])]
    if isinstance(schema.get("additionalProperties"), dict):
        return {"key": minimal(schema["additionalProperties"])}
    properties = schema.get("properties") or {}
    return {name: NAMED.get(name) or minimal(properties[name]) for name in schema.get("required", ())}


def with_path(schema: dict[str, Any], path: tuple[Token, ...]) -> Any:
    """A minimal value that also sets ``path`` (and what it requires on the way)."""
    if not path:
        return minimal(schema)
    head, rest = path[0], path[1:]
    if head == "[]":
        return [with_path(schema["items"], rest)]
    if head == "{}":
        return {"key": with_path(schema["additionalProperties"], rest)}
    value = minimal(schema)
    value[head] = NAMED[head] if head in NAMED and not rest else with_path(schema["properties"][head], rest)
    return value


def satisfy_cross_field_rules(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Complete a sample so it meets the CRD's own cross-field rules (its x-kubernetes-validations and the
    "exactly one of" that Flux's controllers enforce), which a per-path sample knows nothing of."""
    if kind == "GitRepository" and "serviceAccountName" in spec:
        spec["provider"] = "azure"
    if kind == "ImagePolicy":
        if not {"semver", "alphabetical", "numerical"} & set(spec["policy"]):
            spec["policy"]["semver"] = {"range": ">=1.0.0"}
        if "interval" in spec or spec.get("digestReflectionPolicy") == "Always":
            spec.update(digestReflectionPolicy="Always", interval="10m")
    if kind == "Kustomization" and "kubeConfig" in spec and not spec["kubeConfig"]:
        spec["kubeConfig"]["secretRef"] = {"name": "remote"}
    if kind == "Receiver":
        if "oidcProviders" in spec:
            spec["type"] = "generic-oidc"
        else:
            spec.setdefault("secretRef", {"name": "token"})
    if kind == "Provider" and "commitStatusExpr" in spec:
        spec["type"] = "github"
    return spec


def sample(group: str, version: str, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": f"{group}/{version}",
        "kind": kind,
        "metadata": {"name": "sample", "namespace": "flux-system"},
        "spec": satisfy_cross_field_rules(kind, spec),
    }


@pytest.mark.parametrize(("group", "version", "kind", "schema"), CRDS, ids=IDS)
def test_every_property_path_of_the_crd_is_accepted(
    group: str, version: str, kind: str, schema: dict[str, Any]
) -> None:
    paths = list(property_paths(schema))
    assert len(paths) > 8
    refused = {}
    for path in paths:
        document = sample(group, version, kind, with_path(schema, path))
        checked = validate.check(loader.Document("sample.yaml", 1, document))
        if checked.resource is None:
            refused["".join(f".{t}" if t not in ("[]", "{}") else t for t in path)] = [str(p) for p in checked.problems]
    assert refused == {}


@pytest.mark.parametrize(("group", "version", "kind", "schema"), CRDS, ids=IDS)
def test_the_models_have_no_property_the_crd_lacks(group: str, version: str, kind: str, schema: dict[str, Any]) -> None:
    model = validate.REGISTRY[(group, version)][kind]
    spec = suggest.unwrap(model.model_fields["spec"].annotation)
    assert set(model_paths(spec)) - set(property_paths(schema)) == set()


def model_paths(tp: Any, prefix: tuple[Token, ...] = ()) -> Iterator[tuple[Token, ...]]:
    tp = suggest.unwrap(tp)
    origin = typing.get_origin(tp)
    if origin is list:
        yield from model_paths(typing.get_args(tp)[0], (*prefix, "[]"))
    elif origin is dict:
        yield from model_paths(typing.get_args(tp)[1], (*prefix, "{}"))
    elif isinstance(tp, type) and issubclass(tp, pydantic.BaseModel):
        for name, info in tp.model_fields.items():
            path = (*prefix, info.alias or name)
            yield path
            yield from model_paths(info.annotation, path)


def test_the_versions_accepted_include_every_version_the_crds_serve_and_the_seeds() -> None:
    served = {(group, version, kind) for group, version, kind, _ in CRDS}
    registered = {(group, version, kind) for (group, version), kinds in validate.REGISTRY.items() for kind in kinds}
    assert served <= registered
    assert {
        ("source.toolkit.fluxcd.io", "v1beta2", "GitRepository"),
        ("kustomize.toolkit.fluxcd.io", "v1beta2", "Kustomization"),
    } <= registered


def status_schemas() -> dict[str, dict[str, Any]]:
    found = {}
    for path in sorted(FLUX_CRD.glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"].get("status")
            if schema is not None:
                found[crd["spec"]["names"]["kind"]] = schema
    return found


def filled(tp: Any, name: str = "") -> Any:
    """A value of ``tp`` with every optional field set, so no part of a status type goes unchecked."""
    tp = suggest.unwrap(tp)
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return typing.get_args(tp)[0]
    if origin is list:
        return [filled(typing.get_args(tp)[0])]
    if origin is dict:
        return {"flux-system:backend": filled(typing.get_args(tp)[1])}
    if isinstance(tp, type) and issubclass(tp, pydantic.BaseModel):
        return {info.alias or key: filled(info.annotation, key) for key, info in tp.model_fields.items()}
    if tp is bool:
        return True
    if tp is int:
        return 3
    if name == "digest":
        return "sha256:9f86d081884c7d65"
    return "2026-11-26T14:00:00Z" if name.endswith(("time", "_at")) else "Ready"


@pytest.mark.parametrize("kind", sorted(flux.STATUS))
def test_the_status_canaryflow_writes_passes_the_flux_crd(kind: str) -> None:
    model = flux.STATUS[kind]
    written = model.model_validate(filled(model), strict=True, by_alias=True).to_dict()
    schema = status_schemas()[kind]
    jsonschema.Draft4Validator(schema).validate(written)
    assert set(model_paths(model)) <= set(property_paths(schema))
