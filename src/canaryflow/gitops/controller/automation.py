"""ImageUpdateAutomation: write the latest images of the namespace's ImagePolicies into git, then wake the
GitRepository so the commit is applied at once rather than at the source's next interval."""

from __future__ import annotations

from typing import Any

from canaryflow.api.flux import common as flux
from canaryflow.api.timestamps import rfc3339
from canaryflow.gitops import conditions as cond
from canaryflow.gitops.controller import specs
from canaryflow.gitops.controller.context import Context, Result
from canaryflow.gitops.controller.objects import Key
from canaryflow.gitops.image import AutomationSpec, SetterError, TemplateError, run_automation
from canaryflow.gitops.source import Author, GitAuth, SourceError


async def reconcile_image_update_automation(ctx: Context, key: Key, body: dict[str, Any], failures: int) -> Result:
    s = specs.spec(body)
    gen = specs.generation(body)
    previous = await ctx.objects.status(key)
    source = specs.ref(body, "sourceRef", "GitRepository", key)
    try:
        repo = await ctx.objects.get(source)
        if repo is None:
            raise LookupError(f"GitRepository '{source.namespace}/{source.name}' not found")
        secret = await ctx.secret(source.namespace, specs.spec(repo).get("secretRef"))
        auth = GitAuth.from_secret(secret) if secret else None
        images = await _latest_images(ctx, key.namespace)
        sha = await run_automation(
            _automation(key, s, repo), images, workdir=ctx.workdir / key.namespace / key.name, auth=auth
        )
    except (LookupError, SourceError, SetterError, TemplateError, ValueError) as exc:
        await ctx.not_ready(key, gen, flux.RECONCILIATION_FAILED, str(exc))
        return Result.retry(failures, specs.interval(body))
    now = rfc3339(ctx.now())
    status = {
        "observedGeneration": gen,
        "lastAutomationRunTime": now,
        "lastPushCommit": sha or previous.get("lastPushCommit"),
        "lastPushTime": now if sha else previous.get("lastPushTime"),
        "conditions": cond.merge(
            previous.get("conditions") or [],
            cond.ready(True, flux.SUCCEEDED, f"pushed commit '{sha}'" if sha else "no updates made", gen, ctx.now()),
        ),
    }
    await ctx.objects.set_status(key, {k: v for k, v in status.items() if v is not None})
    if sha is None:
        return Result(specs.interval(body))
    await ctx.emit(key, False, flux.SUCCEEDED, f"pushed commit '{sha[:12]}' to branch '{_push_branch(s, repo)}'")
    return Result(specs.interval(body), (source,))


async def _latest_images(ctx: Context, namespace: str) -> dict[str, str]:
    """``"ns:policy" -> latest image`` for every ready ImagePolicy of the namespace (Flux's default selector)."""
    images = {}
    for policy in await ctx.objects.list("ImagePolicy"):
        pkey = Key.of(policy)
        if pkey.namespace != namespace:
            continue
        latest = (await ctx.objects.status(pkey)).get("latestImage")
        if latest:
            images[f"{pkey.namespace}:{pkey.name}"] = str(latest)
    return images


def _automation(key: Key, s: dict[str, Any], repo: dict[str, Any]) -> AutomationSpec:
    git = s.get("git") or {}
    commit = git.get("commit") or {}
    author = commit.get("author") or {}
    branch = (
        ((git.get("checkout") or {}).get("ref") or {}).get("branch")
        or (specs.spec(repo).get("ref") or {}).get("branch")
        or "master"
    )
    return AutomationSpec(
        namespace=key.namespace,
        name=key.name,
        url=str(specs.spec(repo)["url"]),
        branch=str(branch),
        author=Author(str(author.get("name") or "canaryflow"), str(author.get("email") or "canaryflow@localhost")),
        path=str((s.get("update") or {}).get("path") or "./"),
        push_branch=(git.get("push") or {}).get("branch"),
        message_template=commit.get("messageTemplate"),
        template_values=dict(commit.get("messageTemplateValues") or {}),
    )


def _push_branch(s: dict[str, Any], repo: dict[str, Any]) -> str:
    git = s.get("git") or {}
    return str((git.get("push") or {}).get("branch") or _automation(Key("", "", ""), s, repo).branch)
