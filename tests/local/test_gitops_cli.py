"""The GitOps commands (``up --git``, ``get sources|kustomizations|images``, ``reconcile``, ``tree``, ``diff``) and
the Receiver endpoint, run as a user runs them: the CLI against a real local runtime started by ``up --git``,
following a repository served by ``git daemon``, with an ImageRepository scanning a real ``docker-registry``.

The repository is small on purpose (a Namespace and a ConfigMap, no workloads): what is tested is the GitOps
surface, not canaries (tests/e2e/test_gitops_seed.py runs the seed flow).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from canaryflow.cli.client import Runtime
from canaryflow.cli.main import app
from canaryflow.gitops import receiver
from canaryflow.local import state
from tests.gitops.gitserver import GitDaemon, Repo, RepoDir
from tests.gitops.registry import Registry
from tests.kube.schemas import validate_flux_status

APP = """apiVersion: v1
kind: Namespace
metadata:
  name: demo
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: demo
data:
  greeting: hello
"""
#: A kind whose job the local runtime does itself (Envoy is the mesh): stored and shown as provided.
SIDECAR = """apiVersion: networking.istio.io/v1alpha3
kind: Sidecar
metadata:
  name: default
  namespace: demo
spec:
  egress:
    - hosts: ["demo/*"]
"""
IMAGES = """apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata:
  name: podinfo
  namespace: flux-system
spec:
  image: {image}
  insecure: true
  interval: 1h
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata:
  name: podinfo
  namespace: flux-system
spec:
  imageRepositoryRef:
    name: podinfo
  policy:
    semver:
      range: ">=1.0.0"
"""
TOKEN = "cli-test-token"
#: A second source polling hourly, woken only by the Receiver: what the Receiver triggers is then unambiguous.
HOOKED = """apiVersion: v1
kind: Secret
metadata: {{name: hook-token, namespace: flux-system}}
stringData: {{token: {token}}}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {{name: hooked, namespace: flux-system}}
spec:
  interval: 1h
  url: {url}
  ref: {{branch: main}}
---
apiVersion: notification.toolkit.fluxcd.io/v1
kind: Receiver
metadata: {{name: hook, namespace: flux-system}}
spec:
  type: github
  events: ["push"]
  secretRef: {{name: hook-token}}
  resources:
    - kind: GitRepository
      name: hooked
