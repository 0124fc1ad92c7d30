"""Workloads as real processes: the seed's backend Deployment runs as the demo app, probed by ``podcli``."""

from __future__ import annotations

import asyncio
import copy
import functools
import hashlib
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from canaryflow.api.canary import Canary
from canaryflow.engine.effects import Readiness
from canaryflow.local.workloads import ProcessWorkloads, WorkloadsConfig
from canaryflow.workloads.base import WorkloadError
from tests.polling import until

SEED_BACKEND = Path(__file__).resolve().parents[2] / "examples" / "gitops-istio" / "apps" / "backend"
# Probe delays and periods a tenth of the manifest's (the seed waits 5 s before the first readiness probe).
TIME_SCALE = 0.1


@functools.cache
def seed_backend() -> dict[str, Any]:
    """The seed's backend Deployment as ``kubectl kustomize`` builds it, with Istio's containers patched in."""
    built = subprocess.run(["kubectl", "kustomize", str(SEED_BACKEND)], capture_output=True, text=True, check=True)
    return next(d for d in yaml.safe_load_all(built.stdout) if d and d["kind"] == "Deployment")


def backend(tag: str = "6.1.0", env: list[dict[str, Any]] | None = None, replicas: int | None = None) -> dict[str, Any]:
    deployment = copy.deepcopy(seed_backend())
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["image"] = f"ghcr.io/stefanprodan/podinfo:{tag}"
    container["env"] = [*container.get("env", []), *(env or [])]
    if replicas is not None:
        deployment["spec"]["replicas"] = replicas
    return deployment


def configmap(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "prod"}, "data": data}


MESSAGE_FROM_CONFIG = [
    {"name": "PODINFO_UI_MESSAGE", "valueFrom": {"configMapKeyRef": {"name": "backend-config", "key": "message"}}}
]

CANARY = Canary.model_validate(
    {
        "metadata": {"name": "backend", "namespace": "prod"},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "backend"},
            "service": {"port": 9898},
            "analysis": {"interval": "15s", "threshold": 5, "stepWeight": 10, "maxWeight": 50},
        },
    }
)


class Cluster:
    """The objects ``canaryflow apply`` stored, and the endpoints the mesh was told about."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.endpoints: dict[str, list[int]] = {}

    def apply(self, *objects: dict[str, Any]) -> None:
        for obj in objects:
            self.objects[(obj["kind"], obj["metadata"].get("namespace", "prod"), obj["metadata"]["name"])] = obj

    def lookup(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get((kind, namespace, name))

    async def on_endpoints(self, namespace: str, workload: str, ports: list[int]) -> None:
        self.endpoints[f"{namespace}/{workload}"] = ports

    async def get(self, workload: str, path: str = "/") -> httpx.Response:
        """A request to the workload's first ready endpoint, as the mesh would send it."""
        port = self.endpoints[f"prod/{workload}"][0]
        async with httpx.AsyncClient(trust_env=False, timeout=5) as client:
            return await client.get(f"http://127.0.0.1:{port}{path}")


def ready(readiness: Callable[[Canary], Any]) -> Callable[[], Any]:
    async def check() -> Readiness | None:
        result: Readiness = await readiness(CANARY)
        return result if result.ready else None

    return check


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def pids(workloads: ProcessWorkloads, workload: str) -> list[int]:
    return [p["pid"] for p in workloads.processes() if p["workload"] == workload]


async def test_the_seed_backend_runs_as_a_primary_serving_its_tag(cluster: tuple[Cluster, ProcessWorkloads]) -> None:
    store, workloads = cluster
    store.apply(backend("6.1.0", replicas=2))

    await workloads.initialize(CANARY)
    await until(ready(workloads.primary_readiness), "primary ready")  # exec probes: podcli check http …

    info = (await store.get("backend-primary")).json()
    assert info["version"] == "6.1.0"
    assert info["hostname"].startswith("backend-primary-")
    assert len(store.endpoints["prod/backend-primary"]) == 2
    # The target keeps running at its replicas until the engine scales it to zero.
    canary_pids = pids(workloads, "backend")
    assert len(canary_pids) == 2

    await workloads.scale_canary_to_zero(CANARY)

    assert pids(workloads, "backend") == []
    assert not [pid for pid in canary_pids if alive(pid)]
    assert store.endpoints["prod/backend"] == []
    assert not (await workloads.canary_readiness(CANARY)).ready
    log = workloads.logs("prod", "backend-primary")
    assert "backend-primary-0" in log and "6.1.0" in log


def go_checksum(json_text: str) -> str:
    """Flagger's ConfigMap checksum, computed by hand: sha256 of Go's JSON of the data, first 8 bytes."""
    return hashlib.sha256(json_text.encode()).hexdigest()[:16]


async def test_revision_follows_the_template_and_referenced_configs_only(
    cluster: tuple[Cluster, ProcessWorkloads],
) -> None:
    store, workloads = cluster
    store.apply(backend(env=MESSAGE_FROM_CONFIG), configmap("backend-config", message="hi <you>"))
    await workloads.scale_canary_to_zero(CANARY)  # revisions only: no processes needed
    first = await workloads.revision(CANARY)
    assert first.configs == (("configmap/backend-config", go_checksum('{"message":"hi \\u003cyou\\u003e"}')),)

    store.apply(backend(env=MESSAGE_FROM_CONFIG), configmap("unrelated", x="1"))
    assert await workloads.revision(CANARY) == first

    store.apply(configmap("backend-config", message="changed"))
    config_changed = await workloads.revision(CANARY)
    assert config_changed.spec_hash == first.spec_hash
    assert config_changed.configs != first.configs

    store.apply(backend("6.1.1", env=MESSAGE_FROM_CONFIG))
    tag_changed = await workloads.revision(CANARY)
    assert tag_changed.spec_hash != first.spec_hash
    assert tag_changed.configs == config_changed.configs

    opted_out = configmap("backend-config", message="again")
    opted_out["metadata"]["annotations"] = {"flagger.app/config-tracking": "disabled"}
    store.apply(opted_out)
    assert (await workloads.revision(CANARY)).configs == ()


