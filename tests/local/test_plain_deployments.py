"""Deployments no Canary targets run as themselves: the seed's ``apps/loadtest``, and a takeover by a Canary."""

from __future__ import annotations

import copy
import dataclasses
import functools
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from canaryflow.api.loader import Document
from canaryflow.local.deployments import PlainDeployments
from canaryflow.local.objects import ObjectStore
from canaryflow.local.workloads import ProcessWorkloads, WorkloadsConfig
from canaryflow.routing.envoy import EnvoyRouter
from canaryflow.routing.envoy.model import Alias, Endpoint, Service, Workload
from canaryflow.store import sqlite
from tests.local.conftest import DataPlane
from tests.local.test_workloads import CANARY, TIME_SCALE, alive, backend, pids, ready
from tests.polling import until

SEED_LOADTEST = Path(__file__).resolve().parents[2] / "examples" / "gitops-istio" / "apps" / "loadtest"


@functools.cache
def seed_loadtest() -> list[dict[str, Any]]:
    """The seed's load tester (Deployment and Service) as ``kubectl kustomize`` builds it."""
    built = subprocess.run(["kubectl", "kustomize", str(SEED_LOADTEST)], capture_output=True, text=True, check=True)
    return [d for d in yaml.safe_load_all(built.stdout) if d]


class Runtime:
    """The object store, the workloads and the plain-Deployment controller, as ``LocalRuntime`` wires them."""

    def __init__(self, tmp_path: Path, router: EnvoyRouter | None = None) -> None:
        self.router = router  # a real mesh, told of endpoints and Services as LocalRuntime tells its own
        self.mesh = router.mesh if router is not None else None  # updated before each await, as LocalRuntime's
        self.objects = ObjectStore(sqlite.connect(tmp_path / "state.db"))
        self.endpoints: dict[str, list[int]] = {}
        self.routes: dict[str, str] = {}
        config = WorkloadsConfig(tmp_path, self.objects.get, self._on_endpoints, time_scale=TIME_SCALE)
        self.workloads = ProcessWorkloads(config)
        self.plain = PlainDeployments(self.objects, self.workloads, self._on_service)

    async def apply(self, *bodies: dict[str, Any]) -> None:
        await self.plain.changed(self.objects.apply([Document("test", 1, copy.deepcopy(b)) for b in bodies]))

    async def delete(self, *bodies: dict[str, Any]) -> None:
        await self.plain.changed(self.objects.delete([Document("test", 1, copy.deepcopy(b)) for b in bodies]))

    async def _on_endpoints(self, namespace: str, workload: str, ports: list[int]) -> None:
        self.endpoints[f"{namespace}/{workload}"] = ports
        if self.router is not None and self.mesh is not None:
            self.mesh = self.mesh.with_workload(Workload(namespace, workload, tuple(Endpoint(p) for p in ports)))
            await self.router.update_mesh(self.mesh)

    async def _on_service(self, namespace: str, name: str, workload: str | None) -> None:
        if workload is None:
            self.routes.pop(f"{namespace}/{name}", None)
        else:
            self.routes[f"{namespace}/{name}"] = workload
        if self.router is not None and self.mesh is not None:
            mesh = self.mesh.without_service(namespace, name)
            self.mesh = mesh if workload is None else mesh.with_service(Service(namespace, name, workload))
            await self.router.update_mesh(self.mesh)

    async def get(self, service: str, path: str) -> httpx.Response:
        """A request to the Service, as the mesh routes it: to a ready endpoint of the workload it selects."""
        port = self.endpoints[f"prod/{self.routes[f'prod/{service}']}"][0]
        async with httpx.AsyncClient(trust_env=False, timeout=5) as client:
            return await client.get(f"http://127.0.0.1:{port}{path}")

    def ready_ports(self, workload: str) -> list[int] | None:
        return self.endpoints.get(f"prod/{workload}") or None


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    runtime = Runtime(tmp_path)
    try:
        yield runtime
    finally:
        started = [p["pid"] for p in runtime.workloads.processes() if p["pid"]]
        await runtime.workloads.close()
        assert not [pid for pid in started if alive(pid)]


def with_env(deployment: dict[str, Any], name: str, value: str) -> dict[str, Any]:
    changed = copy.deepcopy(deployment)
    container = changed["spec"]["template"]["spec"]["containers"][0]
    container["env"] = [*container.get("env", []), {"name": name, "value": value}]
    return changed


