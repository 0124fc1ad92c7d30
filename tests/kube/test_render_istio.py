"""The DestinationRules and the VirtualService: hosts, gateways, weights, A/B matches, mirroring, session
affinity, delegation and the per-route settings copied from ``spec.service``."""

from __future__ import annotations

from typing import Any

import jsonschema  # type: ignore[import-untyped]  # comes with kubernetes-validate
import pytest

from canaryflow.api.status import Phase
from canaryflow.kube.render import RenderError
from tests.kube import schemas
from tests.kube.builders import canary_doc, deployment_doc, find, http_routes, rendered, weights

PRIMARY, CANARY = "backend-primary", "backend-canary"
AB = "iterations: 10\nmatch: [{headers: {x-canary: {exact: insider}}}, {sourceLabels: {app: tester}}]"


def virtual_service(service: str = "", analysis: str = "stepWeight: 10", **kwargs: Any) -> dict[str, Any]:
    vs: dict[str, Any] = find(
        rendered(canary_doc(service, analysis), deployment_doc(), **kwargs), "VirtualService", "backend"
    )
    return vs


@pytest.mark.parametrize(
    ("hosts", "expected"),
    [
        pytest.param(None, ["backend"], id="none-given"),
        pytest.param(["app.example.com"], ["app.example.com", "backend"], id="appended"),
        pytest.param(["*"], ["*"], id="wildcard"),
        pytest.param(["backend", "app.example.com"], ["backend", "app.example.com"], id="already-listed"),
    ],
)
def test_hosts_get_the_apex_name_unless_it_or_a_wildcard_is_there(hosts: list[str] | None, expected: list[str]) -> None:
    service = f"hosts: {hosts}" if hosts else ""
    assert virtual_service(service)["spec"]["hosts"] == expected


@pytest.mark.parametrize(
    ("gateways", "expected"),
    [
        pytest.param(None, ["mesh"], id="mesh-by-default"),
        pytest.param(["istio-system/public"], ["istio-system/public"], id="gateway-only"),
        pytest.param(["istio-system/public", "mesh"], ["istio-system/public", "mesh"], id="gateway-and-mesh"),
    ],
)
def test_gateways_default_to_the_mesh(gateways: list[str] | None, expected: list[str]) -> None:
    service = f"gateways: {gateways}" if gateways else ""
    assert virtual_service(service)["spec"]["gateways"] == expected


def test_one_weighted_route_carries_the_canary_weight() -> None:
    routes = virtual_service(weight=30, phase=Phase.PROGRESSING)["spec"]["http"]
    assert len(routes) == 1
    assert weights(routes[0]) == {PRIMARY: 70, CANARY: 30}
    assert "match" not in routes[0]


def test_ab_test_merges_each_analysis_match_into_each_service_match_then_routes_the_rest_to_the_primary() -> None:
    service = "match: [{uri: {prefix: /api}}, {uri: {prefix: /v2}}]"
    routes = virtual_service(service, AB, phase=Phase.PROGRESSING)["spec"]["http"]
    assert [m.get("uri") for m in routes[0]["match"]] == [{"prefix": "/api"}, {"prefix": "/v2"}] * 2
    assert [m.get("headers") for m in routes[0]["match"]] == [{"x-canary": {"exact": "insider"}}] * 2 + [None] * 2
    assert [m.get("sourceLabels") for m in routes[0]["match"]] == [None] * 2 + [{"app": "tester"}] * 2
    assert weights(routes[0]) == {PRIMARY: 0, CANARY: 100}
    assert routes[1]["match"] == [{"uri": {"prefix": "/api"}}, {"uri": {"prefix": "/v2"}}]
    assert [d["destination"]["host"] for d in routes[1]["route"]] == [PRIMARY]


def test_ab_test_without_service_match_uses_the_analysis_match_as_written() -> None:
    routes = virtual_service("", AB)["spec"]["http"]
    assert routes[0]["match"] == [{"headers": {"x-canary": {"exact": "insider"}}}, {"sourceLabels": {"app": "tester"}}]
    assert weights(routes[0]) == {PRIMARY: 100, CANARY: 0}
    assert "match" not in routes[1]


