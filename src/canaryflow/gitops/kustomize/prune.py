"""Deleting what a Kustomization applied: the objects a revision dropped (a prune during a reconcile) and, when
the Kustomization itself is deleted with ``prune: true``, its whole last inventory (Flux's finalizer).

Both go through :func:`delete`, so both follow the same rules: only the refs given (always taken from the
inventory: an object that was never in it is never deleted), in the order given (the reverse of the apply
order, so Namespaces and CRDs go last), never one marked ``kustomize.toolkit.fluxcd.io/prune: disabled``, never
one labelled for another Kustomization (it was taken over), and never one that is already gone. The first
failure stops the run: what was not deleted yet is returned, for the caller to keep and retry.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from canaryflow.gitops.kustomize import inventory
from canaryflow.gitops.target.base import Change, ObjRef, Target

#: Flux labels every object it applies with its Kustomization; a prune skips objects another one took over.
NAME_LABEL = "kustomize.toolkit.fluxcd.io/name"
NAMESPACE_LABEL = "kustomize.toolkit.fluxcd.io/namespace"


@dataclasses.dataclass(frozen=True, slots=True)
class Pruned:
    deleted: tuple[Change, ...] = ()
    #: Refs left alone, each with why (``prune disabled``, ``owned by Kustomization ns/name``).
    kept: tuple[tuple[ObjRef, str], ...] = ()
    #: The ref whose delete failed and every ref after it: still live (or unknown), to be kept and retried.
    remaining: tuple[ObjRef, ...] = ()
    error: str | None = None


def owned(live: Mapping[str, Any], name: str, namespace: str) -> bool:
    """An object without Flux's labels is still ours (applied before labels were kept); one labelled for another
    Kustomization was taken over by it and is not deleted here."""
    labels = (live.get("metadata") or {}).get("labels") or {}
    label_name, label_namespace = labels.get(NAME_LABEL), labels.get(NAMESPACE_LABEL)
    return (label_name is None and label_namespace is None) or (label_name == name and label_namespace == namespace)


def why_kept(live: Mapping[str, Any], name: str, namespace: str) -> str | None:
    """Why the Kustomization ``namespace/name`` must not delete ``live``; None when it may."""
    if inventory.prune_disabled(live):
        return f"{inventory.PRUNE_ANNOTATION}: disabled"
    if not owned(live, name, namespace):
        labels = (live.get("metadata") or {}).get("labels") or {}
        return f"owned by Kustomization {labels.get(NAMESPACE_LABEL)}/{labels.get(NAME_LABEL)}"
    return None


def finalizer_order(entries: Sequence[ObjRef]) -> list[ObjRef]:
    """A whole inventory in delete order (reverse apply order: Namespaces and CRDs last), each object once."""
    return inventory.stale(entries, ())


async def delete(refs: Sequence[ObjRef], name: str, namespace: str, target: Target) -> Pruned:
    """Delete ``refs`` in the order given, for the Kustomization ``namespace/name``, by the rules above."""
    deleted: list[Change] = []
    kept: list[tuple[ObjRef, str]] = []
    for index, ref in enumerate(refs):
        try:
            live = await target.get(ref)
            if live is None:
                continue
            reason = why_kept(live, name, namespace)
            if reason is not None:
                kept.append((ref, reason))
                continue
            if await target.delete(ref):
                deleted.append(Change(ref, "deleted"))
        except Exception as exc:  # any target failure (API error, store error): stop, keep the rest for a retry
            return Pruned(tuple(deleted), tuple(kept), tuple(refs[index:]), f"prune failed for {ref}: {exc}")
    return Pruned(tuple(deleted), tuple(kept))
