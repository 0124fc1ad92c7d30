"""``canaryflow release`` (fluxctl release) against the runtime's real API over a saved state: through real git (a
bare repository on disk, as the runtime's flux-system GitRepository) when a Kustomization applied the Deployment,
through the apply API otherwise; then following the canary run; and each way it refuses."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from canaryflow.api import loader
from canaryflow.api.status import Phase
from canaryflow.cli import gitops
from canaryflow.gitops.controller.objects import Key
from tests.cli.conftest import SEED, Runtime, Saved
from tests.gitops.gitserver import Repo, RepoDir, git

BACKEND = "prod:deployment/backend"
PODINFO = "ghcr.io/stefanprodan/podinfo"
KUSTOMIZATION = "apps/backend/kustomization.yaml"
INVENTORY = {"entries": [{"id": "prod_backend_apps_Deployment", "v": "v1"}]}


class GitOps:
    """The runtime's GitOps controller as the API calls it: records the reconciles it is asked for; the
    Kustomization applies the head of ``main`` (``outcome``: at once, after its dependency, or never)."""

    def __init__(self, saved: Saved) -> None:
        self.saved = saved
        self.reconciled: list[Key] = []
        self.repo: Repo | None = None
        self.outcome = "applied"

    async def reconcile(self, key: Key, timeout: float) -> None:
        self.reconciled.append(key)
        if key.kind != "Kustomization" or self.repo is None:
            return
        revision = f"main@sha1:{self.repo.head('main')}"
        if self.outcome == "applied":
            self.set(key, "True", "ReconciliationSucceeded", f"Applied revision: {revision}", revision)
        elif self.outcome == "failed":
            self.set(key, "False", "BuildFailed", "kustomize build failed: accumulating resources", "")
        else:  # a dependency applies the revision first, then wakes this Kustomization
            self.set(key, "False", "DependencyNotReady", "dependency 'flux-system/infra' is not ready", "")
            apply = functools.partial(self.set, key, "True", "ReconciliationSucceeded", "Applied", revision)
            threading.Timer(1.5, apply).start()

    def set(self, key: Key, ready: str, reason: str, message: str, applied: str) -> None:
        condition = {"type": "Ready", "status": ready, "reason": reason, "message": message}
        attempted = f"main@sha1:{self.repo.head('main')}" if self.repo else ""
        status = {"conditions": [condition], "inventory": INVENTORY, "lastAttemptedRevision": attempted}
        self.saved.objects.set_status(key.kind, key.namespace, key.name, status | {"lastAppliedRevision": applied})


@pytest.fixture
def runtime(served: Runtime, saved: Saved) -> Iterator[Runtime]:
    """The served API, with the parts ``apply`` and ``reconcile`` call."""

    served.gitops = GitOps(saved)
    yield served


@pytest.fixture
def repo(tmp_path: Path, saved: Saved, runtime: Runtime) -> Repo:
    """The seed's backend in a bare repository that the runtime follows, the Kustomization having applied it."""
    files = {f"apps/backend/{p.name}": p.read_bytes() for p in SEED.iterdir() if p.is_file()}
    repo = RepoDir(tmp_path / "repos").create("gitops-istio", files, branch="main")
    documents = loader.load_text(gitops.bootstrap(f"file://{repo.bare}", "main", "./apps"), "bootstrap").documents
    saved.objects.apply(documents)
    saved.objects.set_status("Kustomization", "flux-system", "flux-system", {"inventory": INVENTORY})
    runtime.gitops.repo = repo
    return repo


def image(saved: Saved) -> str:
    body = saved.objects.get("Deployment", "prod", "backend") or {}
    return str(body["spec"]["template"]["spec"]["containers"][0]["image"])


