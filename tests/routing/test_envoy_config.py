"""The Envoy configuration built for the local mesh, read the way Envoy will read it (no process started)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from canaryflow.api.canary import Canary
from canaryflow.routing.base import RouterError, Routes
from canaryflow.routing.envoy import (
    CanaryRouting,
    EnvoyAdmin,
    EnvoyRouter,
    Gateway,
    Mesh,
    Service,
    XdsFiles,
    cluster_name,
    xds,
)
from canaryflow.routing.envoy.router import advance_cookies

GATEWAY = Gateway("istio-system/public-gateway", 8080)


def canary(spec: str = "", analysis: str = "stepWeight: 10") -> Canary:
    doc: dict[str, Any] = {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "backend", "namespace": "prod"},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "backend"},
            "service": {"port": 9898, **(yaml.safe_load(spec) or {})},
            "analysis": {"interval": "30s", **(yaml.safe_load(analysis) or {})},
        },
    }
    return Canary.model_validate(doc)


def route_config(state: CanaryRouting, mesh: Mesh | None = None, name: str = "mesh") -> dict[str, Any]:
    rendered = xds.render(mesh or Mesh(proxy_port=8000, gateways=(GATEWAY,)), [state], Path("/x"))
    config: dict[str, Any] = rendered.documents[xds.rds_file(name)]["resources"][0]
    return config


def vhost(config: dict[str, Any], name: str) -> dict[str, Any]:
    return next(v for v in config["virtual_hosts"] if v["name"] == name)


def weights(route: dict[str, Any]) -> list[int]:
    return [c["weight"] for c in route["route"]["weighted_clusters"]["clusters"]]


def test_canary_services_answer_to_their_four_kubernetes_names() -> None:
    config = route_config(CanaryRouting(canary()))

    domains = {v["name"]: v["domains"] for v in config["virtual_hosts"]}
    assert domains == {
        "canary:prod/backend": ["backend", "backend.prod", "backend.prod.svc", "backend.prod.svc.cluster.local"],
        "canary:prod/backend:primary": [
            "backend-primary", "backend-primary.prod", "backend-primary.prod.svc",
            "backend-primary.prod.svc.cluster.local",
        ],
        "canary:prod/backend:canary": [
            "backend-canary", "backend-canary.prod", "backend-canary.prod.svc", "backend-canary.prod.svc.cluster.local",
        ],
    }  # fmt: skip


def test_canary_workloads_get_clusters_before_their_processes_exist() -> None:
    rendered = xds.render(Mesh(proxy_port=8000), [CanaryRouting(canary())], Path("/x"))

    names = [c["name"] for c in rendered.documents[xds.CDS]["resources"]]
    assert names == ["prod_backend", "prod_backend-primary"]


def test_ab_routes_combine_each_analysis_match_with_each_service_match() -> None:
    state = CanaryRouting(
        canary(
            spec="match: [{uri: {prefix: /api}}, {uri: {prefix: /v2}}]",
            analysis="iterations: 5\nmatch: [{headers: {x-user: {exact: beta}}}, {headers: {cookie: {regex: .*b.*}}}]",
        ),
        Routes(0, 100),
    )

    routes = vhost(route_config(state), "canary:prod/backend")["routes"]

    ab = [
        (r["match"]["prefix"], r["match"]["headers"][0]["name"], weights(r)) for r in routes if r["name"][:3] == "ab-"
    ]
    assert ab == [
        ("/api", "x-user", [0, 100]), ("/v2", "x-user", [0, 100]),
        ("/api", "cookie", [0, 100]), ("/v2", "cookie", [0, 100]),
    ]  # fmt: skip
    rest = [(r["match"], r["route"]["cluster"]) for r in routes if r["name"].startswith("primary-only")]
    assert rest == [({"prefix": "/api"}, "prod_backend-primary"), ({"prefix": "/v2"}, "prod_backend-primary")]


@pytest.mark.parametrize(
    ("match", "envoy"),
    [
        ("{headers: {user-agent: {regex: '.*Fox'}}}",
         {"prefix": "/", "headers": [{"name": "user-agent", "string_match": {"safe_regex": {"regex": ".*Fox"}}}]}),
        ("{headers: {X-Tenant: {prefix: acme}}}",
         {"prefix": "/", "headers": [{"name": "x-tenant", "string_match": {"prefix": "acme"}}]}),
        ("{headers: {x-env: {suffix: -beta}}}",
         {"prefix": "/", "headers": [{"name": "x-env", "string_match": {"suffix": "-beta"}}]}),
        ("{withoutHeaders: {x-internal: {}}}",
         {"prefix": "/", "headers": [{"name": "x-internal", "present_match": True, "invert_match": True}]}),
        ("{uri: {exact: /login}, method: {exact: POST}}",
         {"path": "/login", "headers": [{"name": ":method", "string_match": {"exact": "POST"}}]}),
        ("{uri: {regex: '/v[0-9]+/.*'}, ignoreUriCase: true, queryParams: {beta: {exact: 'on'}}}",
         {"safe_regex": {"regex": "/v[0-9]+/.*"}, "case_sensitive": False,
          "query_parameters": [{"name": "beta", "string_match": {"exact": "on"}}]}),
    ],
    ids=["regex", "prefix", "suffix", "without", "method", "query"],
)  # fmt: skip
def test_istio_matches_become_envoy_matches(match: str, envoy: dict[str, Any]) -> None:
    state = CanaryRouting(canary(analysis=f"iterations: 5\nmatch: [{match}]"))

    routes = vhost(route_config(state), "canary:prod/backend")["routes"]

    assert routes[0]["match"] == envoy


@pytest.mark.parametrize("field", ["sourceLabels: {app: web}", "sourceNamespace: web"])
def test_matches_the_local_mesh_cannot_honour_are_errors(field: str) -> None:
    state = CanaryRouting(canary(analysis=f"iterations: 5\nmatch: [{{{field}}}]"))

    with pytest.raises(RouterError, match="cannot be honoured by the local mesh"):
        route_config(state)


def test_a_gateway_canary_serves_its_hosts_on_the_gateway_and_the_primary_in_the_mesh() -> None:
    state = CanaryRouting(canary(spec="gateways: [istio-system/public-gateway]\nhosts: ['*']"), Routes(40, 60))

    gateway = vhost(route_config(state, name=GATEWAY.route_config), "canary:prod/backend")
    mesh = vhost(route_config(state), "canary:prod/backend")

    assert gateway["domains"] == ["*"]
    assert weights(gateway["routes"][0]) == [40, 60]
    assert [r["route"]["cluster"] for r in mesh["routes"]] == ["prod_backend-primary"]


def test_a_canary_owns_its_service_names_over_a_plain_service() -> None:
    mesh = Mesh(proxy_port=8000, services=(Service("prod", "backend", "backend"), Service("prod", "db", "db")))

    rendered = xds.render(mesh, [CanaryRouting(canary())], Path("/x"))

    config = rendered.documents["rds_mesh"]["resources"][0]
    assert [v["name"] for v in config["virtual_hosts"]][-1] == "service:prod/db"
    assert "prod/backend" not in [v["name"].removeprefix("service:") for v in config["virtual_hosts"]]
    assert "mesh: backend.prod is served by canary:prod/backend, not by service:prod/backend" in rendered.conflicts


def test_a_gateway_the_mesh_does_not_run_is_reported() -> None:
    rendered = xds.render(Mesh(proxy_port=8000), [CanaryRouting(canary(spec="gateways: [public-gateway]"))], Path("/x"))

    assert rendered.conflicts == ("canary prod/backend: gateway prod/public-gateway is not served by the local mesh",)


def test_mirror_weight_becomes_a_mirror_percentage() -> None:
    state = CanaryRouting(canary(analysis="stepWeight: 10\nmirror: true\nmirrorWeight: 25"), Routes(100, 0, True))

    route = vhost(route_config(state), "canary:prod/backend")["routes"][0]

    assert route["route"]["request_mirror_policies"] == [
        {"cluster": "prod_backend", "runtime_fraction": {"default_value": {"numerator": 25, "denominator": "HUNDRED"}}}
    ]


def test_service_options_apply_to_the_canary_routes() -> None:
    spec = """
