"""The seed flow through git, end to end: the seed repository's files (the project's copy, unchanged) in a bare
repository served by ``git daemon``, followed by the local runtime at ``./clusters/my-cluster`` as after
``flux bootstrap``; a commit changing ``newTag`` plus a signed GitHub push webhook → a canary run that ends in
promotion; then image automation: a tag pushed to a real ``docker-registry`` with skopeo → canaryflow commits the
new tag to git → the canary run follows.

One runtime serves the whole module (bringing the seed up is the slow part). The flux-system GitRepository polls
only every hour, so every new commit in these tests reaches the runtime through the Receiver or through the
image automation's own wake-up, never through the poll.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console
from typer.testing import CliRunner

from canaryflow.cli import demo, gitops
from canaryflow.cli.client import Runtime
from canaryflow.cli.main import app as cli
from canaryflow.gitops import receiver
from canaryflow.local import state
from tests.gitops.gitserver import GitDaemon, Repo, RepoDir
from tests.gitops.registry import Registry

pytestmark = pytest.mark.e2e

BRANCH = "main"
CLUSTER_PATH = "./clusters/my-cluster"
KUSTOMIZATIONS = ("flux-system", "istio-system", "istio-gateway", "apps")
TOKEN = "webhook-token-of-the-e2e-test"
RECEIVER = f"""
apiVersion: v1
kind: Secret
metadata: {{name: webhook-token, namespace: flux-system}}
stringData: {{token: {TOKEN}}}
---
apiVersion: notification.toolkit.fluxcd.io/v1
kind: Receiver
metadata: {{name: github-receiver, namespace: flux-system}}
spec:
  type: github
  events: ["ping", "push"]
  secretRef: {{name: webhook-token}}
  resources:
    - apiVersion: source.toolkit.fluxcd.io/v1
      kind: GitRepository
      name: flux-system
"""
AUTOMATION = """apiVersion: image.toolkit.fluxcd.io/v1beta2
kind: ImageRepository
metadata:
  name: podinfo
  namespace: flux-system
spec:
  image: {image}
  insecure: true
  interval: 5s
---
apiVersion: image.toolkit.fluxcd.io/v1beta2
kind: ImagePolicy
metadata:
  name: podinfo
  namespace: flux-system
spec:
  imageRepositoryRef:
    name: podinfo
  policy:
    semver:
      range: ">=6.0.0 <7.0.0"
---
apiVersion: image.toolkit.fluxcd.io/v1beta2
kind: ImageUpdateAutomation
metadata:
  name: flux-system
  namespace: flux-system
spec:
  interval: 1h
  sourceRef:
    kind: GitRepository
    name: flux-system
  git:
    checkout:
      ref:
        branch: main
    commit:
      author:
        name: fluxcdbot
        email: fluxcdbot@users.noreply.github.com
      messageTemplate: "Update backend to {{range .Changed.Changes}}{{.NewValue}}{{end}}"
    push:
      branch: main
  update:
    path: ./apps
    strategy: Setters
