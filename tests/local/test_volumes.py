"""ConfigMap and Secret volumes mounted as files, their mount paths handed to the process, and config changes."""

from __future__ import annotations

import base64
import stat
from pathlib import Path
from typing import Any

import pytest

from canaryflow.local.workloads import ProcessWorkloads
from canaryflow.workloads.base import WorkloadError
from tests.local.test_workloads import Cluster, alive, backend, configmap
from tests.polling import until


def secret(name: str, **data: str) -> dict[str, Any]:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "prod"}, "data": encoded}


def mounting(volumes: list[dict[str, Any]], mounts: list[dict[str, Any]], env: dict[str, str]) -> dict[str, Any]:
    deployment = backend(replicas=1, env=[{"name": k, "value": v} for k, v in env.items()])
    spec = deployment["spec"]["template"]["spec"]
    spec["volumes"] = [*spec.get("volumes", []), *volumes]
    container = spec["containers"][0]
    container["volumeMounts"] = mounts
    # Ready only once the file is there: the exec probe's mount path is rewritten too.
    check = "test -f /etc/app/settings.yaml && podcli check http localhost:9898/readyz"
    container["readinessProbe"] = {"exec": {"command": ["sh", "-c", check]}}
    return deployment


async def served_env(store: Cluster) -> dict[str, str]:
    """The process's environment, as the demo app's ``/env`` reports it."""
    lines = (await store.get("backend", "/env")).json()
    return dict(line.split("=", 1) for line in lines)


APP = {"name": "app", "configMap": {"name": "app-config", "defaultMode": 0o600,
                                    "items": [{"key": "settings", "path": "settings.yaml"},
                                              {"key": "script", "path": "bin/run.sh", "mode": 0o755}]}}  # fmt: skip
CREDS = {"name": "creds", "secret": {"secretName": "creds"}}
MAYBE = {"name": "maybe", "configMap": {"name": "not-there", "optional": True}}
MOUNTS = [
    {"name": "app", "mountPath": "/etc/app"},
    {"name": "creds", "mountPath": "/var/run/creds", "readOnly": True},
    {"name": "maybe", "mountPath": "/etc/maybe"},
    {"name": "creds", "mountPath": "/etc/token", "subPath": "token"},
]
ENV = {"SETTINGS": "/etc/app/settings.yaml", "CREDS_DIR": "/var/run/creds", "TOKEN": "/etc/token",
       "OTHER": "/etc/application/x"}  # fmt: skip


async def test_configmap_and_secret_volumes_are_files_the_process_finds(
    cluster: tuple[Cluster, ProcessWorkloads],
) -> None:
    store, workloads = cluster
    store.apply(
        mounting([APP, CREDS, MAYBE], MOUNTS, ENV),
        configmap("app-config", settings="level: debug\n", script="#!/bin/sh\n", ignored="x"),
        secret("creds", token="s3cret", user="me"),
    )
    workloads.run_deployment("prod", "backend")
    await until(lambda: store.endpoints.get("prod/backend"), "ready: its probe found the mounted file")

    env = await served_env(store)
    settings, creds, token = Path(env["SETTINGS"]), Path(env["CREDS_DIR"]), Path(env["TOKEN"])
    assert settings.read_text() == "level: debug\n"
    assert stat.S_IMODE(settings.stat().st_mode) == 0o600  # defaultMode
    assert stat.S_IMODE((settings.parent / "bin" / "run.sh").stat().st_mode) == 0o755  # the item's mode
    assert sorted(p.name for p in settings.parent.iterdir()) == ["bin", "settings.yaml"]  # items only
    assert {p.name: p.read_text() for p in creds.iterdir()} == {"token": "s3cret", "user": "me"}  # decoded
    assert stat.S_IMODE((creds / "token").stat().st_mode) == 0o644
    assert token.read_text() == "s3cret"  # subPath: the mount path is the one file
    assert env["OTHER"] == "/etc/application/x"  # only whole path components are rewritten
    mounts = env["CANARYFLOW_MOUNTS"]
    assert '"/etc/app"' in mounts and str(settings.parent) in mounts

    pid = workloads.processes()[0]["pid"]
    await workloads.close()  # the replica's files go with it
    assert not alive(pid) and not settings.exists()


async def test_a_configmap_change_restarts_the_workload_on_new_files(
    cluster: tuple[Cluster, ProcessWorkloads],
) -> None:
    store, workloads = cluster
    store.apply(mounting([APP], MOUNTS[:1], ENV), configmap("app-config", settings="v: 1\n", script=""))
    workloads.run_deployment("prod", "backend")
    await until(lambda: store.endpoints.get("prod/backend"), "ready")
    first = workloads.processes()[0]["pid"]
    assert Path((await served_env(store))["SETTINGS"]).read_text() == "v: 1\n"

    store.apply(configmap("app-config", settings="v: 2\n", script=""))  # tracked: a new revision
    workloads.run_deployment("prod", "backend")
    await until(lambda: not alive(first), "the old process stopped once the new one was ready")
    assert Path((await served_env(store))["SETTINGS"]).read_text() == "v: 2\n"


async def test_a_missing_configmap_or_key_or_an_unsupported_volume_is_an_error(
    cluster: tuple[Cluster, ProcessWorkloads],
) -> None:
    store, workloads = cluster
    store.apply(mounting([APP], MOUNTS[:1], ENV))
    with pytest.raises(WorkloadError, match="configmap app-config not found"):
        workloads.run_deployment("prod", "backend")

    store.apply(configmap("app-config", settings="v: 1\n"))
    with pytest.raises(WorkloadError, match="has no key 'script'"):
        workloads.run_deployment("prod", "backend")

    claim = {"name": "app", "persistentVolumeClaim": {"claimName": "data"}}
    store.apply(mounting([claim], MOUNTS[:1], ENV))
    with pytest.raises(WorkloadError, match=r"volume app \(persistentVolumeClaim\) cannot be mounted locally"):
        workloads.run_deployment("prod", "backend")
    assert workloads.processes() == []
