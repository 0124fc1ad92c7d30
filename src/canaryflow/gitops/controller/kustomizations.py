"""Kustomization: wait for the source and the dependencies, then build, apply, prune and check health.

The heavy lifting is :func:`canaryflow.gitops.kustomize.reconcile.reconcile`; this module decides *whether*
to run it (suspended, artifact missing, dependency not ready), resolves ``substituteFrom``, keeps the inventory
in the status (so a prune after a restart still knows what was applied) and wakes the Kustomizations that
depend on this one as soon as it is ready, instead of leaving them to their 30-second re-check.

:func:`finalize_kustomization` is Flux's finalizer: what a deleted Kustomization leaves behind. Each runtime
calls it when it learns of the deletion (the local store, Kubernetes' ``deletionTimestamp``) with the last body
and status the object had.
"""

from __future__ import annotations

from typing import Any

from canaryflow.api.flux import common as flux
from canaryflow.gitops import conditions as cond
from canaryflow.gitops.controller import specs
from canaryflow.gitops.controller.context import Context, Result
from canaryflow.gitops.controller.objects import Key
from canaryflow.gitops.kustomize import inventory, prune
from canaryflow.gitops.kustomize.dependencies import DependencyStatus, dependencies_ready
from canaryflow.gitops.kustomize.reconcile import reconcile
from canaryflow.gitops.kustomize.substitute import merge_variables
from canaryflow.gitops.target.base import ObjRef


async def reconcile_kustomization(ctx: Context, key: Key, body: dict[str, Any], failures: int) -> Result:
    gen = specs.generation(body)
    previous = await ctx.objects.status(key)
    source = specs.ref(body, "sourceRef", "GitRepository", key)
    artifact = ctx.artifacts.get(source)
    if artifact is None:
        message = f"Source artifact not found: {source.kind} '{source.namespace}/{source.name}' is not ready"
        await ctx.not_ready(key, gen, flux.ARTIFACT_FAILED, message)
        return Result(specs.DEPENDENCY_RETRY, (source,))
    waiting = await _unready_dependency(ctx, key, body, artifact.revision)
    if waiting is not None:
        await ctx.not_ready(key, gen, flux.DEPENDENCY_NOT_READY, waiting)
        return Result(specs.DEPENDENCY_RETRY)
    try:
        values = await variables(ctx, key, body)
    except LookupError as exc:
        await ctx.not_ready(key, gen, flux.BUILD_FAILED, str(exc))
        return Result(specs.retry_interval(body))
    outcome = await reconcile(
        specs.kustomization_spec(key, body),
        artifact,
        inventory_of(previous),
        ctx.target,
        variables=values,
        clock=ctx.clock,
    )
    status: dict[str, Any] = {
        "observedGeneration": gen,
        "conditions": cond.merge(previous.get("conditions") or [], list(outcome.conditions)),
        "lastAttemptedRevision": artifact.revision,
        "lastAppliedRevision": artifact.revision if outcome.ready else previous.get("lastAppliedRevision"),
        "inventory": {"entries": [inventory.entry(ref) for ref in outcome.inventory]},
    }
    requested = ((body.get("metadata") or {}).get("annotations") or {}).get("reconcile.fluxcd.io/requestedAt")
    if requested:
        status["lastHandledReconcileAt"] = requested
    if not outcome.ready and not outcome.inventory:
        status["inventory"] = previous.get("inventory") or {"entries": []}  # nothing applied: keep what was
    if status != previous:
        await ctx.objects.set_status(key, status)
    written = [c for c in outcome.changes if c.action not in ("unchanged", "provided")]
    if written or not outcome.ready:
        summary = "\n".join(f"{c.ref.kind}/{c.ref.namespace + '/' if c.ref.namespace else ''}{c.ref.name} {c.action}"
                            for c in written)  # fmt: skip
        await ctx.emit(key, not outcome.ready, outcome.reason, summary or outcome.message)
    if not outcome.ready:
        return Result(specs.retry_interval(body))
    newly = not cond.is_ready(previous) or previous.get("lastAppliedRevision") != artifact.revision
    return Result(specs.interval(body), tuple(await _dependents(ctx, key)) if newly else ())


