"""PrometheusProvider against scripted answers (httpx.MockTransport): Flagger's result and error semantics."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from canaryflow.metrics.base import MetricError, NoValuesFound
from canaryflow.metrics.prometheus import (
    BasicAuth,
    BearerToken,
    Endpoint,
    HttpOptions,
    PrometheusProvider,
    collapse_whitespace,
)

ADDRESS = "http://prometheus.test:9090"


def vector(*values: str) -> dict[str, Any]:
    result = [{"metric": {"pod": f"p{i}"}, "value": [1700000000.0, v]} for i, v in enumerate(values)]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


def scalar(value: str) -> dict[str, Any]:
    return {"status": "success", "data": {"resultType": "scalar", "result": [1700000000.0, value]}}


class Recorder:
    """A transport handler that answers every request the same way and keeps the requests it saw."""

    def __init__(self, answer: httpx.Response | Callable[[httpx.Request], httpx.Response]) -> None:
        self.answer = answer
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answer(request) if callable(self.answer) else self.answer


def provider(
    handler: Callable[[httpx.Request], httpx.Response], endpoint: Endpoint | None = None, **options: Any
) -> PrometheusProvider:
    return PrometheusProvider(
        endpoint or Endpoint(ADDRESS), HttpOptions(transport=httpx.MockTransport(handler), **options)
    )


def answering(body: Any, status: int = 200) -> Recorder:
    content = body if isinstance(body, str) else json.dumps(body)
    return Recorder(httpx.Response(status, content=content.encode()))


async def test_value_is_the_last_element_of_the_vector() -> None:
    assert await provider(answering(vector("1.5", "2.5", "99.25"))).query("up") == 99.25


async def test_a_scalar_result_is_a_value() -> None:
    assert await provider(answering(scalar("42"))).query("scalar(up)") == 42.0


async def test_query_goes_to_the_query_api_on_one_line() -> None:
    recorder = answering(vector("1"))
    multi_line = """
        sum(
            rate(requests{path="/a  b"}[1m])   # requests per second
        )
    """
    await provider(recorder, Endpoint(ADDRESS + "/prom/")).query(multi_line)
    (request,) = recorder.requests
    assert request.method == "GET"
    assert request.url.path == "/prom/api/v1/query"
    assert request.url.params["query"] == 'sum( rate(requests{path="/a  b"}[1m]) )'


@pytest.mark.parametrize(
    "body",
    [vector(), vector("NaN"), vector("1", "NaN"), scalar("NaN")],
    ids=["empty-vector", "nan", "last-element-nan", "nan-scalar"],
)
async def test_no_sample_or_nan_means_no_values_found(body: dict[str, Any]) -> None:
    with pytest.raises(NoValuesFound, match="no values found for query up"):
        await provider(answering(body)).query("up")


async def test_infinity_is_a_value_not_missing_data() -> None:
    assert math.isinf(await provider(answering(vector("+Inf"))).query("up"))


def _fails_with(handler: Callable[[httpx.Request], httpx.Response]) -> Recorder:
    return Recorder(handler)


def _raise(exc: Exception) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


PROM_400 = {"status": "error", "errorType": "bad_data", "error": '1:5: parse error: unexpected "}"'}
MATRIX = {"status": "success", "data": {"resultType": "matrix", "result": [{"metric": {}, "values": []}]}}
STRING = {"status": "success", "data": {"resultType": "string", "result": [1.0, "hello"]}}
ERROR_200 = {"status": "error", "errorType": "execution", "error": "query processing would load too many samples"}


@pytest.mark.parametrize(
    ("recorder", "message"),
    [
        (answering(PROM_400, 400), r"prometheus http://prometheus.test:9090 answered HTTP 400: bad_data: 1:5: parse"),
        (answering("upstream connect error", 503), r"answered HTTP 503: upstream connect error"),
        (answering("", 502), r"answered HTTP 502: Bad Gateway"),
        (answering("<html>not prometheus</html>"), r"invalid JSON: '<html>not prometheus</html>'"),
        (answering(ERROR_200), r"reported an error: execution: query processing would load too many"),
        (answering(MATRIX), r"returned a matrix; a metric query must return an instant vector or a scalar"),
        (answering(STRING), r"returned a string"),
        (answering({"status": "success"}), r"answer has no 'data' object"),
        (answering(vector("lots")), r"sample value 'lots' is not a number"),
        (
            _fails_with(_raise(httpx.ConnectError("[Errno 111] Connection refused"))),
            r"prometheus http://prometheus.test:9090 is unreachable: \[Errno 111\] Connection refused",
        ),
        (_fails_with(_raise(httpx.ReadTimeout("timed out"))), r"did not answer within 5 s"),
    ],
    ids=[
        "bad-query",
        "unavailable",
        "empty-error-body",
        "not-json",
        "status-error",
        "matrix",
        "string",
        "no-data",
        "not-a-number",
        "unreachable",
        "timeout",
    ],
)
async def test_failures_are_metric_errors_with_the_reason(recorder: Recorder, message: str) -> None:
    with pytest.raises(MetricError, match=message) as caught:
        await provider(recorder).query("up")
    # A broken provider must not pass for a workload without traffic: the engine treats the two differently.
    assert not isinstance(caught.value, NoValuesFound)


async def test_timeout_is_configurable() -> None:
    slow = _fails_with(_raise(httpx.ReadTimeout("timed out")))
    with pytest.raises(MetricError, match=r"did not answer within 2.5 s"):
        await provider(slow, timeout=2.5).query("up")


@pytest.mark.parametrize(
    ("answer", "online"), [(vector("1"), True), (vector("0"), False)], ids=["answers-1", "answers-0"]
)
async def test_is_online_asks_for_vector_1(answer: dict[str, Any], online: bool) -> None:
    recorder = answering(answer)
    assert await provider(recorder).is_online() is online
    assert recorder.requests[0].url.params["query"] == "vector(1)"


async def test_is_online_raises_when_prometheus_is_unreachable() -> None:
    with pytest.raises(MetricError, match="unreachable"):
        await provider(_fails_with(_raise(httpx.ConnectError("refused")))).is_online()


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        (Endpoint(ADDRESS, BearerToken("s3cr3t")), {"authorization": "Bearer s3cr3t"}),
        (Endpoint(ADDRESS, BasicAuth("flagger", "pa55")), {"authorization": "Basic ZmxhZ2dlcjpwYTU1"}),
        (
            Endpoint(ADDRESS, headers=(("X-Scope-OrgID", "team-a"),)),
            {"x-scope-orgid": "team-a", "authorization": None},
        ),
    ],
    ids=["bearer-token", "basic-auth", "custom-header"],
)
async def test_requests_carry_credentials_and_headers(endpoint: Endpoint, expected: dict[str, str | None]) -> None:
    recorder = answering(vector("1"))
    await provider(recorder, endpoint).query("up")
    headers = recorder.requests[0].headers
    for name, value in expected.items():
        assert headers.get(name) == value


def test_secrets_stay_out_of_reprs() -> None:
    shown = repr(Endpoint(ADDRESS, BearerToken("s3cr3t"))) + repr(Endpoint(ADDRESS, BasicAuth("u", "pa55")))
    assert "s3cr3t" not in shown
    assert "pa55" not in shown


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("  up  ", "up"),
        ("a\n\t+\n  b", "a + b"),
        ('x{l="two  spaces"}', 'x{l="two  spaces"}'),
        ("x{l='it''s'}", "x{l='it''s'}"),
        ('x{l="#not a comment"} # a comment\n+ 1', 'x{l="#not a comment"} + 1'),
    ],
    ids=["trim", "newlines-and-tabs", "double-quoted", "single-quoted", "comment"],
)
def test_whitespace_is_collapsed_outside_strings(query: str, expected: str) -> None:
    assert collapse_whitespace(query) == expected
