"""The control loop's transport on a real Envoy: in-cluster names go through the mesh, loopback goes direct.

Before MeshTransport every metric query went through Envoy's forward proxy, which has no route for
``127.0.0.1:PORT``: the runtime's own Prometheus (the default metrics server) answered 404 and every built-in
check failed.
"""

from __future__ import annotations

import httpx
import pytest

from canaryflow.local.transport import MeshTransport, is_in_cluster, is_loopback
from tests.local.conftest import DataPlane, canary


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.53", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LOCALHOST.", True),
        ("prometheus.localhost", True),
        ("flagger-prometheus.istio-system", False),
        ("prometheus", False),
        ("10.0.0.1", False),
        ("localhost-prometheus.monitoring", False),
    ],
)
def test_loopback_hosts_are_recognised(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize(
    ("host", "in_cluster"),
    [
        ("podinfo-canary", True),
        ("flagger-prometheus.istio-system", True),
        ("backend.prod.svc", True),
        ("backend.prod.svc.cluster.local", True),
        ("api.datadoghq.com", False),
        ("monitoring.eu-west-1.amazonaws.com", False),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("localhost", False),
    ],
)
def test_in_cluster_names_are_recognised(host: str, in_cluster: bool) -> None:
    assert is_in_cluster(host) is in_cluster


async def test_loopback_goes_direct_and_service_names_through_the_mesh(dataplane: DataPlane) -> None:
    await dataplane.router.reconcile(canary("backend"))
    direct = dataplane.upstreams["frontend"]
    transport = MeshTransport(f"http://127.0.0.1:{dataplane.proxy_port}")
    async with httpx.AsyncClient(transport=transport, timeout=5) as client:
        loopback = await client.get(f"http://127.0.0.1:{direct.port}/version")
        mesh = await client.get("http://backend.prod:9898/version")
    assert (loopback.status_code, loopback.text) == (200, "frontend")
    assert (mesh.status_code, mesh.text) == (200, "backend-primary")
    assert [s.path for s in direct.seen] == ["/version"]
    assert dataplane.served()["backend-primary"] == 1


async def test_without_it_envoy_does_not_route_loopback(dataplane: DataPlane) -> None:
    """The bug's cause, kept visible: the forward proxy answers 404 for an address it has no route for."""
    await dataplane.router.reconcile(canary("backend"))
    direct = dataplane.upstreams["frontend"]
    proxy = httpx.AsyncHTTPTransport(proxy=f"http://127.0.0.1:{dataplane.proxy_port}")
    async with httpx.AsyncClient(transport=proxy, timeout=5) as client:
        answer = await client.get(f"http://127.0.0.1:{direct.port}/version")
    assert answer.status_code == 404
    assert direct.seen == []
