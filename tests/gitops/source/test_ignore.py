"""Which files reach the artifact: Flux's default exclusions, .sourceignore files and spec.ignore."""

from __future__ import annotations

from pathlib import Path

import pytest

from canaryflow.gitops.source import GitSource, GitSpec
from canaryflow.gitops.source.ignore import IgnoreRules
from tests.gitops.gitserver import GitDaemon, RepoDir

FILES = {
    "apps/app.yaml": "a",
    "apps/logo.png": "png",
    "apps/chart.tar.gz": "tgz",
    ".github/workflows/ci.yaml": "ci",
    ".gitlab-ci.yml": "ci",
    ".gitignore": "*.tmp",
    "clusters/.sops.yaml": "sops",
    "clusters/prod/kustomization.yaml": "k",
    "docs/guide.md": "d",
}


def files(path: Path) -> set[str]:
    return {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()}


def rules(tmp_path: Path, tree: dict[str, str], ignore: str | None = None) -> IgnoreRules:
    for name, content in tree.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content)
    return IgnoreRules.load(tmp_path, ignore)


async def test_default_exclusions_drop_vcs_ci_media_and_tool_files(
    repos: RepoDir, daemon: GitDaemon, source: GitSource
) -> None:
    repos.create("app", FILES)
    artifact = await source.fetch("ns/app", GitSpec(daemon.url("app")))
    assert files(artifact.path) == {"apps/app.yaml", "clusters/prod/kustomization.yaml", "docs/guide.md"}
    assert not (artifact.path / ".github").exists()  # directories left empty disappear too


async def test_spec_ignore_replaces_the_defaults_but_not_the_vcs_patterns(
    repos: RepoDir, daemon: GitDaemon, source: GitSource
) -> None:
    repos.create("app", FILES)
    spec = GitSpec(daemon.url("app"), ignore="/*\n!/apps/\n!/clusters/\n")
    artifact = await source.fetch("ns/app", spec)
    assert files(artifact.path) == {
        "apps/app.yaml",
        "apps/logo.png",
        "apps/chart.tar.gz",
        "clusters/.sops.yaml",
        "clusters/prod/kustomization.yaml",
    }


async def test_the_same_commit_with_other_ignore_rules_is_another_artifact(
    repos: RepoDir, daemon: GitDaemon, source: GitSource
) -> None:
    repos.create("app", FILES)
    plain = await source.fetch("ns/app", GitSpec(daemon.url("app")))
    docs_only = await source.fetch("ns/app", GitSpec(daemon.url("app"), ignore="/*\n!/docs/\n"))
    assert plain.revision == docs_only.revision
    assert plain.path != docs_only.path and plain.digest != docs_only.digest
    assert files(docs_only.path) == {"docs/guide.md"}
    assert files(plain.path) == {"apps/app.yaml", "clusters/prod/kustomization.yaml", "docs/guide.md"}


async def test_sourceignore_files_apply_below_their_directory(
    repos: RepoDir, daemon: GitDaemon, source: GitSource
) -> None:
    repos.create(
        "app",
        {
            ".sourceignore": "docs/\n",
            "apps/.sourceignore": "*.md\n!keep.md\n",
            "apps/a.yaml": "a",
            "apps/notes.md": "n",
            "apps/keep.md": "k",
            "notes.md": "root markdown is not under apps/",
            "docs/guide.md": "d",
            "logo.png": "a .sourceignore replaces the default exclusions",
        },
    )
    artifact = await source.fetch("ns/app", GitSpec(daemon.url("app")))
    assert files(artifact.path) == {
        ".sourceignore",
        "apps/.sourceignore",
        "apps/a.yaml",
        "apps/keep.md",
        "notes.md",
        "logo.png",
    }


@pytest.mark.parametrize(
    ("ignore", "path", "excluded"),
    [
        (None, "a/b/.git/config", True),
        (None, "x.jpeg", True),
        (None, "deep/.goreleaser.yml", True),
        (None, "a.yaml", False),
        ("*.yaml\n!keep.yaml", "dir/keep.yaml", False),
        ("*.yaml\n!keep.yaml", "dir/other.yaml", True),
        ("/build", "build/x", True),
        ("/build", "sub/build/x", False),
        ("build/\n!build/keep", "build/keep", False),  # Flux matches file by file, unlike git
        ("# comment\n\n*.txt", "x.txt", True),
        ("x.png", "y.png", False),  # user patterns replace the defaults
    ],
)
def test_patterns(tmp_path: Path, ignore: str | None, path: str, excluded: bool) -> None:
    assert rules(tmp_path, {}, ignore).excluded(path) is excluded


def test_spec_ignore_wins_over_sourceignore(tmp_path: Path) -> None:
    loaded = rules(tmp_path, {".sourceignore": "*.yaml\n"}, "!important.yaml\n")
    assert (loaded.excluded("important.yaml"), loaded.excluded("other.yaml")) == (False, True)
