"""Sources for the Kustomization tests: the seed repository as it is, and small trees written per test."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from canaryflow.gitops.source.base import Artifact
from tests.clocks import InstantClock

SEED = Path(__file__).resolve().parents[3] / "examples" / "gitops-istio"


class Repo:
    """A directory standing for a source artifact; each ``commit`` gives a new revision of it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.count = 0

    def write(self, relative: str, text: str) -> None:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())

    def remove(self, relative: str) -> None:
        (self.root / relative).unlink()

    def artifact(self) -> Artifact:
        self.count += 1
        sha = f"{self.count:040x}"
        return Artifact(url="file:///repo", revision=f"main@sha1:{sha}", path=self.root, digest=f"sha256:{sha}")


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo(tmp_path / "repo")


@pytest.fixture
def seed(tmp_path: Path) -> Repo:
    """A copy of the seed repository, so a test may change it."""
    shutil.copytree(SEED, tmp_path / "seed")
    return Repo(tmp_path / "seed")


@pytest.fixture
def clock() -> InstantClock:
    return InstantClock()


def configmap(name: str, namespace: str = "prod", data: str = "a", annotations: dict[str, str] | None = None) -> str:
    """A ConfigMap manifest (a kind every target runs, and no kustomize needed to build it)."""
    notes = "".join(f"\n    {key}: {value}" for key, value in (annotations or {}).items())
    notes = f"\n  annotations:{notes}" if notes else ""
    return (
        f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {namespace}{notes}\n"
        f"data:\n  value: {data}\n"
    )
