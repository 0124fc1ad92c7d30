"""Providers built from MetricTemplates: supported types, addresses, credentials, and shared clients."""

from __future__ import annotations

import json

import httpx
import pytest

from canaryflow.api.metrictemplate import PROVIDER_TYPES
from canaryflow.metrics.base import MetricError
from canaryflow.metrics.factory import SUPPORTED_TYPES, PrometheusFactory, UnsupportedProvider
from canaryflow.metrics.prometheus import HttpOptions

from .resources import template

ADDRESS = "http://prom.monitoring:9090"
ONE = {"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [0, "1"]}]}}


class Seen:
    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200, content=json.dumps(ONE).encode())


@pytest.fixture
def seen() -> Seen:
    return Seen()


@pytest.fixture
async def factory(seen: Seen) -> PrometheusFactory:
    return PrometheusFactory(HttpOptions(transport=httpx.MockTransport(seen)))


def test_every_provider_type_of_flaggers_crd_has_a_module() -> None:
    assert sorted(SUPPORTED_TYPES) == sorted(PROVIDER_TYPES)


def test_a_type_without_a_module_is_refused_with_the_valid_list(factory: PrometheusFactory) -> None:
    valid = template("avg:requests{*}", type="datadog", address="https://api.example.com")
    provider = valid.spec.provider.model_construct(type="honeycomb")  # past validation, which refuses it too
    custom = valid.model_copy(update={"spec": valid.spec.model_copy(update={"provider": provider})})
    with pytest.raises(UnsupportedProvider, match=r"'honeycomb' is not supported; supported types: prometheus, cloud"):
        factory.for_template(custom, None)


@pytest.mark.parametrize(
    ("address", "message"),
    [
        (None, r"istio-system/custom: spec.provider.address is required"),
        ("prometheus:9090", r"address 'prometheus:9090' is not an http:// or https:// URL"),
        ("ftp://prometheus", r"is not an http:// or https:// URL"),
    ],
    ids=["missing", "no-scheme", "wrong-scheme"],
)
def test_a_template_needs_an_http_address(factory: PrometheusFactory, address: str | None, message: str) -> None:
    with pytest.raises(MetricError, match=message):
        factory.for_template(template("up", address=address), None)


@pytest.mark.parametrize(
    ("secret", "authorization"),
    [
        ({"token": "t0k3n"}, "Bearer t0k3n"),
        ({"token": "t0k3n", "username": "u", "password": "p"}, "Bearer t0k3n"),
        ({"username": "flagger", "password": "pa55"}, "Basic ZmxhZ2dlcjpwYTU1"),
        (None, None),
    ],
    ids=["token", "token-wins", "username-password", "no-secret"],
)
async def test_secret_becomes_credentials(
    factory: PrometheusFactory, seen: Seen, secret: dict[str, str] | None, authorization: str | None
) -> None:
    provider = factory.for_template(template("up", address=ADDRESS), secret)
    assert await provider.query("up") == 1.0
    assert seen.requests[0].headers.get("authorization") == authorization
    await factory.close()


def test_a_secret_without_credentials_is_an_error_listing_its_keys(factory: PrometheusFactory) -> None:
    with pytest.raises(MetricError, match=r"must hold 'token', or 'username' and 'password' \(it has: user\)"):
        factory.for_template(template("up", address=ADDRESS), {"user": "x"})


async def test_template_headers_are_sent(factory: PrometheusFactory, seen: Seen) -> None:
    headers = {"X-Scope-OrgID": ["prod"], "X-Team": ["a", "b"]}
    provider = factory.for_template(template("up", address=ADDRESS, headers=headers), None)
    await provider.query("up")
    assert seen.requests[0].headers["x-scope-orgid"] == "prod"
    assert seen.requests[0].headers.get_list("x-team") == ["a", "b"]
    await factory.close()


async def test_clients_are_shared_per_endpoint(factory: PrometheusFactory) -> None:
    error_rate = template("a", name="error-rate", address=ADDRESS)
    latency = template("b", name="latency", address=ADDRESS)
    assert factory.for_template(error_rate, None) is factory.for_template(latency, None)
    assert factory.for_server(ADDRESS) is factory.for_template(latency, None)
    assert factory.for_template(latency, {"token": "a"}) is not factory.for_template(latency, {"token": "b"})
    assert factory.for_server(ADDRESS) is not factory.for_server("http://other:9090")
    await factory.close()


async def test_after_close_new_clients_are_made(factory: PrometheusFactory) -> None:
    before = factory.for_server(ADDRESS)
    await factory.close()
    after = factory.for_server(ADDRESS)
    assert after is not before
    assert await after.query("up") == 1.0
    await factory.close()
