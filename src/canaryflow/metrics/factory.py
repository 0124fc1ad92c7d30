"""Building metric providers from MetricTemplates and metrics-server addresses, one client per endpoint.

Every provider type Flagger knows is a valid manifest, but canaryflow queries Prometheus only: other types
raise UnsupportedProvider naming the supported ones, never a silent fallback to Prometheus. Clients are kept
per endpoint (address, credentials, headers, TLS choice), so each analysis tick reuses open connections.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol
from urllib.parse import urlsplit

from canaryflow.api.metrictemplate import MetricTemplate
from canaryflow.metrics.base import MetricError, MetricsProvider
from canaryflow.metrics.prometheus import (
    BasicAuth,
    BearerToken,
    Credentials,
    Endpoint,
    HttpOptions,
    PrometheusProvider,
)

SUPPORTED_TYPES = ("prometheus",)
DEFAULT_METRICS_SERVER = "http://prometheus:9090"


class UnsupportedProvider(MetricError):
    """The MetricTemplate names a provider type that is valid in Flagger but not implemented here."""


class ProviderFactory(Protocol):
    def for_template(self, template: MetricTemplate, secret: Mapping[str, str] | None) -> MetricsProvider:
        """The provider a MetricTemplate describes; ``secret`` is the data of its ``secretRef``, if any."""
        ...

    def for_server(self, address: str) -> MetricsProvider:
        """A Prometheus at ``address`` without credentials: a canary's ``metricsServer``."""
        ...

    async def close(self) -> None: ...


class PrometheusFactory:
    """Makes PrometheusProviders and keeps one per endpoint until closed."""

    def __init__(self, options: HttpOptions | None = None) -> None:
        self.options = options or HttpOptions()
        self._providers: dict[Endpoint, PrometheusProvider] = {}

    def for_template(self, template: MetricTemplate, secret: Mapping[str, str] | None) -> PrometheusProvider:
        check_supported(template)
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
        return self._provider(endpoint)

    def for_server(self, address: str) -> PrometheusProvider:
        return self._provider(Endpoint(address=_checked_address(address, "metrics server")))

    async def close(self) -> None:
        providers, self._providers = list(self._providers.values()), {}
        for provider in providers:
            await provider.close()

    def _provider(self, endpoint: Endpoint) -> PrometheusProvider:
        if endpoint not in self._providers:
            self._providers[endpoint] = PrometheusProvider(endpoint, self.options)
        return self._providers[endpoint]


def check_supported(template: MetricTemplate) -> None:
    """Raise UnsupportedProvider when canaryflow cannot query the template's provider type."""
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
