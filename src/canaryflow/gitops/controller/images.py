"""ImageRepository (scan tags) and ImagePolicy (pick the latest): each wakes the next step when its answer
changes, so a pushed tag reaches the automation without waiting for every interval in the chain."""

from __future__ import annotations

from canaryflow.api.flux import common as flux
from canaryflow.api.flux.image import ImagePolicy, ImageRepository, ImageRepositorySpec
from canaryflow.api.flux.status import ImagePolicyStatus, ImageRef, ImageRepositoryStatus, ScanResult
from canaryflow.api.timestamps import rfc3339
from canaryflow.gitops.controller import parse
from canaryflow.gitops.controller.context import DEPENDENCY_RETRY, Context, Result, conditions
from canaryflow.gitops.controller.objects import Key
from canaryflow.gitops.image import policy as policies
from canaryflow.gitops.image import registry
from canaryflow.gitops.image.base import RegistryAuth

#: An ImagePolicy has no interval: it runs when its repository's tags change, and this often besides.
POLICY_RECHECK = 600.0
#: How many of the newest tags the status lists.
LATEST_TAGS = 10


async def reconcile_image_repository(ctx: Context, key: Key, repo: ImageRepository, failures: int) -> Result:
    spec = repo.spec
    gen = repo.metadata.generation or 0
    previous = await ctx.status(key, ImageRepositoryStatus)
    image = spec.image
    try:
        host = registry.parse_image(image).api_host
    except registry.RegistryError as exc:  # no scan can succeed: Flux stalls until the spec changes
        return await ctx.stalled(key, gen, flux.IMAGE_URL_INVALID, str(exc))
    try:
        secret = await ctx.secret(key.namespace, spec.secret_ref)
        auth = None
        if secret is not None:
            if ".dockerconfigjson" not in secret:
                raise LookupError(f"secret '{key.namespace}/{secret_name(spec)}' has no .dockerconfigjson")
            auth = RegistryAuth.from_docker_config(secret[".dockerconfigjson"], host)
        tags = registry.exclude(await ctx.registry.list_tags(image, auth=auth, insecure=spec.insecure), spec.exclusions)
    except (registry.RegistryError, LookupError, ValueError) as exc:
        await ctx.not_ready(key, gen, flux.RECONCILIATION_FAILED, str(exc))
        return Result.retry(failures, spec.interval_seconds)
    kept = sorted(tags)
    changed = ctx.tags.get(key) != kept
    ctx.tags[key] = kept
    message = f"successful scan: found {len(kept)} tags"
    scanned = previous.last_scan_result
    status = ImageRepositoryStatus(
        observed_generation=gen,
        canonical_image_name=image,
        conditions=conditions(previous, ctx.condition(flux.READY, True, flux.SUCCEEDED, message, gen)),
        last_scan_result=ScanResult(
            tag_count=len(kept),
            latest_tags=sorted(kept, reverse=True)[:LATEST_TAGS],
            scan_time=scanned.scan_time if scanned and not changed else rfc3339(ctx.now()),
        ),
        observed_exclusion_list=list(spec.exclusions),
        last_handled_reconcile_at=repo.requested_at,
    )
    await ctx.write(key, previous, status)
    wake = tuple(await ctx.dependents("ImagePolicy", key)) if changed else ()
    return Result(spec.interval_seconds, wake)


def secret_name(spec: ImageRepositorySpec) -> str | None:
    return spec.secret_ref.name if spec.secret_ref else None


async def reconcile_image_policy(ctx: Context, key: Key, policy: ImagePolicy, failures: int) -> Result:
    gen = policy.metadata.generation or 0
    previous = await ctx.status(key, ImagePolicyStatus)
    repo = parse.builds_on(policy)
    assert repo is not None  # every ImagePolicy names its ImageRepository
    tags = ctx.tags.get(repo)
    repo_body = await ctx.objects.get(repo)
    try:
        image_name = parse.image_repository(repo_body).spec.image if repo_body is not None else None
    except parse.InvalidObject:  # changed since its last scan, and Stalled: its tags are not to be used
        image_name = None
    if tags is None or image_name is None:
        message = f"ImageRepository '{repo.namespace}/{repo.name}' has not been scanned yet"
        await ctx.not_ready(key, gen, flux.DEPENDENCY_NOT_READY, message)
        return Result(DEPENDENCY_RETRY, (repo,) if repo_body is not None else ())
    try:
        tag = policies.latest(tags, policies.PolicySpec.of(policy.spec))
    except policies.PolicyError as exc:  # an invalid range or pattern: stalled until the spec changes, as in Flux
        return await ctx.stalled(key, gen, flux.INVALID_POLICY, str(exc))
    if tag is None:
        message = f"no tag of '{image_name}' matches the policy"
        await ctx.not_ready(key, gen, flux.RECONCILIATION_FAILED, message)
        return Result(DEPENDENCY_RETRY)
    latest = ImageRef(name=image_name, tag=tag)
    message = f"Latest image tag for '{image_name}' resolved to {tag}"
    old = previous.latest_ref
    status = ImagePolicyStatus(
        observed_generation=gen,
        latest_ref=latest,
        observed_previous_ref=old if old and old != latest else previous.observed_previous_ref,
        conditions=conditions(previous, ctx.condition(flux.READY, True, flux.SUCCEEDED, message, gen)),
        last_handled_reconcile_at=policy.requested_at,
    )
    await ctx.write(key, previous, status)
    wake: tuple[Key, ...] = ()
    if old != latest:
        await ctx.emit(key, False, flux.SUCCEEDED, message)
        wake = tuple(
            Key.of(b) for b in await ctx.objects.list("ImageUpdateAutomation") if Key.of(b).namespace == key.namespace
        )
    return Result(POLICY_RECHECK, wake)
