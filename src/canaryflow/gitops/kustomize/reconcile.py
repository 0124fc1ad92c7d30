"""One Kustomization reconcile, as kustomize-controller runs it: build, transform, substitute, check, apply,
prune, check health, and say what happened in Flux's words.

A revision is applied whole or not at all: a build error, an unsupported kind or an object the target refuses
stops the reconcile before anything is written, and the last good revision keeps running. Only objects whose
live state differs are written, so a reconcile of an unchanged revision writes nothing, and one after a
``kubectl edit`` writes just the edited object back (drift correction). A prune only ever deletes what the
previous inventory held, was applied by this Kustomization, and is not marked ``prune: disabled``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from canaryflow.api.flux import common as flux
from canaryflow.api.flux.kustomize import KustomizationV1
from canaryflow.clock import Clock, SystemClock
from canaryflow.gitops.kustomize import inventory, prune
from canaryflow.gitops.kustomize.build import ArtifactError, BuildError, build
from canaryflow.gitops.kustomize.health import wait_healthy
from canaryflow.gitops.kustomize.outcome import Outcome, Report
from canaryflow.gitops.kustomize.overlay import transform
from canaryflow.gitops.kustomize.prune import NAME_LABEL, NAMESPACE_LABEL
from canaryflow.gitops.kustomize.substitute import substitute
from canaryflow.gitops.target.base import (
    ApplyError,
    Change,
    ObjRef,
    Support,
    Target,
    cluster_scoped_kinds,
    is_cluster_scoped,
)

FIELD_MANAGER = "canaryflow"
SSA_ANNOTATION = "kustomize.toolkit.fluxcd.io/ssa"
SSA_POLICIES = frozenset({"override", "merge", "ifnotpresent", "ignore"})


class ArtifactLike(Protocol):
    """What a reconcile needs of a source artifact (canaryflow.gitops.source.base.Artifact)."""

    @property
    def revision(self) -> str: ...

    @property
    def path(self) -> Path: ...


class Failed(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


async def reconcile(
    kustomization: KustomizationV1,
    artifact: ArtifactLike,
    previous: Sequence[ObjRef],
    target: Target,
    *,
    variables: Mapping[str, str] = {},
    clock: Clock | None = None,
    strict_substitution: bool = True,
) -> Outcome:
    """``variables`` are those from ``substituteFrom`` (resolved by the caller, later sources winning); the
    spec's inline ``substitute`` wins over them."""
    spec = kustomization.spec
    report = Report(artifact.revision, clock or SystemClock())
    try:
        # kustomize and YAML parsing take up to seconds on a large tree: not on the event loop, which also
        # serves the runtime's data plane and canaries
        objects = await asyncio.to_thread(desired, kustomization, artifact, variables, strict_substitution)
        _check_support(objects, target)
    except Failed as failed:
        return report.failed(failed.reason, failed.message, previous)
    ordered = inventory.ordered(objects)
    skipped = {ObjRef.of(obj).id for obj in ordered if await _skipped(obj, target)}
    try:
        applied = await target.apply([o for o in ordered if ObjRef.of(o).id not in skipped], manager=FIELD_MANAGER)
    except ApplyError as exc:
        problems = "\n".join(exc.problems)
        return report.failed(flux.RECONCILIATION_FAILED, f"apply failed, nothing was applied:\n{problems}", previous)
    current = tuple(ObjRef.of(obj) for obj in ordered)
    by_id = {change.ref.id: change for change in applied}
    changes = [by_id.get(ref.id) or Change(ref, "skipped") for ref in current]
    pruned, kept, prune_error = await _prune(kustomization, previous, current, target)
    changes += pruned
    if prune_error:
        return report.failed(flux.PRUNE_FAILED, prune_error, current + kept, changes, applied=True)
    checks = tuple(ref for ref in current if ref.id not in skipped) if spec.wait else health_checks(kustomization)
    if not checks:
        return report.succeeded(changes, current, None)
    result = await wait_healthy(target, checks, spec.timeout_seconds, report.clock)
    if not result.ok:
        return report.failed(flux.HEALTH_CHECK_FAILED, result.message, current, changes, applied=True)
    return report.succeeded(changes, current, result.message)


