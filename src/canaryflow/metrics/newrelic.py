"""New Relic: an NRQL query over the Insights query API.

As in Flagger: the secret holds ``newrelic_account_id`` and ``newrelic_query_key`` (sent as ``X-Query-Key``);
the address defaults to ``https://insights-api.newrelic.com``; the request is
``GET /v1/accounts/<id>/query?nrql=<query> SINCE <interval seconds> seconds ago``, so the window is one metric
interval; the value is ``results[0].result``. No result, or a null one, means no values; several results are an
error. ``is_online`` runs ``SELECT * FROM Metric``.
"""

from __future__ import annotations

from canaryflow.metrics.base import NoValuesFound
from canaryflow.metrics.rest import ProviderConfig, RestClient, number, one_series

DEFAULT_ADDRESS = "https://insights-api.newrelic.com"
ONLINE_PROBE = "SELECT * FROM Metric"


class NewRelicProvider:
    def __init__(self, config: ProviderConfig) -> None:
        address = config.checked(config.address or DEFAULT_ADDRESS)
        account = config.secret_key("newrelic_account_id")
        key = config.secret_key("newrelic_query_key")
        self.url = f"{address}/v1/accounts/{account}/query"
        self.since = int(config.interval_seconds())
        self._rest = RestClient(config, {"X-Query-Key": key or ""})

    def nrql(self, expr: str) -> str:
        return f"{expr} SINCE {self.since} seconds ago"

    async def query(self, expr: str) -> float:
        nrql = self.nrql(expr)
        body = await self._rest.json("GET", self.url, nrql, params={"nrql": nrql})
        who = self._rest.who
        results = body.get("results") if isinstance(body, dict) else None
        if not isinstance(results, list):
            raise self._rest.error("answer has no 'results' list", nrql)
        first = one_series(results, who, nrql)
        value = number(first.get("result"), who) if isinstance(first, dict) else None
        if value is None:
            raise NoValuesFound(f"{who}: no values found for query {nrql}")
        return value

    async def is_online(self) -> bool:
        await self._rest.json("GET", self.url, params={"nrql": self.nrql(ONLINE_PROBE)})
        return True

    async def close(self) -> None:
        await self._rest.close()
