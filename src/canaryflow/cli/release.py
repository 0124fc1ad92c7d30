"""``canaryflow release --workload=NS:deployment/NAME --update-image=IMAGE:TAG``: the seed's ``fluxctl release``.

When a Kustomization of the running runtime applied the Deployment from git, the new image is committed to that
Kustomization's GitRepository (cloned with the credentials of its ``secretRef``; only the value that sets the
image changes, see :mod:`canaryflow.gitops.image.release`), pushed, and the source and the Kustomization are
reconciled at once instead of at their next interval. Otherwise the stored Deployment is changed through the
runtime's apply API. Then the canary run the new revision starts is followed until it ends.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import re
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from canaryflow.api.duration import parse_duration
from canaryflow.api.suggest import closest
from canaryflow.cli import gitops, watching
from canaryflow.cli.client import CliError, Runtime
from canaryflow.cli.options import StateDir, err, fail, flag, out
from canaryflow.cli.progress import waiting
from canaryflow.gitops.image import release as images
from canaryflow.gitops.source import Author, GitAuth, SourceError, commit_and_push
from canaryflow.gitops.source.base import DEFAULT_BRANCH

WORKLOAD = re.compile(r"^(?P<namespace>[a-z0-9]([-a-z0-9]*[a-z0-9])?):(deployment|deployments|deploy)/(?P<name>\S+)$")
EMAIL = "canaryflow@users.noreply.localhost"
#: Why a Kustomization fails to apply a revision (other reasons, DependencyNotReady above all, only delay it).
FAILURES = frozenset({"BuildFailed", "HealthCheckFailed", "PruneFailed", "ReconciliationFailed"})


def register(app: typer.Typer) -> None:
    @app.command()
    def release(
        workload: Annotated[
            str, typer.Option("--workload", metavar="NS:deployment/NAME", help="The Deployment to release.")
        ],
        update_image: Annotated[
            str, typer.Option("--update-image", metavar="IMAGE:TAG", help="The image its containers of that name run.")
        ],
        force: Annotated[
            bool, flag("--force", help="Replace the image of a single container even when its name differs.")
        ] = False,
        user: Annotated[str, typer.Option("--user", metavar="NAME", help="The commit's author.")] = "canaryflow",
        message: Annotated[
            str | None, typer.Option("-m", "--message", metavar="TEXT", help="Added to the commit message.")
        ] = None,
        no_wait: Annotated[
            bool, flag("--no-wait", help="Return once released, without following the canary run.")
        ] = False,
        timeout: Annotated[
            str, typer.Option("--timeout", metavar="DURATION", help="How long to follow the canary run (10m, 90s).")
        ] = "15m",
        state_dir: StateDir = None,
    ) -> None:
        """Release a new image of a Deployment (fluxctl release): commit it to the git repository the runtime
        follows and reconcile at once (without git: apply it to the runtime), then follow the canary run on
        stderr until it succeeds (exit 0) or fails (exit 1)."""
        try:
            seconds = parse_duration(timeout)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--timeout") from None
        try:
            code = run(Runtime(state_dir), workload, update_image, force=force, user=user, message=message,
                       wait=not no_wait, timeout=seconds)  # fmt: skip
        except CliError as exc:
            raise fail(exc) from None
        raise typer.Exit(code)


def run(runtime: Runtime, workload: str, image: str, *, force: bool = False, user: str = "canaryflow",
        message: str | None = None, wait: bool = True, timeout: float = 900.0) -> int:  # fmt: skip
    """Release ``image`` to ``workload``; the exit code (0: released and, when followed, promoted)."""
    namespace, name = parse_workload(workload)
    try:
        images.requested(image)
    except images.ReleaseError as exc:
        raise CliError(f"--update-image {exc}") from None
    deployment = _deployment(runtime, namespace, name)
    edits = _check(copy.deepcopy(deployment), image, force)
    if not edits:
        out().print(f"deployment {namespace}/{name} already runs {image}: nothing to release", highlight=False)
        return 0
    canary = _canary(runtime, namespace, name)
    before = str(((canary or {}).get("status") or {}).get("lastAppliedSpec", ""))
    kustomization = _applied_by(runtime, namespace, name)
    if kustomization is not None:
        if not _release_in_git(runtime, kustomization, workload, namespace, name, image, force, user, message):
            return 0
    else:
        _apply(runtime, deployment, image, force)
    if canary is None:
        err().print(f"no canary targets deployment {namespace}/{name}: nothing to follow", highlight=False)
        return 0
    if not wait:
        return 0
    return _follow(runtime, namespace, canary["metadata"]["name"], before, timeout)


def parse_workload(workload: str) -> tuple[str, str]:
    match = WORKLOAD.match(workload)
    if match is None:
        raise CliError(f"--workload {workload!r}: expected NAMESPACE:deployment/NAME, e.g. prod:deployment/frontend")
    return match["namespace"], match["name"]


def _deployment(runtime: Runtime, namespace: str, name: str) -> dict[str, Any]:
    items = runtime.json("GET", "/objects/deployments")["items"]
    keys = {(i["metadata"]["namespace"], i["metadata"]["name"]) for i in items}
    target = name.removesuffix("-primary")
    if target != name and (namespace, target) in keys:
        raise CliError(f"deployment {namespace}/{name} is the primary a canary made of {target}: "
                       f"release {namespace}:deployment/{target}")  # fmt: skip
    for item in items:
        if (item["metadata"]["namespace"], item["metadata"]["name"]) == (namespace, name):
            return dict(item)
    workloads = sorted(f"{ns}:deployment/{n}" for ns, n in keys if not n.endswith("-primary"))
    near = closest(f"{namespace}:deployment/{name}", workloads)
    hint = f"; did you mean {near}?" if near else "; no deployment is applied" if not workloads else ""
    raise CliError(f"deployment {namespace}/{name} not found{hint}")


def _check(deployment: dict[str, Any], image: str, force: bool) -> list[images.Edit]:
    try:
        return images.set_in_object(deployment, image, force)
    except images.NameMismatch as exc:
        raise CliError(f"{exc}: give the image name the container runs, or --force to replace it") from None
    except images.ReleaseError as exc:
        raise CliError(str(exc)) from None


def _canary(runtime: Runtime, namespace: str, name: str) -> dict[str, Any] | None:
    for canary in runtime.json("GET", "/objects/canaries", params={"namespace": namespace})["items"]:
        target = (canary.get("spec") or {}).get("targetRef") or {}
        if target.get("kind", "Deployment") == "Deployment" and target.get("name") == name:
            return dict(canary)
    return None


def _applied_by(runtime: Runtime, namespace: str, name: str) -> dict[str, Any] | None:
    """The Kustomization whose inventory holds the Deployment, when it is built from a GitRepository."""
    entry = f"{namespace}_{name}_apps_Deployment"
    for item in runtime.json("GET", "/gitops/kustomizations")["items"]:
        source = (item.get("spec") or {}).get("sourceRef") or {}
        entries = ((item.get("status") or {}).get("inventory") or {}).get("entries") or []
        if source.get("kind") == "GitRepository" and any(e.get("id") == entry for e in entries):
            return dict(item)
    if runtime.json("GET", "/gitops/gitrepositories")["items"]:
        err().print(f"deployment {namespace}/{name} is not applied from git by a Kustomization: "
                    "changing the runtime's copy", highlight=False)  # fmt: skip
    return None


def _release_in_git(
    runtime: Runtime, kustomization: dict[str, Any], workload: str, namespace: str, name: str, image: str,
    force: bool, user: str, message: str | None,
) -> bool:  # fmt: skip
    """Commit, push and reconcile; False when git already has ``image`` (nothing is committed)."""
    meta, spec = kustomization["metadata"], kustomization.get("spec") or {}
    source_ns = spec["sourceRef"].get("namespace") or meta["namespace"]
    repository = _object(runtime, "/gitops/gitrepositories", source_ns, spec["sourceRef"]["name"])
    ref = (repository.get("spec") or {}).get("ref") or {}
    if any(ref.get(key) for key in ("tag", "semver", "commit", "name")):
        raise CliError(f"GitRepository {source_ns}/{spec['sourceRef']['name']} follows a tag or a commit, not a "
                       "branch: a release cannot be pushed to it")  # fmt: skip
    branch, url = str(ref.get("branch") or DEFAULT_BRANCH), str(repository["spec"]["url"])
    auth = _auth(runtime, source_ns, ((repository.get("spec") or {}).get("secretRef") or {}).get("name"))
    edits: list[images.Edit] = []

    def update(worktree: Path) -> list[str]:
        edits[:] = images.set_in_tree(worktree, str(spec.get("path") or "./"), namespace, name, image, force)
        return sorted({edit.file for edit in edits})

    subject = f"Release {workload} image {image}"
    text = f"{subject}\n\n{message}" if message else subject
    author = Author(user, EMAIL)
    try:
        with tempfile.TemporaryDirectory(prefix="canaryflow-release-") as workdir, waiting(f"pushing to {branch}"):
            push = commit_and_push(url, branch, workdir=Path(workdir), update=update,
                                   message=lambda changed: text, author=author, auth=auth)  # fmt: skip
            sha = asyncio.run(push)
    except images.NameMismatch as exc:
        raise CliError(f"in git: {exc}: give the image name the container runs, or --force to replace it") from None
    except images.ReleaseError as exc:
        raise CliError(f"in git: {exc}") from None
    except SourceError as exc:
        raise CliError(f"cannot push the release to {branch}: {exc}") from None
    if sha is None:
        out().print(f"{workload} already is at {image} in git: nothing to commit", highlight=False)
        return False
    out().print(f"commit {sha}", highlight=False)
    for edit in edits:
        out().print(f"{edit.file}: {edit.field} {edit.old} → {edit.new}", highlight=False, markup=False)
    with waiting(f"reconciling source and kustomization {meta['namespace']}/{meta['name']}"):
        status = _applied(runtime, meta["namespace"], meta["name"], f"{branch}@sha1:{sha}")
    err().print(f"kustomization {meta['namespace']}/{meta['name']}: {_ready(status).get('message')}", highlight=False)
    return True


def _applied(runtime: Runtime, namespace: str, name: str, revision: str) -> dict[str, Any]:
    """Reconcile the Kustomization and its source now, then wait until it applied ``revision``: it may first
    wait for its dependencies to apply it (the runtime reconciles those as soon as the new artifact is stored)."""
    path = f"/gitops/kustomizations/{namespace}/{name}"
    status = runtime.json("POST", f"{path}/reconcile", params={"with_source": "1"}, timeout=gitops.RECONCILE_WAIT)
    deadline = time.monotonic() + gitops.RECONCILE_WAIT
    while status["status"].get("lastAppliedRevision") != revision:
        ready = _ready(status["status"])
        failed = ready.get("status") == "False" and ready.get("reason") in FAILURES
        if (failed and status["status"].get("lastAttemptedRevision") == revision) or time.monotonic() > deadline:
            raise CliError(f"{revision} pushed, but kustomization {namespace}/{name} did not apply it: "
                           f"{ready.get('message', 'not reconciled')}")  # fmt: skip
        time.sleep(watching.POLL)
        status = {"status": _object(runtime, "/gitops/kustomizations", namespace, name).get("status") or {}}
    return dict(status["status"])


def _ready(status: dict[str, Any]) -> dict[str, Any]:
    return next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})


def _object(runtime: Runtime, path: str, namespace: str, name: str) -> dict[str, Any]:
    items = runtime.json("GET", path, params={"namespace": namespace})["items"]
    found = [i for i in items if i["metadata"]["name"] == name]
    if not found:
        raise CliError(f"{path.rsplit('/', 1)[-1]} {namespace}/{name} not found")
    return dict(found[0])


def _auth(runtime: Runtime, namespace: str, secret: str | None) -> GitAuth | None:
    """The GitRepository's credentials, read as the source controller reads them."""
    if not secret:
        return None
    response = runtime.request("GET", "/objects/secrets", params={"namespace": namespace, "name": secret})
    if response.status_code == 404:
        raise CliError(f"the GitRepository's secret {namespace}/{secret} not found")
    body = response.json()["items"][0]
    data: dict[str, str | bytes] = {k: base64.b64decode(v) for k, v in (body.get("data") or {}).items()}
    data.update({k: str(v) for k, v in (body.get("stringData") or {}).items()})
    try:
        return GitAuth.from_secret(data)
    except SourceError as exc:
        raise CliError(f"secret {namespace}/{secret}: {exc}") from None


