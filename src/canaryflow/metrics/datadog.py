"""Datadog: a metrics query (``avg:trace.http.request.errors{…}.as_count()``) over the v1 query API.

As in Flagger: the secret holds ``datadog_api_key`` and ``datadog_application_key`` (sent as ``DD-API-KEY`` and
``DD-APPLICATION-KEY``); the address defaults to ``https://api.datadoghq.com``; the query covers the last ten
metric intervals (``from``/``to`` in Unix seconds) and its value is the first point of the series; no series or
no point means no values. Unlike Flagger, several series are an error rather than the first one silently.
``is_online`` asks ``/api/v1/validate``, which checks the keys.
"""

from __future__ import annotations

import time

from canaryflow.metrics.base import NoValuesFound
from canaryflow.metrics.rest import ProviderConfig, RestClient, number, one_series

DEFAULT_ADDRESS = "https://api.datadoghq.com"
WINDOW_INTERVALS = 10


class DatadogProvider:
    def __init__(self, config: ProviderConfig) -> None:
        self.address = config.checked(config.address or DEFAULT_ADDRESS)
        api_key = config.secret_key("datadog_api_key")
        app_key = config.secret_key("datadog_application_key")
        self.window = config.window(WINDOW_INTERVALS)
        self._rest = RestClient(config, {"DD-API-KEY": api_key or "", "DD-APPLICATION-KEY": app_key or ""})

    async def query(self, expr: str) -> float:
        now = int(time.time())
        params = {"query": expr, "from": str(now - int(self.window)), "to": str(now)}
        body = await self._rest.json("GET", f"{self.address}/api/v1/query", expr, params=params)
        who = self._rest.who
        if not isinstance(body, dict) or body.get("status") == "error":
            error = body.get("error") if isinstance(body, dict) else body
            raise self._rest.error(f"reported an error: {error}", expr)
        series = one_series(body.get("series") or [], who, expr)
        points = series.get("pointlist") if isinstance(series, dict) else None
        if not points or not isinstance(points[0], list) or len(points[0]) < 2:
            raise NoValuesFound(f"{who}: no values found for query {expr}")
        value = number(points[0][1], who)
        if value is None:
            raise NoValuesFound(f"{who}: no values found for query {expr}")
        return value

    async def is_online(self) -> bool:
        await self._rest.json("GET", f"{self.address}/api/v1/validate")
        return True

    async def close(self) -> None:
        await self._rest.close()
