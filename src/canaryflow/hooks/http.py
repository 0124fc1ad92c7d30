"""Call webhooks over HTTP the way Flagger does: POST the JSON payload, any status above 202 is a failure.

One runner serves every canary and keeps one connection pool (two, once some hook asks for ``disableTLS``).
A call never raises for a failing hook: refusals, timeouts and unreachable hosts all come back as a
``HookResult`` whose message says what happened, so the engine can write it into an event.

Retries follow Flagger's HTTP client: an attempt is repeated when the hook could not be reached, timed out,
or answered 429 or 5xx (the service is unwell, it may recover). Any other status above 202 is the hook's
answer (a closed gate says 403) and is returned at once; asking again would only delay the canary.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

import httpx

from canaryflow.clock import Clock, SystemClock
from canaryflow.clock.backoff import Backoff
from canaryflow.hooks.base import HookCall, HookResult

Sleep = Callable[[float], Awaitable[None]]

# Flagger counts 200, 201 and 202 as success; everything above is a failure (Flagger's loadtester answers 202
# for an accepted asynchronous command).
LAST_SUCCESS_STATUS = 202
DEFAULT_TIMEOUT = 10.0
BODY_LIMIT = 300
#: Waits between attempts at a hook that is unreachable or unwell (429, 5xx).
HOOK_RETRY = Backoff(first=0.5, cap=5.0)


@dataclasses.dataclass(frozen=True, slots=True)
class HttpHookConfig:
    """How the runner reaches hooks.

    ``clock`` waits between retries: the runtime passes its Clock so that fake-time tests and the scheduler
    agree on time. ``transport`` replaces the network (an ``httpx.MockTransport``, or a transport
    with a proxy); it then also decides TLS verification, so ``disableTLS`` has no effect through it.
    """

    clock: Clock = dataclasses.field(default_factory=SystemClock)
    transport: httpx.AsyncBaseTransport | None = None
    backoff: Backoff = HOOK_RETRY


class HttpHookRunner:
    """A ``HookRunner`` that POSTs Flagger's webhook payload; close it with ``aclose()`` or ``async with``."""

    def __init__(self, config: HttpHookConfig | None = None) -> None:
        self._config = config or HttpHookConfig()
        self._verifying = self._client(verify=True)
        self._insecure: httpx.AsyncClient | None = None

    async def __aenter__(self) -> HttpHookRunner:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._verifying.aclose()
        if self._insecure is not None:
            await self._insecure.aclose()

    async def call(self, call: HookCall) -> HookResult:
        webhook = call.webhook
        client = self._insecure_client() if webhook.disable_tls else self._verifying
        attempts = 1 + (webhook.retries or 0)
        # A zero timeout ("0s") would fail every call at once; Flagger treats a missing one as 10 s.
        timeout = webhook.timeout_seconds if webhook.timeout_seconds > 0 else DEFAULT_TIMEOUT
        body, attempt = payload(call), 1
        outcome = await _attempt(client, webhook.url, body, timeout)
        while outcome.retry and attempt < attempts:
            await self._config.clock.sleep(self._config.backoff.delay(attempt))
            attempt += 1
            outcome = await _attempt(client, webhook.url, body, timeout)
        suffix = f" (after {attempt} attempts)" if attempt > 1 else ""
        return HookResult(ok=outcome.ok, message=outcome.message + suffix)

    def _insecure_client(self) -> httpx.AsyncClient:
        if self._insecure is None:
            self._insecure = self._client(verify=False)
        return self._insecure

    def _client(self, *, verify: bool) -> httpx.AsyncClient:
        if self._config.transport is not None:
            return httpx.AsyncClient(transport=self._config.transport)
        return httpx.AsyncClient(verify=verify)


def payload(call: HookCall) -> dict[str, Any]:
    """Flagger's webhook body. Per-call metadata (an event's message, type and time) wins over the
    webhook's own, as in Flagger's event webhooks."""
    metadata = dict(call.webhook.metadata or {})
    metadata.update(call.extra_metadata)
    return {
        "name": call.name,
        "namespace": call.namespace,
        "phase": call.phase,
        "checksum": call.checksum,
        "metadata": metadata,
    }


@dataclasses.dataclass(frozen=True, slots=True)
class _Outcome:
    ok: bool
    message: str
    retry: bool


async def _attempt(client: httpx.AsyncClient, url: str, body: dict[str, Any], timeout: float) -> _Outcome:
    where = _safe_url(url)
    try:
        # httpx's timeout bounds each read separately; the outer deadline also cuts a hook that trickles.
        async with asyncio.timeout(timeout):
            response = await client.post(url, json=body, timeout=timeout)
    except (TimeoutError, httpx.TimeoutException):
        return _Outcome(False, f"{where} did not answer within {timeout:g}s", retry=True)
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        return _Outcome(False, f"invalid hook URL: {exc}", retry=False)
    except httpx.HTTPError as exc:
        return _Outcome(False, f"{where} unreachable: {type(exc).__name__}: {exc}", retry=True)
    status = response.status_code
    if status <= LAST_SUCCESS_STATUS:
        return _Outcome(True, f"{where} answered {status}", retry=False)
    text = _shorten(response.text)
    message = f"{where} answered {status}" + (f": {text}" if text else "")
    return _Outcome(False, message, retry=status == 429 or status >= 500)


def _safe_url(url: str) -> str:
    """The URL without credentials or query: hook URLs may carry tokens, and messages end up in events."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return "hook"
    return str(parsed.copy_with(username=None, password=None, query=None, fragment=None))


def _shorten(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= BODY_LIMIT else flat[: BODY_LIMIT - 1] + "…"
