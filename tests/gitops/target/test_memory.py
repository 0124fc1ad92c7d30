"""The in-memory target behaves like the real ones where a reconcile can tell: all or nothing, only changes
written, server-owned fields never a difference."""

from __future__ import annotations

from typing import Any

import pytest

from canaryflow.gitops.target.base import ApplyError, ObjRef
from canaryflow.gitops.target.memory import MemoryTarget


def cm(name: str, **extra: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "prod"}, **extra}


async def test_only_differences_are_written() -> None:
    target = MemoryTarget()
    await target.apply([cm("a", data={"k": "1"})])
    target.edit(ObjRef.of(cm("a")), lambda live: live["metadata"].update(resourceVersion="7", uid="x"))
    changes = await target.apply([cm("a", data={"k": "1"}, status={"ignored": True})])
    assert [c.action for c in changes] == ["unchanged"] and target.writes == 1


async def test_a_refused_apply_writes_nothing() -> None:
    target = MemoryTarget(unsupported={"Ingress"})
    ingress = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "web", "namespace": "prod"},
    }
    with pytest.raises(ApplyError, match="Ingress/prod/web"):
        await target.apply([cm("a"), ingress])
    assert target.objects == {} and target.writes == 0


def test_refs_carry_flux_ids() -> None:
    assert ObjRef("apps/v1", "Deployment", "prod", "backend").id == "prod_backend_apps_Deployment"
    assert ObjRef("v1", "Namespace", "", "prod").id == "_prod__Namespace"
    assert str(ObjRef("v1", "Namespace", "", "prod")) == "Namespace/prod"
