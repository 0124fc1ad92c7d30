"""The local mesh on a real Envoy: what reaches the primary and the canary, counted at the workloads."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable

import pytest

from canaryflow.local.procs import free_port
from canaryflow.routing.base import RouterError, Routes
from canaryflow.routing.envoy import Alias, Endpoint, EnvoyAdmin, EnvoyRouter, Gateway, Service, Workload
from tests.local.conftest import DataPlane, canary
from tests.local.upstreams import ProxyConnection, Upstream

FRONTEND_AB = """
service:
  port: 9898
  gateways: [istio-system/public-gateway]
  hosts: ["*"]
"""
SEED_MATCH = """
iterations: 10
match:
  - headers: {user-agent: {regex: ".*Firefox.*"}}
  - headers: {cookie: {regex: "^(.*?;)?(type=insider)(;.*)?$"}}
"""


async def settled(count: Callable[[], int]) -> int:
    """A count of mirrored copies once it stops growing: Envoy sends them beside, not before, the answer."""
    last = -1
    for _ in range(100):
        if (now := count()) == last:
            return now
        last = now
        await asyncio.sleep(0.05)
    return last


async def test_weighted_split_follows_the_weights(dataplane: DataPlane) -> None:
    backend = canary("backend")
    await dataplane.router.reconcile(backend)
    await dataplane.router.set_routes(backend, Routes(90, 10))

    answers = await dataplane.send("http://backend.prod:9898/", 1000)

    assert all(a.status_code == 200 for a in answers)
    served = dataplane.served()
    assert served["backend-primary"] + served["backend"] == 1000
    assert 50 <= served["backend"] <= 150  # 10 % of 1000; five standard deviations either side


async def test_weight_change_reaches_an_open_keep_alive_connection(dataplane: DataPlane) -> None:
    backend = canary("backend")
    await dataplane.router.reconcile(backend)
    async with dataplane.connection() as connection:
        before = await connection.get("http://backend.prod:9898/")
        await dataplane.router.set_routes(backend, Routes(0, 100))
        after = await connection.get("http://backend.prod:9898/")

    assert (before.body, after.body) == ("backend-primary", "backend")


@pytest.mark.parametrize(
    ("url", "workload"),
    [
        ("http://backend/", "backend-primary"),
        ("http://backend.prod:9898/", "backend-primary"),
        ("http://backend.prod.svc/", "backend-primary"),
        ("http://backend.prod.svc.cluster.local:9898/", "backend-primary"),
        ("http://backend-primary.prod:9898/", "backend-primary"),
        ("http://backend-canary.prod:9898/", "backend"),
        ("http://backend-canary.prod.svc.cluster.local/", "backend"),
    ],
)
async def test_services_answer_to_their_kubernetes_names(dataplane: DataPlane, url: str, workload: str) -> None:
    await dataplane.router.reconcile(canary("backend"))
    async with dataplane.connection() as connection:
        answer = await connection.get(url)
    assert (answer.status, answer.body) == (200, workload)


async def test_unknown_hosts_are_not_found(dataplane: DataPlane) -> None:
    await dataplane.router.reconcile(canary("backend"))
    async with dataplane.connection() as connection:
        answer = await connection.get("http://backend.staging:9898/")
    assert answer.status == 404


@pytest.mark.parametrize(
    ("headers", "reaches_canary"),
    [
        ({"user-agent": "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"}, True),
        ({"cookie": "type=insider"}, True),
        ({"cookie": "session=1;type=insider"}, True),
        ({"user-agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"}, False),
        ({"cookie": "type=outsider"}, False),
        ({}, False),
    ],
    ids=["firefox", "insider", "insider-among-cookies", "chrome", "outsider", "plain"],
)
async def test_ab_test_sends_only_matching_requests_to_the_canary(
    dataplane: DataPlane, headers: dict[str, str], reaches_canary: bool
) -> None:
    frontend = canary("frontend", FRONTEND_AB, SEED_MATCH)
    await dataplane.router.reconcile(frontend)
    await dataplane.router.set_routes(frontend, Routes(0, 100))

    async with dataplane.connection(gateway=True) as connection:
        answers = [await connection.get("http://www.example.com/", headers) for _ in range(20)]

    assert {a.body for a in answers} == {"frontend" if reaches_canary else "frontend-primary"}


@pytest.mark.parametrize(
    ("url", "reaches"), [("http://backend.prod:9898/", "backend"), ("http://backend.prod/", "backend-primary"),
                         ("http://backend.prod:80/", "backend-primary")],
)  # fmt: skip
async def test_a_port_match_sends_only_requests_to_that_port_to_the_canary(
    dataplane: DataPlane, url: str, reaches: str
) -> None:
    backend = canary("backend", analysis="iterations: 5\nmatch: [{port: 9898}]")
    await dataplane.router.reconcile(backend)
    await dataplane.router.set_routes(backend, Routes(0, 100))
    async with dataplane.connection() as connection:
        answer = await connection.get(url)
    assert (answer.status, answer.body) == (200, reaches)


async def test_a_gateway_only_canary_leaves_the_mesh_on_the_primary(dataplane: DataPlane) -> None:
    frontend = canary("frontend", FRONTEND_AB, SEED_MATCH)
    await dataplane.router.reconcile(frontend)
    await dataplane.router.set_routes(frontend, Routes(0, 100))

    async with dataplane.connection() as connection:
        answer = await connection.get("http://frontend.prod/", {"user-agent": "Firefox/120.0"})

    assert answer.body == "frontend-primary"


async def test_mirroring_copies_requests_to_the_canary_and_answers_from_the_primary(dataplane: DataPlane) -> None:
    backend = canary("backend")
    await dataplane.router.reconcile(backend)
    await dataplane.router.set_routes(backend, Routes(100, 0, mirrored=True))

    answers = await dataplane.send("http://backend.prod:9898/", 50)

    assert {a.text for a in answers} == {"backend-primary"}
    canary_workload = dataplane.upstreams["backend"]
    assert (await settled(canary_workload.shadows), canary_workload.served()) == (50, 0)


async def test_mirror_weight_copies_a_share_of_requests(dataplane: DataPlane) -> None:
    backend = canary("backend", analysis="mirror: true\nmirrorWeight: 20")
    await dataplane.router.reconcile(backend)
    await dataplane.router.set_routes(backend, Routes(100, 0, mirrored=True))

    await dataplane.send("http://backend.prod:9898/", 500)

    assert 50 <= await settled(dataplane.upstreams["backend"].shadows) <= 150  # 20 % of 500


async def test_session_affinity_keeps_a_user_on_the_canary_until_weight_returns_to_zero(
    dataplane: DataPlane,
) -> None:
    backend = canary("backend", analysis="sessionAffinity: {cookieName: flagger-cookie, maxAge: 120}")
    await dataplane.router.reconcile(backend)
    await dataplane.router.set_routes(backend, Routes(50, 50))
    async with dataplane.connection() as connection:
        first_canary = next(
            a for a in [await connection.get("http://backend.prod/") for _ in range(50)] if a.body == "backend"
        )
        cookie = first_canary.headers["set-cookie"].split(";")[0]
        sticky = [await connection.get("http://backend.prod/", {"cookie": f"theme=dark; {cookie}"}) for _ in range(30)]

        await dataplane.router.set_routes(backend, Routes(100, 0))
        expired = await connection.get("http://backend.prod/", {"cookie": cookie})

    assert cookie.startswith("flagger-cookie=")
    assert "Max-Age=120" in first_canary.headers["set-cookie"]
    assert {a.body for a in sticky} == {"backend"}
    assert expired.body == "backend-primary"
    assert expired.headers["set-cookie"] == f"{cookie}; Max-Age=-1"


async def test_invalid_update_is_rejected_and_the_old_routes_keep_serving(dataplane: DataPlane) -> None:
    backend = canary("backend")
    await dataplane.router.reconcile(backend)
    await dataplane.router.set_routes(backend, Routes(0, 100))
    # A PCRE lookahead: fine for Python, rejected by Envoy's RE2.
    broken = canary("backend", analysis='iterations: 5\nmatch: [{headers: {user-agent: {regex: "^(?!.*Chrome).*"}}}]')

    with pytest.raises(RouterError, match=r"rejected.*\(\?!"):
        await dataplane.router.reconcile(broken)

    answers = await dataplane.send("http://backend.prod:9898/", 10)
    assert {a.text for a in answers} == {"backend"}
    assert await dataplane.router.get_routes(backend) == Routes(0, 100)
    assert await dataplane.router.verify(backend, Routes(0, 100))


async def test_verify_reads_the_weights_envoy_serves(dataplane: DataPlane) -> None:
    backend = canary("backend")
    await dataplane.router.reconcile(backend)
    await dataplane.router.set_routes(backend, Routes(70, 30))

    assert await dataplane.router.verify(backend, Routes(70, 30))
    assert not await dataplane.router.verify(backend, Routes(50, 50))
    assert not await dataplane.router.verify(backend, Routes(70, 30, mirrored=True))
    assert not await dataplane.router.verify(canary("frontend"), Routes(100, 0))


async def test_a_restarted_router_reads_its_routes_back_from_the_rds_file(dataplane: DataPlane) -> None:
    backend = canary("backend", analysis="sessionAffinity: {cookieName: flagger-cookie}")
    await dataplane.router.reconcile(backend)
    await dataplane.router.set_routes(backend, Routes(60, 40))

    restarted = EnvoyRouter(dataplane.files, EnvoyAdmin(dataplane.envoy.admin_url), dataplane.router.mesh)
    try:
        assert await restarted.get_routes(backend) == Routes(60, 40)
        assert restarted.canaries()[backend.key] == dataplane.router.canaries()[backend.key]
        await restarted.reconcile(backend)
        assert await restarted.verify(backend, Routes(60, 40))
    finally:
        await restarted.aclose()


async def test_routes_of_an_unknown_canary_are_an_error(dataplane: DataPlane) -> None:
    with pytest.raises(RouterError, match="reconcile it first"):
        await dataplane.router.get_routes(canary("backend"))


async def test_finalize_hands_the_service_back_to_its_plain_service(dataplane: DataPlane) -> None:
    backend = canary("backend")
    await dataplane.router.update_mesh(dataplane.router.mesh.with_service(Service("prod", "backend", "backend")))
    await dataplane.router.reconcile(backend)
    async with dataplane.connection() as connection:
        managed = await connection.get("http://backend.prod/")
        await dataplane.router.finalize(backend)
        released = await connection.get("http://backend.prod/")

    assert (managed.body, released.body) == ("backend-primary", "backend")


async def test_mesh_updates_follow_workloads_to_new_ports(dataplane: DataPlane) -> None:
    await dataplane.router.reconcile(canary("backend"))
    replacement = await Upstream("backend-restarted").start()
    try:
        moved = Workload("prod", "backend", (Endpoint(replacement.port),))
        await dataplane.router.update_mesh(dataplane.router.mesh.with_workload(moved))
        async with dataplane.connection() as connection:
            answer = await connection.get("http://backend-canary.prod/")
    finally:
        await replacement.stop()
    assert answer.body == "backend-restarted"


@pytest.mark.parametrize(
    ("host", "server"),
    [
        ("flagger-prometheus.istio-system:9090", "prometheus"),
        ("flagger-loadtester.prod", "loadtester"),
        ("flagger-loadtester.dev.svc.cluster.local", "loadtester"),
    ],
)
async def test_aliases_reach_local_ports(dataplane: DataPlane, host: str, server: str) -> None:
    prometheus, loadtester = await Upstream("prometheus").start(), await Upstream("loadtester").start()
    aliases = (
        Alias("prometheus", ("flagger-prometheus.istio-system",), prometheus.port),
        Alias("loadtester", ("flagger-loadtester.*",), loadtester.port),
    )
    try:
        await dataplane.router.update_mesh(dataclasses.replace(dataplane.router.mesh, aliases=aliases))
        async with dataplane.connection() as connection:
            answer = await connection.get(f"http://{host}/")
    finally:
        await prometheus.stop()
        await loadtester.stop()
    assert answer.body == server


async def test_gateways_come_and_go_with_the_mesh(dataplane: DataPlane) -> None:
    frontend = canary("frontend", "service: {port: 9898, gateways: [internal-gateway], hosts: [frontend.example.com]}")
    internal = Gateway("prod/internal-gateway", free_port())
    await dataplane.router.reconcile(frontend)
    with_gateway = dataclasses.replace(dataplane.router.mesh, gateways=(*dataplane.router.mesh.gateways, internal))

    await dataplane.router.update_mesh(with_gateway)
    async with ProxyConnection(internal.port) as connection:
        known = await connection.get("http://frontend.example.com/")
        unknown = await connection.get("http://other.example.com/")
    await dataplane.router.update_mesh(dataclasses.replace(with_gateway, gateways=with_gateway.gateways[:1]))

    assert (known.body, unknown.status) == ("frontend-primary", 404)
    assert internal.route_config not in [n.removeprefix("rds_") for n in dataplane.files.names()]
    assert dataplane.router.conflicts == (
        "canary prod/frontend: gateway prod/internal-gateway is not served by the local mesh",
    )