async def _unready_dependency(ctx: Context, key: Key, body: dict[str, Any], revision: str) -> str | None:
    """The first dependency that is not ready by Flux's rule (see dependencies_ready), or None."""
    source = specs.ref(body, "sourceRef", "GitRepository", key)
    depends_on = [
        (str(d.get("namespace") or key.namespace), str(d["name"])) for d in specs.spec(body).get("dependsOn") or []
    ]
    statuses = {}
    for namespace, name in depends_on:
        dep_key = Key("Kustomization", namespace, name)
        dep_body = await ctx.objects.get(dep_key)
        if dep_body is None:
            continue
        status = await ctx.objects.status(dep_key)
        statuses[(namespace, name)] = DependencyStatus(
            generation=specs.generation(dep_body),
            observed_generation=int(status.get("observedGeneration") or -1),
            ready=cond.is_ready(status),
            source=str(specs.ref(dep_body, "sourceRef", "GitRepository", dep_key)),
            last_applied_revision=status.get("lastAppliedRevision"),
        )
    ready, message = dependencies_ready(depends_on, statuses, source=str(source), revision=revision)
    return None if ready else message


async def _dependents(ctx: Context, key: Key) -> list[Key]:
    found = []
    for body in await ctx.objects.list("Kustomization"):
        other = Key.of(body)
        for dep in specs.spec(body).get("dependsOn") or []:
            if dep.get("name") == key.name and (dep.get("namespace") or other.namespace) == key.namespace:
                found.append(other)
    return found


async def variables(ctx: Context, key: Key, body: dict[str, Any]) -> dict[str, str]:
    """The variables of ``postBuild``: ``substituteFrom`` in order (later wins), the inline map over all. A
    missing source is an error unless marked ``optional``."""
    sources = []
    for kind, name, optional in specs.substitute_from(body):
        data = await ctx.objects.data(kind, key.namespace, name)
        if data is None:
            if optional:
                continue
            raise LookupError(f"substituteFrom: {kind} '{key.namespace}/{name}' not found")
        sources.append(data)
    inline = (specs.spec(body).get("postBuild") or {}).get("substitute") or {}
    return merge_variables({str(k): str(v) for k, v in inline.items()}, sources)


def inventory_of(status: dict[str, Any]) -> list[ObjRef]:
    return [inventory.from_entry(item) for item in (status.get("inventory") or {}).get("entries") or []]


#: Event reasons of a finalization, as Flux's controllers name a finished and a failed garbage collection.
GARBAGE_COLLECTED = flux.GARBAGE_COLLECTION_SUCCEEDED
PRUNE_FAILED = flux.PRUNE_FAILED


async def finalize_kustomization(ctx: Context, key: Key, body: dict[str, Any], status: dict[str, Any]) -> bool:
    """Delete what the deleted Kustomization ``key`` last applied (``status.inventory``) when its spec says
    ``prune: true`` and it is not suspended, as Flux does; otherwise leave everything. What is deleted, in which
    order and what is never touched is :func:`canaryflow.gitops.kustomize.prune.delete`'s rule, the same as a
    prune during a reconcile. Returns False when a delete failed (an event says which): the caller retries, and
    may, until it is True, keep the object (Kubernetes: its finalizer)."""
    spec = specs.spec(body)
    if spec.get("prune") is not True or spec.get("suspend") is True:
        return True
    try:
        refs = prune.finalizer_order(inventory_of(status))
    except ValueError as exc:  # a hand-edited status: deleting by a guess would be worse than leaving things
        await ctx.emit(key, True, PRUNE_FAILED, f"inventory unreadable, nothing was deleted: {exc}")
        return True
    pruned = await prune.delete(refs, key.name, key.namespace, ctx.target)
    if pruned.deleted:
        await ctx.emit(key, False, GARBAGE_COLLECTED, "\n".join(str(change) for change in pruned.deleted))
    if pruned.error is not None:
        left = ", ".join(str(ref) for ref in pruned.remaining)
        await ctx.emit(key, True, PRUNE_FAILED, f"{pruned.error} (not deleted yet: {left})")
        return False
    return True
