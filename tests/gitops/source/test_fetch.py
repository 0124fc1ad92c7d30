"""GitSource against real servers: references, revisions, artifact reuse, force-pushes, unreachable remotes."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from canaryflow.gitops.source import GitRef, GitSource, GitSpec, SourceError
from tests.gitops.gitserver import GitDaemon, GitHttpServer, RepoDir, free_port
from tests.gitops.source.conftest import MANIFEST


def tree(path: Path) -> dict[str, str]:
    return {p.relative_to(path).as_posix(): p.read_text() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture(params=["git-daemon", "http-backend"])
def server(request: pytest.FixtureRequest, repos: RepoDir) -> GitDaemon | GitHttpServer:
    server = GitDaemon(repos.root) if request.param == "git-daemon" else GitHttpServer(repos.root)
    request.addfinalizer(lambda: server.__exit__(None, None, None))
    return server.__enter__()


async def test_default_branch_is_master_and_revision_names_it(
    repos: RepoDir, server: GitDaemon | GitHttpServer, source: GitSource
) -> None:
    repo = repos.create("app", {"deploy/app.yaml": MANIFEST, "README.md": "hello\n"})
    artifact = await source.fetch("flux-system/app", GitSpec(server.url("app")))
    assert artifact.revision == f"master@sha1:{repo.head('master')}"
    assert tree(artifact.path) == {"README.md": "hello\n", "deploy/app.yaml": MANIFEST}
    assert not (artifact.path / ".git").exists()
    assert artifact.digest.startswith("sha256:") and len(artifact.digest) == 7 + 64


async def test_branch_tag_semver_and_commit_select_the_expected_commit(
    repos: RepoDir, server: GitDaemon | GitHttpServer, source: GitSource
) -> None:
    repo = repos.create("app", {"v.txt": "1.0.0"})
    first = repo.tag("v1.0.0")
    second = repo.commit({"v.txt": "1.2.0"})
    repo.tag("v1.2.0", annotated=True)  # annotated: the revision names the commit, not the tag object
    repo.commit({"v.txt": "2.0.0"})
    repo.tag("v2.0.0")
    dev = repo.commit({"v.txt": "dev"}, branch="dev")
    url = server.url("app")

    cases = {
        GitRef(branch="dev"): (f"dev@sha1:{dev}", "dev"),
        GitRef(tag="v1.0.0"): (f"v1.0.0@sha1:{first}", "1.0.0"),
        GitRef(tag="v1.2.0"): (f"v1.2.0@sha1:{second}", "1.2.0"),
        GitRef(semver=">=1.0.0 <2.0.0"): (f"v1.2.0@sha1:{second}", "1.2.0"),
        GitRef(semver="~1.0"): (f"v1.0.0@sha1:{first}", "1.0.0"),
        GitRef(commit=first): (f"sha1:{first}", "1.0.0"),
        GitRef(branch="master", commit=second): (f"master@sha1:{second}", "1.2.0"),
        GitRef(name="refs/heads/dev"): (f"refs/heads/dev@sha1:{dev}", "dev"),
        # Flux's precedence: commit > name > semver > tag > branch
        GitRef(branch="dev", tag="v1.0.0"): (f"v1.0.0@sha1:{first}", "1.0.0"),
        GitRef(tag="v1.0.0", semver="1.2.x"): (f"v1.2.0@sha1:{second}", "1.2.0"),
        GitRef(semver="*", name="refs/heads/dev"): (f"refs/heads/dev@sha1:{dev}", "dev"),
        GitRef(name="refs/heads/dev", commit=first): (f"sha1:{first}", "1.0.0"),
    }
    for ref, (revision, content) in cases.items():
        artifact = await source.fetch("ns/app", GitSpec(url, ref))
        assert (artifact.revision, (artifact.path / "v.txt").read_text()) == (revision, content), ref


async def test_missing_references_are_reported_by_name(repos: RepoDir, daemon: GitDaemon, source: GitSource) -> None:
    repo = repos.create("app", {"a.yaml": MANIFEST})
    repo.tag("v1.0.0")
    other = repos.create("other", {"b.yaml": MANIFEST}).head()
    url = daemon.url("app")
    cases = {
        GitRef(branch="nope"): "branch 'nope' not found",
        GitRef(tag="v9"): "tag 'v9' not found",
        GitRef(semver=">=2.0.0"): "no tag matches semver range '>=2.0.0'",
        GitRef(semver=">=>1"): "spec.ref.semver: improper constraint",
        GitRef(commit=other): f"commit '{other}' not found",
        GitRef(branch="master", commit=other): "not found on branch 'master'",
        GitRef(branch="--upload-pack=touch /tmp/pwned"): "spec.ref.branch .*not a valid git reference name",
        GitRef(commit="-q"): "spec.ref.commit '-q': not a commit sha",
    }
    for ref, message in cases.items():
        with pytest.raises(SourceError, match=message):
            await source.fetch("ns/app", GitSpec(url, ref))


async def test_an_unchanged_remote_returns_the_same_artifact_without_rewriting_it(
    repos: RepoDir, http_server: GitHttpServer, source: GitSource
) -> None:
    repos.create("app", {"a.yaml": MANIFEST})
    spec = GitSpec(http_server.url("app"))
    first = await source.fetch("ns/app", spec)
    stat = os.stat(first.path / "a.yaml")
    requests = len(http_server.requests)
    again = await source.fetch("ns/app", spec)
    assert again == first
    assert os.stat(first.path / "a.yaml").st_mtime_ns == stat.st_mtime_ns
    assert os.stat(first.path / "a.yaml").st_ino == stat.st_ino
    # one ref advertisement and no pack download when nothing changed
    assert [method for method, _, _ in http_server.requests[requests:]] == ["GET", "POST"]
    assert all("upload-pack" in path for _, path, _ in http_server.requests[requests:])


async def test_a_new_commit_gives_a_new_artifact_and_old_ones_are_collected(
    repos: RepoDir, daemon: GitDaemon, source: GitSource
) -> None:
    repo = repos.create("app", {"a.yaml": "v: 0\n"})
    spec = GitSpec(daemon.url("app"))
    paths = [(await source.fetch("ns/app", spec)).path]
    for n in range(1, 4):
        repo.commit({"a.yaml": f"v: {n}\n"})
        artifact = await source.fetch("ns/app", spec)
        assert (artifact.path / "a.yaml").read_text() == f"v: {n}\n"
        assert artifact.path not in paths
        paths.append(artifact.path)
    assert [p.exists() for p in paths] == [False, False, True, True]  # the last two are kept


async def test_artifacts_are_read_only(repos: RepoDir, daemon: GitDaemon, source: GitSource) -> None:
    repos.create("app", {"a.yaml": MANIFEST})
    artifact = await source.fetch("ns/app", GitSpec(daemon.url("app")))
    assert os.stat(artifact.path / "a.yaml").st_mode & 0o222 == 0


async def test_a_force_pushed_branch_is_followed(repos: RepoDir, daemon: GitDaemon, source: GitSource) -> None:
    repo = repos.create("app", {"a.yaml": "v: base\n"})
    base = repo.head()
    repo.commit({"a.yaml": "v: mistake\n"})
    spec = GitSpec(daemon.url("app"))
    assert ((await source.fetch("ns/app", spec)).path / "a.yaml").read_text() == "v: mistake\n"

    repo.force_push("master", base)
    rewritten = repo.commit({"a.yaml": "v: rewritten\n"})  # history no longer contains "mistake"
    artifact = await source.fetch("ns/app", spec)
    assert artifact.revision == f"master@sha1:{rewritten}"
    assert (artifact.path / "a.yaml").read_text() == "v: rewritten\n"


async def test_an_unreachable_remote_is_a_source_error_with_the_reason(source: GitSource) -> None:
    url = f"http://127.0.0.1:{free_port()}/app.git"
    with pytest.raises(SourceError) as error:
        await source.fetch("ns/app", GitSpec(url, timeout=20))
    assert url in str(error.value)
    assert "Failed to connect" in str(error.value) or "Connection refused" in str(error.value)


async def test_a_hanging_remote_times_out(repos: RepoDir, http_server: GitHttpServer, source: GitSource) -> None:
    repos.create("app", {"a.yaml": MANIFEST})
    http_server.hold()
    try:
        with pytest.raises(SourceError, match=r"git ls-remote: timed out after 0.5s"):
            await source.fetch("ns/app", GitSpec(http_server.url("app"), timeout=0.5))
    finally:
        http_server.release()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://user:hunter2@127.0.0.1/app.git", "credentials in the URL are not allowed"),
        ("ftp://127.0.0.1/app.git", "unsupported scheme 'ftp'"),
    ],
    ids=["userinfo", "scheme"],
)
async def test_unusable_urls_are_refused_before_running_git(url: str, message: str, source: GitSource) -> None:
    with pytest.raises(SourceError, match=message) as error:
        await source.fetch("ns/app", GitSpec(url))
    assert "hunter2" not in str(error.value)


async def test_file_urls_need_no_server(repos: RepoDir, source: GitSource) -> None:
    repo = repos.create("app", {"a.yaml": MANIFEST})
    artifact = await source.fetch("ns/app", GitSpec(f"file://{repo.bare}"))
    assert artifact.revision == f"master@sha1:{repo.head()}"
    assert (artifact.path / "a.yaml").read_text() == MANIFEST


async def test_concurrent_fetches_of_one_key_share_one_artifact(
    repos: RepoDir, daemon: GitDaemon, source: GitSource
) -> None:
    repos.create("app", {"a.yaml": MANIFEST})
    spec = GitSpec(daemon.url("app"))
    results = await asyncio.gather(*(source.fetch("ns/app", spec) for _ in range(3)))
    assert len(set(results)) == 1 and tree(results[0].path) == {"a.yaml": MANIFEST}
