"""The seed's Flux objects as written (``kustomize.toolkit.fluxcd.io/v1beta2``), created through the v1beta2
endpoints the shipped CRDs serve, are read and reconciled by the Kubernetes GitOps controller: it fetches the
source, and each Kustomization gets a status for its generation (the first one Ready, those that depend on it
waiting for it, as Flux reports them; the first fails on the seed's HelmReleases, whose CRDs are helm-controller's)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from canaryflow.gitops.controller.loop import GitOpsController
from canaryflow.kube.client import CONFIGMAP, Kind, KubeApi
from tests.gitops.gitserver import GitHttpServer, RepoDir
from tests.kube.schemas import validate
from tests.polling import until

SEED = Path(__file__).resolve().parents[2] / "examples" / "gitops-istio"
V1BETA2 = Kind("kustomize.toolkit.fluxcd.io/v1beta2", "Kustomization", "kustomizations")
V1 = Kind("kustomize.toolkit.fluxcd.io/v1", "Kustomization", "kustomizations")
SOURCE_V1BETA2 = Kind("source.toolkit.fluxcd.io/v1beta2", "GitRepository", "gitrepositories")


def cluster_objects() -> list[dict[str, Any]]:
    docs = []
    for path in sorted((SEED / "clusters" / "my-cluster").glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


async def test_the_seeds_v1beta2_kustomizations_are_reconciled(
    kube_api: KubeApi, tmp_path: Path, gitops_controller: GitOpsController
) -> None:
    files = {str(p.relative_to(SEED)): p.read_text() for p in SEED.rglob("*.yaml")}
    repos = RepoDir(tmp_path / "repos")
    repos.create("gitops-istio", files)
    with GitHttpServer(repos.root) as daemon:
        # what `flux bootstrap` of the seed's time wrote beside it, in the same API version
        source = {"apiVersion": SOURCE_V1BETA2.api_version, "kind": "GitRepository",
                  "metadata": {"name": "flux-system", "namespace": "flux-system"},
                  "spec": {"interval": "1m", "url": daemon.url("gitops-istio"),
                           "ref": {"branch": "master"}}}  # fmt: skip
        validate(source)
        await kube_api.create(SOURCE_V1BETA2, source)
        kustomizations = [d for d in cluster_objects() if d["kind"] == "Kustomization"]
        for doc in cluster_objects():
            validate(doc)
            await kube_api.create(V1BETA2 if doc["kind"] == "Kustomization" else CONFIGMAP, doc)

        async def reconciled() -> dict[str, dict[str, Any]] | None:
            found = {}
            for doc in kustomizations:
                live = await kube_api.get(V1BETA2, "flux-system", doc["metadata"]["name"])
                status = (live or {}).get("status") or {}
                ready = [c for c in status.get("conditions") or [] if c["type"] == "Ready"]
                if status.get("observedGeneration") != 1 or not ready or ready[0]["reason"] == "ArtifactFailed":
                    return None
                found[doc["metadata"]["name"]] = ready[0]
            return found

        ready = await until(reconciled, "every seed Kustomization reconciled with the fetched source")
    # the source was fetched and built (its substituteFrom read); what fails is the seed's HelmReleases, whose
    # CRDs (Flux's helm-controller's) canaryflow does not install: the dependents wait for it, as in Flux
    assert ready["istio-system"]["reason"] == "ReconciliationFailed"
    assert (
        "HelmRelease/istio-system/istiod: the API server does not serve kind HelmRelease"
        in (ready["istio-system"]["message"])
    )
    for name in ("istio-gateway", "apps"):
        assert ready[name]["reason"] == "DependencyNotReady"
    # the same objects read through v1, the stored version, carry Flux's finalizer the controller added
    live = await kube_api.get(V1, "flux-system", "apps")
    assert live is not None and live["apiVersion"] == V1.api_version
    assert "finalizers.fluxcd.io" in live["metadata"]["finalizers"]
