"""ImageUpdateAutomation end to end: a real registry, a real git server (smart HTTP with basic auth)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from canaryflow.gitops.image import automation
from canaryflow.gitops.image.automation import AutomationSpec, run_automation
from canaryflow.gitops.image.policy import PolicySpec, latest
from canaryflow.gitops.image.registry import list_tags
from canaryflow.gitops.image.setters import Result, update_tree_result
from canaryflow.gitops.image.template import TemplateError
from canaryflow.gitops.source import Author, GitAuth
from tests.gitops.gitserver import GitHttpServer, Repo, RepoDir, git
from tests.gitops.registry import Registry

SEED = Path(__file__).parents[3] / "examples" / "gitops-istio" / "apps" / "backend"
AUTH = GitAuth(username="flux", password="git-pw")
BOT = Author("fluxcdbot", "fluxcdbot@users.noreply.github.com")


def seed_files(image: str = "ghcr.io/stefanprodan/podinfo") -> dict[str, str]:
    files = {f"apps/backend/{p.name}": p.read_text() for p in SEED.iterdir()}
    k = files["apps/backend/kustomization.yaml"]
    files["apps/backend/kustomization.yaml"] = k.replace(
        f"    newName: {image}\n", f'    newName: {image} # {{"$imagepolicy": "flux-system:podinfo:name"}}\n'
    ).replace("    newTag: 6.1.0\n", '    newTag: 6.1.0 # {"$imagepolicy": "flux-system:podinfo:tag"}\n')
    files["README.md"] = "not touched\n"
    return files


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return RepoDir(tmp_path / "repos").create("fleet", seed_files())


@pytest.fixture
def server(tmp_path: Path, repo: Repo) -> Iterator[GitHttpServer]:
    with GitHttpServer(tmp_path / "repos", username="flux", password="git-pw") as http:
        yield http


def spec(server: GitHttpServer, **overrides: object) -> AutomationSpec:
    values: dict[str, object] = {
        "namespace": "flux-system",
        "name": "podinfo-update",
        "url": server.url("fleet"),
        "branch": "master",
        "author": BOT,
        "path": "./apps",
        "message_template": "{{ range .Changed.Changes }}{{ .OldValue }} -> {{ .NewValue }}\n{{ end }}",
    }
    values.update(overrides)
    return AutomationSpec(**values)  # type: ignore[arg-type]


async def test_a_new_tag_in_the_registry_becomes_a_commit(tmp_path: Path, repo: Repo, server: GitHttpServer) -> None:
    with Registry(tmp_path) as registry:
        registry.push("stefanprodan/podinfo", "6.1.0", "6.1.1", "6.2.0", "7.0.0-rc.1")
        tags = await list_tags(f"{registry.host}/stefanprodan/podinfo")
        tag = latest(tags, PolicySpec(semver=">=6.0.0 <7.0.0"))
        images = {"flux-system:podinfo": f"{registry.host}/stefanprodan/podinfo:{tag}"}

    before = repo.head()
    sha = await run_automation(spec(server), images, workdir=tmp_path / "work", auth=AUTH)

    assert sha is not None and repo.head() == sha
    kustomization = repo.read("apps/backend/kustomization.yaml")
    assert f"    newName: {registry.host}/stefanprodan/podinfo # " in kustomization
    assert "    newTag: 6.2.0 # " in kustomization
    assert repo.log()[0][1] == "fluxcdbot <fluxcdbot@users.noreply.github.com>"
    assert git("log", "-1", "--format=%B", "refs/heads/master", cwd=repo.bare) == (
        f"ghcr.io/stefanprodan/podinfo -> {registry.host}/stefanprodan/podinfo\n6.1.0 -> 6.2.0\n\n"
    )
    assert repo.log()[1][0] == before
    changed = git("diff", "--name-only", f"{before}..{sha}", cwd=repo.bare)
    assert changed == "apps/backend/kustomization.yaml\n"
    assert ("POST", "/fleet.git/git-receive-pack", "Basic") in server.requests


async def test_nothing_to_change_means_no_commit(tmp_path: Path, repo: Repo, server: GitHttpServer) -> None:
    images = {"flux-system:podinfo": "ghcr.io/stefanprodan/podinfo:6.1.0"}
    before = repo.head()
    assert await run_automation(spec(server), images, workdir=tmp_path / "work", auth=AUTH) is None
    assert repo.head() == before


async def test_push_branch_leaves_the_checkout_branch_alone(tmp_path: Path, repo: Repo, server: GitHttpServer) -> None:
    images = {"flux-system:podinfo": "ghcr.io/stefanprodan/podinfo:6.3.0"}
    before = repo.head()
    sha = await run_automation(
        spec(server, push_branch="image-updates", message_template=None), images, workdir=tmp_path / "w", auth=AUTH
    )
    assert repo.head() == before
    assert repo.head("image-updates") == sha
    assert repo.log("image-updates")[0][2] == "Update from image update automation"
    assert "newTag: 6.3.0 #" in repo.read("apps/backend/kustomization.yaml", "image-updates")


async def test_a_concurrent_push_is_answered_by_redoing_the_update(
    tmp_path: Path, repo: Repo, server: GitHttpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    def racing_update(root: Path, path: str, images: Mapping[str, str]) -> tuple[list[str], Result]:
        calls.append(1)
        if len(calls) == 1:  # someone pushes while we edit: our push will be rejected as non-fast-forward
            repo.commit({"apps/backend/hpa.yaml": repo.read("apps/backend/hpa.yaml") + "# tuned by a human\n"})
        return update_tree_result(root, path, images)

    monkeypatch.setattr(automation, "update_tree_result", racing_update)
    images = {"flux-system:podinfo": "ghcr.io/stefanprodan/podinfo:6.4.0"}
    sha = await run_automation(spec(server), images, workdir=tmp_path / "work", auth=AUTH)

    assert len(calls) == 2
    human = repo.log()[1]
    assert human[2].startswith("change apps/backend/hpa.yaml")  # our commit sits on top of theirs
    assert repo.head() == sha
    assert repo.read("apps/backend/hpa.yaml").endswith("# tuned by a human\n")
    assert "newTag: 6.4.0 #" in repo.read("apps/backend/kustomization.yaml")


async def test_a_broken_template_stops_before_any_git_work(tmp_path: Path, server: GitHttpServer) -> None:
    with pytest.raises(TemplateError, match=r"removed '\.Updated'"):
        await run_automation(
            spec(server, message_template="{{ .Updated.Images }}"),
            {"flux-system:podinfo": "x/y:1"},
            workdir=tmp_path / "work",
            auth=AUTH,
        )
    assert not (tmp_path / "work").exists()
    assert server.requests == []
