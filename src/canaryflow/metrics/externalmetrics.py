"""Kubernetes external metrics (``external.metrics.k8s.io/v1beta1``, served by KEDA, the Datadog cluster agent…).

As in Flagger: the query is ``<namespace>/<metricName>?labelSelector=<url-encoded selector>`` (namespace
``default`` when only a name is given; more slashes, or no name, are errors); the value is the first item's
``value`` (a Kubernetes quantity such as ``1500m``); no item means no values; unlike Flagger, several items are
an error. ``spec.provider.address`` replaces the API server, a secret's ``token`` the service account's token.
``is_online`` lists ``dummy-metric`` in ``kube-system``, as Flagger does.
"""

from __future__ import annotations

from urllib.parse import parse_qs, quote, urlsplit

from canaryflow.metrics import kubeapi
from canaryflow.metrics.base import MetricError, NoValuesFound
from canaryflow.metrics.rest import ProviderConfig, one_series

GROUP = "/apis/external.metrics.k8s.io/v1beta1"
FORMAT = "<namespace>/<metricName>?labelSelector=<urlencoded label selectors>"


def parse(query: str) -> tuple[str, str, str | None]:
    """(namespace, metric name, label selector) of a query, as Flagger reads it."""
    parts = urlsplit("dummy:///" + query.strip())
    path = parts.path.removeprefix("/").split("/")
    if len(path) > 2:
        raise MetricError(f"malformed query string, too many slashes, expected {FORMAT}, got {query}")
    namespace, name = ("default", path[0]) if len(path) == 1 else (path[0] or "default", path[1])
    if not name:
        raise MetricError("metric name cannot be empty")
    selector = parse_qs(parts.query).get("labelSelector", [""])[0]
    return namespace, name, selector or None


class ExternalMetricsProvider:
    def __init__(self, config: ProviderConfig) -> None:
        self.base, self._rest = kubeapi.client(config)

    async def _list(self, namespace: str, name: str, selector: str | None, query: str | None) -> list[object]:
        url = f"{self.base}{GROUP}/namespaces/{quote(namespace)}/{quote(name)}"
        params = {"labelSelector": selector} if selector else {}
        body = await self._rest.json("GET", url, query, params=params)
        items = body.get("items") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise self._rest.error("answer has no 'items' list", query)
        return items

    async def query(self, expr: str) -> float:
        who = self._rest.who
        try:
            namespace, name, selector = parse(expr)
        except MetricError as exc:
            raise self._rest.error(f"error parsing metric query: {exc}") from None
        item = one_series(await self._list(namespace, name, selector, expr), who, expr)
        if not isinstance(item, dict):
            raise NoValuesFound(f"{who}: no external metrics found for query {expr}")
        try:
            return kubeapi.quantity(str(item.get("value", "")))
        except ValueError as exc:
            raise self._rest.error(str(exc), expr) from None

    async def is_online(self) -> bool:
        await self._list("kube-system", "dummy-metric", None, None)
        return True

    async def close(self) -> None:
        await self._rest.close()
