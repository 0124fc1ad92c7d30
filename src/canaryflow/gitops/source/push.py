"""Commit a change made by a callback and push it, retrying when someone else pushed first.

This is the write half of image automation (Flux's image-automation-controller): check out ``branch`` (or the
push branch when it already exists, so automated commits stack up there), let ``update`` edit the worktree,
commit as ``author``, push. A rejected push (non-fast-forward: the branch moved meanwhile) is answered by
fetching again, resetting the worktree to the new tip and re-running ``update``, never by force-pushing over
someone else's commit.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from pathlib import Path

from canaryflow.gitops.source import credentials
from canaryflow.gitops.source.base import GitAuth, SourceError
from canaryflow.gitops.source.gitcmd import GitCommandError, GitSession

_REJECTED = ("[rejected]", "non-fast-forward", "fetch first", "failed to update ref", "cannot lock ref")
_WORK_BRANCH = "canaryflow-automation"


@dataclasses.dataclass(frozen=True)
class Author:
    name: str
    email: str


async def commit_and_push(
    url: str,
    branch: str,
    *,
    workdir: Path,
    update: Callable[[Path], list[str]],
    message: Callable[[list[str]], str],
    author: Author,
    auth: GitAuth | None = None,
    push_branch: str | None = None,
    attempts: int = 3,
    timeout: float = 60.0,
) -> str | None:
    """Returns the pushed commit's sha, or None when ``update`` changed nothing (nothing is committed).

    ``workdir`` is a scratch clone kept between calls (created when missing); ``update`` receives its worktree
    and returns the relative paths it changed; ``message`` turns those paths into the commit message.
    """
    credentials.check_url(url)
    target = push_branch or branch
    identity = {
        "GIT_AUTHOR_NAME": author.name,
        "GIT_AUTHOR_EMAIL": author.email,
        "GIT_COMMITTER_NAME": author.name,
        "GIT_COMMITTER_EMAIL": author.email,
    }
    async with GitSession(auth, timeout) as git:
        try:
            if not (workdir / ".git").is_dir():
                workdir.mkdir(parents=True, exist_ok=True)
                await git.run("init", "--quiet", str(workdir))
            for _ in range(attempts):
                await _checkout(git, workdir, url, branch, target)
                changed = await asyncio.to_thread(update, workdir)
                if not changed or not (await git.run("status", "--porcelain", "--", *changed, cwd=workdir)).strip():
                    return None
                await git.run("add", "--all", "--", *changed, cwd=workdir)
                await git.run("commit", "--quiet", "--no-verify", "-m", message(changed), cwd=workdir, env=identity)
                sha = (await git.run("rev-parse", "HEAD", cwd=workdir)).strip()
                try:
                    await git.run("push", url, f"HEAD:refs/heads/{target}", cwd=workdir)
                except GitCommandError as error:
                    if any(mark in error.stderr for mark in _REJECTED):
                        continue  # the branch moved: fetch, reset and redo the update on the new tip
                    raise
                return sha
        except GitCommandError as error:
            raise SourceError(f"{credentials.scrub(url, auth)}: {error}") from None
    raise SourceError(
        f"{credentials.scrub(url, auth)}: push to {target!r} rejected {attempts} times (the branch keeps moving)"
    )


async def _checkout(git: GitSession, workdir: Path, url: str, branch: str, target: str) -> None:
    """Reset the worktree to the tip of ``target`` when it exists remotely and differs from ``branch``, else of
    ``branch``; leftovers of an earlier attempt (commits, edits, untracked files) are discarded."""
    refspecs = [f"+refs/heads/{branch}:refs/remotes/origin/{branch}"]
    if target != branch:
        advertised = await git.run("ls-remote", url, f"refs/heads/{target}")
        if f"refs/heads/{target}" in advertised.split():
            branch = target
            refspecs = [f"+refs/heads/{target}:refs/remotes/origin/{target}"]
    try:
        await git.run("fetch", "--quiet", "--no-tags", url, *refspecs, cwd=workdir)
    except GitCommandError as error:
        if "couldn't find remote ref" in error.stderr:
            raise SourceError(f"{credentials.scrub(url)}: branch {branch!r} not found") from None
        raise
    await git.run("checkout", "--quiet", "--force", "-B", _WORK_BRANCH, f"refs/remotes/origin/{branch}", cwd=workdir)
    await git.run("clean", "--quiet", "--force", "-d", "-x", cwd=workdir)
