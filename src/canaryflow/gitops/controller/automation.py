"""ImageUpdateAutomation: write the latest images of the namespace's ImagePolicies into git, then wake the
GitRepository so the commit is applied at once rather than at the source's next interval."""

from __future__ import annotations

from canaryflow.api.flux import common as flux
from canaryflow.api.flux.image import ImageUpdateAutomation
from canaryflow.api.flux.source import GitRepository
from canaryflow.api.flux.status import ImagePolicyStatus, ImageRef, ImageUpdateAutomationStatus
from canaryflow.api.timestamps import rfc3339
from canaryflow.gitops.controller import parse
from canaryflow.gitops.controller.context import Context, Result, conditions
from canaryflow.gitops.controller.objects import Key
from canaryflow.gitops.image import AutomationSpec, SetterError, TemplateError, run_automation
from canaryflow.gitops.source import Author, GitAuth, SourceError

#: The commit author when ``spec.git`` is not given.
DEFAULT_AUTHOR = Author("canaryflow", "canaryflow@localhost")


async def reconcile_image_update_automation(
    ctx: Context, key: Key, automation: ImageUpdateAutomation, failures: int
) -> Result:
    gen = automation.metadata.generation or 0
    every = automation.spec.interval_seconds
    previous = await ctx.status(key, ImageUpdateAutomationStatus)
    source = parse.builds_on(automation)
    assert source is not None  # every ImageUpdateAutomation names its GitRepository
    try:
        body = await ctx.objects.get(source)
        if body is None:
            raise LookupError(f"GitRepository '{source.namespace}/{source.name}' not found")
        repo = parse.git_repository(body)
        secret = await ctx.secret(source.namespace, repo.spec.secret_ref)
        auth = GitAuth.from_secret(secret) if secret else None
        policies = await _latest_images(ctx, key.namespace)
        images = {f"{key.namespace}:{name}": str(ref) for name, ref in policies.items()}
        wanted = automation_spec(automation, repo)
        sha = await run_automation(wanted, images, workdir=ctx.workdir / key.namespace / key.name, auth=auth)
    except (LookupError, SourceError, SetterError, TemplateError, ValueError) as exc:  # InvalidObject too
        await ctx.not_ready(key, gen, flux.RECONCILIATION_FAILED, str(exc))
        return Result.retry(failures, every)
    now = rfc3339(ctx.now())
    done = f"pushed commit '{sha}'" if sha else "no updates made"
    status = ImageUpdateAutomationStatus(
        observed_generation=gen,
        last_automation_run_time=now,
        last_push_commit=sha or previous.last_push_commit,
        last_push_time=now if sha else previous.last_push_time,
        observed_policies=policies or None,
        conditions=conditions(previous, ctx.condition(flux.READY, True, flux.SUCCEEDED, done, gen)),
        last_handled_reconcile_at=automation.requested_at,
    )
    await ctx.objects.set_status(key, status)
    if sha is None:
        return Result(every)
    branch = wanted.push_branch or wanted.branch
    await ctx.emit(key, False, flux.SUCCEEDED, f"pushed commit '{sha[:12]}' to branch '{branch}'")
    return Result(every, (source,))


async def _latest_images(ctx: Context, namespace: str) -> dict[str, ImageRef]:
    """``policy name -> latest image`` of every ImagePolicy of the namespace that chose one (Flux's default
    selector), as Flux's ``status.observedPolicies`` lists them."""
    images = {}
    for policy in await ctx.objects.list("ImagePolicy"):
        pkey = Key.of(policy)
        if pkey.namespace != namespace:
            continue
        latest = (await ctx.status(pkey, ImagePolicyStatus)).latest_ref
        if latest is not None:
            images[pkey.name] = latest
    return images


def automation_spec(automation: ImageUpdateAutomation, repo: GitRepository) -> AutomationSpec:
    """One run of ``automation`` on ``repo``: the branch checked out is ``git.checkout.ref.branch``, else the
    GitRepository's (``master`` when it names none)."""
    commit = automation.spec.git.commit if automation.spec.git else None
    repo_ref = repo.spec.ref
    return AutomationSpec(
        namespace=automation.metadata.namespace,
        name=automation.metadata.name,
        url=repo.spec.url,
        branch=automation.checkout_branch or (repo_ref.branch if repo_ref else None) or "master",
        author=Author(commit.author.name or DEFAULT_AUTHOR.name, commit.author.email) if commit else DEFAULT_AUTHOR,
        path=automation.spec.update_path,
        push_branch=automation.push_branch,
        message_template=commit.message_template if commit else None,
        template_values=dict(commit.message_template_values or {}) if commit else {},
    )
