"""The generated CRDs: structural, as wide as Flagger's, and accepting what the validator accepts."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # comes with kubernetes-validate
import kubernetes_validate
import pytest
import yaml

from canaryflow.api import crds, status
from canaryflow.cli import resources

# Flagger 1.44's CRDs, kept beside the project's shared reference (see its PROVENANCE file).
FLAGGER_CRD = Path(__file__).resolve().parents[1] / "fixtures" / "flagger-crd" / "crd.yaml"
SCHEMA_WORDS = {"properties", "items", "additionalProperties"}
# Flagger declares its Go int fields as "number"; ours say integer, which is what Go would unmarshal anyway.
NARROWER = {("number", "integer")}


def flagger_crds() -> dict[str, dict[str, Any]]:
    return {d["spec"]["names"]["kind"]: d for d in yaml.safe_load_all(FLAGGER_CRD.read_text())}


def schema_of(crd: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def property_paths(schema: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every place a value can be written: ``spec.analysis.metrics[].thresholdRange.max``, maps as ``{}``."""
    yield prefix, schema
    for name, sub in (schema.get("properties") or {}).items():
        yield from property_paths(sub, f"{prefix}.{name}" if prefix else name)
    if isinstance(schema.get("items"), dict):
        yield from property_paths(schema["items"], f"{prefix}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from property_paths(schema["additionalProperties"], f"{prefix}{{}}")


@pytest.mark.parametrize("kind", crds.KINDS)
def test_our_crd_accepts_every_property_path_of_flaggers(kind: str) -> None:
    ours = dict(property_paths(schema_of(crds.crd(kind))))
    theirs = dict(property_paths(schema_of(flagger_crds()[kind])))
    assert len(theirs) > 10
    assert sorted(set(theirs) - set(ours)) == []
    mismatched = {
        path: (schema.get("type"), ours[path].get("type"))
        for path, schema in theirs.items()
        if schema.get("type") != ours[path].get("type")
        and (schema.get("type"), ours[path].get("type")) not in NARROWER
        and not (schema.get("x-kubernetes-int-or-string") and ours[path].get("x-kubernetes-int-or-string"))
    }
    assert mismatched == {}


@pytest.mark.parametrize("kind", crds.KINDS)
def test_names_columns_and_subresources_are_flaggers(kind: str) -> None:
    ours, theirs = crds.crd(kind), flagger_crds()[kind]
    assert ours["metadata"]["name"] == theirs["metadata"]["name"]
    for key in ("group", "names", "scope"):
        assert ours["spec"][key] == theirs["spec"][key]
    version, flagger_version = ours["spec"]["versions"][0], theirs["spec"]["versions"][0]
    for key in ("name", "served", "storage", "subresources", "additionalPrinterColumns"):
        assert version[key] == flagger_version[key]


def walk_nodes(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for name, sub in (schema.get("properties") or {}).items():
        yield from walk_nodes(sub, f"{path}.{name}")
    for word in ("items", "additionalProperties"):
        if isinstance(schema.get(word), dict):
            yield from walk_nodes(schema[word], f"{path}.{word}")


@pytest.mark.parametrize("kind", crds.KINDS)
def test_schemas_are_structural(kind: str) -> None:
    """The API server's rules for structural schemas, the ones a generator could break."""
    for path, node in walk_nodes(schema_of(crds.crd(kind))):
        assert not {"$ref", "$defs", "anyOf", "oneOf", "allOf", "not", "const", "default", "title"} & set(node), path
        assert node.get("type") != "null" and "nullable" not in node, path
        if not (node.get("x-kubernetes-int-or-string") or node.get("x-kubernetes-preserve-unknown-fields")):
            assert node.get("type") in ("object", "array", "string", "integer", "number", "boolean"), path
        if "properties" in node:
            assert "additionalProperties" not in node, path
            assert set(node.get("required", ())) <= set(node["properties"]), path


def test_crds_are_valid_kubernetes_objects() -> None:
    for crd in crds.crds():
        kubernetes_validate.validate(crd, kubernetes_validate.latest_version(), strict=True)


def crd_validator(kind: str) -> jsonschema.Draft4Validator:
    # OpenAPI v3.0 schemas are JSON Schema draft 4 where it matters here (boolean exclusiveMinimum).
    return jsonschema.Draft4Validator(schema_of(crds.crd(kind)))


def test_the_seed_manifests_pass_our_crd_schemas(seed_dir: Path) -> None:
    checked = 0
    for path in sorted(seed_dir.rglob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if isinstance(document, dict) and document.get("kind") in crds.KINDS:
                crd_validator(document["kind"]).validate(document)
                checked += 1
    assert checked == 4


def test_the_status_canaryflow_writes_passes_the_canary_crd() -> None:
    written = status.CanaryStatus(
        phase=status.Phase.PROGRESSING,
        canary_weight=20,
        failed_checks=1,
        tracked_configs={"secret/db": "abc"},
        last_metrics={"error-rate": 0.5},
        run_started_at=1_700_000_000.0,
        last_transition_time=1_700_000_100.0,
    ).to_dict()
    crd_validator("Canary").validate(
        {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "Canary",
            "spec": {
                "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "x"},
                "service": {"port": 80},
            },
            "status": written,
        }
    )
    schema = schema_of(crds.crd("Canary"))["properties"]["status"]["properties"]
    assert {"runStartedAt", "lastMetrics"} <= set(schema) and set(written) <= set(schema)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        pytest.param(("targetRef", "kind"), "StatefulSet", id="enum"),
        pytest.param(("service", "port"), "http", id="type"),
        pytest.param(("analysis", "stepWeight"), 101, id="maximum"),
        pytest.param(("analysis", "webhooks"), {"name": "x"}, id="array"),
    ],
)
def test_the_crd_refuses_what_the_models_refuse(path: tuple[str, ...], value: Any, seed_dir: Path) -> None:
    canary = yaml.safe_load((seed_dir / "apps/backend/canary.yaml").read_text())
    node = canary["spec"]
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(jsonschema.ValidationError):
        crd_validator("Canary").validate(canary)


def test_the_crds_command_prints_the_three_crds_as_one_stream() -> None:
    out = io.StringIO()
    assert resources.run_crds(out) == 0
    assert list(yaml.safe_load_all(out.getvalue())) == crds.crds()
    assert [c["spec"]["names"]["kind"] for c in crds.crds()] == ["Canary", "MetricTemplate", "AlertProvider"]
