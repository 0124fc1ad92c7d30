"""InfluxDB 2: a Flux query over ``/api/v2/query``, answered as annotated CSV.

As in Flagger (which uses influxdb-client-go): the address is required; with a secretRef the secret must hold
``token`` (sent as ``Authorization: Token <token>``) and ``org`` (the ``org`` parameter); the value is
``_value`` of the first record; a null value means no values, a value that is not a number is an error. Unlike
Flagger (which returns 0 for an empty result), no record means no values, and several tables (series) are an
error. ``is_online`` runs ``buckets() |> limit(n: 1)``, which any InfluxDB 2 answers when the token is valid
(Flagger queries a bucket named ``default``, which need not exist).
"""

from __future__ import annotations

import csv
import io

from canaryflow.metrics.base import NoValuesFound
from canaryflow.metrics.rest import ProviderConfig, RestClient, number, one_series

ONLINE_PROBE = "buckets() |> limit(n: 1)"
DIALECT = {"header": True, "delimiter": ",", "annotations": ["datatype", "group", "default"]}


class InfluxdbProvider:
    def __init__(self, config: ProviderConfig) -> None:
        self.url = config.required_address() + "/api/v2/query"
        headers = {"Accept": "application/csv"}
        self.org: str | None = None
        if config.template.spec.provider.secret_ref is not None:
            headers["Authorization"] = f"Token {config.secret_key('token')}"
            self.org = config.secret_key("org")
        self._rest = RestClient(config, headers)

    async def _records(self, flux: str) -> list[list[dict[str, str]]]:
        params = {"org": self.org} if self.org else {}
        body = {"query": flux, "type": "flux", "dialect": DIALECT}
        response = await self._rest.send(self._rest.build("POST", self.url, params=params, json=body), flux)
        tables = tables_of(response.text)
        for table in tables:
            if table and "error" in table[0] and table[0].get("error"):
                raise self._rest.error(f"reported an error: {table[0]['error']}", flux)
        return tables

    async def query(self, expr: str) -> float:
        who = self._rest.who
        table = one_series(await self._records(expr), who, expr)
        record = table[0] if isinstance(table, list) and table else None
        if record is None or "_value" not in record:
            raise NoValuesFound(f"{who}: no values found for query {expr}")
        value = number(record["_value"], who) if record["_value"] != "" else None
        if value is None:
            raise NoValuesFound(f"{who}: no values found for query {expr}")
        return value

    async def is_online(self) -> bool:
        await self._records(ONLINE_PROBE)
        return True

    async def close(self) -> None:
        await self._rest.close()


def tables_of(text: str) -> list[list[dict[str, str]]]:
    """Records of an annotated CSV answer, grouped by its ``table`` column (one table per series)."""
    tables: dict[tuple[str, str], list[dict[str, str]]] = {}
    header: list[str] | None = None
    for row in csv.reader(io.StringIO(text)):
        if not row or all(cell == "" for cell in row):
            header = None  # a blank line ends a block; the next block has its own header
            continue
        if row[0].startswith("#"):
            header = None
            continue
        if header is None:
            header = row
            continue
        record = dict(zip(header, row, strict=False))
        tables.setdefault((record.get("result", ""), record.get("table", "")), []).append(record)
    return list(tables.values())