def test_the_release_is_one_changed_line_committed_pushed_and_reconciled(saved: Saved, repo: Repo) -> None:
    before = repo.read(KUSTOMIZATION, "main")
    code, out, err = saved.cli("release", f"--workload={BACKEND}", f"--update-image={PODINFO}:6.1.1", "--no-wait")
    assert code == 0, err
    head = repo.head("main")
    assert f"commit {head}" in out
    assert f"{KUSTOMIZATION}: images[{PODINFO}].newTag {PODINFO}:6.1.0 → {PODINFO}:6.1.1" in out, out
    assert repo.log("main")[0][1:] == ("canaryflow <canaryflow@users.noreply.localhost>",
                                       f"Release {BACKEND} image {PODINFO}:6.1.1")  # fmt: skip
    assert git("diff", "--numstat", "HEAD~1", "HEAD", cwd=repo.bare).split() == ["1", "1", KUSTOMIZATION]
    assert repo.read(KUSTOMIZATION, "main") == before.replace("newTag: 6.1.0", "newTag: 6.1.1")
    assert image(saved) == f"{PODINFO}:5.0.0"  # git, not the stored Deployment, was changed


def test_the_source_and_the_kustomization_are_reconciled(saved: Saved, repo: Repo, runtime: Runtime) -> None:
    code, _, err = saved.cli("release", f"--workload={BACKEND}", f"--update-image={PODINFO}:6.2.0", "--no-wait")
    assert code == 0, err
    assert runtime.gitops.reconciled == [
        Key("GitRepository", "flux-system", "flux-system"),
        Key("Kustomization", "flux-system", "flux-system"),
    ]
    assert f"kustomization flux-system/flux-system: Applied revision: main@sha1:{repo.head('main')}" in err


def test_the_command_waits_while_a_dependency_applies_the_commit_first(
    saved: Saved, repo: Repo, runtime: Runtime
) -> None:
    runtime.gitops.outcome = "dependency"
    code, _, err = saved.cli("release", f"--workload={BACKEND}", f"--update-image={PODINFO}:6.2.0", "--no-wait")
    assert code == 0, err
    assert "kustomization flux-system/flux-system: Applied" in err


def test_a_commit_the_kustomization_cannot_apply_is_an_error(saved: Saved, repo: Repo, runtime: Runtime) -> None:
    runtime.gitops.outcome = "failed"
    code, out, err = saved.cli("release", f"--workload={BACKEND}", f"--update-image={PODINFO}:6.2.0")
    assert code == 1
    assert f"commit {repo.head('main')}" in out
    assert (
        f"error: main@sha1:{repo.head('main')} pushed, but kustomization flux-system/flux-system did not apply it: "
        "kustomize build failed: accumulating resources"
    ) in err, err


def test_force_replaces_the_image_name_in_git(saved: Saved, repo: Repo) -> None:
    code, _, err = saved.cli("release", f"--workload={BACKEND}", "--update-image=stefanprodan/podinfo:3.1.1")
    assert code == 1
    assert f"no container runs an image named stefanprodan/podinfo (backend: {PODINFO}:5.0.0)" in err
    assert "--force" in err
    code, _, err = saved.cli(
        "release", f"--workload={BACKEND}", "--update-image=stefanprodan/podinfo:3.1.1", "--force", "--no-wait"
    )
    assert code == 0, err
    text = repo.read(KUSTOMIZATION, "main")
    assert "    newName: stefanprodan/podinfo\n    newTag: 3.1.1\n" in text, text


def test_a_refused_push_is_an_error_and_nothing_is_reconciled(saved: Saved, repo: Repo, runtime: Runtime) -> None:
    hook = repo.bare / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'main is protected' >&2\nexit 1\n")
    hook.chmod(0o755)
    head = repo.head("main")
    code, _, err = saved.cli("release", f"--workload={BACKEND}", f"--update-image={PODINFO}:6.1.1", "--no-wait")
    assert code == 1
    assert "error: cannot push the release to main" in err and "(pre-receive hook declined)" in err, err
    assert "Traceback" not in err
    assert repo.head("main") == head
    assert runtime.gitops.reconciled == []