"""
#: Why a Kustomization fails (a missing artifact or an unready dependency only make it wait).
FAILURES = ("BuildFailed", "ReconciliationFailed", "PruneFailed", "HealthCheckFailed")
MARKER = '# {"$imagepolicy": "flux-system:podinfo:tag"}'


def seed_files() -> dict[str, str | bytes]:
    return {str(p.relative_to(demo.EXAMPLES)): p.read_bytes() for p in sorted(demo.EXAMPLES.rglob("*")) if p.is_file()}


@dataclasses.dataclass
class Seed:
    repo: Repo
    url: str
    scenario: demo.Demo
    workdir: Path

    @property
    def runtime(self) -> Runtime:
        return self.scenario.runtime

    def apply(self, text: str, source: str) -> None:
        response = self.runtime.request(
            "POST", "/apply", json={"sources": [{"source": source, "text": text}], "namespace": None}
        )
        assert response.status_code == 200, response.text

    def cli(self, *args: str) -> tuple[int, str]:
        result = CliRunner().invoke(cli, [*args, "--state-dir", str(self.runtime.dirs.root)])
        return result.exit_code, result.output

    def items(self, plural: str) -> list[dict[str, Any]]:
        return list(self.runtime.json("GET", f"/gitops/{plural}")["items"])

    def status(self, plural: str, name: str) -> dict[str, Any]:
        for item in self.items(plural):
            if item["metadata"]["name"] == name:
                return dict(item.get("status") or {})
        raise AssertionError(f"no {plural} named {name}\n{self.diagnosis()}")

    def ready(self, plural: str, name: str) -> dict[str, Any]:
        found = [c for c in self.status(plural, name).get("conditions") or [] if c.get("type") == "Ready"]
        return found[0] if found else {}

    def is_ready(self, plural: str, name: str) -> bool:
        return self.ready(plural, name).get("status") == "True"

    def until(self, what: str, check: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out ({timeout:.0f}s) waiting until {what}\n{self.diagnosis()}")
            time.sleep(0.5)

    def push_event(self, sha: str) -> httpx.Response:
        """What GitHub sends after a push: a signed ``push`` event to the Receiver's webhook path."""
        path = self.status("receivers", "github-receiver")["webhookPath"]
        payload = json.dumps({"ref": f"refs/heads/{BRANCH}", "after": sha}).encode()
        headers = {
            "X-GitHub-Event": "push",
            "X-Hub-Signature-256": receiver.sign(TOKEN, payload),
            "Content-Type": "application/json",
        }
        return self.runtime.request("POST", path, content=payload, headers=headers)

    def applied(self, sha: str) -> bool:
        """The apps Kustomization applied the commit ``sha``."""
        return bool(self.status("kustomizations", "apps").get("lastAppliedRevision") == f"{BRANCH}@sha1:{sha}")

    def served_version(self) -> str:
        with self.scenario.mesh() as client:
            return str(client.get("http://backend.prod:9898/version").json()["version"])

    def diagnosis(self) -> str:
        """Every Flux object's Ready condition, the latest events and the runtime's log, for a failure message."""
        lines = ["--- Flux objects (Ready)"]
        for plural in (
            "gitrepositories",
            "kustomizations",
            "imagerepositories",
            "imagepolicies",
            "imageupdateautomations",
            "receivers",
        ):
            try:
                items = self.runtime.json("GET", f"/gitops/{plural}")["items"]
            except Exception as exc:
                lines.append(f"{plural}: {exc}")
                continue
            for item in items:
                conds = {c["type"]: c for c in (item.get("status") or {}).get("conditions") or []}
                ready = conds.get("Ready", {})
                lines.append(
                    f"{item['kind']}/{item['metadata']['name']}: {ready.get('status')} "
                    f"{ready.get('reason')}: {ready.get('message')}"
                )
        lines.append("--- events")
        try:
            for event in self.runtime.json("GET", "/events", params={"limit": 40}):
                lines.append(f"{event['object']} {event['type']} {event['reason']}: {event['message']}")
        except Exception as exc:
            lines.append(str(exc))
        lines.append("--- runtime log\n" + self.runtime.log_tail(30))
        return "\n".join(lines)


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seed]:
    work = tmp_path_factory.mktemp("gitops-seed")
    repos = RepoDir(work / "repos")
    repo = repos.create("gitops-istio", seed_files(), branch=BRANCH)
    with GitDaemon(repos.root) as daemon:
        scenario = demo.Demo(demo.EXAMPLES, work, Console(file=io.StringIO()), 0.2)
        scenario.runtime.start(time_scale=0.2, min_interval=10.0)
        try:
            s = Seed(repo, daemon.url("gitops-istio"), scenario, work)
            # flux bootstrap's two objects, polling only hourly: new commits arrive through the Receiver
            s.apply(gitops.bootstrap(s.url, BRANCH, CLUSTER_PATH, interval="1h"), "bootstrap")
            s.apply(RECEIVER, "receiver.yaml")
            yield s
        finally:
            scenario.runtime.stop()
            record = scenario.runtime.dirs.record() or {}
            alive = [p for p in record.get("children", []) if state.same_process(p["pid"], p["cmdline"])]
            assert not alive, f"the runtime left processes behind: {alive}"


