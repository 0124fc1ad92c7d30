"""Whether a live object has settled, by the rules of kstatus (sigs.k8s.io/cli-utils), which Flux's health
checks use: ``current`` (done), ``in-progress`` (still converging) or ``failed`` (will not converge by itself).

Workloads are read from their status counters, because their controllers do not set a ``Ready`` condition;
everything else that has conditions (Flux's objects, most operators' custom resources) is read from
``Stalled``/``Reconciling``/``Ready``; an object without any status to read is current as soon as it exists.
Every rule first checks that the object's controller has seen its latest spec (``observedGeneration``): a status
written for the previous generation says nothing about this one. Pure functions of the object.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from canaryflow.gitops.target.base import Health, group_of

Obj = Mapping[str, Any]

CURRENT = Health("current")


def health_of(obj: Obj) -> Health:
    meta = obj.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return Health("in-progress", "being deleted")
    status = obj.get("status") or {}
    observed = status.get("observedGeneration")
    if observed is not None and int(observed) < int(meta.get("generation") or 0):
        return Health("in-progress", f"generation {meta.get('generation')} not observed yet (observed {observed})")
    rule = _RULES.get((group_of(str(obj.get("apiVersion", ""))), str(obj.get("kind", ""))))
    return rule(obj) if rule is not None else _by_conditions(obj)


def _conditions(obj: Obj) -> dict[str, Mapping[str, Any]]:
    return {str(c.get("type")): c for c in (obj.get("status") or {}).get("conditions") or [] if isinstance(c, Mapping)}


def _said(condition: Mapping[str, Any] | None) -> str:
    if condition is None:
        return ""
    return ": ".join(str(part) for part in (condition.get("reason"), condition.get("message")) if part)


def _by_conditions(obj: Obj) -> Health:
    """kstatus' generic rule (the "abnormal-true, normal-true" convention Flux's objects follow)."""
    conditions = _conditions(obj)
    stalled, reconciling, ready = conditions.get("Stalled"), conditions.get("Reconciling"), conditions.get("Ready")
    if stalled is not None and stalled.get("status") == "True":
        return Health("failed", _said(stalled))
    if reconciling is not None and reconciling.get("status") == "True":
        return Health("in-progress", _said(reconciling))
    if ready is not None and ready.get("status") != "True":
        return Health("in-progress", _said(ready) or "not ready")
    return CURRENT


def _count(status: Mapping[str, Any], field: str) -> int:
    return int(status.get(field) or 0)


def _deployment(obj: Obj) -> Health:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    progressing = _conditions(obj).get("Progressing")
    if progressing is not None and progressing.get("reason") == "ProgressDeadlineExceeded":
        return Health("failed", _said(progressing))
    desired = int(spec.get("replicas", 1))
    updated, replicas = _count(status, "updatedReplicas"), _count(status, "replicas")
    available, ready = _count(status, "availableReplicas"), _count(status, "readyReplicas")
    if updated < desired:
        return Health("in-progress", f"Updated: {updated}/{desired}")
    if replicas > updated:
        return Health("in-progress", f"Pending termination: {replicas - updated}")
    if available < updated:
        return Health("in-progress", f"Available: {available}/{updated}")
    if ready < replicas:
        return Health("in-progress", f"Ready: {ready}/{replicas}")
    return Health("current", f"Deployment is available. Replicas: {replicas}")


def _statefulset(obj: Obj) -> Health:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    desired = int(spec.get("replicas", 1))
    ready, current = _count(status, "readyReplicas"), _count(status, "currentReplicas")
    partition = int(((spec.get("updateStrategy") or {}).get("rollingUpdate") or {}).get("partition") or 0)
    if ready < desired:
        return Health("in-progress", f"Ready: {ready}/{desired}")
    if partition:
        updated = _count(status, "updatedReplicas")
        if updated < desired - partition:
            return Health("in-progress", f"Partitioned rollout: {updated}/{desired - partition} updated")
        return Health("current", f"Partition rollout complete. updated: {updated}")
    if status.get("updateRevision") != status.get("currentRevision"):
        return Health("in-progress", f"Waiting for rollout to finish: {current}/{desired} current")
    return Health("current", f"All replicas scheduled as expected. Replicas: {desired}")


def _daemonset(obj: Obj) -> Health:
    status = obj.get("status") or {}
    desired = _count(status, "desiredNumberScheduled")
    for field, label in (("currentNumberScheduled", "Current"), ("updatedNumberScheduled", "Updated"),
                         ("numberAvailable", "Available"), ("numberReady", "Ready")):  # fmt: skip
        if _count(status, field) < desired:
            return Health("in-progress", f"{label}: {_count(status, field)}/{desired}")
    return Health("current", f"All replicas scheduled as expected. Replicas: {desired}")


def _job(obj: Obj) -> Health:
    conditions = _conditions(obj)
    failed, complete = conditions.get("Failed"), conditions.get("Complete")
    if failed is not None and failed.get("status") == "True":
        return Health("failed", _said(failed) or "Job failed")
    if complete is not None and complete.get("status") == "True":
        return Health("current", "Job completed")
    return Health("in-progress", "Job in progress")


def _pvc(obj: Obj) -> Health:
    phase = (obj.get("status") or {}).get("phase")
    return CURRENT if phase == "Bound" else Health("in-progress", f"PVC is not Bound (phase {phase})")


def _namespace(obj: Obj) -> Health:
    phase = (obj.get("status") or {}).get("phase")
    return CURRENT if phase in (None, "Active") else Health("in-progress", f"Namespace is {phase}")


def _crd(obj: Obj) -> Health:
    conditions = _conditions(obj)
    names = conditions.get("NamesAccepted")
    if names is not None and names.get("status") == "False":
        return Health("failed", _said(names))
    established = conditions.get("Established")
    if established is None or established.get("status") != "True":
        return Health("in-progress", "CRD is not established")
    return CURRENT


def _service(obj: Obj) -> Health:
    if (obj.get("spec") or {}).get("type") != "LoadBalancer":
        return CURRENT
    ingress = ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress")
    return CURRENT if ingress else Health("in-progress", "no external IP assigned yet")


_RULES: dict[tuple[str, str], Callable[[Obj], Health]] = {
    ("apps", "Deployment"): _deployment,
    ("apps", "StatefulSet"): _statefulset,
    ("apps", "DaemonSet"): _daemonset,
    ("batch", "Job"): _job,
    ("", "PersistentVolumeClaim"): _pvc,
    ("", "Namespace"): _namespace,
    ("", "Service"): _service,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _crd,
}