async def test_the_seed_loadtest_runs_as_itself_behind_its_service(runtime: Runtime) -> None:
    deployment, service = (next(d for d in seed_loadtest() if d["kind"] == kind) for kind in ("Deployment", "Service"))
    await runtime.apply(deployment, service)

    await until(lambda: runtime.ready_ports("flagger-loadtester"), "loadtester ready (its wget exec probe passes)")
    assert runtime.routes == {"prod/flagger-loadtester": "flagger-loadtester"}
    assert (await runtime.get("flagger-loadtester", "/healthz")).status_code == 200
    processes = runtime.workloads.processes()
    assert [p["workload"] for p in processes] == ["flagger-loadtester"]  # as the Deployment itself: no -primary
    old = pids(runtime.workloads, "flagger-loadtester")

    await runtime.apply(with_env(deployment, "CHANGED", "1"))  # a new pod template rolls the replicas
    await until(
        lambda: {p["revision"] for p in runtime.workloads.processes() if p["ready"]} - {processes[0]["revision"]},
        "new revision ready",
    )
    await until(lambda: not [pid for pid in old if alive(pid)], "old replica stopped after the new one was ready")
    assert (await runtime.get("flagger-loadtester", "/healthz")).status_code == 200

    await runtime.delete(deployment)
    await until(lambda: runtime.workloads.processes() == [], "replicas stopped")
    assert runtime.routes == {}  # the Service selects nothing now


async def test_the_seed_loadtest_answers_through_the_mesh_by_its_service_names(
    tmp_path: Path, dataplane: DataPlane
) -> None:
    # The runtime's own load tester answers flagger-loadtester.* until the seed's runs (here: an upstream).
    alias = Alias("loadtester", ("flagger-loadtester", "flagger-loadtester.*"), dataplane.upstreams["backend"].port)
    await dataplane.router.update_mesh(dataclasses.replace(dataplane.router.mesh, aliases=(alias,)))
    runtime = Runtime(tmp_path / "runtime", dataplane.router)
    try:
        await runtime.apply(*seed_loadtest())
        await until(lambda: runtime.ready_ports("flagger-loadtester"), "loadtester ready")

        async def answered() -> httpx.Response | None:
            reply = (await dataplane.send("http://flagger-loadtester.prod/healthz", 1))[0]
            return reply if reply.status_code == 200 and "backend" not in reply.text else None

        await until(answered, "the seed's load tester answering as flagger-loadtester.prod")
        reply = (await dataplane.send("http://flagger-loadtester.prod.svc.cluster.local/healthz", 1))[0]
        assert reply.status_code == 200 and "backend" not in reply.text
    finally:
        await runtime.workloads.close()


async def test_a_config_change_rolls_a_plain_deployment(runtime: Runtime) -> None:
    message = [{"name": "PODINFO_UI_MESSAGE", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "message"}}}]
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "prod"}}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api", "namespace": "prod"},
               "spec": {"selector": {"app": "backend"}, "ports": [{"port": 80}]}}  # fmt: skip
    await runtime.apply(backend(env=message, replicas=1), {**config, "data": {"message": "one"}}, service)
    await until(lambda: runtime.ready_ports("backend"), "backend ready")
    assert (await runtime.get("api", "/")).json()["message"] == "one"

    await runtime.apply({**config, "data": {"message": "two"}})

    async def says_two() -> bool:
        return bool(runtime.ready_ports("backend")) and (await runtime.get("api", "/")).json()["message"] == "two"

    await until(says_two, "the new config served")


async def test_a_canary_takes_over_a_running_deployment_without_running_it_twice(runtime: Runtime) -> None:
    await runtime.apply(backend(replicas=2))
    await until(lambda: len(runtime.ready_ports("backend") or ()) == 2, "plain backend ready")
    before = sorted(pids(runtime.workloads, "backend"))

    canary = {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "backend", "namespace": "prod"},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "backend"},
            "service": {"port": 9898},
            "analysis": {"interval": "15s", "threshold": 5, "stepWeight": 10, "maxWeight": 50},
        },
    }
    runtime.objects.apply([Document("test", 1, canary)])
    await runtime.plain.resync()  # the runtime leaves a targeted Deployment to the engine
    await runtime.workloads.initialize(CANARY)
    assert sorted(pids(runtime.workloads, "backend")) == before  # the same processes: not started again
    await until(ready(runtime.workloads.primary_readiness), "primary ready")
    assert len(pids(runtime.workloads, "backend-primary")) == 2

    await runtime.workloads.scale_canary_to_zero(CANARY)
    assert pids(runtime.workloads, "backend") == []
    await runtime.apply(with_env(backend(replicas=2), "CHANGED", "1"))  # the engine's now: not run as plain
    assert pids(runtime.workloads, "backend") == []
    assert len(pids(runtime.workloads, "backend-primary")) == 2

    # The Canary is deleted with revertOnDeletion (LocalRuntime._forget): the target gets its replicas back and
    # runs as a plain Deployment again; the primary goes.
    await runtime.workloads.finalize(CANARY)
    await runtime.workloads.remove(CANARY)
    runtime.objects.remove("Canary", "prod", "backend")
    await runtime.plain.resync()
    await until(lambda: len(runtime.ready_ports("backend") or ()) == 2, "backend serving as itself again")
    assert pids(runtime.workloads, "backend-primary") == []
