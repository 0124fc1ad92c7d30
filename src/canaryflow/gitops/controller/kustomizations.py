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

from collections.abc import Mapping
from typing import Any

from canaryflow.api.flux import common as flux
from canaryflow.api.flux.kustomize import KustomizationV1
from canaryflow.api.flux.status import KustomizationStatus, ResourceInventory
from canaryflow.gitops.controller import parse
from canaryflow.gitops.controller.context import DEPENDENCY_RETRY, Context, Result, conditions
from canaryflow.gitops.controller.objects import Key
from canaryflow.gitops.kustomize import inventory, prune
from canaryflow.gitops.kustomize.dependencies import DependencyStatus, dependencies_ready
from canaryflow.gitops.kustomize.reconcile import reconcile
from canaryflow.gitops.kustomize.substitute import merge_variables
from canaryflow.gitops.target.base import ObjRef


async def reconcile_kustomization(ctx: Context, key: Key, kustomization: KustomizationV1, failures: int) -> Result:
    gen = kustomization.metadata.generation or 0
    spec = kustomization.spec
    previous = await ctx.status(key, KustomizationStatus)
    source = source_of(kustomization)
    artifact = ctx.artifacts.get(source)
    if artifact is None:
        message = f"Source artifact not found: {source.kind} '{source.namespace}/{source.name}' is not ready"
        await ctx.not_ready(key, gen, flux.ARTIFACT_FAILED, message)
        return Result(DEPENDENCY_RETRY, (source,))
    waiting = await _unready_dependency(ctx, kustomization, artifact.revision)
    if waiting is not None:
        await ctx.not_ready(key, gen, flux.DEPENDENCY_NOT_READY, waiting)
        return Result(DEPENDENCY_RETRY)
    try:
        values = await variables(ctx, kustomization)
    except LookupError as exc:
        await ctx.not_ready(key, gen, flux.BUILD_FAILED, str(exc))
        return Result(spec.retry_interval_seconds)
    outcome = await reconcile(
        kustomization, artifact, inventory_of(previous), ctx.target, variables=values, clock=ctx.clock
    )
    applied = ResourceInventory(entries=[inventory.entry(ref) for ref in outcome.inventory])
    status = KustomizationStatus(
        observed_generation=gen,
        conditions=conditions(previous, *outcome.conditions),
        last_attempted_revision=artifact.revision,
        last_applied_revision=artifact.revision if outcome.ready else previous.last_applied_revision,
        # nothing applied (a failure before the apply): keep what was
        inventory=applied if outcome.ready or outcome.inventory else previous.inventory or applied,
        last_handled_reconcile_at=kustomization.requested_at,
    )
    await ctx.write(key, previous, status)
    written = [c for c in outcome.changes if c.action not in ("unchanged", "provided")]
    if written or not outcome.ready:
        summary = "\n".join(f"{c.ref.kind}/{c.ref.namespace + '/' if c.ref.namespace else ''}{c.ref.name} {c.action}"
                            for c in written)  # fmt: skip
        await ctx.emit(key, not outcome.ready, outcome.reason, summary or outcome.message)
    if not outcome.ready:
        return Result(spec.retry_interval_seconds)
    newly = not previous.ready or previous.last_applied_revision != artifact.revision
    return Result(spec.interval_seconds, tuple(await _dependents(ctx, key)) if newly else ())


def source_of(kustomization: KustomizationV1) -> Key:
    """The key of the source a Kustomization builds from (in its own namespace unless it names one)."""
    source = parse.builds_on(kustomization)
    assert source is not None  # every Kustomization names its source
    return source


def _dependency_keys(kustomization: KustomizationV1) -> list[Key]:
    own = kustomization.metadata.namespace
    return [Key("Kustomization", d.namespace or own, d.name) for d in kustomization.spec.depends_on or ()]