async def test_an_unready_canary_is_reported_from_its_exec_probe(cluster: tuple[Cluster, ProcessWorkloads]) -> None:
    store, workloads = cluster
    store.apply(backend("6.1.1", env=[{"name": "CANARYFLOW_FAULT_UNREADY", "value": "1"}]))
    await workloads.scale_canary_up(CANARY)

    async def probed() -> Readiness | None:
        readiness = await workloads.canary_readiness(CANARY)
        return readiness if "podcli check http" in readiness.message else None

    readiness = await until(probed, "the probe's failure reported")
    assert not readiness.ready and readiness.retriable
    assert readiness.message.startswith("backend not ready: waiting for rollout to finish: 0 of 1")
    assert "answered 503" in readiness.message
    assert store.endpoints["prod/backend"] == []


async def test_a_crash_looping_canary_is_not_ready_and_says_why(cluster: tuple[Cluster, ProcessWorkloads]) -> None:
    store, workloads = cluster
    store.apply(backend("6.1.1", env=[{"name": "CANARYFLOW_FAULT_CRASH", "value": "1"}]))
    await workloads.scale_canary_up(CANARY)

    async def crashed_twice() -> Readiness | None:
        readiness = await workloads.canary_readiness(CANARY)
        return readiness if "exited" in readiness.message and "1 time" not in readiness.message else None

    readiness = await until(crashed_twice, "crash loop reported")
    assert not readiness.ready and readiness.retriable
    assert readiness.message.startswith("backend not ready: process exited ")
    assert "(exit code 1)" in readiness.message
    assert "CANARYFLOW_FAULT_CRASH is set" in readiness.message


async def test_promotion_rolls_the_primary_without_a_gap(cluster: tuple[Cluster, ProcessWorkloads]) -> None:
    store, workloads = cluster
    store.apply(backend("6.1.0", env=MESSAGE_FROM_CONFIG), configmap("backend-config", message="old"))
    await workloads.initialize(CANARY)
    await until(ready(workloads.primary_readiness), "primary ready")
    await workloads.scale_canary_to_zero(CANARY)
    old_primary = pids(workloads, "backend-primary")

    store.apply(backend("6.1.1", env=MESSAGE_FROM_CONFIG), configmap("backend-config", message="new"))
    await workloads.scale_canary_up(CANARY)
    await until(ready(workloads.canary_readiness), "canary ready")
    assert (await store.get("backend")).json()["message"] == "new"
    assert (await store.get("backend-primary")).json()["message"] == "old"  # the primary reads its own copy

    answers: list[tuple[int, str]] = []
    stop = asyncio.Event()

    async def poll() -> None:
        while not stop.is_set():
            reply = await store.get("backend-primary")
            answers.append((reply.status_code, reply.json()["version"]))

    poller = asyncio.create_task(poll())
    await until(lambda: len(answers) > 5, "primary answering")
    await workloads.promote(CANARY)
    await until(ready(workloads.primary_readiness), "promoted primary ready")
    await until(lambda: answers[-1][1] == "6.1.1", "primary serving 6.1.1")
    stop.set()
    await poller

    assert {status for status, _ in answers} == {200}
    versions = [version for _, version in answers]
    switch = versions.index("6.1.1")
    assert set(versions[:switch]) == {"6.1.0"} and set(versions[switch:]) == {"6.1.1"}
    assert (await store.get("backend-primary")).json()["message"] == "new"
    await until(lambda: not [pid for pid in old_primary if alive(pid)], "old primary stopped")


async def test_an_image_nobody_can_run_is_a_clear_error(cluster: tuple[Cluster, ProcessWorkloads]) -> None:
    store, workloads = cluster
    unknown = backend()
    unknown["spec"]["template"]["spec"]["containers"][0]["image"] = "registry.example.com/team/api:1.2.3"
    store.apply(unknown)

    with pytest.raises(WorkloadError, match=r"image registry\.example\.com/team/api:1\.2\.3 cannot run locally") as err:
        await workloads.initialize(CANARY)
    assert "stefanprodan/podinfo" in str(err.value)

    readiness = await workloads.canary_readiness(CANARY)
    assert not readiness.ready and not readiness.retriable  # no use waiting for the progress deadline
    assert "registry.example.com/team/api:1.2.3" in readiness.message
    assert workloads.processes() == []


async def test_a_missing_target_is_an_error(cluster: tuple[Cluster, ProcessWorkloads]) -> None:
    _, workloads = cluster
    with pytest.raises(WorkloadError, match="Deployment prod/backend not found"):
        await workloads.revision(CANARY)


async def test_a_restarted_runtime_brings_back_the_promoted_primary_not_the_new_target(tmp_path: Path) -> None:
    store = Cluster()
    config = WorkloadsConfig(tmp_path, store.lookup, store.on_endpoints, time_scale=TIME_SCALE)
    store.apply(backend("6.1.0"))
    first = ProcessWorkloads(config)
    await first.initialize(CANARY)
    await first.scale_canary_to_zero(CANARY)
    await first.close()

    store.apply(backend("6.1.1"))  # applied while the runtime was down: a new revision, not yet analysed
    second = ProcessWorkloads(config)
    try:
        await second.initialize(CANARY)
        await until(ready(second.primary_readiness), "primary ready again")
        assert (await store.get("backend-primary")).json()["version"] == "6.1.0"
        assert pids(second, "backend") == []  # still scaled to zero
    finally:
        await second.close()