"""


@dataclasses.dataclass
class Cluster:
    repo: Repo
    url: str
    state: str
    runtime: Runtime

    def cli(self, *args: str) -> tuple[int, str]:
        result = CliRunner().invoke(app, [*args, "--state-dir", self.state])
        return result.exit_code, result.output

    def apply(self, text: str) -> None:
        response = self.runtime.request("POST", "/apply", json={"sources": [{"source": "t", "text": text}]})
        assert response.status_code == 200, response.text

    def status(self, plural: str, name: str) -> dict[str, Any]:
        for item in self.runtime.json("GET", f"/gitops/{plural}")["items"]:
            if item["metadata"]["name"] == name:
                return dict(item.get("status") or {})
        return {}

    def revision(self, name: str) -> str:
        return str((self.status("gitrepositories", name).get("artifact") or {}).get("revision", ""))

    def until(self, what: str, check: Callable[[], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                items = {p: self.runtime.json("GET", f"/gitops/{p}")["items"] for p in ("sources", "kustomizations")}
                raise AssertionError(f"timed out waiting until {what}: {json.dumps(items, indent=1)}")
            time.sleep(0.2)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    work = tmp_path_factory.mktemp("gitops-cli")
    repos = RepoDir(work / "repos")
    with Registry(work) as registry, GitDaemon(repos.root) as daemon:
        registry.push("stefanprodan/podinfo", "1.0.0", "1.2.0", "1.10.0")
        images = IMAGES.replace("{image}", f"{registry.host}/stefanprodan/podinfo")
        repo = repos.create(
            "config",
            {"clusters/dev/app.yaml": APP, "clusters/dev/images.yaml": images, "clusters/dev/sidecar.yaml": SIDECAR},
            branch="main",
        )
        state_dir = str(work / "state")
        c = Cluster(repo, daemon.url("config"), state_dir, Runtime(state_dir))
        try:
            code, out = c.cli("up", "--detach", "--git", c.url, "--branch", "main", "--path", "./clusters/dev")
            assert code == 0, out
            c.until("flux-system applied", lambda: bool(c.status("kustomizations", "flux-system").get("inventory")))
            yield c
        finally:
            c.runtime.stop()
            record = c.runtime.dirs.record() or {}
            alive = [p for p in record.get("children", []) if state.same_process(p["pid"], p["cmdline"])]
            assert not alive, f"the runtime left processes behind: {alive}"


def test_up_git_follows_the_repository_and_get_lists_sources_and_kustomizations(cluster: Cluster) -> None:
    head = cluster.repo.head("main")
    code, out = cluster.cli("get", "sources")
    assert code == 0, out
    row = next(line for line in out.splitlines() if "flux-system" in line)
    assert f"main@sha1:{head}" in row and "True" in row, out
    assert "stored artifact for revision" in row, out

    code, out = cluster.cli("get", "kustomizations")
    assert code == 0, out
    row = next(line for line in out.splitlines() if "flux-system" in line)
    assert f"Applied revision: main@sha1:{head}" in row, out

    code, out = cluster.cli("get", "sources", "-o", "json")
    assert code == 0, out
    (item,) = json.loads(out)["items"]
    assert item["spec"] == {"interval": "1m0s", "url": cluster.url, "ref": {"branch": "main"}}


def test_get_images_shows_the_scanned_tags_and_the_chosen_image(cluster: Cluster) -> None:
    cluster.until("the policy chose", lambda: bool(cluster.status("imagepolicies", "podinfo").get("latestRef")))
    code, out = cluster.cli("get", "images")
    assert code == 0, out
    assert "imagerepositories" in out and "imagepolicies" in out and "imageupdateautomations" in out, out
    repository = next(line for line in out.splitlines() if "podinfo" in line and "tags" in line)
    assert "3 tags" in repository, out
    policy = next(line for line in out.splitlines() if "podinfo:" in line)
    assert "stefanprodan/podinfo:1.10.0" in policy, out  # semver order, not alphabetical (1.2.0)
    # what the runtime stores and serves of every kind is what Flux's CRD declares (a cluster would prune the rest)
    for plural in ("gitrepositories", "kustomizations", "imagerepositories", "imagepolicies", "receivers"):
        for item in cluster.runtime.json("GET", f"/gitops/{plural}")["items"]:
            validate_flux_status(item["kind"], item.get("status") or {})


def test_reconcile_source_fetches_now_and_prints_the_ready_message(cluster: Cluster) -> None:
    sha = cluster.repo.commit({"README.md": "a commit the hourly poll has not seen\n"}, branch="main")
    code, out = cluster.cli("reconcile", "source", "flux-system")
    assert code == 0, out
    assert f"stored artifact for revision 'main@sha1:{sha}'" in out, out
    code, out = cluster.cli("reconcile", "kustomization", "flux-system")
    assert code == 0, out
    assert f"Applied revision: main@sha1:{sha}" in out, out


def test_reconcile_kustomization_with_source_applies_and_prunes_a_new_commit_at_once(cluster: Cluster) -> None:
    extra = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra, namespace: demo}\ndata: {a: b}\n"
    sha = cluster.repo.commit({"clusters/dev/extra.yaml": extra}, branch="main")
    code, out = cluster.cli("reconcile", "kustomization", "flux-system", "--with-source")
    assert code == 0, out
    assert f"Applied revision: main@sha1:{sha}" in out, out
    listing = cluster.runtime.json("GET", "/objects/configmaps", params={"namespace": "demo"})
    assert sorted(item["metadata"]["name"] for item in listing["items"]) == ["extra", "settings"]

    sha = cluster.repo.commit({"clusters/dev/extra.yaml": None}, branch="main")
    code, out = cluster.cli("reconcile", "ks", "flux-system", "--with-source")
    assert code == 0, out
    listing = cluster.runtime.json("GET", "/objects/configmaps", params={"namespace": "demo"})
    assert [item["metadata"]["name"] for item in listing["items"]] == ["settings"]  # pruned


def test_reconcile_of_a_source_that_cannot_be_fetched_exits_1_with_the_reason(cluster: Cluster) -> None:
    missing = cluster.url.replace("config.git", "missing.git")
    cluster.apply(
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\n"
        "metadata: {name: broken, namespace: flux-system}\n"
        f"spec: {{interval: 1h, url: '{missing}', ref: {{branch: main}}}}\n"
    )
    code, out = cluster.cli("reconcile", "source", "broken")
    assert code == 1, out
    ready = next(c for c in cluster.status("gitrepositories", "broken")["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and ready["reason"] == "GitOperationFailed"
    assert f"source flux-system/broken: {ready['message'][:40]}" in " ".join(out.split()), out


def test_a_revision_with_invalid_yaml_applies_nothing_and_says_where(cluster: Cluster) -> None:
    good = cluster.status("kustomizations", "flux-system")["lastAppliedRevision"]
    broken = APP.replace("greeting: hello", "greeting: changed\n  farewell: [unclosed")
    cluster.repo.commit({"clusters/dev/app.yaml": broken}, branch="main")
    code, out = cluster.cli("reconcile", "kustomization", "flux-system", "--with-source")
    assert code == 1, out
    assert "clusters/dev/app.yaml:" in out and "malformed YAML" in out, out
    code, out = cluster.cli("get", "kustomizations")
    row = next(line for line in out.splitlines() if "flux-system" in line)
    assert good in row and "False" in row, out  # the last applied revision is still the good one
    listing = cluster.runtime.json("GET", "/objects/configmaps", params={"namespace": "demo"})
    assert listing["items"][0]["data"] == {"greeting": "hello"}  # nothing of the broken revision was applied

    sha = cluster.repo.commit({"clusters/dev/app.yaml": APP}, branch="main")
    code, out = cluster.cli("reconcile", "kustomization", "flux-system", "--with-source")
    assert code == 0, out
    assert f"Applied revision: main@sha1:{sha}" in out, out


def test_tree_lists_the_inventory(cluster: Cluster) -> None:
    code, out = cluster.cli("tree", "kustomization", "flux-system")
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == "Kustomization/flux-system/flux-system"
    assert sorted(line[4:] for line in lines[1:]) == [
        "ConfigMap/demo/settings",
        "ImagePolicy/flux-system/podinfo",
        "ImageRepository/flux-system/podinfo",
        "Namespace/demo",
        "Sidecar/demo/default (provided by the local runtime)",
    ]


def test_diff_is_0_in_sync_and_1_after_drift_until_a_reconcile_corrects_it(cluster: Cluster) -> None:
    code, out = cluster.cli("diff", "kustomization", "flux-system")
    assert (code, out.strip()) == (0, "no differences"), out

    configmap = APP.split("---\n")[1]
    cluster.apply(configmap.replace("greeting: hello", "greeting: drifted"))  # an edit outside git
    code, out = cluster.cli("diff", "kustomization", "flux-system")
    assert code == 1, out
    assert "► ConfigMap/demo/settings configured" in out, out
    assert 'data.greeting: "drifted" → "hello"' in out, out
    assert "Namespace/demo" not in out  # unchanged objects are not listed

    code, out = cluster.cli("reconcile", "kustomization", "flux-system")
    assert code == 0, out
    code, out = cluster.cli("diff", "kustomization", "flux-system")
    assert (code, out.strip()) == (0, "no differences"), out


def test_a_receiver_refuses_a_bad_signature_and_triggers_only_on_a_good_one(cluster: Cluster) -> None:
    cluster.apply(HOOKED.format(token=TOKEN, url=cluster.url))
    cluster.until("the receiver has a path", lambda: bool(cluster.status("receivers", "hook").get("webhookPath")))
    cluster.until("hooked fetched", lambda: bool(cluster.revision("hooked")))
    before = cluster.revision("hooked")
    sha = cluster.repo.commit({"README.md": f"pushed at {time.time()}\n"}, branch="main")
    path = cluster.status("receivers", "hook")["webhookPath"]
    payload = json.dumps({"ref": "refs/heads/main", "after": sha}).encode()

    forged = cluster.runtime.request(
        "POST",
        path,
        content=payload,
        headers={"X-GitHub-Event": "push", "X-Hub-Signature-256": receiver.sign("wrong-token", payload)},
    )
    assert forged.status_code == 401, forged.text
    assert forged.json() == {"message": "invalid X-Hub-Signature-256", "reconciling": []}
    time.sleep(2.0)  # a fetch from the local git daemon takes well under this, had the call triggered one
    assert cluster.revision("hooked") == before

    signed = cluster.runtime.request(
        "POST",
        path,
        content=payload,
        headers={"X-GitHub-Event": "push", "X-Hub-Signature-256": receiver.sign(TOKEN, payload)},
    )
    assert signed.status_code == 200, signed.text
    assert signed.json()["reconciling"] == ["GitRepository/flux-system/hooked"]
    cluster.until("hooked fetched the pushed commit", lambda: cluster.revision("hooked") == f"main@sha1:{sha}")

    unknown = cluster.runtime.request("POST", "/hook/" + "0" * 64, content=payload)
    assert unknown.status_code == 404


def test_unknown_types_and_names_are_clear_errors(cluster: Cluster) -> None:
    code, out = cluster.cli("get", "widgets")
    assert code == 1
    assert "unknown resource type 'widgets'" in out, out

    code, out = cluster.cli("reconcile", "widget", "x")
    assert code == 1
    assert "cannot reconcile 'widget'" in out and "kustomization" in out, out

    code, out = cluster.cli("reconcile", "source", "nope")
    assert code == 1
    assert "GitRepository flux-system/nope not found" in out, out

    code, out = cluster.cli("tree", "deployment", "backend")
    assert code == 1
    assert "tree works on kustomizations" in out, out

    response = cluster.runtime.request("GET", "/gitops/widgets")
    assert response.status_code == 404
    assert "unknown GitOps resource type 'widgets'; known:" in response.json()["error"]
    assert "kustomizations" in response.json()["error"]


def test_a_restarted_runtime_follows_the_repository_again_without_rewriting_anything(cluster: Cluster) -> None:
    def settings() -> dict[str, Any]:
        return dict(cluster.runtime.json("GET", "/objects/configmaps", params={"namespace": "demo"})["items"][0])

    applied = f"main@sha1:{cluster.repo.head('main')}"  # what the runtime follows after its restart, too
    before = settings()
    code, out = cluster.cli("down")
    assert code == 0, out
    code, out = cluster.cli("up", "--detach")
    assert code == 0, out

    code, out = cluster.cli("reconcile", "kustomization", "flux-system", "--with-source")  # a run after the restart
    assert code == 0, out
    assert f"Applied revision: {applied}" in out, out
    assert settings()["metadata"]["generation"] == before["metadata"]["generation"]  # a no-op reconcile
    code, out = cluster.cli("diff", "kustomization", "flux-system")
    assert (code, out.strip()) == (0, "no differences"), out
