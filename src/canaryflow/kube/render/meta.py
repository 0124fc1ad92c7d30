"""Metadata shared by every rendered object: names, the selector label, owner references, Flux-safe annotations.

Flagger filters metadata in two ways and both are kept: objects its routers create carry annotations that stop
Flux and Helm from reverting them (:func:`router_annotations`), and metadata copied from the user's workload
loses every key that belongs to Flux (:func:`without_flux`), so Flux does not think it owns the copy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from canaryflow.api.canary import API_VERSION, Canary

Json = dict[str, Any]

#: The pod labels Flagger builds selectors from, in the order it looks for them (its ``-selector-labels`` flag).
SELECTOR_LABELS = ("app", "name", "app.kubernetes.io/name")
_FLUX_MARKER = "toolkit.fluxcd.io"
#: What Flagger's routers add to the annotations of the objects they own, so GitOps tools leave them alone.
_HANDS_OFF = {
    "kustomize.toolkit.fluxcd.io/reconcile": "disabled",
    "helm.toolkit.fluxcd.io/driftDetection": "disabled",
}


class RenderError(Exception):
    """The manifests do not hold what the operator needs to build its objects (a missing target, no selector
    label, an unsupported kind...); the message says which object and what to change."""


@dataclasses.dataclass(frozen=True, slots=True)
class ServiceNames:
    """``<svc>``, ``<svc>-primary`` and ``<svc>-canary``: the names of the Services, DestinationRules and
    VirtualService of one Canary."""

    apex: str
    primary: str
    canary: str

    @classmethod
    def of(cls, canary: Canary) -> ServiceNames:
        apex = canary.service_name
        return cls(apex, f"{apex}-primary", f"{apex}-canary")


def selector_label(workload: Mapping[str, Any]) -> tuple[str, str]:
    """The first of ``app``, ``name`` and ``app.kubernetes.io/name`` in the workload's ``matchLabels``, and its
    value: the primary's pods get ``<value>-primary``, the Services select on this key."""
    selector = workload.get("spec", {}).get("selector") or {}
    match_labels = selector.get("matchLabels") or {}
    for key in SELECTOR_LABELS:
        if key in match_labels:
            return key, str(match_labels[key])
    raise RenderError(
        f"{workload.get('kind', 'workload')} {name_of(workload)}: spec.selector.matchLabels must contain one of "
        f"{', '.join(SELECTOR_LABELS)} (the label canaryflow, like Flagger, selects primary and canary pods by)"
    )


def name_of(obj: Mapping[str, Any]) -> str:
    """``namespace/name`` of a manifest (namespace ``default`` when it has none, as kubectl applies it)."""
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace') or 'default'}/{meta.get('name', '<unnamed>')}"


def owner_reference(canary: Canary) -> Json:
    """The controller reference to the Canary that makes Kubernetes delete the object with it.

    Offline there is no uid yet: a placeholder names the Canary instead (so rendered output must not be applied
    as it is: the garbage collector deletes objects whose owner uid does not exist).
    """
    uid = canary.metadata.uid or f"<uid of Canary {canary.metadata.namespace}/{canary.metadata.name}>"
    return {
        "apiVersion": API_VERSION,
        "kind": "Canary",
        "name": canary.metadata.name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def object_meta(
    canary: Canary,
    name: str,
    *,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> Json:
    """``metadata`` of an object owned by the Canary, in its namespace; empty maps are left out, as Go's
    ``omitempty`` leaves them out of what Flagger sends."""
    meta: Json = {"name": name, "namespace": canary.metadata.namespace}
    if labels:
        meta["labels"] = dict(labels)
    if annotations:
        meta["annotations"] = dict(annotations)
    meta["ownerReferences"] = [owner_reference(canary)]
    return meta


def router_annotations(annotations: Mapping[str, str] | None) -> dict[str, str]:
    """Annotations of a Service or VirtualService the operator owns: the user's, plus the two that stop Flux's
    kustomize and Helm controllers from reverting the operator's changes."""
    return {**(annotations or {}), **_HANDS_OFF}


def without_flux(metadata: Mapping[str, str] | None) -> dict[str, str]:
    """Labels or annotations copied from a user's object, without Flux's own keys (a copy Flux thinks it owns
    would be pruned by it)."""
    return {k: v for k, v in (metadata or {}).items() if _FLUX_MARKER not in k}


def primary_labels(labels: Mapping[str, str] | None, key: str, value: str) -> dict[str, str]:
    """``labels`` without Flux's keys, with the selector label ``key`` set to the primary's ``value``."""
    out = {k: v for k, v in without_flux(labels).items() if k != key}
    out[key] = value
    return out
