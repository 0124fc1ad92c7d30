"""MemorySource: repositories held in memory, for tests of what consumes artifacts (kustomize, controllers).

Tests publish whole trees as commits (``commit``), move tags, and make a URL unreachable (``fail``). ``fetch``
resolves references with the same precedence, revision strings, ignore rules and artifact storage as
:class:`~canaryflow.gitops.source.git.GitSource`; only the transport is missing.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from pathlib import Path

from canaryflow.gitops import semver
from canaryflow.gitops.source.artifact import Store
from canaryflow.gitops.source.base import DEFAULT_BRANCH, Artifact, GitSpec, SourceError, revision


@dataclasses.dataclass
class _Repository:
    commits: dict[str, dict[str, bytes]] = dataclasses.field(default_factory=dict)
    branches: dict[str, list[str]] = dataclasses.field(default_factory=dict)  # name -> shas, oldest first
    tags: dict[str, str] = dataclasses.field(default_factory=dict)
    error: str | None = None


class MemorySource:
    def __init__(self, root: Path) -> None:
        self.store = Store(root)
        self._repos: dict[str, _Repository] = {}
        self.fetches: list[tuple[str, GitSpec]] = []  # every fetch call, for tests that count them

    def commit(self, url: str, files: Mapping[str, str | bytes], *, branch: str = DEFAULT_BRANCH) -> str:
        """Make ``files`` (relative path -> content) the tree of a new commit on ``branch``; returns its sha."""
        repo = self._repos.setdefault(url, _Repository())
        history = repo.branches.setdefault(branch, [])
        tree = {path: content.encode() if isinstance(content, str) else content for path, content in files.items()}
        seed = "\0".join([history[-1] if history else "", *(f"{p}\0{c.hex()}" for p, c in sorted(tree.items()))])
        sha = hashlib.sha1(f"{url}\0{branch}\0{len(history)}\0{seed}".encode()).hexdigest()
        repo.commits[sha] = tree
        history.append(sha)
        return sha

    def tag(self, url: str, name: str, sha: str) -> None:
        repo = self._repos[url]
        if sha not in repo.commits:
            raise KeyError(f"{url}: no commit {sha}")
        repo.tags[name] = sha

    def force_push(self, url: str, branch: str, sha: str) -> None:
        """Point ``branch`` at an existing commit (a rewrite of history, as ``git push --force`` does)."""
        repo = self._repos[url]
        if sha not in repo.commits:
            raise KeyError(f"{url}: no commit {sha}")
        repo.branches[branch] = [sha]

    def fail(self, url: str, message: str | None) -> None:
        """Make fetches of ``url`` fail with ``message`` (None: reachable again)."""
        self._repos.setdefault(url, _Repository()).error = message

    async def fetch(self, key: str, spec: GitSpec) -> Artifact:
        self.fetches.append((key, spec))
        spec.ref.validate()
        repo = self._repos.get(spec.url)
        if repo is None:
            raise SourceError(f"{spec.url}: repository not found")
        if repo.error is not None:
            raise SourceError(f"{spec.url}: {repo.error}")
        label, sha = self._resolve(repo, spec)
        path = self.store.path(key, sha, spec.ignore)
        digest = self.store.existing(path)
        if digest is None:
            tree = repo.commits[sha]

            async def export(target: Path) -> None:
                for name, content in tree.items():
                    (target / name).parent.mkdir(parents=True, exist_ok=True)
                    (target / name).write_bytes(content)

            digest = await self.store.create(path, spec.ignore, export)
        self.store.collect(key, path)
        return Artifact(url=spec.url, revision=revision(label, sha), path=path, digest=digest)

    def _resolve(self, repo: _Repository, spec: GitSpec) -> tuple[str | None, str]:
        ref = spec.ref
        if ref.commit:
            matches = [sha for sha in repo.commits if sha.startswith(ref.commit)]
            on_branch = repo.branches.get(ref.branch, []) if ref.branch else matches
            if len(matches) != 1 or matches[0] not in on_branch:
                where = f" on branch {ref.branch!r}" if ref.branch else ""
                raise SourceError(f"{spec.url}: commit {ref.commit!r} not found{where}")
            return ref.branch, matches[0]
        if ref.name:
            kind, _, short = ref.name.removeprefix("refs/").partition("/")
            table = repo.tags if kind == "tags" else {b: h[-1] for b, h in repo.branches.items()}
            if kind not in ("tags", "heads") or short not in table:
                raise SourceError(f"{spec.url}: reference {ref.name!r} not found")
            return ref.name, table[short]
        if ref.semver:
            try:
                best = semver.highest(sorted(repo.tags), semver.parse_range(ref.semver))
            except semver.SemverError as error:
                raise SourceError(f"spec.ref.semver: {error}") from None
            if best is None:
                raise SourceError(f"{spec.url}: no tag matches semver range {ref.semver!r}")
            return best, repo.tags[best]
        if ref.tag:
            if ref.tag not in repo.tags:
                raise SourceError(f"{spec.url}: tag {ref.tag!r} not found")
            return ref.tag, repo.tags[ref.tag]
        branch = ref.branch or DEFAULT_BRANCH
        if branch not in repo.branches:
            raise SourceError(f"{spec.url}: branch {branch!r} not found")
        return branch, repo.branches[branch][-1]