@pytest.fixture(scope="module")
def seed_up(seed: Seed) -> Seed:
    """The seed is applied from git: every Kustomization Ready, both canaries Initialized."""
    for name in KUSTOMIZATIONS:
        seed.until(f"Kustomization {name} is Ready", functools.partial(seed.is_ready, "kustomizations", name), 120)
    seed.until("the Receiver is Ready", functools.partial(seed.is_ready, "receivers", "github-receiver"), 30)
    for app in ("backend", "frontend"):
        phase = seed.scenario.wait(app, ("Initialized",), timeout=180)
        assert phase == "Initialized", f"{app}: {phase}\n{seed.diagnosis()}"
    return seed


def test_the_seed_comes_up_from_git(seed_up: Seed) -> None:
    head = seed_up.repo.head(BRANCH)
    for name in KUSTOMIZATIONS:
        ready = seed_up.ready("kustomizations", name)
        assert ready["reason"] == "ReconciliationSucceeded", (name, ready)
        assert ready["message"] == f"Applied revision: {BRANCH}@sha1:{head}", (name, ready)
    # Istio's and Flagger's installation are the runtime's own job: applied as provided, never an error
    inventory = {e["id"] for e in seed_up.status("kustomizations", "istio-system")["inventory"]["entries"]}
    for provided in (
        "istio-system_flagger_helm.toolkit.fluxcd.io_HelmRelease",
        "istio-system_istiod_helm.toolkit.fluxcd.io_HelmRelease",
        "istio-system_istio_source.toolkit.fluxcd.io_HelmRepository",
    ):
        assert provided in inventory, inventory
    code, out = seed_up.cli("tree", "kustomization", "istio-system")
    assert code == 0, out
    assert "HelmRelease/istio-system/istiod (provided by the local runtime)" in out, out
    assert "Namespace/istio-system\n" in out, out  # a kind the runtime holds itself: not marked
    gateway = {e["id"] for e in seed_up.status("kustomizations", "istio-gateway")["inventory"]["entries"]}
    assert "istio-system_public-gateway_networking.istio.io_Gateway" in gateway, gateway
    apps = {e["id"] for e in seed_up.status("kustomizations", "apps")["inventory"]["entries"]}
    assert {"prod_backend_apps_Deployment", "prod_frontend_flagger.app_Canary"} <= apps, apps
    for name in ("backend", "frontend"):
        assert seed_up.scenario.canary(name)["status"]["phase"] == "Initialized"
    events = seed_up.runtime.json("GET", "/events", params={"limit": 200})
    failures = [e for e in events if e["object"].startswith("Kustomization/") and e["reason"] in FAILURES]
    assert not failures, failures


def test_a_new_tag_in_git_and_a_github_webhook_release_the_backend(seed_up: Seed) -> None:
    before = seed_up.scenario.canary("backend")["status"].get("lastAppliedSpec", "")
    path = "apps/backend/kustomization.yaml"
    text = seed_up.repo.read(path, BRANCH)
    sha = seed_up.repo.commit(
        {path: re.sub(r"newTag: \S+", "newTag: 6.1.1", text)}, branch=BRANCH, message="backend 6.1.1"
    )

    webhook = seed_up.status("receivers", "github-receiver")["webhookPath"]
    forged = seed_up.runtime.request(
        "POST",
        webhook,
        content=b"{}",
        headers={"X-GitHub-Event": "push", "X-Hub-Signature-256": receiver.sign("not-the-token", b"{}")},
    )
    assert forged.status_code == 401, forged.text
    assert forged.json()["reconciling"] == []

    signed = seed_up.push_event(sha)
    assert signed.status_code == 200, signed.text
    assert signed.json()["reconciling"] == ["GitRepository/flux-system/flux-system"]

    seed_up.until(f"apps applied {sha[:12]}", lambda: seed_up.applied(sha), timeout=60)
    phase = seed_up.scenario.wait("backend", ("Succeeded", "Failed"), since=before, timeout=240)
    assert phase == "Succeeded", f"{phase}\n{seed_up.diagnosis()}"
    assert seed_up.served_version() == "6.1.1"
    code, out = seed_up.cli("diff", "kustomization", "apps")
    assert (code, out.strip()) == (0, "no differences"), out  # the canary run made no drift from git


