"""Graphite, InfluxDB 2 and Google Cloud Monitoring against a local server answering in each API's documented
shape. (Debian's influxdb is 1.6, without Flux or /api/v2/query; graphite-web needs Django set up and a WSGI
server: neither fits the test suite, so these play the APIs instead.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import parse_qs

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import jwt

from canaryflow.metrics.base import MetricError, NoValuesFound
from canaryflow.metrics.factory import MetricsFactory
from tests.metrics.fake_api import FakeApi, Reply, Seen, provider_template, serving


@pytest.fixture
def api() -> Iterator[FakeApi]:
    yield from serving()


@pytest.fixture
async def factory() -> MetricsFactory:
    return MetricsFactory()


async def test_graphite_renders_the_query_as_json_with_basic_auth(api: FakeApi, factory: MetricsFactory) -> None:
    api.answer(
        Reply(body=[{"target": "ok", "datapoints": [[99.5, 1700000000], [99.9, 1700000010], [None, 1700000020]]}])
    )
    credentials = {"username": "flagger", "password": "pa55word"}
    provider = factory.for_template(provider_template("graphite", api.url + "/graphite"), credentials, "1m")

    query = "target=asPercent(\n  sumSeries(ok),\n  sumSeries(total))&from=-1min"
    assert await provider.query(query) == 99.9

    seen = api.last
    assert seen.path == "/graphite/render"
    assert seen.params == {"target": "asPercent( sumSeries(ok), sumSeries(total))", "from": "-1min", "format": "json"}
    assert seen.headers["authorization"] == "Basic ZmxhZ2dlcjpwYTU1d29yZA=="


async def test_graphite_null_points_only_and_several_targets(api: FakeApi, factory: MetricsFactory) -> None:
    provider = factory.for_template(provider_template("graphite", api.url, secret=False), None, "1m")
    api.answer(Reply(body=[{"target": "x", "datapoints": [[None, 1700000000]]}]))
    with pytest.raises(NoValuesFound):
        await provider.query("target=x")
    api.answer(Reply(body=[{"target": "a", "datapoints": [[1, 1]]}, {"target": "b", "datapoints": [[2, 1]]}]))
    with pytest.raises(MetricError, match=r"graphite \(metric template test/graphite\): the query returned 2 series"):
        await provider.query("target=*.requests")
    api.answer(Reply(body=[]))
    assert await provider.is_online()
    assert api.last.params["target"] == "test"


ANNOTATED = """#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,double,string
#group,false,false,true,true,false,true
#default,_result,,,,,
,result,table,_start,_stop,_value,_field
,,0,2024-01-01T00:00:00Z,2024-01-01T00:01:00Z,12.5,requests

"""


async def test_influxdb_posts_flux_with_token_and_org(api: FakeApi, factory: MetricsFactory) -> None:
    api.answer(Reply(body=ANNOTATED, content_type="text/csv"))
    secret = {"token": "influx-token-1234", "org": "my-org"}
    provider = factory.for_template(provider_template("influxdb", api.url), secret, "1m")
    flux = 'from(bucket: "http") |> range(start: -1m) |> sum()'

    assert await provider.query(flux) == 12.5

    seen = api.last
    assert (seen.method, seen.path, seen.params) == ("POST", "/api/v2/query", {"org": "my-org"})
    assert seen.headers["authorization"] == "Token influx-token-1234"
    assert seen.json()["query"] == flux and seen.json()["type"] == "flux"


async def test_influxdb_empty_answer_and_in_band_error(api: FakeApi, factory: MetricsFactory) -> None:
    provider = factory.for_template(provider_template("influxdb", api.url, secret=False), None, "1m")
    api.answer(Reply(body="\r\n", content_type="text/csv"))
    with pytest.raises(NoValuesFound):
        await provider.query('from(bucket: "none") |> range(start: -1m)')
    api.answer(Reply(body="error,reference\ntype error: bad,897\n", content_type="text/csv"))
    with pytest.raises(MetricError, match=r"influxdb \(metric template test/influxdb\): reported an error: type error"):
        await provider.query("bad")


def service_account_key(token_uri: str) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return json.dumps(
        {"type": "service_account", "client_email": "flagger@proj.iam.gserviceaccount.com", "private_key": pem.decode(),
         "private_key_id": "k1", "token_uri": token_uri}
    )  # fmt: skip


def google(seen: Seen) -> Reply:
    if seen.path == "/token":
        return Reply(body={"access_token": "ya29.token", "expires_in": 3600, "token_type": "Bearer"})
    series = {"labelValues": [], "pointData": [{"values": [{"doubleValue": 0.42}], "timeInterval": {}}]}
    return Reply(body={"timeSeriesDescriptor": {}, "timeSeriesData": [series]})


async def test_stackdriver_exchanges_a_signed_jwt_then_queries_mql(api: FakeApi, factory: MetricsFactory) -> None:
    api.answer(google)
    secret = {"project": "my-project", "serviceAccountKey": service_account_key(api.url + "/token")}
    provider = factory.for_template(provider_template("stackdriver", api.url), secret, "1m")
    mql = "fetch k8s_container | metric 'istio.io/service/server/request_count' | within 1m"

    assert await provider.query(mql) == 0.42
    assert await provider.query(mql) == 0.42  # the token is kept while it is valid

    token, first, second = api.seen
    grant = parse_qs(token.body.decode())
    assert grant["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
    claims = jwt.decode(grant["assertion"][0], verify=False)
    assert (claims["iss"], claims["aud"]) == ("flagger@proj.iam.gserviceaccount.com", api.url + "/token")
    assert (first.method, first.path) == ("POST", "/v3/projects/my-project/timeSeries:query")
    assert first.headers["authorization"] == "Bearer ya29.token" and first.json() == {"query": mql}
    assert second.path == first.path


def test_stackdriver_needs_the_project_key(factory: MetricsFactory) -> None:
    template = provider_template("stackdriver", None)
    with pytest.raises(MetricError, match=r"test/stackdriver\): the secret has no 'project' key \(it has: servic"):
        factory.for_template(template, {"serviceAccountKey": "{}"}, "1m")
