"""Istio fragments a Canary embeds: HTTP matches, retries, rewrites, headers, CORS and traffic policy.

Only the properties Flagger's CRD declares are accepted; they pass through to the generated VirtualService and
DestinationRules unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field, model_validator

from canaryflow.api.base import Model
from canaryflow.api.duration import Duration


class StringMatch(Model):
    """At most one of ``exact``, ``prefix``, ``suffix`` or ``regex`` (Istio's StringMatch).

    ``suffix`` is not Istio's: Flagger's CRD accepts it in ``analysis.match`` headers, for the meshes that
    have it.
    """

    exact: str | None = None
    prefix: str | None = None
    suffix: str | None = None
    regex: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> StringMatch:
        kinds = [k for k in ("exact", "prefix", "suffix", "regex") if getattr(self, k) is not None]
        if len(kinds) > 1:
            raise ValueError(f"set only one of exact, prefix, suffix or regex (got {', '.join(kinds)})")
        return self


class HTTPMatchRequest(Model):
    name: str | None = None
    uri: StringMatch | None = None
    scheme: StringMatch | None = None
    method: StringMatch | None = None
    authority: StringMatch | None = None
    headers: dict[str, StringMatch] | None = None
    query_params: dict[str, StringMatch] | None = None
    without_headers: dict[str, StringMatch] | None = None
    port: int | None = None
    source_labels: dict[str, str] | None = None
    gateways: list[str] | None = None
    source_namespace: str | None = None
    ignore_uri_case: bool | None = None


class HTTPRetry(Model):
    attempts: int | None = None
    per_try_timeout: Duration | None = None
    retry_on: str | None = None


class HTTPRewrite(Model):
    uri: str | None = None
    authority: str | None = None
    type: str | None = None


class HeaderOperations(Model):
    set: dict[str, str] | None = None
    add: dict[str, str] | None = None
    remove: list[str] | None = None


class Headers(Model):
    request: HeaderOperations | None = None
    response: HeaderOperations | None = None


class CorsPolicy(Model):
    allow_origin: list[str] | None = None
    allow_origins: list[StringMatch] | None = None
    allow_methods: list[str] | None = None
    allow_headers: list[str] | None = None
    expose_headers: list[str] | None = None
    max_age: str | None = None
    allow_credentials: bool | None = None


class HTTPSettings(Model):
    h2_upgrade_policy: Literal["DEFAULT", "DO_NOT_UPGRADE", "UPGRADE"] | None = None
    http1_max_pending_requests: int | None = Field(None, alias="http1MaxPendingRequests")
    http2_max_requests: int | None = Field(None, alias="http2MaxRequests")
    idle_timeout: str | None = None
    max_requests_per_connection: int | None = None
    max_retries: int | None = None


class ConnectionPool(Model):
    http: HTTPSettings | None = None


class HTTPCookie(Model):
    name: str | None = None
    path: str | None = None
    ttl: str | None = None


class ConsistentHash(Model):
    http_header_name: str | None = None
    http_cookie: HTTPCookie | None = None
    use_source_ip: bool | None = None
    http_query_parameter_name: str | None = None
    minimum_ring_size: int | None = None


class LocalityDistribute(Model):
    from_: str | None = Field(None, alias="from")
    to: dict[str, int] | None = None


class LocalityFailover(Model):
    from_: str | None = Field(None, alias="from")
    to: str | None = None


class LocalityLbSetting(Model):
    distribute: list[LocalityDistribute] | None = None
    enabled: bool | None = None
    failover: list[LocalityFailover] | None = None


class LoadBalancer(Model):
    simple: Literal["ROUND_ROBIN", "LEAST_CONN", "RANDOM", "PASSTHROUGH", "LEAST_REQUEST"] | None = None
    consistent_hash: ConsistentHash | None = None
    locality_lb_setting: LocalityLbSetting | None = None
    warmup_duration_secs: str | None = None


class OutlierDetection(Model):
    base_ejection_time: str | None = None
    consecutive5xx_errors: int | None = Field(None, alias="consecutive5xxErrors")
    consecutive_errors: int | None = None
    consecutive_gateway_errors: int | None = None
    consecutive_local_origin_failures: int | None = None
    interval: str | None = None
    max_ejection_percent: int | None = None
    min_health_percent: int | None = None
    split_external_local_origin_errors: bool | None = None


class ClientTLS(Model):
    mode: Literal["DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL"] | None = None
    ca_certificates: str | None = None
    client_certificate: str | None = None
    private_key: str | None = None
    sni: str | None = None
    subject_alt_names: list[str] | None = None


class TrafficPolicy(Model):
    connection_pool: ConnectionPool | None = None
    load_balancer: LoadBalancer | None = None
    outlier_detection: OutlierDetection | None = None
    tls: ClientTLS | None = None


def merge_matches(
    canary: Sequence[HTTPMatchRequest], defaults: Sequence[HTTPMatchRequest] | None
) -> list[HTTPMatchRequest]:
    """Flagger's mergeMatchConditions: each ``service.match`` entry once per ``analysis.match`` entry, with that
    entry's ``headers`` and ``sourceLabels``; its other fields are not carried over. No defaults: ``canary``.
    The local mesh (``routing/envoy``) and the Kubernetes VirtualService (``kube/render``) both route by it."""
    if not defaults:
        return list(canary)
    merged: list[HTTPMatchRequest] = []
    for c in canary:
        for d in defaults:
            update: dict[str, Any] = {}
            if c.headers is not None:
                update["headers"] = c.headers
            if c.source_labels is not None:
                update["source_labels"] = c.source_labels
            merged.append(d.model_copy(update=update))
    return merged
