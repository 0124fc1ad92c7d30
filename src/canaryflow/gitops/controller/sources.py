"""GitRepository: fetch the ref, keep the artifact, and wake what builds from it when its revision changes."""

from __future__ import annotations

from canaryflow.api.flux import common as flux
from canaryflow.api.flux.source import GitRepository
from canaryflow.api.flux.status import Artifact as StoredArtifact
from canaryflow.api.flux.status import GitRepositoryStatus
from canaryflow.api.timestamps import rfc3339
from canaryflow.gitops.controller.context import Context, Result, conditions
from canaryflow.gitops.controller.objects import Key
from canaryflow.gitops.source.base import GitAuth, GitRef, GitSpec, SourceError


async def reconcile_git_repository(ctx: Context, key: Key, repo: GitRepository, failures: int) -> Result:
    every = repo.spec.interval_seconds
    gen = repo.metadata.generation or 0
    previous = await ctx.status(key, GitRepositoryStatus)
    try:
        secret = await ctx.secret(key.namespace, repo.spec.secret_ref)
        artifact = await ctx.source.fetch(f"{key.namespace}/{key.name}", git_spec(repo, secret))
    except (SourceError, LookupError) as exc:
        message = str(exc)
        failed = previous.model_copy(update={
            "observed_generation": gen,
            "conditions": conditions(
                previous,
                ctx.condition(flux.READY, False, flux.GIT_OPERATION_FAILED, message, gen),
                ctx.condition(flux.FETCH_FAILED, True, flux.GIT_OPERATION_FAILED, message, gen),
            ),
            "last_handled_reconcile_at": repo.requested_at or previous.last_handled_reconcile_at,
        })  # fmt: skip
        await ctx.objects.set_status(key, failed)
        if not previous.condition(flux.FETCH_FAILED):
            await ctx.emit(key, True, flux.GIT_OPERATION_FAILED, message)
        return Result.retry(failures, every)
    known = ctx.artifacts.get(key)
    ctx.artifacts[key] = artifact
    message = f"stored artifact for revision '{artifact.revision}'"
    before = previous.artifact
    status = GitRepositoryStatus(
        observed_generation=gen,
        conditions=conditions(previous, ctx.condition(flux.READY, True, flux.SUCCEEDED, message, gen)),
        artifact=StoredArtifact(
            revision=artifact.revision,
            digest=artifact.digest,
            path=str(artifact.path),
            url=artifact.url,
            last_update_time=before.last_update_time
            if before and before.revision == artifact.revision
            else rfc3339(ctx.now()),
        ),
        observed_ignore=repo.spec.ignore,
        last_handled_reconcile_at=repo.requested_at,
    )
    await ctx.write(key, previous, status)
    if before is None or before.revision != artifact.revision:
        await ctx.emit(key, False, flux.NEW_ARTIFACT, message)
    wake: tuple[Key, ...] = ()
    if known is None or known.revision != artifact.revision:
        wake = tuple(await ctx.dependents("Kustomization", key)) + tuple(
            await ctx.dependents("ImageUpdateAutomation", key)
        )
    return Result(every, wake)


def git_spec(repo: GitRepository, secret: dict[str, str] | None) -> GitSpec:
    """What the Source fetches for ``repo`` (its own plain spec: the git seam knows no Flux shapes)."""
    ref = repo.spec.reference
    return GitSpec(
        url=repo.spec.url,
        ref=GitRef(branch=ref.branch, tag=ref.tag, semver=ref.semver, name=ref.name, commit=ref.commit),
        ignore=repo.spec.ignore,
        timeout=repo.spec.timeout_seconds,
        auth=GitAuth.from_secret(secret) if secret else None,
    )
