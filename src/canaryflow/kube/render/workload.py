"""The primary workload and its autoscaler: ``<target>-primary`` and ``<hpa>-primary``, as Flagger creates them.

The primary is a copy of the target (Deployment or DaemonSet) whose selector label (:func:`meta.selector_label`)
reads ``<value>-primary`` in its labels, selector and pod template, whose pods read the ``-primary`` copies of
tracked ConfigMaps and Secrets, and which the Canary owns. It copies the target's rollout settings:
``minReadySeconds``, ``revisionHistoryLimit``, and ``progressDeadlineSeconds``, ``strategy`` and ``replicas``
(at least 1) for a Deployment, ``updateStrategy`` for a DaemonSet. The target's own labels are not copied
(Flagger's default ``include-label-prefix`` is empty), its annotations are, without Flux's.

The pod template gets a ``flagger-id`` annotation that changes whenever the template or a tracked config
changes, so promoting a config change alone still rolls the primary's pods. Flagger draws it at random on every
promotion; here it is derived from what it must reflect, so the same input renders the same output.

The primary HPA targets the primary with the target HPA's bounds, metrics and behaviour
(``primaryScalerReplicas`` overrides the bounds). It is written as ``autoscaling/v2`` whatever version the HPA
manifest or ``autoscalerRef`` names: ``v2beta2`` has the same shape, ``v1`` has only a CPU target.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from typing import Any

from canaryflow.api.canary import Canary
from canaryflow.kube.render import configs, meta

Json = meta.Json
ROLLOUT_ID_ANNOTATION = "flagger-id"
#: Spec fields copied from the target as they are, per kind.
_COPIED = {
    "Deployment": ("minReadySeconds", "revisionHistoryLimit", "progressDeadlineSeconds", "strategy"),
    "DaemonSet": ("minReadySeconds", "revisionHistoryLimit", "updateStrategy"),
}
WORKLOAD_KINDS = tuple(_COPIED)


def primary_workload(canary: Canary, target: Mapping[str, Any], tracking: configs.Tracking) -> Json:
    """``<target>-primary``: the copy of the target Deployment or DaemonSet the primary pods run from."""
    kind = str(target.get("kind"))
    if kind not in _COPIED:
        raise meta.RenderError(
            f"{kind} {meta.name_of(target)}: a canary's target must be one of {', '.join(WORKLOAD_KINDS)}"
        )
    target_spec = target.get("spec") or {}
    key, value = meta.selector_label(target)
    primary_value = f"{value}-primary"
    name = f"{canary.spec.target_ref.name}-primary"
    spec: Json = {field: target_spec[field] for field in _COPIED[kind] if target_spec.get(field) is not None}
    if kind == "Deployment":
        replicas = target_spec.get("replicas")
        spec["replicas"] = replicas if isinstance(replicas, int) and replicas > 0 else 1
    elif (spec.get("updateStrategy") or {}).get("type", "RollingUpdate") != "RollingUpdate":
        raise meta.RenderError(
            f"DaemonSet {meta.name_of(target)}: a canary's DaemonSet needs updateStrategy RollingUpdate "
            f"(got {spec['updateStrategy']['type']})"
        )
    spec["selector"] = {"matchLabels": {key: primary_value}}
    template = target_spec.get("template") or {}
    pod_meta = template.get("metadata") or {}
    pod_annotations = {k: v for k, v in meta.without_flux(pod_meta.get("annotations")).items()}
    pod_annotations[ROLLOUT_ID_ANNOTATION] = rollout_id(template, tracking)
    pod_spec = configs.primary_pod_spec(template.get("spec") or {}, tracking.keys)
    if kind == "Deployment":
        _rename_spread_selectors(pod_spec, str((target.get("metadata") or {}).get("name")))
    spec["template"] = {
        "metadata": {
            "labels": meta.primary_labels(pod_meta.get("labels"), key, primary_value),
            "annotations": pod_annotations,
        },
        "spec": pod_spec,
    }
    annotations = meta.without_flux((target.get("metadata") or {}).get("annotations"))
    labels = meta.primary_labels(None, key, primary_value)
    return {
        "apiVersion": str(target.get("apiVersion") or "apps/v1"),
        "kind": kind,
        "metadata": meta.object_meta(canary, name, labels=labels, annotations=annotations),
        "spec": spec,
    }


def rollout_id(template: Mapping[str, Any], tracking: configs.Tracking) -> str:
    """A UUID (version 4 layout, as Flagger's) that changes with the pod template and the tracked configs."""
    without_id = dict(template)
    pod_meta = dict(without_id.get("metadata") or {})
    pod_meta["annotations"] = {
        k: v for k, v in (pod_meta.get("annotations") or {}).items() if k != ROLLOUT_ID_ANNOTATION
    }
    without_id["metadata"] = pod_meta
    state = {"template": without_id, "configs": {ref.key: ref.checksum for ref in tracking.refs}}
    digest = hashlib.sha256(json.dumps(state, sort_keys=True, separators=(",", ":")).encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def primary_hpa(canary: Canary, hpa: Mapping[str, Any]) -> Json:
    """``<hpa>-primary`` (``autoscaling/v2``) scaling ``<target>-primary`` as ``hpa`` scales the target."""
    source = hpa_v2_spec(hpa)
    ref = source.get("scaleTargetRef") or {}
    spec: Json = {
        "scaleTargetRef": {
            "apiVersion": ref.get("apiVersion", "apps/v1"),
            "kind": ref.get("kind", "Deployment"),
            "name": f"{canary.spec.target_ref.name}-primary",
        }
    }
    for field in ("minReplicas", "maxReplicas", "metrics", "behavior"):
        if source.get(field) is not None:
            spec[field] = source[field]
    bounds = canary.spec.autoscaler_ref.primary_scaler_replicas if canary.spec.autoscaler_ref else None
    if bounds is not None and bounds.min_replicas is not None:
        spec["minReplicas"] = bounds.min_replicas
    if bounds is not None and bounds.max_replicas is not None:
        spec["maxReplicas"] = bounds.max_replicas
    name = f"{(hpa.get('metadata') or {}).get('name')}-primary"
    labels = meta.without_flux((hpa.get("metadata") or {}).get("labels"))
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": meta.object_meta(canary, name, labels=labels),
        "spec": spec,
    }


def hpa_v2_spec(hpa: Mapping[str, Any]) -> Json:
    """The spec of an HPA manifest as ``autoscaling/v2`` reads it (the API server's conversion)."""
    version = str(hpa.get("apiVersion"))
    spec: Json = dict(hpa.get("spec") or {})
    if version in ("autoscaling/v2", "autoscaling/v2beta2"):
        return spec
    if version == "autoscaling/v1":
        cpu = spec.pop("targetCPUUtilizationPercentage", None)
        if cpu is not None:
            target = {"type": "Utilization", "averageUtilization": cpu}
            spec["metrics"] = [{"type": "Resource", "resource": {"name": "cpu", "target": target}}]
        return spec
    raise meta.RenderError(
        f"HorizontalPodAutoscaler {meta.name_of(hpa)}: {version} is not supported "
        "(Kubernetes serves autoscaling/v2 since 1.23): write it as autoscaling/v2"
    )


def _rename_spread_selectors(pod_spec: Json, target_name: str) -> None:
    """Point the pod's spread and anti-affinity selectors that name the target's pods at the primary's pods
    instead, or the primary's pods would spread against (or avoid) the canary's."""
    selectors = [c.get("labelSelector") for c in pod_spec.get("topologySpreadConstraints") or []]
    anti = (pod_spec.get("affinity") or {}).get("podAntiAffinity") or {}
    for term in anti.get("preferredDuringSchedulingIgnoredDuringExecution") or []:
        selectors.append((term.get("podAffinityTerm") or {}).get("labelSelector"))
    for term in anti.get("requiredDuringSchedulingIgnoredDuringExecution") or []:
        selectors.append(term.get("labelSelector"))
    for selector in selectors:
        if not isinstance(selector, dict):
            continue
        for expression in selector.get("matchExpressions") or []:
            values = expression.get("values") or []
            if expression.get("key") in meta.SELECTOR_LABELS and target_name in values:
                values[values.index(target_name)] = f"{target_name}-primary"
        for key, value in (selector.get("matchLabels") or {}).items():
            if key in meta.SELECTOR_LABELS and value == target_name:
                selector["matchLabels"][key] = f"{target_name}-primary"