def test_a_suffix_match_istio_would_drop_becomes_the_equivalent_regex() -> None:
    analysis = "iterations: 5\nmatch: [{headers: {user-agent: {suffix: (Mobile.v1)}}}]"
    routes = virtual_service("", analysis)["spec"]["http"]
    assert routes[0]["match"] == [{"headers": {"user-agent": {"regex": r".*\(Mobile\.v1\)"}}}]


@pytest.mark.parametrize(
    ("mirror_weight", "percentage"),
    [pytest.param("mirrorWeight: 25", {"value": 25}, id="mirror-weight"), pytest.param("", None, id="all")],
)
def test_the_mirror_step_copies_requests_to_the_canary(mirror_weight: str, percentage: dict[str, int] | None) -> None:
    analysis = f"stepWeight: 10\nmirror: true\n{mirror_weight}"
    route = virtual_service("", analysis, phase=Phase.PROGRESSING)["spec"]["http"][0]
    assert weights(route) == {PRIMARY: 100, CANARY: 0}
    assert route["mirror"] == {"host": CANARY}
    assert route.get("mirrorPercentage") == percentage


def test_mirroring_stops_once_the_canary_has_weight() -> None:
    route = virtual_service("", "stepWeight: 10\nmirror: true", weight=10)["spec"]["http"][0]
    assert "mirror" not in route


def test_session_affinity_sends_cookie_holders_to_the_canary_while_it_has_weight() -> None:
    analysis = "stepWeight: 10\nsessionAffinity: {cookieName: flagger-cookie, maxAge: 3600, path: /, secure: true}"
    routes = virtual_service("", analysis, weight=20)["spec"]["http"]
    sticky, weighted = routes
    regex = sticky["match"][0]["headers"]["Cookie"]["regex"]
    assert regex.startswith(".*flagger-cookie.*") and regex.endswith(".*")
    assert weights(sticky) == {PRIMARY: 0, CANARY: 100}
    assert weights(weighted) == {PRIMARY: 80, CANARY: 20}
    set_cookie = weighted["route"][1]["headers"]["response"]["add"]["Set-Cookie"]
    value = regex.removeprefix(".*flagger-cookie.*").removesuffix(".*")
    assert set_cookie == f"flagger-cookie={value}; Max-Age=3600; Path=/; Secure"
    assert "headers" not in weighted["route"][0]


def test_session_affinity_with_a_primary_cookie_keeps_primary_users_on_the_primary_for_an_interval() -> None:
    analysis = "stepWeight: 10\nsessionAffinity: {cookieName: canary-c, primaryCookieName: primary-c}"
    canary_sticky, primary_sticky, weighted = virtual_service("", analysis, weight=20)["spec"]["http"]
    assert ".*primary-c.*" in primary_sticky["match"][0]["headers"]["Cookie"]["regex"]
    assert weights(primary_sticky) == {PRIMARY: 100, CANARY: 0}
    assert weights(canary_sticky) == {PRIMARY: 0, CANARY: 100}
    primary_cookie = weighted["route"][0]["headers"]["response"]["add"]["Set-Cookie"]
    assert primary_cookie.startswith("primary-c=") and primary_cookie.endswith("; Max-Age=30")  # interval 30s


def test_at_weight_zero_the_previous_session_cookie_is_expired() -> None:
    doc = canary_doc("headers: {request: {set: {x-env: prod}}}", "stepWeight: 10\nsessionAffinity: {cookieName: c}")
    doc["status"] = {"sessionAffinityCookie": "c=abcdefghij"}
    expiring, weighted = http_routes(rendered(doc, deployment_doc(), phase=Phase.FAILED))
    assert expiring["match"] == [{"headers": {"Cookie": {"regex": ".*c.*abcdefghij.*"}}}]
    assert expiring["headers"]["response"]["add"] == {"Set-Cookie": "c=abcdefghij; Max-Age=-1"}
    assert expiring["headers"]["request"] == {"set": {"x-env": "prod"}}
    assert weighted["headers"] == {"request": {"set": {"x-env": "prod"}}}
    assert weights(weighted) == {PRIMARY: 100, CANARY: 0}


