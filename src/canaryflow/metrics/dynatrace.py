"""Dynatrace: a metric selector over the Metrics API v2.

As in Flagger: the address (the environment's URL) is required; the secret holds ``dynatrace_token``, sent as
``Authorization: Api-Token <token>``; the request is ``GET /api/v2/metrics/query`` with ``metricSelector``,
``resolution=Inf`` and ``from``/``to`` in Unix milliseconds covering the last ten metric intervals; the value
is the first value of the last data entry of the first result. No result, data or value means no values; several
data entries (several series) are an error. ``is_online`` lists one metric (``/api/v2/metrics?pageSize=1``).
"""

from __future__ import annotations

import time

from canaryflow.metrics.base import NoValuesFound
from canaryflow.metrics.rest import ProviderConfig, RestClient, number, one_series

WINDOW_INTERVALS = 10


class DynatraceProvider:
    def __init__(self, config: ProviderConfig) -> None:
        self.address = config.required_address()
        token = config.secret_key("dynatrace_token")
        self.window_ms = int(config.window(WINDOW_INTERVALS) * 1000)
        self._rest = RestClient(config, {"Authorization": f"Api-Token {token}"})

    async def query(self, expr: str) -> float:
        now = int(time.time()) * 1000
        params = {"metricSelector": expr, "resolution": "Inf", "from": str(now - self.window_ms), "to": str(now)}
        body = await self._rest.json("GET", f"{self.address}/api/v2/metrics/query", expr, params=params)
        who = self._rest.who
        results = body.get("result") if isinstance(body, dict) else None
        if not isinstance(results, list):
            raise self._rest.error("answer has no 'result' list", expr)
        result = one_series(results, who, expr)
        data = result.get("data") if isinstance(result, dict) else None
        entry = one_series(data or [], who, expr)
        values = entry.get("values") if isinstance(entry, dict) else None
        value = number(values[0], who) if values else None
        if value is None:
            raise NoValuesFound(f"{who}: no values found for query {expr}")
        return value

    async def is_online(self) -> bool:
        await self._rest.json("GET", f"{self.address}/api/v2/metrics", params={"pageSize": "1"})
        return True

    async def close(self) -> None:
        await self._rest.close()
