"""GitSource: fetch with the git CLI into a per-key bare mirror, export the commit as an artifact directory.

Each fetch first asks the remote where the reference points (``git ls-remote``: one round trip, no objects).
When that commit is already in the mirror and its artifact exists, nothing is downloaded or written, so polling
an unchanged repository is cheap and returns the very same :class:`Artifact`. Otherwise only the one reference is
fetched, with a forced refspec (``+refs/heads/main:refs/heads/main``) so a force-pushed branch is followed.

The tree is exported with ``read-tree`` + ``checkout-index`` into a private index, not ``git archive``: Flux does
not honour ``export-ignore``/``export-subst`` attributes, and neither may we.
"""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path
from urllib.parse import quote

from canaryflow.gitops import semver
from canaryflow.gitops.source import credentials
from canaryflow.gitops.source.artifact import Store
from canaryflow.gitops.source.base import DEFAULT_BRANCH, Artifact, GitRef, GitSpec, SourceError, revision
from canaryflow.gitops.source.gitcmd import GitCommandError, GitSession


class GitSource:
    """A :class:`~canaryflow.gitops.source.base.Source` backed by the git CLI; state lives under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.store = Store(root / "artifacts")
        self._locks: dict[str, asyncio.Lock] = {}

    async def fetch(self, key: str, spec: GitSpec) -> Artifact:
        credentials.check_url(spec.url)
        spec.ref.validate()
        if spec.auth is not None:
            spec.auth.validate()
        async with self._locks.setdefault(key, asyncio.Lock()):
            mirror = self.root / "mirrors" / quote(key, safe="")
            async with GitSession(spec.auth, spec.timeout) as git:
                try:
                    await _init(git, mirror)
                    label, sha = await _resolve(git, mirror, spec)
                    path = self.store.path(key, sha, spec.ignore)
                    digest = self.store.existing(path)
                    if digest is None:
                        export = functools.partial(_export, git, mirror, sha)
                        digest = await self.store.create(path, spec.ignore, export)
                except GitCommandError as error:
                    raise SourceError(f"{credentials.scrub(spec.url, spec.auth)}: {error}") from None
            self.store.collect(key, path)
            return Artifact(url=spec.url, revision=revision(label, sha), path=path, digest=digest)


async def _init(git: GitSession, mirror: Path) -> None:
    if not (mirror / "HEAD").is_file():
        mirror.parent.mkdir(parents=True, exist_ok=True)
        await git.run("init", "--quiet", "--bare", str(mirror))


async def _resolve(git: GitSession, mirror: Path, spec: GitSpec) -> tuple[str | None, str]:
    """(revision label, commit sha) for ``spec.ref``, with that commit present in the mirror."""
    ref = spec.ref
    if ref.commit:
        return await _resolve_commit(git, mirror, spec.url, ref)
    if ref.name:
        label, remote_ref = ref.name, ref.name
    elif ref.semver:
        label = await _semver_tag(git, spec.url, ref.semver)
        remote_ref = f"refs/tags/{label}"
    elif ref.tag:
        label, remote_ref = ref.tag, f"refs/tags/{ref.tag}"
    else:
        label = ref.branch or DEFAULT_BRANCH
        remote_ref = f"refs/heads/{label}"
    advertised = await _ls_remote(git, spec.url, remote_ref)
    if remote_ref not in advertised:
        what = "reference" if ref.name else "tag" if (ref.tag or ref.semver) else "branch"
        raise SourceError(f"{credentials.scrub(spec.url)}: {what} {label!r} not found")
    sha = await _full_sha(git, mirror, advertised[remote_ref])  # peels an annotated tag to its commit
    if sha is None:
        local = remote_ref if remote_ref.startswith("refs/") else f"refs/canaryflow/{remote_ref}"
        await git.run("fetch", "--quiet", "--no-tags", spec.url, f"+{remote_ref}:{local}", cwd=mirror)
        sha = (await git.run("rev-parse", f"{local}^{{commit}}", cwd=mirror)).strip()
    return label, sha


async def _resolve_commit(git: GitSession, mirror: Path, url: str, ref: GitRef) -> tuple[str | None, str]:
    """``commit`` alone (revision ``sha1:<sha>``) or with ``branch`` (the commit must be on that branch)."""
    commit = ref.commit or ""
    if ref.branch:
        branch_ref = f"refs/heads/{ref.branch}"
        await git.run("fetch", "--quiet", "--no-tags", url, f"+{branch_ref}:{branch_ref}", cwd=mirror)
        sha = await _full_sha(git, mirror, commit)
        if sha is None or not await _succeeds(git, mirror, "merge-base", "--is-ancestor", sha, branch_ref):
            raise SourceError(f"{credentials.scrub(url)}: commit {commit!r} not found on branch {ref.branch!r}")
        return ref.branch, sha
    sha = await _full_sha(git, mirror, commit)
    if sha is None:
        await git.run("fetch", "--quiet", "--no-tags", url, "+refs/heads/*:refs/heads/*", cwd=mirror)
        sha = await _full_sha(git, mirror, commit)
    if sha is None and len(commit) == 40:  # not on a branch: servers allowing any reachable sha can still send it
        await git.run("fetch", "--quiet", "--no-tags", url, commit, cwd=mirror, check=False)
        sha = await _full_sha(git, mirror, commit)
    if sha is None:
        raise SourceError(f"{credentials.scrub(url)}: commit {commit!r} not found")
    return None, sha


async def _semver_tag(git: GitSession, url: str, constraint: str) -> str:
    try:
        parsed = semver.parse_range(constraint)
    except semver.SemverError as error:
        raise SourceError(f"spec.ref.semver: {error}") from None
    tags = [ref.removeprefix("refs/tags/") for ref in await _ls_remote(git, url, "refs/tags/*")]
    best = semver.highest(tags, parsed)
    if best is None:
        raise SourceError(f"{credentials.scrub(url)}: no tag matches semver range {constraint!r}")
    return best


async def _ls_remote(git: GitSession, url: str, pattern: str) -> dict[str, str]:
    """Remote refs matching ``pattern`` -> commit sha (annotated tags peeled to their commit)."""
    refs: dict[str, str] = {}
    peeled: dict[str, str] = {}
    args = ["--tags", url] if pattern == "refs/tags/*" else [url, pattern]
    for line in (await git.run("ls-remote", *args)).splitlines():
        sha, _, name = line.partition("\t")
        if name.endswith("^{}"):
            peeled[name.removesuffix("^{}")] = sha
        elif name == pattern or (pattern.endswith("*") and name.startswith(pattern[:-1])):
            refs[name] = sha
    return refs | {name: sha for name, sha in peeled.items() if name in refs}


async def _full_sha(git: GitSession, mirror: Path, commit: str) -> str | None:
    out = await git.run("rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}", cwd=mirror, check=False)
    return out.strip() or None


async def _succeeds(git: GitSession, mirror: Path, *args: str) -> bool:
    try:
        await git.run(*args, cwd=mirror)
    except GitCommandError:
        return False
    return True


async def _export(git: GitSession, mirror: Path, sha: str, tree: Path) -> None:
    index = {"GIT_INDEX_FILE": str(tree.parent / f".{tree.name}.index")}
    try:
        await git.run("read-tree", sha, cwd=mirror, env=index)
        await git.run(f"--work-tree={tree}", "checkout-index", "--all", "--force", cwd=mirror, env=index)
    finally:
        Path(index["GIT_INDEX_FILE"]).unlink(missing_ok=True)
