"""The Flux CRDs deploy/gitops installs serve every version the seed and Flux's documentation write (v1, stored,
and v1beta2), so the seed's Flux objects apply to a cluster that has only canaryflow's install; each file is
Flux's own text (the current CRD plus the v1beta2 version of the last release that served it)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from canaryflow.api import validate as api_validate
from canaryflow.api.flux import OTHER_GROUPS, UNMODELLED
from tests.deploy.manifests import ROOT
from tests.kube import schemas

GITOPS_CRDS = ROOT / "deploy" / "gitops" / "crds"
SEED = ROOT / "examples" / "gitops-istio"


def assembler() -> ModuleType:
    spec = importlib.util.spec_from_file_location("flux_crds", ROOT / "scripts" / "flux_crds.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def shipped() -> dict[str, dict[str, Any]]:
    return {path.name: yaml.safe_load(path.read_text()) for path in sorted(GITOPS_CRDS.glob("*_*.yaml"))}


def seed_objects() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(SEED.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and ".toolkit.fluxcd.io/" in str(doc.get("apiVersion")):
                found.append((str(path.relative_to(SEED)), doc))
    return found


def test_each_file_is_fluxs_current_crd_followed_by_the_v1beta2_flux_served_last() -> None:
    flux_crds = assembler()
    assert sorted(shipped()) == sorted(p.name for p in flux_crds.PREVIOUS.glob("*.yaml"))
    for name in shipped():
        text = (GITOPS_CRDS / name).read_text()
        assert text == flux_crds.assemble(name), f"{name} is stale: run `make flux-crds`"
        assert text.startswith((flux_crds.CURRENT / name).read_text())  # the current CRD, unchanged


@pytest.mark.parametrize("name", sorted(shipped()))
def test_v1_is_stored_and_v1beta2_served_and_both_are_read_by_the_models(name: str) -> None:
    crd = shipped()[name]
    versions = {v["name"]: v for v in crd["spec"]["versions"]}
    assert set(versions) == {"v1", "v1beta2"}
    assert versions["v1"]["served"] and versions["v1"]["storage"]
    assert versions["v1beta2"]["served"] and not versions["v1beta2"]["storage"]
    assert versions["v1beta2"]["deprecated"] is True  # kubectl warns, as with Flux's own install
    assert "conversion" not in crd["spec"]  # None: the API server only rewrites apiVersion, as in Flux
    group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
    for version in versions:
        assert kind in api_validate.REGISTRY[(group, version)], f"no model reads {group}/{version} {kind}"
    provenance = (GITOPS_CRDS / "PROVENANCE").read_text()
    assert provenance.count(name) == 2, f"PROVENANCE names both origins of {name}"


def test_the_seed_writes_v1beta2_that_only_two_served_versions_accept() -> None:
    versions = {doc["apiVersion"] for _, doc in seed_objects() if doc["kind"] == "Kustomization"}
    assert versions == {"kustomize.toolkit.fluxcd.io/v1beta2"}


@pytest.mark.parametrize("where,obj", seed_objects(), ids=lambda v: v if isinstance(v, str) else v["kind"])
def test_every_seed_flux_object_is_accepted_by_the_shipped_crds_or_is_of_a_kind_canaryflow_leaves(
    where: str, obj: dict[str, Any]
) -> None:
    group = str(obj["apiVersion"]).rpartition("/")[0]
    kinds = {(c["spec"]["group"], c["spec"]["names"]["kind"]) for c in shipped().values()}
    if (group, obj["kind"]) in kinds:
        schemas.validate(obj)
    else:  # the HelmRepositories and HelmReleases: Flux's helm-controller's, not reconciled by canaryflow
        assert group in OTHER_GROUPS or obj["kind"] in UNMODELLED.get(group, ()), f"{where}: {obj['kind']}"


def test_a_version_the_crds_do_not_serve_is_refused() -> None:
    kustomization = next(doc for _, doc in seed_objects() if doc["kind"] == "Kustomization")
    with pytest.raises(AssertionError, match="serve no Kustomization"):
        schemas.validate({**kustomization, "apiVersion": "kustomize.toolkit.fluxcd.io/v1beta1"})
    with pytest.raises(Exception, match=r"unknownField|Additional properties"):
        schemas.validate({**kustomization, "spec": {**kustomization["spec"], "unknownField": 1}})


def test_paths_are_what_the_script_reads() -> None:
    assert Path(assembler().SHIPPED) == GITOPS_CRDS
