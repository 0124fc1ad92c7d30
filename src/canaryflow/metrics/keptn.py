"""Keptn: a KeptnMetric's value, or the verdict of a Keptn Analysis, read from the Kubernetes API.

As in Flagger: the query, lower-cased, is ``keptnmetric/<namespace>/<name>`` (the value is the KeptnMetric's
``status.value``) or ``analysis/<namespace>/<definition>[/<duration>[/<key=value;…>]]``: an Analysis of that
AnalysisDefinition over the last ``duration`` (default ``1m``) with those arguments is created, read until its
``status.state`` is ``Completed`` (10 s at most), and deleted; the value is 1 when it passed, else 0.
``is_online`` is always true, as in Flagger. How the API is reached: ``metrics/kubeapi.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from dataclasses import dataclass, field
from typing import Any

from canaryflow.metrics import kubeapi
from canaryflow.metrics.base import MetricError
from canaryflow.metrics.rest import ProviderConfig

GROUP = "/apis/metrics.keptn.sh/v1beta1"
ANALYSIS_TIMEOUT = 10.0
POLL = 1.0
FORMAT = "<keptnmetric|analysis>/<namespace>/<resourceName>/<duration>/<arguments>"


@dataclass(frozen=True)
class KeptnQuery:
    resource: str  # "keptnmetrics" or "analyses"
    namespace: str
    name: str
    duration: str = "1m"
    arguments: dict[str, str] = field(default_factory=dict)


def parse(query: str) -> KeptnQuery:
    parts = query.strip().lower().split("/")
    if len(parts) < 3:
        raise MetricError(f"unexpected query format. query must be in the format {FORMAT}")
    kind, namespace, name = parts[0], parts[1], parts[2]
    if kind in ("keptnmetric", "keptnmetrics"):
        return KeptnQuery("keptnmetrics", namespace, name)
    if kind in ("analysis", "analyses"):
        pairs = (a.split("=") for a in parts[4].split(";")) if len(parts) >= 5 else iter(())
        arguments = {p[0]: p[1] for p in pairs if len(p) == 2}
        return KeptnQuery("analyses", namespace, name, parts[3] if len(parts) >= 4 else "1m", arguments)
    raise MetricError("unexpected resource kind provided in the query. must be one of: ['keptnmetric', 'analysis']")


class KeptnProvider:
    def __init__(self, config: ProviderConfig) -> None:
        self.base, self._rest = kubeapi.client(config)

    def _url(self, q: KeptnQuery, name: str | None = None) -> str:
        return f"{self.base}{GROUP}/namespaces/{q.namespace}/{q.resource}" + (f"/{name}" if name else "")

    async def query(self, expr: str) -> float:
        try:
            q = parse(expr)
        except MetricError as exc:
            raise self._rest.error(str(exc), expr) from None
        if q.resource == "keptnmetrics":
            return await self._metric(q, expr)
        return await self._analysis(q, expr)

    async def _metric(self, q: KeptnQuery, expr: str) -> float:
        body = await self._rest.json("GET", self._url(q, q.name), expr)
        value = (body.get("status") or {}).get("value") if isinstance(body, dict) else None
        if not isinstance(value, str):
            raise self._rest.error(f"no value found in KeptnMetric {q.namespace}/{q.name}", expr)
        try:
            return float(value)
        except ValueError:
            message = f"value {value!r} of KeptnMetric {q.namespace}/{q.name} is not a number"
            raise self._rest.error(message, expr) from None

    async def _analysis(self, q: KeptnQuery, expr: str) -> float:
        name = f"{q.name}-{secrets.token_hex(3)}"
        analysis: dict[str, Any] = {
            "apiVersion": "metrics.keptn.sh/v1beta1",
            "kind": "Analysis",
            "metadata": {"name": name, "namespace": q.namespace},
            "spec": {"analysisDefinition": {"name": q.name}, "timeframe": {"recent": q.duration}, "args": q.arguments},
        }
        await self._rest.json("POST", self._url(q), expr, json=analysis)
        try:
            async with asyncio.timeout(ANALYSIS_TIMEOUT):
                while True:
                    status = (await self._rest.json("GET", self._url(q, name), expr)).get("status") or {}
                    if status.get("state") == "Completed" and isinstance(status.get("pass"), bool):
                        return 1.0 if status["pass"] else 0.0
                    await asyncio.sleep(POLL)
        except TimeoutError:
            raise self._rest.error(
                f"encountered timeout while waiting for Keptn Analysis {q.namespace}/{q.name} to be finished", expr
            ) from None
        finally:
            with contextlib.suppress(MetricError):  # Flagger logs a failed delete; the verdict stands
                await self._rest.send(self._rest.build("DELETE", self._url(q, name)))

    async def is_online(self) -> bool:
        return True

    async def close(self) -> None:
        await self._rest.close()
