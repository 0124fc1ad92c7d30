"""Bad input for every HTTP provider, measured through the MetricRunner as a canary's check is: an error answer,
an unreachable endpoint, a secret missing a key, several series or none. Each is a MetricError (a failed check)
naming the provider, the template and the cause, and no credential ever appears in the message."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator

import pytest

from canaryflow.api.catalog import MemoryCatalog
from canaryflow.metrics.base import MetricError, NoValuesFound
from canaryflow.metrics.rest import online_if_answered
from canaryflow.metrics.runner import MetricRunner
from tests.metrics.fake_api import FakeApi, Reply, Seen, provider_template, serving

from .resources import canary, metric

SECRETS = {
    "datadog": {"datadog_api_key": "SECRET-dd-api", "datadog_application_key": "SECRET-dd-app"},
    "newrelic": {"newrelic_account_id": "42", "newrelic_query_key": "SECRET-nr"},
    "dynatrace": {"dynatrace_token": "SECRET-dt"},
    "splunk": {"sf_token_key": "SECRET-sf"},
    "graphite": {"username": "flagger", "password": "SECRET-graphite"},
    "influxdb": {"token": "SECRET-influx", "org": "org"},
    "externalmetrics": {"token": "SECRET-kube"},
}
QUERIES = {"datadog": "avg:x{*}", "newrelic": "SELECT count(*) FROM T", "dynatrace": "builtin:x",
           "splunk": "data('x').publish()", "graphite": "target=x", "influxdb": "from(bucket: \"x\")",
           "externalmetrics": "test/x"}  # fmt: skip
KINDS = sorted(SECRETS)
CREDENTIAL_HEADERS = {"authorization", "dd-api-key", "dd-application-key", "x-query-key", "x-sf-token"}
# Two series, in each API's shape.
SEVERAL = {
    "datadog": Reply(body={"series": [{"pointlist": [[1, 1]]}, {"pointlist": [[1, 2]]}]}),
    "newrelic": Reply(body={"results": [{"result": 1}, {"result": 2}]}),
    "dynatrace": Reply(body={"result": [{"data": [{"values": [1]}, {"values": [2]}]}]}),
    "splunk": Reply(body='event: data\ndata: {"data": [{"tsId": "a", "value": 1}, {"tsId": "b", "value": 2}]}\n\n'),
    "graphite": Reply(body=[{"datapoints": [[1, 1]]}, {"datapoints": [[2, 1]]}]),
    "influxdb": Reply(body=",result,table,_value\n,,0,1\n,,1,2\n"),
    "externalmetrics": Reply(body={"items": [{"value": "1"}, {"value": "2"}]}),
}
NONE = {
    "datadog": Reply(body={"series": []}),
    "newrelic": Reply(body={"results": []}),
    "dynatrace": Reply(body={"result": []}),
    "splunk": Reply(body='event: control-message\ndata: {"event": "END_OF_CHANNEL"}\n\n'),
    "graphite": Reply(body=[]),
    "influxdb": Reply(body=""),
    "externalmetrics": Reply(body={"items": []}),
}


@pytest.fixture
def api() -> Iterator[FakeApi]:
    yield from serving()


@pytest.fixture
async def runner() -> AsyncIterator[MetricRunner]:
    runner = MetricRunner(MemoryCatalog())
    yield runner
    await runner.close()


async def measure(runner: MetricRunner, kind: str, address: str, secret: dict[str, str]) -> float:
    catalog = runner.catalog
    assert isinstance(catalog, MemoryCatalog)
    template = provider_template(kind, address, query=QUERIES[kind])
    catalog.add(template)
    catalog.add_secret("test", f"{kind}-secret", secret)
    checked = canary({"name": "check", "templateRef": {"name": kind}, "interval": "1m"}, namespace="test")
    return await runner.measure(checked, metric(checked))


def assert_named_and_clean(error: MetricError, kind: str, *causes: str) -> None:
    text = str(error)
    assert text.startswith(f"{kind} (metric template test/{kind})"), text
    assert any(cause in text for cause in causes), text
    assert "SECRET" not in text


@pytest.mark.parametrize("kind", KINDS)
async def test_an_error_answer_echoing_a_credential_is_named_and_redacted(
    api: FakeApi, runner: MetricRunner, kind: str
) -> None:
    def echo(seen: Seen) -> Reply:
        return Reply(403, {"error": f"forbidden for {seen.headers} {seen.params}"})

    api.answer(echo)
    with pytest.raises(MetricError) as caught:
        await measure(runner, kind, api.url, SECRETS[kind])
    assert not isinstance(caught.value, NoValuesFound)
    assert_named_and_clean(caught.value, kind, "answered HTTP 403")
    sent = {v.split(" ")[-1] for k, v in api.last.headers.items() if k in CREDENTIAL_HEADERS}
    assert sent and not any(value in str(caught.value) for value in sent)  # not even base64-encoded


@pytest.mark.parametrize("kind", KINDS)
async def test_an_unreachable_endpoint_is_named(runner: MetricRunner, kind: str) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    with pytest.raises(MetricError) as caught:
        await measure(runner, kind, closed, SECRETS[kind])
    assert_named_and_clean(caught.value, kind, "is unreachable")


@pytest.mark.parametrize("kind", [k for k in KINDS if k not in ("graphite", "influxdb", "externalmetrics")])
async def test_a_secret_missing_a_key_lists_the_keys_it_has(api: FakeApi, runner: MetricRunner, kind: str) -> None:
    partial = dict(list(SECRETS[kind].items())[:-1]) or {"other": "SECRET-other"}
    with pytest.raises(MetricError) as caught:
        await measure(runner, kind, api.url, partial)
    assert_named_and_clean(caught.value, kind, "the secret has no")
    assert api.seen == []  # nothing was sent without its credentials


@pytest.mark.parametrize("kind", KINDS)
async def test_several_series_are_an_error(api: FakeApi, runner: MetricRunner, kind: str) -> None:
    api.answer(SEVERAL[kind])
    with pytest.raises(MetricError) as caught:
        await measure(runner, kind, api.url, SECRETS[kind])
    assert not isinstance(caught.value, NoValuesFound)
    assert_named_and_clean(caught.value, kind, "returned 2 series", "published 2 time series")


@pytest.mark.parametrize("kind", KINDS)
async def test_no_series_is_no_values(api: FakeApi, runner: MetricRunner, kind: str) -> None:
    api.answer(NONE[kind])
    with pytest.raises(NoValuesFound) as caught:
        await measure(runner, kind, api.url, SECRETS[kind])
    assert_named_and_clean(caught.value, kind, "no values found", "no external metrics found")


async def test_a_refused_probe_proves_the_provider_online_other_failures_are_raised() -> None:
    async def answer(error: MetricError | None) -> None:
        if error is not None:
            raise error

    assert await online_if_answered(answer(None)) is True
    assert await online_if_answered(answer(MetricError("x: answered HTTP 400: bad query"))) is True
    with pytest.raises(MetricError, match="answered HTTP 503"):
        await online_if_answered(answer(MetricError("x: answered HTTP 503: unavailable")))
