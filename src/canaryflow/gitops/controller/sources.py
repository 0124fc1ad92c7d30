"""GitRepository: fetch the ref, keep the artifact, and wake what builds from it when its revision changes."""

from __future__ import annotations

from typing import Any

from canaryflow.api.flux import common as flux
from canaryflow.api.timestamps import rfc3339
from canaryflow.gitops import conditions as cond
from canaryflow.gitops.controller import specs
from canaryflow.gitops.controller.context import Context, Result
from canaryflow.gitops.controller.objects import Key
from canaryflow.gitops.source.base import SourceError


async def reconcile_git_repository(ctx: Context, key: Key, body: dict[str, Any], failures: int) -> Result:
    every = specs.interval(body)
    gen = specs.generation(body)
    previous = await ctx.objects.status(key)
    try:
        secret = await ctx.secret(key.namespace, specs.spec(body).get("secretRef"))
        artifact = await ctx.source.fetch(f"{key.namespace}/{key.name}", specs.git_spec(body, secret))
    except (SourceError, LookupError) as exc:
        message = str(exc)
        status = {
            **previous,
            "observedGeneration": gen,
            "conditions": cond.merge(
                previous.get("conditions") or [],
                [
                    cond.condition(flux.READY, False, flux.GIT_OPERATION_FAILED, message, gen, ctx.now()),
                    cond.condition(flux.FETCH_FAILED, True, flux.GIT_OPERATION_FAILED, message, gen, ctx.now()),
                ],
            ),
        }
        await ctx.objects.set_status(key, _with_request(status, body))
        if not cond.find(previous, flux.FETCH_FAILED):
            await ctx.emit(key, True, flux.GIT_OPERATION_FAILED, message)
        return Result.retry(failures, every)
    known = ctx.artifacts.get(key)
    ctx.artifacts[key] = artifact
    message = f"stored artifact for revision '{artifact.revision}'"
    status = {
        "observedGeneration": gen,
        "conditions": cond.merge(
            previous.get("conditions") or [],
            [cond.condition(flux.READY, True, flux.SUCCEEDED, message, gen, ctx.now())],
        ),
        "artifact": {
            "revision": artifact.revision,
            "digest": artifact.digest,
            "path": str(artifact.path),
            "url": artifact.url,
            "lastUpdateTime": (previous.get("artifact") or {}).get("lastUpdateTime")
            if (previous.get("artifact") or {}).get("revision") == artifact.revision
            else rfc3339(ctx.now()),
        },
    }
    status = _with_request(status, body)
    if status != previous:
        await ctx.objects.set_status(key, status)
    if (previous.get("artifact") or {}).get("revision") != artifact.revision:
        await ctx.emit(key, False, "NewArtifact", message)
    wake: tuple[Key, ...] = ()
    if known is None or known.revision != artifact.revision:
        wake = tuple(await ctx.dependents("Kustomization", "sourceRef", key)) + tuple(
            await ctx.dependents("ImageUpdateAutomation", "sourceRef", key)
        )
    return Result(every, wake)


def _with_request(status: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """Echo ``reconcile.fluxcd.io/requestedAt`` as Flux does, so ``flux reconcile`` knows it was handled."""
    requested = ((body.get("metadata") or {}).get("annotations") or {}).get("reconcile.fluxcd.io/requestedAt")
    return {**status, "lastHandledReconcileAt": requested} if requested else status
