"""MemorySource behaves like GitSource for what consumers see: revisions, precedence, reuse, ignore, failures."""

from __future__ import annotations

from pathlib import Path

import pytest

from canaryflow.gitops.source import GitRef, GitSpec, MemorySource, Source, SourceError

URL = "https://git.example.test/app.git"


@pytest.fixture
def memory(tmp_path: Path) -> MemorySource:
    return MemorySource(tmp_path / "artifacts")


async def test_fetch_resolves_references_like_git(memory: MemorySource) -> None:
    source: Source = memory
    first = memory.commit(URL, {"v.txt": "1.0.0", "logo.png": "x"})
    memory.tag(URL, "v1.0.0", first)
    second = memory.commit(URL, {"v.txt": "1.1.0"})
    memory.tag(URL, "v1.1.0", second)
    dev = memory.commit(URL, {"v.txt": "dev"}, branch="dev")
    cases = {
        GitRef(): f"master@sha1:{second}",
        GitRef(branch="dev"): f"dev@sha1:{dev}",
        GitRef(tag="v1.0.0", branch="dev"): f"v1.0.0@sha1:{first}",
        GitRef(semver="~1.0", tag="v1.1.0"): f"v1.0.0@sha1:{first}",
        GitRef(name="refs/tags/v1.1.0"): f"refs/tags/v1.1.0@sha1:{second}",
        GitRef(commit=first[:10]): f"sha1:{first}",
        GitRef(branch="master", commit=first): f"master@sha1:{first}",
    }
    for ref, revision in cases.items():
        assert (await source.fetch("ns/app", GitSpec(URL, ref))).revision == revision, ref
    artifact = await source.fetch("ns/app", GitSpec(URL, GitRef(tag="v1.0.0")))
    assert {p.name for p in artifact.path.iterdir()} == {"v.txt"}  # default exclusions apply (logo.png)


async def test_same_revision_same_artifact_and_a_new_commit_a_new_one(memory: MemorySource) -> None:
    memory.commit(URL, {"a.yaml": "1"})
    first = await memory.fetch("ns/app", GitSpec(URL))
    assert await memory.fetch("ns/app", GitSpec(URL)) == first
    memory.commit(URL, {"a.yaml": "2"})
    second = await memory.fetch("ns/app", GitSpec(URL))
    assert second.path != first.path and second.digest != first.digest
    assert (second.path / "a.yaml").read_text() == "2"


async def test_failures_and_missing_references(memory: MemorySource) -> None:
    base = memory.commit(URL, {"a.yaml": "1"})
    memory.commit(URL, {"a.yaml": "2"})
    memory.force_push(URL, "master", base)
    assert (await memory.fetch("ns/app", GitSpec(URL))).revision == f"master@sha1:{base}"
    with pytest.raises(SourceError, match="branch 'main' not found"):
        await memory.fetch("ns/app", GitSpec(URL, GitRef(branch="main")))
    memory.fail(URL, "connection refused")
    with pytest.raises(SourceError, match="connection refused"):
        await memory.fetch("ns/app", GitSpec(URL))
    memory.fail(URL, None)
    assert (await memory.fetch("ns/app", GitSpec(URL))).revision == f"master@sha1:{base}"
    assert len(memory.fetches) == 4
