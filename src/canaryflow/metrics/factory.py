"""Building metric providers from MetricTemplates and metrics-server addresses, one client per endpoint.

Every provider type of Flagger's CRD has a module here (``BUILDERS``); a type that is not one of them cannot
pass validation (``api/metrictemplate.py``) and is refused here too, with the valid list, never a silent
fallback to Prometheus. Prometheus clients are kept per endpoint (address, credentials, headers, TLS choice);
the others per template, secret and metric interval (their query window is a multiple of the interval, as in
Flagger), so each analysis tick reuses open connections.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Protocol
from urllib.parse import urlsplit

from canaryflow.api.metrictemplate import MetricTemplate
from canaryflow.metrics.base import MetricError, MetricsProvider
from canaryflow.metrics.cloudwatch import CloudWatchProvider
from canaryflow.metrics.datadog import DatadogProvider
from canaryflow.metrics.dynatrace import DynatraceProvider
from canaryflow.metrics.externalmetrics import ExternalMetricsProvider
from canaryflow.metrics.graphite import GraphiteProvider
from canaryflow.metrics.influxdb import InfluxdbProvider
from canaryflow.metrics.keptn import KeptnProvider
from canaryflow.metrics.newrelic import NewRelicProvider
from canaryflow.metrics.prometheus import (
    BasicAuth,
    BearerToken,
    Credentials,
    Endpoint,
    HttpOptions,
    PrometheusProvider,
)
from canaryflow.metrics.rest import ProviderConfig
from canaryflow.metrics.splunk import SplunkProvider
from canaryflow.metrics.stackdriver import StackdriverProvider


class ClosableProvider(MetricsProvider, Protocol):
    async def close(self) -> None: ...


BUILDERS: dict[str, Callable[[ProviderConfig], ClosableProvider]] = {
    "cloudwatch": CloudWatchProvider,
    "datadog": DatadogProvider,
    "dynatrace": DynatraceProvider,
    "externalmetrics": ExternalMetricsProvider,
    "graphite": GraphiteProvider,
    "influxdb": InfluxdbProvider,
    "keptn": KeptnProvider,
    "newrelic": NewRelicProvider,
    "splunk": SplunkProvider,
    "stackdriver": StackdriverProvider,
}
SUPPORTED_TYPES = ("prometheus", *sorted(BUILDERS))
DEFAULT_METRICS_SERVER = "http://prometheus:9090"
DEFAULT_INTERVAL = "1m"  # a metric's interval when it sets none, as in Flagger's CRD defaults


class UnsupportedProvider(MetricError):
    """The MetricTemplate names a provider type canaryflow has no module for."""


class ProviderFactory(Protocol):
    def for_template(
        self, template: MetricTemplate, secret: Mapping[str, str] | None, interval: str = DEFAULT_INTERVAL
    ) -> MetricsProvider:
        """The provider a MetricTemplate describes; ``secret`` is the data of its ``secretRef``, if any, and
        ``interval`` the metric's (the query window of most providers is a multiple of it)."""
        ...

    def for_server(self, address: str) -> MetricsProvider:
        """A Prometheus at ``address`` without credentials: a canary's ``metricsServer``."""
        ...

    async def close(self) -> None: ...


class MetricsFactory:
    """Makes providers of every type and keeps each until closed."""

    def __init__(self, options: HttpOptions | None = None) -> None:
        self.options = options or HttpOptions()
        self._providers: dict[Hashable, ClosableProvider] = {}

    def for_template(
        self, template: MetricTemplate, secret: Mapping[str, str] | None, interval: str = DEFAULT_INTERVAL
    ) -> ClosableProvider:
        check_supported(template)
        if template.spec.provider.type == "prometheus":
            return self._prometheus(template, secret)
        key = (template.model_dump_json(), tuple(sorted((secret or {}).items())), interval)
        if key not in self._providers:
            config = ProviderConfig(template, secret, interval, self.options)
            self._providers[key] = BUILDERS[template.spec.provider.type](config)
        return self._providers[key]

    def for_server(self, address: str) -> PrometheusProvider:
        return self._prometheus_at(Endpoint(address=_checked_address(address, "metrics server")))

    async def close(self) -> None:
        providers, self._providers = list(self._providers.values()), {}
        for provider in providers:
            await provider.close()

    def _prometheus(self, template: MetricTemplate, secret: Mapping[str, str] | None) -> PrometheusProvider:
        provider = template.spec.provider
        where = f"metric template {template.metadata.namespace}/{template.metadata.name}"
        if not provider.address:
            raise MetricError(f"{where}: spec.provider.address is required for a {provider.type} provider")
        endpoint = Endpoint(
            address=_checked_address(provider.address, where),
            credentials=_credentials(secret, where) if secret is not None else None,
            headers=tuple(
                (name, value) for name, values in sorted((provider.headers or {}).items()) for value in values
            ),
            insecure_skip_verify=provider.insecure_skip_verify,
        )
        return self._prometheus_at(endpoint)

    def _prometheus_at(self, endpoint: Endpoint) -> PrometheusProvider:
        if endpoint not in self._providers:
            self._providers[endpoint] = PrometheusProvider(endpoint, self.options)
        found = self._providers[endpoint]
        assert isinstance(found, PrometheusProvider)
        return found


PrometheusFactory = MetricsFactory
"""The factory's former name, from when it built Prometheus clients only."""


def check_supported(template: MetricTemplate) -> None:
    """Raise UnsupportedProvider when canaryflow has no module for the template's provider type."""
    kind = template.spec.provider.type
    if kind not in SUPPORTED_TYPES:
        raise UnsupportedProvider(
            f"metric template {template.metadata.namespace}/{template.metadata.name}: provider type {kind!r} "
            "is not supported; supported types: " + ", ".join(SUPPORTED_TYPES)
        )


def _checked_address(address: str, where: str) -> str:
    parts = urlsplit(address)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise MetricError(f"{where}: address {address!r} is not an http:// or https:// URL")
    return address


def _credentials(secret: Mapping[str, str], where: str) -> Credentials:
    """Prometheus credentials from a Secret: ``token`` (bearer), else ``username``/``password`` (basic)."""
    if secret.get("token"):
        return BearerToken(secret["token"])
    if "username" in secret and "password" in secret:
        return BasicAuth(secret["username"], secret["password"])
    raise MetricError(
        f"{where}: the secret must hold 'token', or 'username' and 'password' (it has: "
        + (", ".join(sorted(secret)) or "no keys")
        + ")"
    )