def test_a_pushed_image_tag_is_committed_to_git_and_released(seed_up: Seed) -> None:
    path = "apps/backend/kustomization.yaml"
    text = seed_up.repo.read(path, BRANCH)
    match = re.search(r"newTag: (\S+)", text)
    assert match is not None, text
    current = match.group(1)
    with Registry(seed_up.workdir) as registry:
        registry.push("stefanprodan/podinfo", "6.0.0", current)
        marked = text.replace(f"newTag: {current}", f"newTag: {current} {MARKER}")
        automation = AUTOMATION.replace("{image}", f"{registry.host}/stefanprodan/podinfo")
        sha = seed_up.repo.commit(
            {path: marked, "clusters/my-cluster/image-automation.yaml": automation},
            branch=BRANCH,
            message="image automation for the backend",
        )
        assert seed_up.push_event(sha).status_code == 200
        seed_up.until(f"apps applied {sha[:12]}", lambda: seed_up.applied(sha), timeout=60)
        latest = {"name": f"{registry.host}/stefanprodan/podinfo", "tag": current}
        seed_up.until(
            f"the policy chose {latest}",
            lambda: seed_up.status("imagepolicies", "podinfo").get("latestRef") == latest,
            timeout=60,
        )
        seed_up.until(
            "the automation ran", functools.partial(seed_up.is_ready, "imageupdateautomations", "flux-system"), 60
        )
        assert seed_up.repo.head(BRANCH) == sha  # the current tag already is in git: nothing to commit

        before = seed_up.scenario.canary("backend")["status"].get("lastAppliedSpec", "")
        registry.push("stefanprodan/podinfo", "6.2.0")
        seed_up.until("canaryflow pushed a commit", lambda: seed_up.repo.head(BRANCH) != sha, timeout=90)
        (commit, author, subject), (parent, _, _) = seed_up.repo.log(BRANCH)[:2]
        assert parent == sha  # one commit, for the new tag only: the current tag was never "updated"
        assert author == "fluxcdbot <fluxcdbot@users.noreply.github.com>"
        assert subject == "Update backend to 6.2.0"
        updated = seed_up.repo.read(path, BRANCH)
        assert f"newTag: 6.2.0 {MARKER}" in updated, updated
        assert updated.replace("6.2.0", current) == marked  # only the tag changed: comments and layout kept

        seed_up.until(f"apps applied canaryflow's commit {commit[:12]}", lambda: seed_up.applied(commit), timeout=60)
        phase = seed_up.scenario.wait("backend", ("Succeeded", "Failed"), since=before, timeout=240)
        assert phase == "Succeeded", f"{phase}\n{seed_up.diagnosis()}"
        assert seed_up.served_version() == "6.2.0"
        code, out = seed_up.cli("get", "images")
        assert code == 0, out
        assert f"{registry.host}/stefanprodan/podinfo:6.2.0" in out, out
        automation = next(line for line in out.splitlines() if line.split()[:1] == ["flux-system"])
        assert commit in automation, out  # its last push


def test_canaryflow_release_commits_the_image_reconciles_and_follows_the_run(seed_up: Seed) -> None:
    """The seed guide's ``fluxctl release --workload=prod:deployment/frontend --update-image=…``."""
    path = "apps/frontend/kustomization.yaml"
    text = seed_up.repo.read(path, BRANCH)
    image = "ghcr.io/stefanprodan/podinfo:6.1.1"
    code, out = seed_up.cli("release", "--workload=prod:deployment/frontend", f"--update-image={image}", "--timeout=5m")
    assert code == 0, f"{out}\n{seed_up.diagnosis()}"
    (commit, author, subject), _ = seed_up.repo.log(BRANCH)[:2]
    assert f"commit {commit}" in out, out
    assert (author, subject) == ("canaryflow <canaryflow@users.noreply.localhost>",
                                 f"Release prod:deployment/frontend image {image}")  # fmt: skip
    assert seed_up.repo.read(path, BRANCH) == re.sub(r"newTag: \S+", "newTag: 6.1.1", text)
    assert seed_up.applied(commit)  # reconciled before the command went on: no webhook, no poll
    assert "canary prod/frontend: Succeeded weight 0" in out, out
    assert seed_up.scenario.canary("frontend")["status"]["phase"] == "Succeeded"