def _apply(runtime: Runtime, deployment: dict[str, Any], image: str, force: bool) -> None:
    meta = deployment["metadata"]
    keep = ("name", "namespace", "labels", "annotations")
    body = {**deployment, "metadata": {k: meta[k] for k in keep if k in meta}}
    body.pop("status", None)
    edits = _check(body, image, force)
    text = yaml.safe_dump(body, sort_keys=False)
    response = runtime.request("POST", "/apply", json={"sources": [{"source": "release", "text": text}]})
    if response.status_code == 422:
        raise CliError("not applied:\n" + "\n".join(response.json()["problems"]))
    for change in response.json()["changes"]:
        out().print(change, highlight=False, markup=False)
    for edit in edits:
        out().print(f"deployment {meta['namespace']}/{meta['name']}: {edit.field} {edit.old} → {edit.new}",
                    highlight=False, markup=False)  # fmt: skip


def _follow(runtime: Runtime, namespace: str, name: str, before: str, timeout: float) -> int:
    def fetch() -> dict[str, Any]:
        response = runtime.request("GET", "/objects/canaries", params={"namespace": namespace, "name": name})
        if response.status_code == 404:
            raise CliError(f"canary {namespace}/{name} was deleted while its run was followed")
        return dict(response.json()["items"][0].get("status") or {})

    def say(text: str) -> None:
        err().print(f"canary {namespace}/{name}: {text}", highlight=False)

    status = watching.canary_run(fetch, before, timeout, say)
    if status is None:
        raise CliError(f"canary {namespace}/{name} did not finish within {timeout:.0f}s (--timeout)")
    promoted: dict[str, Any] = next((c for c in status.get("conditions") or [] if c.get("type") == "Promoted"), {})
    if promoted.get("message"):
        say(str(promoted["message"]))
    return 0 if status.get("phase") == "Succeeded" else 1
