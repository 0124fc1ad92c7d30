"""The GitOps controller wired for Kubernetes, and the watch that keeps it following the cluster's Flux objects.

``canaryflow gitops-controller`` (``kube/gitops/run.py``) starts both: :func:`kube_gitops` builds the controller
(git sources fetched under a work directory, Kustomizations applied with server-side apply, Flux objects and
their status in the API server); :func:`follow` tracks objects as they are created, changed and deleted, and
``controller.close()`` stops every reconcile task once ``follow`` is cancelled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from canaryflow.clock import SystemClock
from canaryflow.gitops.controller import RECONCILERS
from canaryflow.gitops.controller.context import Context, Emitter
from canaryflow.gitops.controller.loop import GitOpsController, Timing
from canaryflow.gitops.controller.objects import Key
from canaryflow.gitops.source.git import GitSource
from canaryflow.kube.client import Api, Kind
from canaryflow.kube.gitops.events import KubeFluxEvents
from canaryflow.kube.gitops.finalizer import KustomizationFinalizer
from canaryflow.kube.gitops.objects import KubeFluxObjects
from canaryflow.kube.gitops.target import KubeTarget

#: What Flux's ``flux reconcile`` sets to ask for a reconcile now.
REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"


def kube_gitops(
    api: Api, workdir: Path, *, events: Emitter | None = None, timing: Timing | None = None
) -> GitOpsController:
    """A controller for every Flux kind, to be driven by :func:`follow` (whose first list tracks every existing
    object, so ``start()`` is not needed). ``events`` defaults to Kubernetes Events on the Flux objects, as Flux
    records them."""
    objects, clock = KubeFluxObjects(api), SystemClock()
    ctx = Context(
        objects=objects,
        source=GitSource(workdir / "sources"),
        target=KubeTarget(api, clock=clock),
        workdir=workdir / "work",
        clock=clock,
        events=events if events is not None else KubeFluxEvents(api, objects, clock=clock),
    )
    return GitOpsController(ctx, RECONCILERS, timing)


async def follow(api: Api, controller: GitOpsController, namespaces: Sequence[str] = ()) -> None:
    """Watch every Flux kind the controller reconciles, in ``namespaces`` (one watch each) or in all of them when
    none are given, until cancelled. Only what is followed is narrowed: a Kustomization in a followed namespace
    still applies wherever it says. A new object, a changed spec
        (``metadata.generation``) or a ``reconcile.fluxcd.io/requestedAt`` annotation reconciles it now; a deleted
        one is forgotten. Status writes (the controller's own) change neither, so they wake nothing. A Kustomization
    carries Flux's finalizer: its deletion is finalized (see :mod:`canaryflow.kube.gitops.finalizer`) before it
    goes."""
    objects = controller.ctx.objects
    if not isinstance(objects, KubeFluxObjects):
        raise TypeError(f"follow() needs a controller built by kube_gitops(), not one over {type(objects).__name__}")
    finalizer: KustomizationFinalizer | None = None
    try:
        async with asyncio.TaskGroup() as group:
            for kind_name in controller.reconcilers:
                kind = await objects.kind(kind_name)
                if kind_name == "Kustomization":
                    finalizer = KustomizationFinalizer(api, controller, kind)
                for namespace in namespaces or (None,):
                    watching = _follow_kind(
                        api, controller, kind, finalizer if kind_name == "Kustomization" else None, namespace
                    )
                    group.create_task(watching, name=f"gitops watch {kind_name} in {namespace or 'all namespaces'}")
    finally:
        if finalizer is not None:
            await finalizer.close()


async def _follow_kind(
    api: Api, controller: GitOpsController, kind: Kind, finalizer: KustomizationFinalizer | None, namespace: str | None
) -> None:
    """``finalizer`` (Kustomizations only) puts Flux's finalizer on each object and finalizes a deleting one,
    which is then no longer reconciled."""
    seen: dict[Key, tuple[int, str]] = {}
    async for event in api.watch(kind, namespace):
        meta = event.object.get("metadata") or {}
        key = Key(kind.kind, str(meta.get("namespace") or ""), str(meta.get("name")))
        if event.type == "DELETED":
            seen.pop(key, None)
            await controller.forget(key)
            continue
        if finalizer is not None and await finalizer.observe(key, event.object):
            seen.pop(key, None)
            continue
        mark = (int(meta.get("generation") or 0), str((meta.get("annotations") or {}).get(REQUESTED_AT, "")))
        if seen.get(key) == mark:
            continue
        seen[key] = mark
        controller.track(key)
