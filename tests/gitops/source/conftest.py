"""Fixtures: repositories served by real git servers on 127.0.0.1 (see tests/gitops/gitserver.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from canaryflow.gitops.source import GitSource
from tests.gitops.gitserver import GitDaemon, GitHttpServer, RepoDir

MANIFEST = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  version: '1'\n"


@pytest.fixture
def repos(tmp_path: Path) -> RepoDir:
    return RepoDir(tmp_path / "repos")


@pytest.fixture
def daemon(repos: RepoDir) -> Iterator[GitDaemon]:
    with GitDaemon(repos.root) as server:
        yield server


@pytest.fixture
def http_server(repos: RepoDir) -> Iterator[GitHttpServer]:
    with GitHttpServer(repos.root) as server:
        yield server


@pytest.fixture
def source(tmp_path: Path) -> GitSource:
    return GitSource(tmp_path / "source")
