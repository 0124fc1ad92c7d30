"""Measuring a canary's metrics: from a ``spec.analysis.metrics`` entry to one float.

For each metric the runner finds its query and provider (a MetricTemplate named by ``templateRef``, else an
inline ``query``, else a built-in check, the last two on the canary's ``metricsServer``), renders the query
with the canary's values and runs it. Judging the value against ``thresholdRange`` is the engine's work, not
this module's. The runner owns the provider factory and closes it.
"""

from __future__ import annotations

from dataclasses import dataclass

from canaryflow.api.canary import Canary, CanaryMetric
from canaryflow.api.catalog import Catalog
from canaryflow.api.metrictemplate import MetricTemplate
from canaryflow.metrics import builtin, template
from canaryflow.metrics.base import MetricError, MetricsProvider
from canaryflow.metrics.factory import DEFAULT_METRICS_SERVER, MetricsFactory, ProviderFactory


@dataclass(frozen=True)
class _Source:
    """Where a metric's value comes from: a provider and the query template to run on it."""

    provider: MetricsProvider
    query: str


class MetricRunner:
    """Runs the metric checks of canaries against their providers, reusing clients across ticks."""

    def __init__(
        self,
        catalog: Catalog,
        default_address: str = DEFAULT_METRICS_SERVER,
        factory: ProviderFactory | None = None,
    ) -> None:
        self.catalog = catalog
        self.default_address = default_address
        self.factory: ProviderFactory = factory or MetricsFactory()

    async def measure(self, canary: Canary, metric: CanaryMetric) -> float:
        """The metric's current value; raises NoValuesFound (no traffic) or MetricError (anything else)."""
        source = self._source(canary, metric)
        return await source.provider.query(template.render(source.query, query_variables(canary, metric)))

    def render_query(self, canary: Canary, metric: CanaryMetric) -> str:
        """The query ``measure`` runs for this metric, with every placeholder filled in."""
        return template.render(self._source(canary, metric).query, query_variables(canary, metric))

    async def check_providers(self, canary: Canary) -> list[str]:
        """Why the canary's metric providers cannot be used (missing templates, unsupported types,
        unreachable servers), one message per problem; an empty list when every provider answers."""
        problems: list[str] = []
        users: dict[int, tuple[MetricsProvider, list[str]]] = {}
        for metric in canary.spec.effective_analysis.metrics or ():
            try:
                provider = self._source(canary, metric).provider
            except MetricError as exc:
                problems.append(f"metric {metric.name!r}: {exc}")
                continue
            users.setdefault(id(provider), (provider, []))[1].append(metric.name)
        for provider, names in users.values():
            used_by = f"(used by metric{'s' if len(names) > 1 else ''} {', '.join(names)})"
            try:
                online = await provider.is_online()
            except MetricError as exc:
                problems.append(f"{exc} {used_by}")
                continue
            if not online:
                problems.append(f"{provider!r} did not answer vector(1) with 1 {used_by}")
        return problems

    async def close(self) -> None:
        await self.factory.close()

    def _source(self, canary: Canary, metric: CanaryMetric) -> _Source:
        if metric.template_ref is not None:
            namespace = metric.template_ref.namespace or canary.metadata.namespace
            found = self.catalog.metric_template(namespace, metric.template_ref.name)
            if found is None:
                raise MetricError(f"metric template {namespace}/{metric.template_ref.name} not found")
            provider = self.factory.for_template(found, self._secret(found), metric.interval)
            return _Source(provider, found.spec.query)
        server = self.factory.for_server(canary.spec.metrics_server or self.default_address)
        if metric.query is not None:
            return _Source(server, metric.query)
        if builtin.is_builtin(metric.name):
            return _Source(server, builtin.query_template(metric.name, canary.spec.provider))
        raise MetricError(
            f"metric {metric.name!r} has no templateRef and no query, and is not a built-in metric "
            f"({', '.join(builtin.QUERIES)})"
        )

    def _secret(self, found: MetricTemplate) -> dict[str, str] | None:
        ref = found.spec.provider.secret_ref
        if ref is None:
            return None
        namespace = found.metadata.namespace
        secret = self.catalog.secret(namespace, ref.name)
        if secret is None:
            raise MetricError(
                f"secret {namespace}/{ref.name} (secretRef of metric template "
                f"{namespace}/{found.metadata.name}) not found"
            )
        return secret


def query_variables(canary: Canary, metric: CanaryMetric) -> template.QueryVariables:
    """The values a query template may use for this canary and metric, as Flagger defines them."""
    return template.QueryVariables(
        name=canary.metadata.name,
        namespace=canary.metadata.namespace,
        target=canary.spec.target_ref.name,
        service=canary.service_name,
        interval=metric.interval,
        ingress=canary.spec.ingress_ref.name if canary.spec.ingress_ref else None,
        variables=metric.template_variables or {},
    )
