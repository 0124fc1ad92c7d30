"""commit_and_push against real servers: commits, no-op updates, push branches, auth and racing writers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from canaryflow.gitops.source import Author, GitAuth, SourceError, commit_and_push
from tests.gitops.gitserver import GitDaemon, GitHttpServer, RepoDir

BOT = Author("Flux Bot", "flux@example.test")


def set_tag(tag: str) -> tuple[list[list[str]], Callable[[Path], list[str]]]:
    """An update callback rewriting app.yaml's image tag; records the trees it saw."""
    seen: list[list[str]] = []

    def update(worktree: Path) -> list[str]:
        seen.append(sorted(p.name for p in worktree.iterdir() if p.name != ".git"))
        path = worktree / "app.yaml"
        old = path.read_text()
        new = "\n".join(f"image: app:{tag}" if line.startswith("image:") else line for line in old.splitlines())
        if new + "\n" == old:
            return []
        path.write_text(new + "\n")
        return ["app.yaml"]

    return seen, update


def message(paths: list[str]) -> str:
    return "Update image in " + ", ".join(paths)


async def test_commits_the_change_as_the_author_and_pushes(repos: RepoDir, daemon: GitDaemon, tmp_path: Path) -> None:
    repo = repos.create("app", {"app.yaml": "name: app\nimage: app:1.0.0\n"})
    _, update = set_tag("1.1.0")
    sha = await commit_and_push(
        daemon.url("app"), "master", workdir=tmp_path / "work", update=update, message=message, author=BOT
    )
    assert sha == repo.head("master")
    assert repo.read("app.yaml") == "name: app\nimage: app:1.1.0\n"
    assert repo.log()[0] == (sha, "Flux Bot <flux@example.test>", "Update image in app.yaml")


async def test_nothing_changed_means_no_commit(repos: RepoDir, daemon: GitDaemon, tmp_path: Path) -> None:
    repo = repos.create("app", {"app.yaml": "image: app:1.0.0\n"})
    before = repo.head()
    _, update = set_tag("1.0.0")
    result = await commit_and_push(
        daemon.url("app"), "master", workdir=tmp_path / "work", update=update, message=message, author=BOT
    )
    assert result is None and repo.head() == before


async def test_a_concurrent_push_is_answered_by_redoing_the_update_on_the_new_tip(
    repos: RepoDir, daemon: GitDaemon, tmp_path: Path
) -> None:
    repo = repos.create("app", {"app.yaml": "image: app:1.0.0\n"})
    _, set_1_1 = set_tag("1.1.0")
    calls: list[list[str]] = []

    def racing_update(worktree: Path) -> list[str]:
        calls.append(sorted(p.name for p in worktree.iterdir() if p.name != ".git"))
        if len(calls) == 1:  # someone else pushes while we edit: our push will be rejected
            repo.commit({"other.yaml": "by someone else\n"})
        return set_1_1(worktree)

    sha = await commit_and_push(
        daemon.url("app"), "master", workdir=tmp_path / "work", update=racing_update, message=message, author=BOT
    )
    assert calls == [["app.yaml"], ["app.yaml", "other.yaml"]]  # the retry saw the other writer's commit
    assert sha == repo.head()
    assert repo.read("app.yaml") == "image: app:1.1.0\n" and repo.read("other.yaml") == "by someone else\n"
    assert [subject for _, _, subject in repo.log()][:2] == ["Update image in app.yaml", "change other.yaml"]


async def test_gives_up_after_the_attempts_when_the_branch_keeps_moving(
    repos: RepoDir, daemon: GitDaemon, tmp_path: Path
) -> None:
    repo = repos.create("app", {"app.yaml": "image: app:1.0.0\n"})
    _, set_1_1 = set_tag("1.1.0")
    count = 0

    def always_racing(worktree: Path) -> list[str]:
        nonlocal count
        count += 1
        repo.commit({"other.yaml": f"write {count}\n"})
        return set_1_1(worktree)

    with pytest.raises(SourceError, match="rejected 2 times"):
        await commit_and_push(
            daemon.url("app"),
            "master",
            workdir=tmp_path / "work",
            update=always_racing,
            message=message,
            author=BOT,
            attempts=2,
        )
    assert repo.read("app.yaml") == "image: app:1.0.0\n"


async def test_push_branch_is_created_then_stacked_on(repos: RepoDir, daemon: GitDaemon, tmp_path: Path) -> None:
    repo = repos.create("app", {"app.yaml": "image: app:1.0.0\n"})
    main = repo.head()
    url, work = daemon.url("app"), tmp_path / "work"
    first = await commit_and_push(
        url, "master", workdir=work, update=set_tag("1.1.0")[1], message=message, author=BOT, push_branch="auto"
    )
    second = await commit_and_push(
        url, "master", workdir=work, update=set_tag("1.2.0")[1], message=message, author=BOT, push_branch="auto"
    )
    assert repo.head("master") == main
    assert [sha for sha, _, _ in repo.log("auto")] == [second, first, main]
    assert repo.read("app.yaml", "auto") == "image: app:1.2.0\n"


async def test_pushes_over_http_with_basic_auth(repos: RepoDir, tmp_path: Path) -> None:
    repo = repos.create("app", {"app.yaml": "image: app:1.0.0\n"})
    auth = GitAuth(username="bot", password="push-secret-123")
    with GitHttpServer(repos.root, username="bot", password="push-secret-123") as server:
        sha = await commit_and_push(
            server.url("app"),
            "master",
            workdir=tmp_path / "work",
            update=set_tag("2.0.0")[1],
            message=message,
            author=BOT,
            auth=auth,
        )
        assert ("POST", "/app.git/git-receive-pack", "Basic") in server.requests
    assert sha == repo.head() and repo.read("app.yaml") == "image: app:2.0.0\n"


async def test_a_missing_branch_is_named(repos: RepoDir, daemon: GitDaemon, tmp_path: Path) -> None:
    repos.create("app", {"app.yaml": "image: app:1.0.0\n"})
    with pytest.raises(SourceError, match="branch 'main' not found"):
        await commit_and_push(
            daemon.url("app"), "main", workdir=tmp_path / "w", update=set_tag("1")[1], message=message, author=BOT
        )
