"""The Prometheus metrics provider: one instant query over Prometheus' HTTP API, read as one float.

Semantics follow Flagger's: the value is the last element of the instant vector; no element, or NaN, means
"no values found" (the workload probably gets no traffic); anything else that keeps a number from coming back
(unreachable server, HTTP error, Prometheus' own ``status: error``, a range-vector or string result) is a
MetricError whose message carries the address, the HTTP status and Prometheus' error text.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import httpx

from canaryflow.metrics.base import MetricError, NoValuesFound

DEFAULT_TIMEOUT = 5.0
ONLINE_PROBE = "vector(1)"

# Quoted strings are kept verbatim (a label value may hold two spaces); comments are dropped because joining
# lines would otherwise let a `# comment` swallow the rest of the query.
_TOKENS = re.compile(r"""("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)|(?:\s+|#[^\n]*)+""")


def collapse_whitespace(expr: str) -> str:
    """The query on one line: runs of whitespace outside string literals become one space, comments go."""

    return _TOKENS.sub(lambda m: m.group(1) if m.group(1) is not None else " ", expr).strip()


@dataclass(frozen=True)
class BearerToken:
    token: str = field(repr=False)


@dataclass(frozen=True)
class BasicAuth:
    username: str
    password: str = field(repr=False)


Credentials = BearerToken | BasicAuth


@dataclass(frozen=True)
class Endpoint:
    """Where a Prometheus is and how to talk to it; hashable, so clients can be shared per endpoint.
    ``headers`` are (name, value) pairs; a name may repeat, as in an HTTP request."""

    address: str
    credentials: Credentials | None = None
    headers: tuple[tuple[str, str], ...] = ()
    insecure_skip_verify: bool = False


@dataclass(frozen=True)
class HttpOptions:
    """How HTTP clients are made: the request timeout and, when given, the transport that carries requests
    (an ``httpx.MockTransport`` in tests, a proxy or socket transport in special deployments). A transport
    brings its own TLS settings, so a template's ``insecureSkipVerify`` applies only without one."""

    timeout: float = DEFAULT_TIMEOUT
    transport: httpx.AsyncBaseTransport | None = None


class PrometheusProvider:
    """A MetricsProvider that queries one Prometheus server; keeps its connections open between queries."""

    def __init__(self, endpoint: Endpoint, options: HttpOptions | None = None) -> None:
        self.endpoint = endpoint
        self.options = options or HttpOptions()
        self._url = endpoint.address.rstrip("/") + "/api/v1/query"
        headers = httpx.Headers(list(endpoint.headers))
        auth: httpx.Auth | None = None
        match endpoint.credentials:
            case BearerToken(token):
                headers["Authorization"] = f"Bearer {token}"
            case BasicAuth(username, password):
                auth = httpx.BasicAuth(username, password)
        self._client = httpx.AsyncClient(
            headers=headers,
            auth=auth,
            timeout=self.options.timeout,
            verify=not endpoint.insecure_skip_verify,
            transport=self.options.transport,
        )

    def __repr__(self) -> str:
        return f"PrometheusProvider({self.endpoint.address!r})"

    async def query(self, expr: str) -> float:
        query = collapse_whitespace(expr)
        body = await self._get(query)
        data = body.get("data")
        if not isinstance(data, dict):
            raise MetricError(f"{self._who}: answer has no 'data' object for query {query}")
        value = _value_of(data.get("resultType"), data.get("result"), self._who)
        if value is None or math.isnan(value):
            raise NoValuesFound(f"no values found for query {query}")
        return value

    async def is_online(self) -> bool:
        return await self.query(ONLINE_PROBE) == 1.0

    async def close(self) -> None:
        await self._client.aclose()

    @property
    def _who(self) -> str:
        return f"prometheus {self.endpoint.address}"

    async def _get(self, query: str) -> dict[str, Any]:
        try:
            response = await self._client.get(self._url, params={"query": query})
        except httpx.TimeoutException as exc:
            raise MetricError(f"{self._who} did not answer within {self.options.timeout:g} s") from exc
        except httpx.HTTPError as exc:
            reason = str(exc) or type(exc).__name__
            raise MetricError(f"{self._who} is unreachable: {reason}") from exc
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 400:
            raise MetricError(
                f"{self._who} answered HTTP {response.status_code}: {_error_text(body, response)} (query: {query})"
            )
        if not isinstance(body, dict):
            raise MetricError(f"{self._who} answered with invalid JSON: {_snippet(response.text)!r}")
        if body.get("status") != "success":
            raise MetricError(f"{self._who} reported an error: {_error_text(body, response)} (query: {query})")
        return body


def _value_of(result_type: object, result: object, who: str) -> float | None:
    """The float of an instant-vector (last element) or scalar result; None when the vector is empty."""
    if result_type == "vector" and isinstance(result, list):
        if not result:
            return None
        last = result[-1]
        sample = last.get("value") if isinstance(last, dict) else None
        return _sample_value(sample, who)
    if result_type == "scalar":
        return _sample_value(result, who)
    if result_type in ("matrix", "string"):
        raise MetricError(
            f"{who}: the query returned a {result_type}; a metric query must return an instant vector or a "
            "scalar (drop the range selector, or wrap it in a function such as rate())"
        )
    raise MetricError(f"{who}: unexpected result type {result_type!r}")


def _sample_value(sample: object, who: str) -> float:
    if not (isinstance(sample, list) and len(sample) == 2 and isinstance(sample[1], str)):
        raise MetricError(f"{who}: malformed sample {sample!r}")
    try:
        return float(sample[1])
    except ValueError:
        raise MetricError(f"{who}: sample value {sample[1]!r} is not a number") from None


def _error_text(body: object, response: httpx.Response) -> str:
    if isinstance(body, dict) and body.get("error"):
        kind = body.get("errorType")
        return f"{kind}: {body['error']}" if kind else str(body["error"])
    return _snippet(response.text) or response.reason_phrase


def _snippet(text: str, limit: int = 200) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + "…"
