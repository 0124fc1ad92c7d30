"""Graphite: a render API query (``target=…&from=-5min``) answered as JSON.

As in Flagger: the address is required (a path in it is kept: ``http://graphite/prefix`` queries
``/prefix/render``); runs of whitespace in the query become one space; the query is a URL query string to
which ``format=json`` is set; a secretRef must hold ``username`` and ``password`` (basic auth). The value is the
last non-null datapoint; none means no values. Unlike Flagger, several targets are an error rather than the last
value of whichever came last. ``is_online`` renders ``target=test``: any answer but an error is online.
"""

from __future__ import annotations

import contextlib
import re

import httpx

from canaryflow.metrics.base import NoValuesFound
from canaryflow.metrics.rest import ProviderConfig, RestClient, number, one_series

_SPACE = re.compile(r"\s+")


class GraphiteProvider:
    def __init__(self, config: ProviderConfig) -> None:
        self.render = config.required_address() + "/render"
        auth = None
        if config.template.spec.provider.secret_ref is not None:
            user, password = config.secret_key("username"), config.secret_key("password")
            auth = httpx.BasicAuth(user or "", password or "")
        self._rest = RestClient(config, auth=auth)

    async def query(self, expr: str) -> float:
        query = _SPACE.sub(" ", expr).strip()
        params = httpx.QueryParams(query).set("format", "json")
        body = await self._rest.json("GET", self.render, query, params=params)
        who = self._rest.who
        if not isinstance(body, list):
            raise self._rest.error("answer is not a list of targets", query)
        target = one_series(body, who, query)
        points = target.get("datapoints") if isinstance(target, dict) else None
        value = None
        for point in points or []:
            if not (isinstance(point, list) and len(point) == 2):
                raise self._rest.error(f"malformed datapoint {point!r}", query)
            value = number(point[0], who) if point[0] is not None else value
        if value is None:
            raise NoValuesFound(f"{who}: no values found for query {query}")
        return value

    async def is_online(self) -> bool:
        with contextlib.suppress(NoValuesFound):
            await self.query("target=test")
        return True

    async def close(self) -> None:
        await self._rest.close()