async def _unready_dependency(ctx: Context, kustomization: KustomizationV1, revision: str) -> str | None:
    """The first dependency that is not ready by Flux's rule (see dependencies_ready), or None."""
    depends_on = [(dep.namespace, dep.name) for dep in _dependency_keys(kustomization)]
    statuses = {}
    for dep_key in _dependency_keys(kustomization):
        dep_body = await ctx.objects.get(dep_key)
        if dep_body is None:
            continue
        status = await ctx.status(dep_key, KustomizationStatus)
        try:
            dep_source = str(source_of(parse.kustomization(dep_body)))
        except parse.InvalidObject as exc:  # its own reconcile says so (Stalled); here it is not ready
            dep_source = f"invalid: {exc}"
        statuses[(dep_key.namespace, dep_key.name)] = DependencyStatus(
            generation=parse.generation(dep_body),
            observed_generation=status.observed_generation or -1,
            ready=status.ready,
            source=dep_source,
            last_applied_revision=status.last_applied_revision,
        )
    ready, message = dependencies_ready(depends_on, statuses, source=str(source_of(kustomization)), revision=revision)
    return None if ready else message


async def _dependents(ctx: Context, key: Key) -> list[Key]:
    found = []
    for body in await ctx.objects.list("Kustomization"):
        try:
            other = parse.kustomization(body)
        except parse.InvalidObject:  # its own reconcile reports it; it depends on nothing until fixed
            continue
        if key in _dependency_keys(other):
            found.append(Key.of(body))
    return found


async def variables(ctx: Context, kustomization: KustomizationV1) -> dict[str, str]:
    """The variables of ``postBuild``: ``substituteFrom`` in order (later wins), the inline map over all. A
    missing source is an error unless marked ``optional``."""
    namespace = kustomization.metadata.namespace
    sources = []
    for ref in kustomization.spec.substitute_from:
        data = await ctx.objects.data(ref.kind, namespace, ref.name)
        if data is None:
            if ref.optional:
                continue
            raise LookupError(f"substituteFrom: {ref.kind} '{namespace}/{ref.name}' not found")
        sources.append(data)
    return merge_variables(kustomization.spec.variables, sources)


def inventory_of(status: KustomizationStatus | Mapping[str, Any]) -> list[ObjRef]:
    """What a status says was applied last: one written, or one read back as JSON (a finalizer's, a diff's)."""
    if isinstance(status, KustomizationStatus):
        return [inventory.from_entry(item) for item in status.inventory.entries] if status.inventory else []
    return [inventory.from_entry(item) for item in (status.get("inventory") or {}).get("entries") or []]


async def finalize_kustomization(ctx: Context, key: Key, body: dict[str, Any], status: dict[str, Any]) -> bool:
    """Delete what the deleted Kustomization ``key`` last applied (``status.inventory``) when its spec says
    ``prune: true`` and it is not suspended, as Flux does; otherwise leave everything. What is deleted, in which
    order and what is never touched is :func:`canaryflow.gitops.kustomize.prune.delete`'s rule, the same as a
    prune during a reconcile. Returns False when a delete failed (an event says which): the caller retries, and
    may, until it is True, keep the object (Kubernetes: its finalizer)."""
    try:
        spec = parse.kustomization(body).spec
    except parse.InvalidObject as exc:  # what it asks for is unknown: deleting by a guess would be worse
        await ctx.emit(key, True, flux.PRUNE_FAILED, f"spec unreadable, nothing was deleted: {exc}")
        return True
    if not spec.prune or spec.suspend:
        return True
    try:
        refs = prune.finalizer_order(inventory_of(status))
    except ValueError as exc:  # a hand-edited status: deleting by a guess would be worse than leaving things
        await ctx.emit(key, True, flux.PRUNE_FAILED, f"inventory unreadable, nothing was deleted: {exc}")
        return True
    pruned = await prune.delete(refs, key.name, key.namespace, ctx.target)
    if pruned.deleted:
        deleted = "\n".join(str(change) for change in pruned.deleted)
        await ctx.emit(key, False, flux.GARBAGE_COLLECTION_SUCCEEDED, deleted)
    if pruned.error is not None:
        left = ", ".join(str(ref) for ref in pruned.remaining)
        await ctx.emit(key, True, flux.PRUNE_FAILED, f"{pruned.error} (not deleted yet: {left})")
        return False
    return True
