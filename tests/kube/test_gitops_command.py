"""``canaryflow gitops-controller``, the real command in a subprocess: a kubeconfig pointing at the emulator, a git
repository served by ``git daemon``, Flux objects created in the emulator, the manifests applied by server-side
apply as ``canaryflow``, /healthz and /metrics answered, and SIGTERM ending it cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from canaryflow.cli.main import app
from canaryflow.gitops.receiver import sign
from canaryflow.kube.client import CONFIGMAP, DEPLOYMENT, SECRET, Kind, KubeApi
from tests.gitops.gitserver import GitDaemon, RepoDir, free_port
from tests.kube.emulator import RunningEmulator
from tests.kube.test_gitops_controller import GITREPOSITORY, KUSTOMIZATION, git_repository, kustomization, manifests
from tests.polling import until

COMMAND = str(Path(sys.executable).with_name("canaryflow"))
RECEIVER = Kind("notification.toolkit.fluxcd.io/v1", "Receiver", "receivers")
TOKEN = "webhook-token-1"


def kubeconfig(path: Path, url: str) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "emulator", "cluster": {"server": url}}],
        "users": [{"name": "tester", "user": {"token": "any"}}],
        "contexts": [{"name": "emulator", "context": {"cluster": "emulator", "user": "tester"}}],
        "current-context": "emulator",
    }
    path.write_text(yaml.safe_dump(config))
    return path


def applies(emulator: RunningEmulator) -> list[Any]:
    """The server-side applies the emulator received, dry runs left out."""
    return [r for r in emulator.requests if r.content_type == "application/apply-patch+yaml"
            and r.query.get("dryRun") != "All"]  # fmt: skip


def ready(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    conditions = ((obj or {}).get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == "Ready" and c.get("status") == "True"), None)


def github_receiver() -> dict[str, Any]:
    return {
        "apiVersion": "notification.toolkit.fluxcd.io/v1",
        "kind": "Receiver",
        "metadata": {"name": "github", "namespace": "flux-system"},
        "spec": {"type": "github", "events": ["push"], "secretRef": {"name": "webhook-token"},
                 "resources": [{"kind": "GitRepository", "name": "fleet"}]},
    }  # fmt: skip


@pytest.fixture
async def controller_process(
    kube_emulator: RunningEmulator, tmp_path: Path
) -> AsyncIterator[tuple[asyncio.subprocess.Process, int, int]]:
    """The command, following namespace flux-system only, with a kubeconfig for the emulator; it serves health
    on one port and the Receivers' webhooks on another."""
    port, hooks = free_port(), free_port()
    env = {**os.environ, "KUBECONFIG": str(kubeconfig(tmp_path / "config", kube_emulator.url)),
           "CANARYFLOW_NAMESPACES": "flux-system", "CANARYFLOW_GITOPS_WORKDIR": str(tmp_path / "work")}  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        COMMAND, "gitops-controller", "--listen", f"127.0.0.1:{port}", "--receiver-listen", f"127.0.0.1:{hooks}",
        "--log-level", "warning", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        yield process, port, hooks
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_the_command_applies_git_to_the_cluster_and_stops_on_sigterm(
    kube_emulator: RunningEmulator, kube_api: KubeApi, tmp_path: Path, controller_process: Any
) -> None:
    process, port, hooks = controller_process
    repo = RepoDir(tmp_path / "repos").create("fleet", manifests())
    with GitDaemon(tmp_path / "repos") as daemon:
        # a GitRepository outside --namespace, created first: it must never be reconciled
        elsewhere = git_repository(daemon.url("fleet"))
        elsewhere["metadata"] = {"name": "fleet", "namespace": "team-b"}
        await kube_api.create(GITREPOSITORY, elsewhere)
        await kube_api.create(GITREPOSITORY, git_repository(daemon.url("fleet")))

        async def source_ready() -> dict[str, Any] | None:
            return ready(await kube_api.get(GITREPOSITORY, "flux-system", "fleet"))

        await until(source_ready, "the GitRepository to be Ready")
        await kube_api.create(KUSTOMIZATION, kustomization())
        revision = f"master@sha1:{repo.head()}"

        async def applied() -> dict[str, Any] | None:
            return ready(await kube_api.get(KUSTOMIZATION, "flux-system", "apps"))

        condition = await until(applied, "the Kustomization to be Ready")
        assert condition["message"] == f"Applied revision: {revision}"

        async with httpx.AsyncClient(trust_env=False, base_url=f"http://127.0.0.1:{port}") as client:
            health = await client.get("/healthz")
            metrics = (await client.get("/metrics")).text
        assert (health.status_code, health.text) == (200, "OK")
        assert 'canaryflow_gitops_objects{kind="GitRepository"} 1.0' in metrics
        assert 'canaryflow_gitops_objects{kind="Kustomization"} 1.0' in metrics

        # what git holds is in the cluster, written by server-side apply with canaryflow as the field manager
        written = applies(kube_emulator)
        assert sorted(r.path for r in written) == [
            "/api/v1/namespaces/prod",
            "/api/v1/namespaces/prod/configmaps/ui",
            "/api/v1/namespaces/prod/services/backend",
            "/apis/apps/v1/namespaces/prod/deployments/backend",
        ]
        assert all(r.query == {"fieldManager": "canaryflow", "force": "true"} for r in written)
        assert next(r for r in written if r.path.endswith("/configmaps/ui")).body["data"] == {"colour": "blue"}
        assert await kube_api.get(DEPLOYMENT, "prod", "backend") is not None

        # a push announced through the Receiver's webhook is applied now, not at the source's next interval
        await kube_api.create(SECRET, {"metadata": {"name": "webhook-token", "namespace": "flux-system"},
                                       "stringData": {"token": TOKEN}})  # fmt: skip
        await kube_api.create(RECEIVER, github_receiver())

        async def webhook_path() -> str | None:
            live = await kube_api.get(RECEIVER, "flux-system", "github")
            return ((live or {}).get("status") or {}).get("webhookPath")

        path = await until(webhook_path, "the Receiver to publish its webhook path")
        repo.commit(manifests(colour="green"))
        payload = b'{"ref": "refs/heads/master"}'
        headers = {"X-GitHub-Event": "push", "Content-Type": "application/json"}
        async with httpx.AsyncClient(trust_env=False, base_url=f"http://127.0.0.1:{hooks}") as client:
            forged = await client.post(
                path, content=payload, headers={**headers, "X-Hub-Signature-256": sign("x", payload)}
            )
            unknown = await client.post("/hook/" + "0" * 64, content=payload, headers=headers)
            signed = await client.post(
                path, content=payload, headers={**headers, "X-Hub-Signature-256": sign(TOKEN, payload)}
            )
        assert (forged.status_code, unknown.status_code) == (401, 404)
        assert signed.status_code == 200 and signed.json()["reconciling"] == ["GitRepository/flux-system/fleet"]

        async def recoloured() -> bool:
            live = await kube_api.get(CONFIGMAP, "prod", "ui")
            return live is not None and live["data"] == {"colour": "green"}

        await until(recoloured, "the pushed commit to be applied after the webhook call")
        changed = applies(kube_emulator)[len(written) :]
        assert [(r.path, r.query["fieldManager"]) for r in changed] == [
            ("/api/v1/namespaces/prod/configmaps/ui", "canaryflow")
        ]

        process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
        assert process.returncode == 0, output.decode()

    outside = await kube_api.get(GITREPOSITORY, "team-b", "fleet")
    assert outside is not None and not outside.get("status"), "a GitRepository outside --namespace was reconciled"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--listen", "8081"], "--listen '8081': expected HOST:PORT"),
        (["--receiver-listen", "9292"], "--receiver-listen '9292': expected HOST:PORT"),
        (["--log-level", "loud"], "must be one of debug, info, warning, error"),
    ],
)
def test_bad_flags_stop_the_command_naming_the_flag(args: list[str], fragment: str) -> None:
    result = CliRunner().invoke(app, ["gitops-controller", *args])
    assert result.exit_code == 2
    assert fragment in " ".join(result.output.replace("│", " ").split())


async def test_an_unreachable_api_server_fails_the_command(tmp_path: Path) -> None:
    """Nothing listens at the kubeconfig's server: the command exits 1 with one line saying what failed."""
    env = {**os.environ, "KUBECONFIG": str(kubeconfig(tmp_path / "config", f"http://127.0.0.1:{free_port()}")),
           "CANARYFLOW_GITOPS_WORKDIR": str(tmp_path / "work")}  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        COMMAND, "gitops-controller", "--listen", f"127.0.0.1:{free_port()}",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 1
    last = output.decode().strip().splitlines()[-1]
    assert last.startswith("canaryflow gitops-controller: following Flux objects failed: ConnectionError: GET /apis/")
    assert "Traceback" not in output.decode()
