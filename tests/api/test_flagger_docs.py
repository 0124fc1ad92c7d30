"""Every Flagger manifest from Flagger's own docs, examples and e2e tests that Flagger's CRD accepts, canaryflow
accepts too (the files and how they were chosen: tests/fixtures/flagger-docs/PROVENANCE)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from canaryflow.api import loader, validate

DOCS = Path(__file__).resolve().parents[1] / "fixtures" / "flagger-docs"
CRD = Path(__file__).resolve().parents[1] / "fixtures" / "flagger-crd" / "crd.yaml"
FIXTURES = sorted(p for p in DOCS.rglob("*.yaml") if "kustomize" not in p.parts)
# Documented by Flagger and read by its controller, but two branches of the CRD's oneOf match (PROVENANCE).
ONE_OF_BOTH = {"docs/gitbook/usage/alerting/0.yaml"}


def ids(path: Path) -> str:
    return str(path.relative_to(DOCS))


def flagger_documents(path: Path) -> list[dict[str, Any]]:
    docs = yaml.safe_load_all(path.read_text())
    return [d for d in docs if isinstance(d, dict) and str(d.get("apiVersion", "")).startswith("flagger.app/")]


@pytest.mark.parametrize("path", FIXTURES, ids=ids)
def test_canaryflow_accepts_what_flaggers_crd_accepts(path: Path) -> None:
    report = validate.validate_documents(loader.load_text(path.read_text(), ids(path)).documents)
    assert [str(p) for p in report.problems] == []
    assert {type(r).__name__ for _, r in report.resources} >= {d["kind"] for d in flagger_documents(path)}


@pytest.mark.parametrize("path", FIXTURES, ids=ids)
def test_the_fixture_is_valid_under_flaggers_crd(path: Path) -> None:
    """Keeps the set honest: a fixture Flagger's CRD would refuse does not belong here (but for ONE_OF_BOTH)."""
    schemas = {d["spec"]["names"]["kind"]: d["spec"]["versions"][0] for d in yaml.safe_load_all(CRD.read_text())}
    for doc in flagger_documents(path):
        version = schemas[doc["kind"]]
        assert doc["apiVersion"] == f"flagger.app/{version['name']}"
        errors = [e.message for e in jsonschema.Draft7Validator(version["schema"]["openAPIV3Schema"]).iter_errors(doc)]
        if ids(path) in ONE_OF_BOTH:
            assert len(errors) == 1 and "is valid under each of" in errors[0]
        else:
            assert errors == []


def test_the_sweep_covers_every_kind_and_every_source_tree() -> None:
    kinds = {d["kind"] for p in FIXTURES for d in flagger_documents(p)}
    assert kinds == {"Canary", "MetricTemplate", "AlertProvider"}
    assert {ids(p).split("/")[0] for p in FIXTURES} == {"README", "artifacts", "docs", "test"}
    assert len(FIXTURES) >= 90
