"""Delivering a JSON payload to a chat service's incoming webhook, shared by every notifier.

Webhook URLs are credentials (Slack, Discord, Teams and Google Chat put the secret in the path or query),
so no message written here ever contains more of the URL than its scheme and host.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import httpx

from canaryflow.notify.base import NotifyError

# Flagger gives a notification 5 s; an alert that slow is better dropped than holding up the canary.
POST_TIMEOUT = 5.0
BODY_LIMIT = 300


class DeliveryRefused(NotifyError):
    """The service answered with a status outside 2xx (or said ``ok: false``)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclasses.dataclass(frozen=True, slots=True, repr=False)
class Endpoint:
    """Where a notifier posts: the webhook URL, an optional bearer token and an optional HTTP proxy."""

    url: str
    token: str | None = None
    proxy: str | None = None

    def __post_init__(self) -> None:
        for label, value in (("address", self.url), ("proxy", self.proxy)):
            if value is not None and not _is_http_url(value):
                raise ValueError(f"{label} must be an http:// or https:// URL with a host (got {_host(value)!r})")

    def __repr__(self) -> str:
        # Only the safe part: an Endpoint may end up in a log line.
        return f"Endpoint({self.host!r}, token={'***' if self.token else None!r}, proxy={self.proxy is not None})"

    @property
    def host(self) -> str:
        """The part of the URL that is safe to show: scheme and host."""
        return _host(self.url)


async def post_json(endpoint: Endpoint, payload: Mapping[str, Any], service: str) -> httpx.Response:
    """POST ``payload``; raises DeliveryRefused for a non-2xx answer and NotifyError when unreachable.

    A client per post: alerts are rare, each provider may have its own proxy, and nothing is left to close.
    """
    headers = {"Authorization": f"Bearer {endpoint.token}"} if endpoint.token else {}
    try:
        async with httpx.AsyncClient(proxy=endpoint.proxy, timeout=POST_TIMEOUT) as client:
            response = await client.post(endpoint.url, json=dict(payload), headers=headers)
    except httpx.HTTPError as exc:
        raise NotifyError(f"{service} at {endpoint.host} unreachable: {type(exc).__name__}: {exc}") from exc
    if not response.is_success:
        status = response.status_code
        body = shorten(response.text)
        raise DeliveryRefused(f"{service} at {endpoint.host} answered {status}" + (f": {body}" if body else ""), status)
    return response


def shorten(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= BODY_LIMIT else flat[: BODY_LIMIT - 1] + "…"


def _is_http_url(value: str) -> bool:
    try:
        url = httpx.URL(value)
    except httpx.InvalidURL:
        return False
    return url.scheme in ("http", "https") and bool(url.host)


def _host(value: str) -> str:
    try:
        url = httpx.URL(value)
    except httpx.InvalidURL:
        return "<invalid URL>"
    return f"{url.scheme}://{url.netloc.decode('ascii', 'replace')}" if url.host else "<no host>"
