"""Datadog, New Relic, Dynatrace and Splunk against a local server answering in each API's documented shape:
the exact request (path, auth headers, query parameters, time window) and the value read from the answer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from canaryflow.metrics.base import MetricError, NoValuesFound
from canaryflow.metrics.factory import MetricsFactory
from canaryflow.metrics.splunk import stream_address
from tests.metrics.fake_api import FakeApi, Reply, provider_template, serving

DATADOG = {"datadog_api_key": "dd-api-1234", "datadog_application_key": "dd-app-5678"}
NEWRELIC = {"newrelic_account_id": "42", "newrelic_query_key": "nr-key-1234"}
DYNATRACE = {"dynatrace_token": "dt0c01.secret"}
SPLUNK = {"sf_token_key": "sf-token-1234"}


@pytest.fixture
def api() -> Iterator[FakeApi]:
    yield from serving()


@pytest.fixture
async def factory() -> MetricsFactory:
    return MetricsFactory()


async def test_datadog_queries_the_last_ten_intervals_with_both_keys(api: FakeApi, factory: MetricsFactory) -> None:
    api.answer(Reply(body={"status": "ok", "series": [{"pointlist": [[1700000000000.0, 0.25], [1.0, 9.0]]}]}))
    provider = factory.for_template(provider_template("datadog", api.url), DATADOG, "1m")

    assert await provider.query("sum:errors{service:podinfo}.as_count()") == 0.25

    seen = api.last
    assert (seen.method, seen.path) == ("GET", "/api/v1/query")
    assert seen.params["query"] == "sum:errors{service:podinfo}.as_count()"
    assert int(seen.params["to"]) - int(seen.params["from"]) == 600
    assert (seen.headers["dd-api-key"], seen.headers["dd-application-key"]) == ("dd-api-1234", "dd-app-5678")


async def test_datadog_without_series_has_no_values_and_checks_keys_online(
    api: FakeApi, factory: MetricsFactory
) -> None:
    provider = factory.for_template(provider_template("datadog", api.url), DATADOG, "30s")
    api.answer(Reply(body={"status": "ok", "series": []}))
    with pytest.raises(NoValuesFound, match=r"^datadog \(metric template test/datadog\): no values found for query"):
        await provider.query("avg:latency{*}")
    api.answer(Reply(body={"valid": True}))
    assert await provider.is_online()
    assert api.last.path == "/api/v1/validate"


async def test_newrelic_appends_since_one_interval_to_the_nrql(api: FakeApi, factory: MetricsFactory) -> None:
    api.answer(Reply(body={"results": [{"result": 1.5}], "metadata": {}}))
    provider = factory.for_template(provider_template("newrelic", api.url), NEWRELIC, "2m")

    assert await provider.query("SELECT percentage(count(*), WHERE error IS true) FROM Transaction") == 1.5

    assert api.last.path == "/v1/accounts/42/query"
    assert api.last.params["nrql"] == (
        "SELECT percentage(count(*), WHERE error IS true) FROM Transaction SINCE 120 seconds ago"
    )
    assert api.last.headers["x-query-key"] == "nr-key-1234"


async def test_newrelic_null_result_has_no_values(api: FakeApi, factory: MetricsFactory) -> None:
    api.answer(Reply(body={"results": [{"result": None}]}))
    provider = factory.for_template(provider_template("newrelic", api.url), NEWRELIC, "1m")
    with pytest.raises(NoValuesFound):
        await provider.query("SELECT average(duration) FROM Transaction")


async def test_dynatrace_sends_the_selector_with_an_api_token(api: FakeApi, factory: MetricsFactory) -> None:
    data = {"dimensions": [], "timestamps": [1700000000000], "values": [310.5]}
    api.answer(Reply(body={"totalCount": 1, "result": [{"metricId": "builtin:service.response.time", "data": [data]}]}))
    provider = factory.for_template(provider_template("dynatrace", api.url + "/e/abc"), DYNATRACE, "1m")

    assert await provider.query("builtin:service.response.time:avg") == 310.5

    seen = api.last
    assert seen.path == "/e/abc/api/v2/metrics/query"
    assert seen.headers["authorization"] == "Api-Token dt0c01.secret"
    assert (seen.params["metricSelector"], seen.params["resolution"]) == ("builtin:service.response.time:avg", "Inf")
    assert int(seen.params["to"]) - int(seen.params["from"]) == 600_000


async def test_dynatrace_needs_an_address(factory: MetricsFactory) -> None:
    with pytest.raises(MetricError, match=r"dynatrace \(metric template test/dynatrace\): spec.provider.address"):
        factory.for_template(provider_template("dynatrace", None), DYNATRACE, "1m")


def signalflow(*points: tuple[str, float | None]) -> str:
    """A SignalFlow answer over HTTP: server-sent events, a control message, metadata and data messages."""
    events = ['event: control-message\ndata: {"event": "STREAM_START", "timestampMs": 1}']
    for ts_id, value in points:
        events.append(
            f'event: data\ndata: {{"type": "data", "logicalTimestampMs": 2, "data": '
            f'[{{"tsId": "{ts_id}", "value": {"null" if value is None else value}}}]}}'
        )
    events.append('event: control-message\ndata: {"event": "END_OF_CHANNEL", "timestampMs": 3}')
    return "\n\n".join(events) + "\n\n"


async def test_splunk_runs_the_program_and_reads_the_last_point(api: FakeApi, factory: MetricsFactory) -> None:
    api.answer(Reply(body=signalflow(("AAA", 0.5), ("AAA", 0.75), ("AAA", None)), content_type="text/event-stream"))
    provider = factory.for_template(provider_template("splunk", api.url), SPLUNK, "30s")
    program = "data('demo.trans.latency').mean().publish()"

    assert await provider.query(program) == 0.75

    seen = api.last
    assert (seen.method, seen.path, seen.body.decode()) == ("POST", "/v2/signalflow/execute", program)
    assert seen.headers["x-sf-token"] == "sf-token-1234"
    assert seen.params["immediate"] == "true"
    assert int(seen.params["stop"]) - int(seen.params["start"]) == 300_000


async def test_splunk_several_time_series_are_an_error(api: FakeApi, factory: MetricsFactory) -> None:
    api.answer(Reply(body=signalflow(("AAA", 1.0), ("BBB", 2.0)), content_type="text/event-stream"))
    provider = factory.for_template(provider_template("splunk", api.url), SPLUNK, "30s")
    with pytest.raises(MetricError, match=r"splunk \(metric template test/splunk\): the program published 2 time"):
        await provider.query("data('x').publish()")


def test_splunk_stream_host_is_derived_from_the_api_host() -> None:
    assert stream_address("https://api.us1.signalfx.com") == "https://stream.us1.signalfx.com"
