"""Splunk Observability (SignalFx): a SignalFlow program, run over SignalFlow's HTTP interface.

As in Flagger: the address (the realm's API URL, ``https://api.<realm>.signalfx.com``) is required; the secret
holds ``sf_token_key``, sent as ``X-SF-Token``; the program runs over the last ten metric intervals (``start``,
``stop`` in Unix milliseconds, ``immediate=true``); data points without a value are dropped; none left means
no values, several time series (``tsId``) are an error, else the value is the last point's. Flagger speaks
the WebSocket protocol to ``wss://stream.<realm>…/v2/signalflow``; here the same computation is
``POST /v2/signalflow/execute`` on the stream host, answered as server-sent events (``event: data`` messages
whose ``data`` lists ``{tsId, value}``). ``is_online`` reads one metric (``GET /v2/metric?limit=1`` on the API
host).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from canaryflow.metrics.base import NoValuesFound
from canaryflow.metrics.rest import ProviderConfig, RestClient, number

WINDOW_INTERVALS = 10


class SplunkProvider:
    def __init__(self, config: ProviderConfig) -> None:
        self.api = config.required_address()
        self.stream = stream_address(self.api)
        token = config.secret_key("sf_token_key")
        self.window_ms = int(config.window(WINDOW_INTERVALS) * 1000)
        self._rest = RestClient(config, {"X-SF-Token": token or ""})

    async def query(self, expr: str) -> float:
        now = int(time.time() * 1000)
        params = {"start": str(now - self.window_ms), "stop": str(now), "immediate": "true"}
        request = self._rest.build(
            "POST", f"{self.stream}/v2/signalflow/execute", params=params, content=expr.encode(),
            headers={"Content-Type": "text/plain", "Accept": "text/event-stream"},
        )  # fmt: skip
        response = await self._rest.send(request, expr)
        who = self._rest.who
        points: list[tuple[str, float]] = []
        for event, message in events(response.text):
            if event == "error" or message.get("type") == "error":
                raise self._rest.error(f"reported an error: {message.get('message') or message}", expr)
            if event == "data" or message.get("type") == "data":
                for point in message.get("data") or []:
                    value = number(point.get("value"), who) if isinstance(point, dict) else None
                    if value is not None:
                        points.append((str(point.get("tsId")), value))
        if not points:
            raise NoValuesFound(f"{who}: no values found for query {expr}")
        series = {ts for ts, _ in points}
        if len(series) > 1:
            raise self._rest.error(
                f"the program published {len(series)} time series; a metric query must publish one", expr
            )
        return points[-1][1]

    async def is_online(self) -> bool:
        await self._rest.json("GET", f"{self.api}/v2/metric", params={"limit": "1"})
        return True

    async def close(self) -> None:
        await self._rest.close()


def stream_address(api: str) -> str:
    """The stream host of a realm, as Flagger derives it: the first ``api`` in the URL becomes ``stream``."""
    return api.replace("api", "stream", 1)


def events(text: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(event name, JSON data) of each server-sent event; events without JSON data are skipped."""
    for block in text.replace("\r\n", "\n").split("\n\n"):
        name, data = "message", []
        for line in block.split("\n"):
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
        if not data:
            continue
        try:
            message = json.loads("\n".join(data))
        except ValueError:
            continue
        if isinstance(message, dict):
            yield name, message
