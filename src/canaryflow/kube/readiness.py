"""Whether a Deployment or DaemonSet has finished rolling out, by Flagger's rules, read from its status.

A Deployment is not ready while the controller has not observed its latest generation, while fewer replicas
than desired run the new template, while old replicas remain, or while fewer than ``threshold`` % of the updated
replicas are available. It will never become ready (non-retriable: the engine rolls back rather than wait) when
its ``Progressing`` condition says ``ProgressDeadlineExceeded``, or when its ``Available`` condition has been
``False`` (``MinimumReplicasUnavailable``) for longer than the Canary's ``progressDeadlineSeconds``.

A DaemonSet is not ready while fewer pods than scheduled run the new template or fewer than ``threshold`` % of
them are available; past the Canary's progress deadline, counted from the Canary's last phase transition as in
Flagger, that is final.

The functions are pure: ``now`` is passed in (seconds since the epoch) so tests need no clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from canaryflow.api.timestamps import parse_rfc3339
from canaryflow.engine.effects import Readiness

WAITING = "waiting for rollout to finish"


def deployment(obj: Mapping[str, Any], threshold: int, deadline: int, now: float) -> Readiness:
    """Readiness of a Deployment; messages are Flagger's, prefixed by the caller with the object's name."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if int((obj.get("metadata") or {}).get("generation") or 0) > int(status.get("observedGeneration") or 0):
        return Readiness(False, f"{WAITING}: observed deployment generation less than desired generation")
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    progressing, available = conditions.get("Progressing"), conditions.get("Available")
    if progressing is not None and progressing.get("reason") == "ProgressDeadlineExceeded":
        return Readiness(False, f'deployment "{_name(obj)}" exceeded its progress deadline', retriable=False)
    retriable = True
    if (
        progressing is not None
        and available is not None
        and available.get("status") == "False"
        and available.get("reason") == "MinimumReplicasUnavailable"
    ):
        since = parse_time(available.get("lastUpdateTime") or available.get("lastTransitionTime"))
        retriable = since is None or since + deadline >= now
    desired = spec.get("replicas")
    replicas = int(status.get("replicas") or 0)
    updated = int(status.get("updatedReplicas") or 0)
    ready_floor = int(updated * threshold / 100)
    availables = int(status.get("availableReplicas") or 0)
    if isinstance(desired, int) and updated < desired:
        return Readiness(False, f"{WAITING}: {updated} out of {desired} new replicas have been updated", retriable)
    if replicas > updated:
        return Readiness(False, f"{WAITING}: {replicas - updated} old replicas are pending termination", retriable)
    if availables < ready_floor:
        message = (
            f"{WAITING}: {availables} of {ready_floor} (readyThreshold {threshold}%) updated replicas are available"
        )
        return Readiness(False, message, retriable)
    return Readiness(True)


def daemonset(obj: Mapping[str, Any], threshold: int, deadline: int, since: float | None, now: float) -> Readiness:
    """Readiness of a DaemonSet; ``since`` is when the Canary last changed phase (None: unknown, no deadline)."""
    status = obj.get("status") or {}
    if int((obj.get("metadata") or {}).get("generation") or 0) > int(status.get("observedGeneration") or 0):
        return Readiness(False, f"{WAITING}: observed daemonset generation less than desired generation")
    desired = int(status.get("desiredNumberScheduled") or 0)
    updated = int(status.get("updatedNumberScheduled") or 0)
    available = int(status.get("numberAvailable") or 0)
    ready_floor = int(desired * threshold / 100)
    if updated >= desired and available >= ready_floor:
        return Readiness(True)
    if since is not None and since + deadline < now:
        return Readiness(False, f"exceeded its progressDeadlineSeconds: {deadline}", retriable=False)
    if updated < desired:
        return Readiness(False, f"{WAITING}: {updated} out of {desired} new pods have been updated")
    message = f"{WAITING}: {available} of {ready_floor} (readyThreshold {threshold}%) updated pods are available"
    return Readiness(False, message)


def parse_time(value: Any) -> float | None:
    """An RFC 3339 timestamp as the API server writes it (``2024-05-01T10:00:00Z``), in epoch seconds."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_rfc3339(value)
    except ValueError:
        return None


def _name(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name"))