def test_delegate_virtual_service_has_no_hosts_or_gateways() -> None:
    spec = virtual_service("delegation: true")["spec"]
    assert spec["hosts"] == []
    assert "gateways" not in spec


def test_delegation_with_hosts_is_refused() -> None:
    with pytest.raises(RenderError, match="cannot have hosts or gateways"):
        virtual_service("delegation: true\nhosts: [app.example.com]")


def test_traffic_policy_goes_to_both_destination_rules() -> None:
    service = """
    trafficPolicy:
      tls: {mode: ISTIO_MUTUAL}
      loadBalancer: {consistentHash: {httpCookie: {name: user, ttl: 0s}}}
      connectionPool: {http: {http1MaxPendingRequests: 10}}
    """
    objects = rendered(canary_doc(service), deployment_doc())
    expected = {
        "tls": {"mode": "ISTIO_MUTUAL"},
        "loadBalancer": {"consistentHash": {"httpCookie": {"name": "user", "ttl": "0s"}}},
        "connectionPool": {"http": {"http1MaxPendingRequests": 10}},
    }
    for host in (CANARY, PRIMARY):
        assert find(objects, "DestinationRule", host)["spec"] == {"host": host, "trafficPolicy": expected}


def test_route_settings_are_copied_into_every_route() -> None:
    service = """
    timeout: 5s
    retries: {attempts: 3, perTryTimeout: 1s, retryOn: "gateway-error,connect-failure"}
    rewrite: {uri: /, authority: backend.internal}
    headers: {response: {remove: [x-powered-by]}}
    corsPolicy: {allowOrigins: [{exact: "https://example.com"}], allowMethods: [GET], maxAge: 24h}
    """
    for route in virtual_service(service, AB)["spec"]["http"]:
        assert route["timeout"] == "5s"
        assert route["retries"] == {"attempts": 3, "perTryTimeout": "1s", "retryOn": "gateway-error,connect-failure"}
        assert route["rewrite"] == {"uri": "/", "authority": "backend.internal"}
        assert route["headers"] == {"response": {"remove": ["x-powered-by"]}}
        assert route["corsPolicy"]["allowOrigins"] == [{"exact": "https://example.com"}]


def test_behind_a_gateway_port_discovery_names_the_destination_port() -> None:
    route = virtual_service("portDiscovery: true\ngateways: [istio-system/public]")["spec"]["http"][0]
    assert [d["destination"]["port"] for d in route["route"]] == [{"number": 9898}] * 2


def test_tcp_services_get_a_weighted_tcp_route() -> None:
    spec = virtual_service("appProtocol: tcp\nmatch: [{port: 9898}]", weight=40, phase=Phase.PROGRESSING)["spec"]
    assert "http" not in spec
    assert spec["tcp"] == [
        {
            "match": [{"port": 9898}],
            "route": [
                {"destination": {"host": PRIMARY}, "weight": 60},
                {"destination": {"host": CANARY}, "weight": 40},
            ],
        }
    ]


def test_the_kubernetes_provider_gets_services_but_no_istio_objects() -> None:
    objects = rendered(canary_doc(analysis="iterations: 5", provider="kubernetes"), deployment_doc())
    assert [o["kind"] for o in objects] == ["Service", "Service", "Deployment", "Service"]


def test_other_providers_are_refused_by_name() -> None:
    with pytest.raises(RenderError, match="provider linkerd is not rendered"):
        rendered(canary_doc(provider="linkerd"), deployment_doc())


def test_the_schema_check_refuses_a_match_istio_would_silently_drop() -> None:
    # Why suffix matches are rewritten: Istio's CRD has no suffix, and the API server would prune it.
    vs = virtual_service("", AB)
    vs["spec"]["http"][0]["match"][0]["headers"]["x-canary"] = {"suffix": "insider"}
    with pytest.raises(jsonschema.ValidationError, match="Additional properties are not allowed"):
        schemas.validate(vs)