def test_already_at_that_tag_in_git_commits_nothing(saved: Saved, repo: Repo) -> None:
    head = repo.head("main")
    code, out, err = saved.cli("release", f"--workload={BACKEND}", f"--update-image={PODINFO}:6.1.0")
    assert code == 0, err  # and no run to follow
    assert "already is at ghcr.io/stefanprodan/podinfo:6.1.0 in git: nothing to commit" in out
    assert repo.head("main") == head


def test_without_git_the_stored_deployment_is_changed(saved: Saved, runtime: Runtime) -> None:
    code, out, err = saved.cli("release", f"--workload={BACKEND}", f"--update-image={PODINFO}:6.1.1", "--no-wait")
    assert code == 0, err
    assert image(saved) == f"{PODINFO}:6.1.1"
    assert f"deployment prod/backend: containers[backend].image {PODINFO}:5.0.0 → {PODINFO}:6.1.1" in out, out
    code, out, err = saved.cli("release", f"--workload={BACKEND}", f"--update-image={PODINFO}:6.1.1")
    assert (code, out.strip()) == (0, f"deployment prod/backend already runs {PODINFO}:6.1.1: nothing to release")


@pytest.mark.parametrize("outcome", [Phase.SUCCEEDED, Phase.FAILED])
def test_the_canary_run_is_followed_until_it_ends(saved: Saved, runtime: Runtime, outcome: Phase) -> None:
    def engine() -> None:  # what the control loop does once the new image is stored
        deadline = time.monotonic() + 20
        while image(saved) != f"{PODINFO}:6.1.1" and time.monotonic() < deadline:
            time.sleep(0.05)
        saved.set_status("prod/backend", phase=Phase.PROGRESSING, canary_weight=0, last_applied_spec="new")
        time.sleep(1.5)
        saved.set_status("prod/backend", canary_weight=20)
        time.sleep(1.5)
        saved.set_status("prod/backend", phase=outcome, canary_weight=0, message=f"the run {outcome}")

    thread = threading.Thread(target=engine, daemon=True)
    thread.start()
    code, _, err = saved.cli("release", f"--workload={BACKEND}", f"--update-image={PODINFO}:6.1.1", "--timeout=30s")
    thread.join()
    assert code == (0 if outcome is Phase.SUCCEEDED else 1), err
    lines = [line for line in err.splitlines() if line.startswith("canary prod/backend:")]
    assert lines[:3] == ["canary prod/backend: Progressing weight 0", "canary prod/backend: Progressing weight 20",
                         f"canary prod/backend: {outcome} weight 0"], err  # fmt: skip
    assert f"the run {outcome}" in err


def test_the_wait_is_bounded(saved: Saved, runtime: Runtime) -> None:
    code, _, err = saved.cli("release", f"--workload={BACKEND}", f"--update-image={PODINFO}:6.1.1", "--timeout=1s")
    assert code == 1
    assert "error: canary prod/backend did not finish within 1s (--timeout)" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--workload=prod/backend", "--update-image=podinfo:1"], "expected NAMESPACE:deployment/NAME"),
        (["--workload=prod:deployment/backnd", "--update-image=podinfo:1"],
         "deployment prod/backnd not found; did you mean prod:deployment/backend?"),
        ([f"--workload={BACKEND}-primary", "--update-image=podinfo:1"],
         "is the primary a canary made of backend: release prod:deployment/backend"),
        ([f"--workload={BACKEND}", f"--update-image={PODINFO}"], "expected IMAGE:TAG"),
        ([f"--workload={BACKEND}", "--update-image=nginx:1.27"], "no container runs an image named nginx"),
    ],
)  # fmt: skip
def test_errors_say_what_is_wrong(saved: Saved, runtime: Runtime, args: list[str], message: str) -> None:
    code, _, err = saved.cli("release", *args, "--no-wait")
    assert code == 1
    assert message in err, err
    assert "Traceback" not in err