timeout: 30s
retries: {attempts: 3, perTryTimeout: 1s, retryOn: "gateway-error,503"}
rewrite: {uri: /v2, authority: api.internal}
headers: {request: {set: {x-canary: "yes"}}, response: {remove: [x-powered-by]}}
"""
    route = vhost(route_config(CanaryRouting(canary(spec=spec))), "canary:prod/backend")["routes"][0]

    action = route["route"]
    assert action["timeout"] == "30.000s"
    assert action["retry_policy"] == {
        "retry_on": "gateway-error,retriable-status-codes", "num_retries": 3,
        "retriable_status_codes": [503], "per_try_timeout": "1.000s",
    }  # fmt: skip
    assert (action["prefix_rewrite"], action["host_rewrite_literal"]) == ("/v2", "api.internal")
    assert route["request_headers_to_add"][0]["header"] == {"key": "x-canary", "value": "yes"}
    assert route["response_headers_to_remove"] == ["x-powered-by"]


def test_session_affinity_cookie_lifecycle() -> None:
    base = CanaryRouting(canary(analysis="stepWeight: 10\nsessionAffinity: {cookieName: user, primaryCookieName: p}"))

    started = advance_cookies(dataclasses.replace(base, routes=Routes(90, 10)))
    advanced = advance_cookies(dataclasses.replace(started, routes=Routes(80, 20)))
    finished = advance_cookies(dataclasses.replace(advanced, routes=Routes(100, 0)))

    assert started.cookie is not None and started.cookie.startswith("user=")
    assert started.primary_cookie is not None and started.primary_cookie.startswith("p=")
    assert advanced.cookie == started.cookie
    assert (finished.cookie, finished.previous_cookie) == (None, started.cookie)


def test_sticky_routes_come_first_while_the_canary_has_weight() -> None:
    state = advance_cookies(CanaryRouting(canary(analysis="stepWeight: 10\nsessionAffinity: {cookieName: u}"),
                                          Routes(90, 10)))  # fmt: skip
    assert state.cookie is not None
    value = state.cookie.partition("=")[2]

    routes = vhost(route_config(state), "canary:prod/backend")["routes"]

    assert [r["name"] for r in routes] == ["sticky-0", "weighted-0"]
    assert routes[0]["match"]["headers"][0]["string_match"]["safe_regex"]["regex"] == f".*u.*{value}.*"
    assert weights(routes[0]) == [0, 100]
    canary_cluster = routes[1]["route"]["weighted_clusters"]["clusters"][1]
    assert canary_cluster["response_headers_to_add"][0]["header"]["value"] == f"{state.cookie}; Max-Age=86400"


def test_workload_names_with_dots_cannot_name_clusters() -> None:
    assert cluster_name("prod", "backend-primary") == "prod_backend-primary"
    with pytest.raises(ValueError, match="DNS label"):
        cluster_name("prod", "backend.v2")


async def test_routes_to_nowhere_are_refused(tmp_path: Path) -> None:
    router = EnvoyRouter(XdsFiles(tmp_path), EnvoyAdmin("http://127.0.0.1:9"), Mesh(proxy_port=8000))
    try:
        with pytest.raises(RouterError, match="nowhere"):
            await router.set_routes(canary(), Routes(0, 0))
    finally:
        await router.aclose()


async def test_an_update_envoy_never_confirms_is_an_error_and_is_rolled_back(tmp_path: Path) -> None:
    files = XdsFiles(tmp_path)
    router = EnvoyRouter(files, EnvoyAdmin("http://127.0.0.1:9"), Mesh(proxy_port=8000), confirm_timeout=0.2)
    router.write()
    files.mark_good(files.names())
    before = files.read("rds_mesh")
    try:
        with pytest.raises(RouterError, match="did not apply the update"):
            await router.reconcile(canary())
    finally:
        await router.aclose()

    assert files.read("rds_mesh") == before
    assert router.canaries() == {}
