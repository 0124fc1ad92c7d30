"""A Kustomization reconcile against an in-memory target: apply only what changed, prune only the inventory,
refuse a revision whole, and report it in Flux's words."""

from __future__ import annotations

from typing import Any

import pytest

from canaryflow.gitops.kustomize.reconcile import reconcile
from canaryflow.gitops.target.base import ObjRef
from canaryflow.gitops.target.memory import MemoryTarget
from tests.clocks import InstantClock
from tests.gitops.kustomizations import kustomization
from tests.gitops.kustomize.conftest import Repo, configmap

NAMESPACE = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: prod\n"
SPEC = kustomization("apps", path="./deploy", prune=True)


def deployment(name: str = "backend", image: str = "ghcr.io/stefanprodan/podinfo:6.0.0") -> str:
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: prod
spec:
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
        - name: {name}
          image: {image}
"""


def conditions(outcome: Any) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in outcome.conditions}


async def test_seed_apps_apply_then_an_unchanged_reconcile_writes_nothing(seed: Repo, clock: InstantClock) -> None:
    target = MemoryTarget()
    spec = kustomization("apps", path="./apps", prune=True)
    first = await reconcile(spec, seed.artifact(), [], target, clock=clock)
    assert first.ready, first.message
    assert first.message == f"Applied revision: {first.revision}"
    assert conditions(first) == {"Ready": ("True", "ReconciliationSucceeded")}
    assert {c.action for c in first.changes} == {"created"}
    assert target.writes == len(first.inventory) == 10  # Namespace, Sidecar, 3 Deployments, Service, 2 HPAs, 2 Canaries

    second = await reconcile(spec, seed.artifact(), first.inventory, target, clock=clock)
    assert second.ready
    assert target.writes == len(first.inventory)  # zero writes the second time
    assert {c.action for c in second.changes} == {"unchanged"}
    assert second.inventory == first.inventory


async def test_a_new_image_tag_in_git_configures_only_the_deployment(seed: Repo, clock: InstantClock) -> None:
    target = MemoryTarget()
    spec = kustomization("apps", path="./apps", prune=True)
    first = await reconcile(spec, seed.artifact(), [], target, clock=clock)
    build_file = seed.root / "apps/backend/kustomization.yaml"
    build_file.write_text(build_file.read_text().replace("newTag: 6.1.0", "newTag: 6.1.1"))
    writes = target.writes
    second = await reconcile(spec, seed.artifact(), first.inventory, target, clock=clock)
    changed = [c for c in second.changes if c.action != "unchanged"]
    assert [(str(c.ref), c.action) for c in changed] == [("Deployment/prod/backend", "configured")]
    assert target.writes == writes + 1
    live = await target.get(ObjRef("apps/v1", "Deployment", "prod", "backend"))
    assert live is not None
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "ghcr.io/stefanprodan/podinfo:6.1.1"


async def test_drift_is_reverted_and_only_the_drifted_object_is_written(repo: Repo, clock: InstantClock) -> None:
    repo.write("deploy/ns.yaml", NAMESPACE)
    repo.write("deploy/app.yaml", deployment() + "---\n" + configmap("settings"))
    target = MemoryTarget()
    first = await reconcile(SPEC, repo.artifact(), [], target, clock=clock)
    ref = ObjRef("apps/v1", "Deployment", "prod", "backend")
    target.edit(ref, lambda live: live["spec"].update(replicas=5))  # a kubectl edit
    writes = target.writes
    second = await reconcile(SPEC, repo.artifact(), first.inventory, target, clock=clock)
    assert [(str(c.ref), c.action) for c in second.changes if c.action != "unchanged"] == [
        ("Deployment/prod/backend", "configured")
    ]
    assert target.writes == writes + 1
    live = await target.get(ref)
    assert live is not None and "replicas" not in live["spec"]


async def test_namespaces_and_crds_are_applied_first(repo: Repo, clock: InstantClock) -> None:
    repo.write("deploy/a-app.yaml", deployment())
    repo.write("deploy/b-settings.yaml", configmap("settings"))
    repo.write(
        "deploy/c-crd.yaml",
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.example.com\n"
        "spec:\n  group: example.com\n  scope: Namespaced\n  names: {kind: Widget, plural: widgets}\n",
    )
    repo.write("deploy/z-namespace.yaml", NAMESPACE)
    outcome = await reconcile(SPEC, repo.artifact(), [], MemoryTarget(), clock=clock)
    assert [c.ref.kind for c in outcome.changes] == ["CustomResourceDefinition", "Namespace", "ConfigMap", "Deployment"]
    assert outcome.inventory[0] == ObjRef(
        "apiextensions.k8s.io/v1", "CustomResourceDefinition", "", "widgets.example.com"
    )
    assert outcome.inventory[1].id == "_prod__Namespace"


async def test_objects_are_labelled_with_their_kustomization(repo: Repo, clock: InstantClock) -> None:
    repo.write("deploy/settings.yaml", configmap("settings"))
    target = MemoryTarget()
    await reconcile(SPEC, repo.artifact(), [], target, clock=clock)
    live = await target.get(ObjRef("v1", "ConfigMap", "prod", "settings"))
    assert live is not None
    assert live["metadata"]["labels"] == {
        "kustomize.toolkit.fluxcd.io/name": "apps",
        "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
    }


async def test_an_unsupported_kind_fails_the_whole_revision_with_nothing_applied(
    repo: Repo, clock: InstantClock
) -> None:
    repo.write("deploy/settings.yaml", configmap("settings"))
    repo.write("deploy/ingress.yaml", "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n"
               "  name: web\n  namespace: prod\n")  # fmt: skip
    target = MemoryTarget(unsupported={"Ingress"})
    outcome = await reconcile(SPEC, repo.artifact(), [], target, clock=clock)
    assert not outcome.ready
    assert outcome.reason == "ReconciliationFailed"
    assert "Ingress/prod/web: kind Ingress is not supported" in outcome.message
    assert target.writes == 0 and target.objects == {}
    assert conditions(outcome) == {
        "Ready": ("False", "ReconciliationFailed"),
        "Reconciling": ("True", "ProgressingWithRetry"),
    }


async def test_provided_kinds_are_reported_as_provided(repo: Repo, clock: InstantClock) -> None:
    repo.write("deploy/gw.yaml", "apiVersion: networking.istio.io/v1beta1\nkind: Gateway\nmetadata:\n"
               "  name: public-gateway\n  namespace: istio-system\n")  # fmt: skip
    outcome = await reconcile(SPEC, repo.artifact(), [], MemoryTarget(provided={"Gateway"}), clock=clock)
    assert outcome.ready
    assert [(str(c.ref), c.action) for c in outcome.changes] == [("Gateway/istio-system/public-gateway", "provided")]


async def test_a_broken_revision_keeps_the_last_good_one(repo: Repo, clock: InstantClock) -> None:
    repo.write("deploy/settings.yaml", configmap("settings"))
    target = MemoryTarget()
    good = await reconcile(SPEC, repo.artifact(), [], target, clock=clock)
    repo.write("deploy/settings.yaml", configmap("settings", data="b"))
    repo.write("deploy/broken.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a: b\n")
    bad = await reconcile(SPEC, repo.artifact(), good.inventory, target, clock=clock)
    assert not bad.ready
    assert bad.reason == "BuildFailed"
    assert "deploy/broken.yaml:4" in bad.message
    assert bad.inventory == good.inventory and bad.changes == ()
    live = await target.get(ObjRef("v1", "ConfigMap", "prod", "settings"))
    assert live is not None and live["data"]["value"] == "a"  # the good revision still runs


async def test_a_missing_path_is_artifact_failed(repo: Repo, clock: InstantClock) -> None:
    repo.write("other/settings.yaml", configmap("settings"))
    outcome = await reconcile(SPEC, repo.artifact(), [], MemoryTarget(), clock=clock)
    assert (outcome.ready, outcome.reason) == (False, "ArtifactFailed")


async def test_a_namespaced_object_without_a_namespace_is_refused(repo: Repo, clock: InstantClock) -> None:
    repo.write("deploy/settings.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n")
    target = MemoryTarget()
    outcome = await reconcile(SPEC, repo.artifact(), [], target, clock=clock)
    assert not outcome.ready
    assert "ConfigMap/settings: namespace not specified" in outcome.message
    assert target.writes == 0


async def test_target_namespace_moves_namespaced_objects_only(repo: Repo, clock: InstantClock) -> None:
    role = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: reader\nrules: []\n"
    repo.write("deploy/all.yaml", role + "---\n" + configmap("settings", namespace="elsewhere"))
    spec = kustomization("apps", path="./deploy", targetNamespace="staging")
    outcome = await reconcile(spec, repo.artifact(), [], MemoryTarget(), clock=clock)
    assert outcome.ready, outcome.message
    assert sorted(str(ref) for ref in outcome.inventory) == ["ClusterRole/reader", "ConfigMap/staging/settings"]


async def test_spec_images_and_name_prefix_go_through_kustomize(repo: Repo, clock: InstantClock) -> None:
    repo.write("deploy/app.yaml", deployment())
    spec = kustomization(
        "apps",
        path="./deploy",
        images=[{"name": "ghcr.io/stefanprodan/podinfo", "newTag": "6.2.0"}],
        namePrefix="blue-",
        commonMetadata={"labels": {"team": "checkout"}},
    )
    target = MemoryTarget()
    outcome = await reconcile(spec, repo.artifact(), [], target, clock=clock)
    assert [str(ref) for ref in outcome.inventory] == ["Deployment/prod/blue-backend"]
    live = await target.get(outcome.inventory[0])
    assert live is not None
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "ghcr.io/stefanprodan/podinfo:6.2.0"
    assert live["metadata"]["labels"]["team"] == "checkout"


async def test_seed_istio_system_substitutes_the_version_from_substitute_from(seed: Repo, clock: InstantClock) -> None:
    spec = kustomization("istio-system", path="./istio/system", prune=True)
    target = MemoryTarget()
    outcome = await reconcile(spec, seed.artifact(), [], target, clock=clock, variables={"version": "1.19.3"})
    assert outcome.ready, outcome.message
    istiod = await target.get(ObjRef("helm.toolkit.fluxcd.io/v2beta1", "HelmRelease", "istio-system", "istiod"))
    gateway = await target.get(ObjRef("helm.toolkit.fluxcd.io/v2beta1", "HelmRelease", "istio-system", "istio-gateway"))
    assert istiod is not None and gateway is not None
    assert istiod["spec"]["chart"]["spec"]["version"] == "1.19.3"
    assert gateway["spec"]["values"]["service"]["type"] == "LoadBalancer"  # ${service:=LoadBalancer}


async def test_without_variables_nothing_is_substituted(seed: Repo, clock: InstantClock) -> None:
    """Flux substitutes only when a variable or a substituteFrom source is declared."""
    spec = kustomization("istio-system", path="./istio/system")
    target = MemoryTarget()
    outcome = await reconcile(spec, seed.artifact(), [], target, clock=clock)
    assert outcome.ready, outcome.message
    istiod = await target.get(ObjRef("helm.toolkit.fluxcd.io/v2beta1", "HelmRelease", "istio-system", "istiod"))
    assert istiod is not None and istiod["spec"]["chart"]["spec"]["version"] == "${version}"


async def test_a_missing_variable_fails_the_build_naming_the_object(seed: Repo, clock: InstantClock) -> None:
    spec = kustomization("istio-system", path="./istio/system", postBuild={"substitute": {"other": "x"}})
    outcome = await reconcile(spec, seed.artifact(), [], MemoryTarget(), clock=clock)
    assert outcome.reason == "BuildFailed"
    assert "post build failed for 'HelmRelease/istio-system/istio-base'" in outcome.message


@pytest.mark.parametrize("strict", [True, False], ids=["strict", "lenient"])
async def test_strict_substitution_can_be_turned_off(repo: Repo, clock: InstantClock, strict: bool) -> None:
    repo.write("deploy/settings.yaml", configmap("settings", data="'${missing}'"))
    spec = kustomization("apps", path="./deploy", postBuild={"substitute": {"x": "y"}})
    outcome = await reconcile(spec, repo.artifact(), [], MemoryTarget(), clock=clock, strict_substitution=strict)
    assert outcome.ready is not strict


SSA = "kustomize.toolkit.fluxcd.io/ssa"


async def test_apply_policy_if_not_present_creates_once_then_leaves_it(repo: Repo, clock: InstantClock) -> None:
    repo.write("deploy/settings.yaml", configmap("settings", annotations={SSA: "IfNotPresent"}))
    target = MemoryTarget()
    first = await reconcile(SPEC, repo.artifact(), [], target, clock=clock)
    assert [c.action for c in first.changes] == ["created"]
    target.edit(ObjRef("v1", "ConfigMap", "prod", "settings"), lambda live: live["data"].update(value="mine"))
    second = await reconcile(SPEC, repo.artifact(), first.inventory, target, clock=clock)
    assert [c.action for c in second.changes] == ["skipped"]
    assert second.inventory == first.inventory  # still owned: not pruned, not overwritten
    live = await target.get(ObjRef("v1", "ConfigMap", "prod", "settings"))
    assert live is not None and live["data"]["value"] == "mine"


async def test_apply_policy_ignore_never_applies(repo: Repo, clock: InstantClock) -> None:
    repo.write("deploy/settings.yaml", configmap("settings", annotations={SSA: "ignore"}))
    target = MemoryTarget()
    spec = kustomization("apps", path="./deploy", wait=True)
    outcome = await reconcile(spec, repo.artifact(), [], target, clock=clock)
    assert outcome.ready, outcome.message
    assert [c.action for c in outcome.changes] == ["skipped"] and target.writes == 0


async def test_an_unknown_apply_policy_is_refused_by_name(repo: Repo, clock: InstantClock) -> None:
    repo.write("deploy/settings.yaml", configmap("settings", annotations={SSA: "Merj"}))
    target = MemoryTarget()
    outcome = await reconcile(SPEC, repo.artifact(), [], target, clock=clock)
    assert not outcome.ready and target.writes == 0
    assert "ConfigMap/prod/settings: kustomize.toolkit.fluxcd.io/ssa: unknown policy 'Merj'" in outcome.message
