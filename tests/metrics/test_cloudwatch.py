"""CloudWatch against a real CloudWatch API: moto's server (the ``moto[server]`` test extra) on 127.0.0.1.

Data is put with boto3, as an application would publish it, and read back by canaryflow's provider with
Flagger's query (a JSON list of MetricDataQuery) over the query API, signed with SigV4.
"""

from __future__ import annotations

import datetime
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import boto3
import httpx
import pytest

from canaryflow.metrics.base import MetricError, NoValuesFound
from canaryflow.metrics.factory import MetricsFactory
from tests.metrics.fake_api import provider_template


def stat(metric: str, stat: str = "Sum", **extra: object) -> dict[str, object]:
    dimensions = [{"Name": "appName", "Value": "podinfo"}]
    metric_stat = {"Metric": {"Namespace": "MyKubernetesCluster", "MetricName": metric, "Dimensions": dimensions},
                   "Period": 60, "Stat": stat}  # fmt: skip
    return {"Id": metric.lower(), "MetricStat": metric_stat, **extra}


# moto computes no metric math (Flagger's docs divide two such stats with an Expression): plain stats here.
QUERY = [stat("ErrorCount")]
SIMPLE = [
    {"Id": "m1", "MetricStat": {"Metric": {"Namespace": "MyKubernetesCluster", "MetricName": "Latency"},
                                "Period": 60, "Stat": "Average"}},
]  # fmt: skip


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url + "/moto-api/", trust_env=False, timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "moto's server did not start"
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def aws(moto: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH", moto)
    httpx.post(moto + "/moto-api/reset", trust_env=False)
    return moto


def put(aws: str, *points: tuple[str, float]) -> None:
    """Publish ``points`` (name, value) with one timestamp, two minutes ago (moto drops a point in the window's last,
    partial period): one timestamp, so that they land in the same one-minute period even when the test runs
    across a minute boundary (taken point by point, under load, 3 and 4 were once summed in two periods)."""
    client = boto3.client("cloudwatch", region_name="eu-west-1", endpoint_url=aws)
    when = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=2)
    data = [
        {"MetricName": name, "Dimensions": [{"Name": "appName", "Value": "podinfo"}] if name != "Latency" else [],
         "Timestamp": when, "Value": value, "Unit": "Count"}
        for name, value in points
    ]  # fmt: skip
    client.put_metric_data(Namespace="MyKubernetesCluster", MetricData=data)


async def test_the_published_data_is_read_back(aws: str) -> None:
    put(aws, ("ErrorCount", 3), ("ErrorCount", 4), ("RequestCount", 60))
    provider = MetricsFactory().for_template(
        provider_template("cloudwatch", None, False, region="eu-west-1"), None, "1m"
    )
    assert await provider.query(json.dumps(QUERY)) == 7.0
    assert await provider.is_online()


async def test_several_results_are_an_error(aws: str) -> None:
    put(aws, ("ErrorCount", 3), ("RequestCount", 60))
    provider = MetricsFactory().for_template(
        provider_template("cloudwatch", None, False, region="eu-west-1"), None, "1m"
    )
    with pytest.raises(MetricError, match=r"cloudwatch \(metric template test/cloudwatch\): the query returned 2 s"):
        await provider.query(json.dumps([stat("ErrorCount"), stat("RequestCount")]))


async def test_no_data_points_means_no_values(aws: str) -> None:
    provider = MetricsFactory().for_template(
        provider_template("cloudwatch", None, False, region="eu-west-1"), None, "1m"
    )
    with pytest.raises(NoValuesFound, match=r"^cloudwatch \(metric template test/cloudwatch\): no values found"):
        await provider.query(json.dumps(SIMPLE))


async def test_a_query_that_is_not_json_and_a_missing_region_are_named(aws: str) -> None:
    provider = MetricsFactory().for_template(
        provider_template("cloudwatch", None, False, region="eu-west-1"), None, "1m"
    )
    with pytest.raises(MetricError, match=r"cloudwatch \(metric template test/cloudwatch\): error unmarshaling query"):
        await provider.query("SELECT AVG(Latency)")
    with pytest.raises(MetricError, match=r"region not specified"):
        MetricsFactory().for_template(provider_template("cloudwatch", None, False), None, "1m")
