"""Pruning: what the previous inventory held and the new revision lacks is deleted, unless the Kustomization
or the object says not to; nothing outside the inventory is ever deleted."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from canaryflow.api.flux.kustomize import KustomizationV1
from canaryflow.gitops.kustomize import prune
from canaryflow.gitops.kustomize.inventory import from_entry, rank, stale
from canaryflow.gitops.kustomize.reconcile import reconcile
from canaryflow.gitops.target.base import ObjRef
from canaryflow.gitops.target.memory import MemoryTarget
from tests.clocks import InstantClock
from tests.gitops.kustomizations import kustomization
from tests.gitops.kustomize.conftest import Repo, configmap

SPEC = kustomization("apps", path="./deploy", prune=True)


def ref(name: str, namespace: str = "prod") -> ObjRef:
    return ObjRef("v1", "ConfigMap", namespace, name)


async def two_revisions(repo: Repo, spec: KustomizationV1, target: MemoryTarget, **notes: str) -> list[str]:
    """Apply ``keep`` and ``drop``, then a revision without ``drop``; returns what the second one deleted."""
    repo.write("deploy/keep.yaml", configmap("keep"))
    repo.write("deploy/drop.yaml", configmap("drop", annotations=notes or None))
    clock = InstantClock()
    first = await reconcile(spec, repo.artifact(), [], target, clock=clock)
    repo.remove("deploy/drop.yaml")
    second = await reconcile(spec, repo.artifact(), first.inventory, target, clock=clock)
    assert second.ready, second.message
    assert [str(r) for r in second.inventory] == ["ConfigMap/prod/keep"]
    return [str(c.ref) for c in second.changes if c.action == "deleted"]


async def test_an_object_removed_from_git_is_deleted(repo: Repo) -> None:
    target = MemoryTarget()
    assert await two_revisions(repo, SPEC, target) == ["ConfigMap/prod/drop"]
    assert await target.get(ref("drop")) is None


async def test_prune_false_keeps_it(repo: Repo) -> None:
    target = MemoryTarget()
    spec = kustomization("apps", path="./deploy", prune=False)
    assert await two_revisions(repo, spec, target) == []
    assert await target.get(ref("drop")) is not None


async def test_prune_disabled_on_the_object_keeps_it(repo: Repo) -> None:
    target = MemoryTarget()
    assert await two_revisions(repo, SPEC, target, **{"kustomize.toolkit.fluxcd.io/prune": "disabled"}) == []
    assert await target.get(ref("drop")) is not None


async def test_an_object_taken_over_by_another_kustomization_is_not_pruned(repo: Repo) -> None:
    target = MemoryTarget()
    repo.write("deploy/keep.yaml", configmap("keep"))
    repo.write("deploy/drop.yaml", configmap("drop"))
    first = await reconcile(SPEC, repo.artifact(), [], target, clock=InstantClock())
    target.edit(ref("drop"), lambda live: live["metadata"]["labels"].update({"kustomize.toolkit.fluxcd.io/name": "x"}))
    repo.remove("deploy/drop.yaml")
    second = await reconcile(SPEC, repo.artifact(), first.inventory, target, clock=InstantClock())
    assert [c for c in second.changes if c.action == "deleted"] == []
    assert await target.get(ref("drop")) is not None


async def test_a_failed_delete_is_prune_failed_and_kept_in_the_inventory(repo: Repo) -> None:
    target = MemoryTarget()
    repo.write("deploy/keep.yaml", configmap("keep"))
    repo.write("deploy/drop.yaml", configmap("drop"))
    first = await reconcile(SPEC, repo.artifact(), [], target, clock=InstantClock())
    target.failing_deletes.add(ref("drop").id)
    repo.remove("deploy/drop.yaml")
    second = await reconcile(SPEC, repo.artifact(), first.inventory, target, clock=InstantClock())
    assert (second.ready, second.reason) == (False, "PruneFailed")
    assert "prune failed for ConfigMap/prod/drop" in second.message
    assert ref("drop") in second.inventory  # so the next reconcile tries again
    assert second.applied


def test_stale_compares_ids_so_a_new_api_version_is_the_same_object() -> None:
    old = ObjRef("autoscaling/v2beta2", "HorizontalPodAutoscaler", "prod", "backend")
    new = ObjRef("autoscaling/v2", "HorizontalPodAutoscaler", "prod", "backend")
    assert stale([old], [new]) == []


def test_stale_deletes_namespaces_last() -> None:
    namespace = ObjRef("v1", "Namespace", "", "prod")
    assert stale([namespace, ref("a")], []) == [ref("a"), namespace]


def test_inventory_entries_round_trip_flux_ids() -> None:
    assert from_entry({"id": "prod_backend_apps_Deployment", "v": "v1"}) == ObjRef(
        "apps/v1", "Deployment", "prod", "backend"
    )
    assert from_entry({"id": "_prod__Namespace", "v": "v1"}) == ObjRef("v1", "Namespace", "", "prod")


names = st.sampled_from([f"cm-{i}" for i in range(8)])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    previous=st.sets(names, max_size=8),
    current=st.sets(names, min_size=1, max_size=8),
    unmanaged=st.sets(names, max_size=8),
    protected=st.sets(names, max_size=8),
)
async def test_a_prune_never_deletes_outside_the_previous_inventory(
    previous: set[str], current: set[str], unmanaged: set[str], protected: set[str]
) -> None:
    """Live: the previous inventory's objects (some marked prune: disabled) and unmanaged ones in another
    namespace with the same names. After a reconcile to ``current``, exactly the previous inventory's objects
    missing from ``current`` and not protected are gone."""
    target = MemoryTarget()
    for name in unmanaged:
        target.put({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "other"}})
    for name in previous:
        notes = {"kustomize.toolkit.fluxcd.io/prune": "disabled"} if name in protected else {}
        target.put({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "prod",
                    "annotations": notes}})  # fmt: skip
    root = Path(tempfile.mkdtemp(prefix="canaryflow-prune-"))
    try:
        repo = Repo(root)
        for name in current:
            repo.write(f"deploy/{name}.yaml", configmap(name))
        outcome = await reconcile(
            SPEC, repo.artifact(), [ref(n) for n in sorted(previous)], target, clock=InstantClock()
        )
    finally:
        shutil.rmtree(root)
    assert outcome.ready, outcome.message
    deleted = {c.ref for c in outcome.changes if c.action == "deleted"}
    assert deleted == {ref(n) for n in previous - current - protected}
    assert set(target.deleted) == deleted
    for name in unmanaged:
        assert await target.get(ref(name, "other")) is not None


# --- the deletion rules shared by a prune and a deleted Kustomization's finalization (kustomize/prune.py) ------

OWN = {"kustomize.toolkit.fluxcd.io/name": "apps", "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}
FOREIGN = {"kustomize.toolkit.fluxcd.io/name": "infra", "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}
DISABLED = {"kustomize.toolkit.fluxcd.io/prune": "disabled"}
#: How an inventory object may look when it is live: (labels, annotations), or None when it is already gone.
LIVE_STATES: dict[str, tuple[dict[str, str], dict[str, str]] | None] = {
    "ours": (OWN, {}),
    "unlabelled": ({}, {}),  # applied before labels were kept: still ours
    "disabled-annotation": (OWN, DISABLED),
    "disabled-label": ({**OWN, **DISABLED}, {}),
    "foreign": (FOREIGN, {}),
    "gone": None,
}
DELETED_STATES = {"ours", "unlabelled"}
KINDS = [("v1", "Namespace"), ("apiextensions.k8s.io/v1", "CustomResourceDefinition"), ("v1", "ConfigMap"),
         ("apps/v1", "Deployment"), ("v1", "Service"), ("flagger.app/v1beta1", "Canary")]  # fmt: skip
CLUSTER_KINDS = {"Namespace", "CustomResourceDefinition"}


def obj_ref(api_version: str, kind: str, name: str) -> ObjRef:
    return ObjRef(api_version, kind, "" if kind in CLUSTER_KINDS else "prod", name)


@settings(max_examples=60, deadline=None)
@given(
    inventory=st.lists(
        st.tuples(st.sampled_from(KINDS), st.sampled_from(sorted(LIVE_STATES))),
        max_size=len(KINDS),
        unique_by=lambda x: x[0],
    ),
    outside=st.sets(st.sampled_from(KINDS)),
)
async def test_a_finalization_deletes_exactly_the_inventory_it_may_namespaces_and_crds_last(
    inventory: list[tuple[tuple[str, str], str]], outside: set[tuple[str, str]]
) -> None:
    """Live: each inventory object in one state of LIVE_STATES, and objects of the same kinds that were never
    in it (named ``outside``, labelled as ours even). Exactly the inventory's own, unprotected, live objects go,
    in reverse apply order; everything else stays."""
    target = MemoryTarget()
    refs = []
    for (api_version, kind), state in inventory:
        ref_ = obj_ref(api_version, kind, "app")
        refs.append(ref_)
        live = LIVE_STATES[state]
        if live is not None:
            meta = {"name": "app", "labels": live[0], "annotations": live[1]}
            target.put({"apiVersion": api_version, "kind": kind,
                        "metadata": {**meta, "namespace": ref_.namespace} if ref_.namespace else meta})  # fmt: skip
    for api_version, kind in outside:
        out = obj_ref(api_version, kind, "outside")
        meta = {"name": "outside", "labels": OWN, **({"namespace": out.namespace} if out.namespace else {})}
        target.put({"apiVersion": api_version, "kind": kind, "metadata": meta})
    pruned = await prune.delete(prune.finalizer_order(refs), "apps", "flux-system", target)
    expected = {obj_ref(*kind, "app") for kind, state in inventory if state in DELETED_STATES}
    assert pruned.error is None and pruned.remaining == ()
    assert set(target.deleted) == expected == {c.ref for c in pruned.deleted}
    assert {r for r, _ in pruned.kept} == {
        obj_ref(*k, "app") for k, s in inventory if s not in DELETED_STATES | {"gone"}
    }
    # reverse apply order: nothing is deleted after a Namespace or CRD unless it is one too
    ranks = [rank(r.kind) for r in target.deleted]
    assert ranks == sorted(ranks, reverse=True)
    for api_version, kind in outside:
        assert await target.get(obj_ref(api_version, kind, "outside")) is not None


@pytest.mark.parametrize(
    ("labels", "annotations", "why"),
    [
        (FOREIGN, {}, "owned by Kustomization flux-system/infra"),
        (OWN, DISABLED, "kustomize.toolkit.fluxcd.io/prune: disabled"),
        ({**OWN, "kustomize.toolkit.fluxcd.io/prune": "Disabled"}, {}, "kustomize.toolkit.fluxcd.io/prune: disabled"),
        (OWN, {}, None),
        ({}, {}, None),
        ({"kustomize.toolkit.fluxcd.io/name": "apps"}, {}, "owned by Kustomization None/apps"),
    ],
)
def test_why_an_object_is_kept(labels: dict[str, str], annotations: dict[str, str], why: str | None) -> None:
    live = {"metadata": {"name": "x", "labels": labels, "annotations": annotations}}
    assert prune.why_kept(live, "apps", "flux-system") == why


async def test_a_failed_delete_stops_and_returns_what_is_left_in_order() -> None:
    target = MemoryTarget()
    names = ["a", "b", "c"]
    for name in names:
        target.put({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "prod"}})
    target.failing_deletes.add(ref("b").id)
    pruned = await prune.delete([ref(n) for n in names], "apps", "flux-system", target)
    assert [str(c) for c in pruned.deleted] == ["ConfigMap/prod/a deleted"]
    assert pruned.remaining == (ref("b"), ref("c"))
    assert pruned.error is not None and "prune failed for ConfigMap/prod/b" in pruned.error
    assert await target.get(ref("c")) is not None
