"""A real Envoy routing between small upstream servers, for the local data plane's tests."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from canaryflow.api.canary import Canary
from canaryflow.local.envoy import EnvoyProcess
from canaryflow.local.procs import free_port
from canaryflow.local.workloads import ProcessWorkloads, WorkloadsConfig
from canaryflow.routing.envoy import Endpoint, EnvoyAdmin, EnvoyRouter, Gateway, Mesh, Workload, XdsFiles
from tests.local.test_workloads import TIME_SCALE, Cluster, alive
from tests.local.upstreams import ProxyConnection, Upstream

WORKLOADS = ("backend-primary", "backend", "frontend-primary", "frontend")
GATEWAY = "istio-system/public-gateway"


def canary(name: str, spec: str = "", analysis: str = "") -> Canary:
    """A Canary in namespace prod targeting Deployment ``name``, with extra spec and analysis YAML."""
    doc: dict[str, Any] = {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": name, "namespace": "prod"},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "service": {"port": 9898},
            "analysis": {"interval": "15s", "threshold": 5},
        },
    }
    doc["spec"].update(yaml.safe_load(spec) or {})
    extra = yaml.safe_load(analysis) or {}
    if "iterations" not in extra:
        extra = {"stepWeight": 10, "maxWeight": 50, **extra}
    doc["spec"]["analysis"].update(extra)
    return Canary.model_validate(doc)


@dataclasses.dataclass
class DataPlane:
    directory: Path
    files: XdsFiles
    router: EnvoyRouter
    envoy: EnvoyProcess
    upstreams: dict[str, Upstream]

    @property
    def proxy_port(self) -> int:
        return self.router.mesh.proxy_port

    @property
    def gateway_port(self) -> int:
        return self.router.mesh.gateways[0].port

    def connection(self, *, gateway: bool = False) -> ProxyConnection:
        return ProxyConnection(self.gateway_port if gateway else self.proxy_port)

    def served(self) -> dict[str, int]:
        return {name: u.served() for name, u in self.upstreams.items()}

    async def send(self, url: str, count: int, headers: dict[str, str] | None = None) -> list[httpx.Response]:
        """``count`` requests through the mesh proxy, a few at a time."""
        proxy = f"http://127.0.0.1:{self.proxy_port}"
        limits = httpx.Limits(max_connections=8)
        async with httpx.AsyncClient(proxy=proxy, trust_env=False, limits=limits, timeout=10) as client:
            return [await client.get(url, headers=headers) for _ in range(count)]


@pytest.fixture
async def dataplane(tmp_path: Path) -> AsyncIterator[DataPlane]:
    upstreams = {name: await Upstream(name).start() for name in WORKLOADS}
    mesh = Mesh(
        proxy_port=free_port(),
        workloads=tuple(Workload("prod", name, (Endpoint(u.port),)) for name, u in upstreams.items()),
        gateways=(Gateway(GATEWAY, free_port()),),
    )
    files = XdsFiles(tmp_path / "envoy")
    envoy = EnvoyProcess(files, admin_port=free_port(), log_path=tmp_path / "envoy.log", concurrency=1)
    router = EnvoyRouter(files, EnvoyAdmin(envoy.admin_url), mesh)
    router.write()
    try:
        await envoy.start()
        yield DataPlane(tmp_path, files, router, envoy, upstreams)
    finally:
        await envoy.stop()
        await router.aclose()
        for upstream in upstreams.values():
            await upstream.stop()


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[tuple[Cluster, ProcessWorkloads]]:
    """Workloads as processes over an in-memory cluster (the tests' Deployments, ConfigMaps and endpoints); every
    process they started is gone once the test ends."""
    cluster = Cluster()
    workloads = ProcessWorkloads(WorkloadsConfig(tmp_path, cluster.lookup, cluster.on_endpoints, time_scale=TIME_SCALE))
    try:
        yield cluster, workloads
    finally:
        started = [p["pid"] for p in workloads.processes() if p["pid"]]
        await workloads.close()
        assert not [pid for pid in started if alive(pid)]
