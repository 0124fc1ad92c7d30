"""Amazon CloudWatch: ``GetMetricData`` over CloudWatch's query API, signed with AWS Signature Version 4.

As in Flagger: the query is a JSON list of MetricDataQuery objects (``Id``, ``Expression`` or ``MetricStat``,
``ReturnData``…, named as in the AWS API); ``spec.provider.region`` is required; the window is the last ten
metric intervals with at most 20 data points; the value is the first value (the newest) of the first result; no
result or no value means no values. Unlike Flagger, several returned results are an error. Credentials come
from the environment as in the AWS SDK's default chain (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_SESSION_TOKEN``); the endpoint is ``spec.provider.address`` when set (Flagger ignores it), else
``AWS_ENDPOINT_URL_CLOUDWATCH`` or ``AWS_ENDPOINT_URL``, else ``https://monitoring.<region>.amazonaws.com``.
``is_online`` sends an empty GetMetricData: a 400 (validation error) proves the API answers, as in Flagger.
"""

from __future__ import annotations

import datetime
import json
import os
import xml.etree.ElementTree as ET
from typing import Any

from canaryflow.metrics.base import MetricError, NoValuesFound
from canaryflow.metrics.rest import ProviderConfig, RestClient, number, one_series, online_if_answered
from canaryflow.metrics.sigv4 import AwsCredentials, SigV4

WINDOW_INTERVALS = 10
MAX_DATAPOINTS = 20
VERSION = "2010-08-01"


class CloudWatchProvider:
    def __init__(self, config: ProviderConfig) -> None:
        region = (config.template.spec.provider.region or "").strip()
        if not region:
            raise MetricError(f"{config.who}: region not specified (spec.provider.region)")
        self.window = config.window(WINDOW_INTERVALS)
        env = os.environ
        self.endpoint = config.checked(
            config.address
            or (env.get("AWS_ENDPOINT_URL_CLOUDWATCH") or env.get("AWS_ENDPOINT_URL") or "").rstrip("/")
            or f"https://monitoring.{region}.amazonaws.com"
        )
        if not (env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY")):
            raise MetricError(
                f"{config.who}: no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in canaryflow's "
                "environment"
            )
        credentials = AwsCredentials(
            env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env.get("AWS_SESSION_TOKEN")
        )
        self._rest = RestClient(config, auth=SigV4(credentials, region, "monitoring"))
        self._secrets = (credentials.secret_key, credentials.session_token or credentials.secret_key)

    async def _call(self, form: dict[str, str], query: str | None) -> ET.Element:
        form = {"Action": "GetMetricData", "Version": VERSION, **form}
        request = self._rest.build("POST", self.endpoint + "/", data=form)
        try:
            response = await self._rest.send(request, query)
        except MetricError as exc:
            raise MetricError(_scrub(str(exc), self._secrets)) from None
        try:
            return ET.fromstring(response.text)
        except ET.ParseError:
            raise self._rest.error("answered with invalid XML", query) from None

    async def query(self, expr: str) -> float:
        try:
            queries = json.loads(expr)
        except ValueError as exc:
            raise self._rest.error(f"error unmarshaling query: {exc}", expr) from None
        if not isinstance(queries, list) or not all(isinstance(q, dict) for q in queries):
            raise self._rest.error("the query must be a JSON list of MetricDataQuery objects", expr)
        end = datetime.datetime.now(datetime.UTC)
        form = {
            "StartTime": _iso(end - datetime.timedelta(seconds=self.window)),
            "EndTime": _iso(end),
            "MaxDatapoints": str(MAX_DATAPOINTS),
            **flatten("MetricDataQueries", queries),
        }
        root = await self._call(form, expr)
        who = self._rest.who
        results = [m for m in _all(root, "MetricDataResults") for m in _children(m, "member")]
        result = one_series(results, who, expr)
        values = [v.text for vs in _children(result, "Values") for v in _children(vs, "member")] if result else []
        value = number(values[0], who) if values else None
        if value is None:
            raise NoValuesFound(f"{who}: no values found for query {expr}")
        return value

    async def is_online(self) -> bool:
        epoch = "0001-01-01T00:00:00Z"
        return await online_if_answered(self._call({"StartTime": epoch, "EndTime": epoch}, None))

    async def close(self) -> None:
        await self._rest.close()


def flatten(prefix: str, value: Any) -> dict[str, str]:
    """A JSON value as AWS query-protocol parameters: lists as ``.member.N`` (from 1), objects as ``.Key``."""
    if isinstance(value, list):
        out: dict[str, str] = {}
        for index, item in enumerate(value, start=1):
            out |= flatten(f"{prefix}.member.{index}", item)
        return out
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in flatten(f"{prefix}.{key}", item).items()}
    if isinstance(value, bool):
        return {prefix: "true" if value else "false"}
    return {prefix: str(value)}


def _iso(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children(element: ET.Element | Any, name: str) -> list[ET.Element]:
    return [child for child in element if _local(child.tag) == name]


def _all(root: ET.Element, name: str) -> list[ET.Element]:
    return [element for element in root.iter() if _local(element.tag) == name]


def _scrub(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        text = text.replace(secret, "<redacted>")
    return text
