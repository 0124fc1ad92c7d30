"""What the HTTP metric providers share: their configuration, one client per provider, and error messages that
name the provider, its template and the query but never a credential.

Flagger's providers each build requests by hand and return ``fmt.Errorf`` strings that embed response bodies;
here one ``RestClient`` turns every failure (timeout, refused connection, HTTP error, invalid JSON) into a
MetricError of one shape, ``<type> (metric template <ns>/<name>) …``, and scrubs every secret value from it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Awaitable, Mapping, Sequence
from typing import Any

import httpx

from canaryflow.api.duration import parse_duration
from canaryflow.api.metrictemplate import MetricTemplate
from canaryflow.metrics.base import MetricError
from canaryflow.metrics.prometheus import HttpOptions

REDACTED = "<redacted>"


@dataclasses.dataclass(frozen=True)
class ProviderConfig:
    """Everything a provider is built from: its template, the template's secret data, the metric's interval."""

    template: MetricTemplate
    secret: Mapping[str, str] | None
    interval: str
    options: HttpOptions

    @property
    def type(self) -> str:
        return self.template.spec.provider.type

    @property
    def who(self) -> str:
        """How messages name the provider: ``datadog (metric template test/error-rate)``."""
        meta = self.template.metadata
        return f"{self.type} (metric template {meta.namespace}/{meta.name})"

    @property
    def address(self) -> str | None:
        return (self.template.spec.provider.address or "").strip().rstrip("/") or None

    def interval_seconds(self) -> float:
        try:
            return parse_duration(self.interval)
        except ValueError as exc:
            raise MetricError(f"{self.who}: error parsing metric interval: {exc}") from None

    def window(self, multiplier: int) -> float:
        """Seconds of history a query looks at: ``multiplier`` times the metric's interval, as Flagger does."""
        return multiplier * self.interval_seconds()

    def required_address(self) -> str:
        if self.address is None:
            raise MetricError(f"{self.who}: spec.provider.address is required for a {self.type} provider")
        return self.checked(self.address)

    def checked(self, address: str) -> str:
        parts = httpx.URL(address)
        if parts.scheme not in ("http", "https") or not parts.host:
            raise MetricError(f"{self.who}: address {address!r} is not an http:// or https:// URL")
        return address

    def secret_key(self, key: str, *, required: bool = True) -> str | None:
        """A key of the template's secret, trimmed (``kubectl create secret --from-file`` adds a newline)."""
        data = self.secret or {}
        value = (data.get(key) or "").strip()
        if value:
            return value
        if not required:
            return None
        if self.secret is None:
            raise MetricError(f"{self.who}: spec.provider.secretRef is required (a secret with the key {key!r})")
        keys = ", ".join(sorted(data)) or "no keys"
        raise MetricError(f"{self.who}: the secret has no {key!r} key (it has: {keys})")

    def secret_values(self) -> tuple[str, ...]:
        return tuple(v.strip() for v in (self.secret or {}).values() if len(v.strip()) >= 4)


class RestClient:
    """An httpx client for one provider whose errors are MetricErrors naming it, with secrets scrubbed."""

    def __init__(
        self,
        config: ProviderConfig,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | None = None,
        verify: str | None = None,
    ) -> None:
        self.config = config
        self.who = config.who
        provider = config.template.spec.provider
        extra = [(n, v) for n, values in sorted((provider.headers or {}).items()) for v in values]
        # The secret's values, and what is derived from them on the wire (an Authorization header's value).
        sent = [v.split(" ", 1)[-1] for v in (headers or {}).values()]
        if isinstance(auth, httpx.BasicAuth):
            sent.append(auth._auth_header.split(" ", 1)[-1])
        self._secrets = tuple(dict.fromkeys([*config.secret_values(), *(v for v in sent if len(v) >= 4)]))
        self._client = httpx.AsyncClient(
            headers=httpx.Headers([*extra, *(headers or {}).items()]),
            auth=auth,
            timeout=config.options.timeout,
            verify=verify or not provider.insecure_skip_verify,
            transport=config.options.transport,
        )

    def redact(self, text: str) -> str:
        for value in self._secrets:
            text = text.replace(value, REDACTED)
        return text

    def error(self, message: str, query: str | None = None) -> MetricError:
        suffix = f" (query: {query})" if query is not None else ""
        return MetricError(self.redact(f"{self.who}: {message}{suffix}"))

    async def send(self, request: httpx.Request, query: str | None = None) -> httpx.Response:
        """The response to ``request`` when its status is below 400; raises a MetricError otherwise."""
        try:
            response = await self._client.send(request)
        except httpx.TimeoutException as exc:
            timeout = self.config.options.timeout
            raise self.error(f"{request.url.host} did not answer within {timeout:g} s", query) from exc
        except httpx.HTTPError as exc:
            raise self.error(f"{request.url.host} is unreachable: {exc or type(exc).__name__}", query) from exc
        if response.status_code >= 400:
            raise self.error(f"answered HTTP {response.status_code}: {snippet(response)}", query)
        return response

    async def json(self, method: str, url: str, query: str | None = None, **kwargs: Any) -> Any:
        """The JSON body of a successful request; invalid JSON is a MetricError quoting the body's start."""
        response = await self.send(self._client.build_request(method, url, **kwargs), query)
        try:
            return response.json()
        except ValueError:
            raise self.error(f"answered with invalid JSON: {snippet(response)!r}", query) from None

    def build(self, method: str, url: str, **kwargs: Any) -> httpx.Request:
        return self._client.build_request(method, url, **kwargs)

    async def close(self) -> None:
        await self._client.aclose()


def snippet(response: httpx.Response, limit: int = 200) -> str:
    text = response.text.strip()
    return (text if len(text) <= limit else text[:limit] + "…") or response.reason_phrase


def number(value: object, who: str) -> float | None:
    """A float from a JSON value (a number or a numeric string); None for null or NaN."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float | str):
        try:
            result = float(value)
        except ValueError:
            raise MetricError(f"{who}: value {value!r} is not a number") from None
        return None if math.isnan(result) else result
    raise MetricError(f"{who}: value {value!r} is not a number")


def one_series(series: Sequence[object], who: str, query: str) -> object:
    """The single series of a result; several are an error (a check reads one number), none is None."""
    if len(series) > 1:
        raise MetricError(
            f"{who}: the query returned {len(series)} series; a metric query must return one "
            f"(aggregate it, e.g. with sum or avg) (query: {query})"
        )
    return series[0] if series else None


async def online_if_answered(probe: Awaitable[object]) -> bool:
    """True once ``probe`` (a request the provider may refuse, such as an empty query) is answered: an HTTP 400
    refusal proves the provider is online too. Any other failure is raised."""
    try:
        await probe
    except MetricError as exc:
        if "answered HTTP 400" not in str(exc):
            raise
    return True