def health_checks(kustomization: KustomizationV1) -> tuple[ObjRef, ...]:
    """``healthChecks`` as references (an entry without a namespace names a cluster-scoped object)."""
    return tuple(ObjRef(c.api_version or "", c.kind, c.namespace or "", c.name)
                 for c in kustomization.spec.health_checks or ())  # fmt: skip


def desired(
    kustomization: KustomizationV1, artifact: ArtifactLike, variables: Mapping[str, str], strict: bool
) -> list[dict[str, Any]]:
    """The revision's objects as they are to be applied; every problem is a Failed."""
    spec, meta = kustomization.spec, kustomization.metadata
    try:
        objects = transform(build(artifact.path, spec.build_path), spec)
        if spec.substitutes or variables:
            objects = substitute(objects, {**variables, **spec.variables}, strict=strict)
    except ArtifactError as exc:
        raise Failed(flux.ARTIFACT_FAILED, str(exc)) from None
    except BuildError as exc:
        raise Failed(flux.BUILD_FAILED, str(exc)) from None
    extra = cluster_scoped_kinds(objects)
    problems = []
    out = []
    for obj in objects:
        metadata = dict(obj.get("metadata") or {})
        api_version, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
        if is_cluster_scoped(api_version, kind, extra):
            metadata.pop("namespace", None)  # the API server ignores it; the inventory must not carry it
        elif not metadata.get("namespace"):
            problems.append(f"{kind}/{metadata.get('name')}: namespace not specified (set metadata.namespace, "
                            "or spec.targetNamespace on the Kustomization)")  # fmt: skip
            continue
        labels = {**(metadata.get("labels") or {}), NAME_LABEL: meta.name, NAMESPACE_LABEL: meta.namespace}
        out.append({**obj, "metadata": {**metadata, "labels": labels}})
    if problems:
        raise Failed(flux.RECONCILIATION_FAILED, "\n".join(problems))
    return out


async def _skipped(obj: Mapping[str, Any], target: Target) -> bool:
    """The object's apply policy (``kustomize.toolkit.fluxcd.io/ssa``): ``Ignore`` is never applied,
    ``IfNotPresent`` only when it does not exist yet. A skipped object stays in the inventory, so it is not
    pruned either. (``Merge`` is applied as ``Override`` is: the targets keep no other field managers.)"""
    policy = _metadata_mark(obj, SSA_ANNOTATION).lower()
    if policy == "ignore":
        return True
    return policy == "ifnotpresent" and await target.get(ObjRef.of(obj)) is not None


def _metadata_mark(obj: Mapping[str, Any], key: str) -> str:
    metadata = obj.get("metadata") or {}
    return str({**(metadata.get("labels") or {}), **(metadata.get("annotations") or {})}.get(key, ""))


def _check_support(objects: Sequence[Mapping[str, Any]], target: Target) -> None:
    """Refuse the whole revision if the target cannot hold one of its kinds: applying the rest would report
    Ready for something that is not running."""
    problems = []
    for obj in objects:
        ref = ObjRef.of(obj)
        policy = _metadata_mark(obj, SSA_ANNOTATION)
        if policy and policy.lower() not in SSA_POLICIES:
            known = "Override, Merge, IfNotPresent, Ignore"
            problems.append(f"{ref}: {SSA_ANNOTATION}: unknown policy {policy!r} ({known})")
        support, message = target.support(ref.api_version, ref.kind)
        if support is Support.UNSUPPORTED:
            problems.append(f"{ref}: {message}")
    if problems:
        raise Failed(flux.RECONCILIATION_FAILED, "nothing was applied:\n" + "\n".join(problems))


async def _prune(
    kustomization: KustomizationV1, previous: Sequence[ObjRef], current: Sequence[ObjRef], target: Target
) -> tuple[list[Change], tuple[ObjRef, ...], str | None]:
    """Delete what ``previous`` had and ``current`` lacks (never anything else; the rules are
    :func:`canaryflow.gitops.kustomize.prune.delete`'s). Returns the deletions, the stale objects still there
    (kept in the inventory so the next reconcile retries them) and an error."""
    if not kustomization.spec.prune:
        return [], (), None
    meta = kustomization.metadata
    pruned = await prune.delete(inventory.stale(previous, current), meta.name, meta.namespace, target)
    return list(pruned.deleted), pruned.remaining, pruned.error
