"""Slack: one message attachment per alert, coloured by severity, as Flagger posts it.

The payload is Slack's incoming-webhook shape (``channel``, ``username``, ``icon_emoji``/``icon_url``,
``attachments`` with ``fields``). Discord and Rocket.Chat accept the same shape, so their notifiers build it
with :func:`attachment_message` too. With a bot token, the address may also be the Web API's
``chat.postMessage``, which answers 200 with ``{"ok": false}`` when it refuses; that is a failure here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from canaryflow.notify.base import Alert, Severity
from canaryflow.notify.delivery import DeliveryRefused, Endpoint, post_json

COLORS: Mapping[Severity, str] = {Severity.INFO: "good", Severity.WARN: "warning", Severity.ERROR: "danger"}
DEFAULT_ICON_EMOJI = ":rocket:"
# Values this short sit two to a row in Slack's layout; longer ones get the full width.
SHORT_FIELD = 40


class SlackNotifier:
    def __init__(
        self,
        endpoint: Endpoint,
        *,
        channel: str = "general",
        username: str = "flagger",
        icon_emoji: str | None = DEFAULT_ICON_EMOJI,
        icon_url: str | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.channel = channel
        self.username = username
        self.icon_emoji = icon_emoji
        self.icon_url = icon_url

    async def post(self, alert: Alert) -> None:
        message = attachment_message(
            alert,
            channel=self.channel,
            username=self.username,
            icon_emoji=self.icon_emoji,
            icon_url=self.icon_url,
            colors=COLORS,
            escape=True,
        )
        response = await post_json(self.endpoint, message, "Slack")
        _raise_for_web_api_refusal(response, self.endpoint)


class SlackCompatibleNotifier:
    """A service that reads Slack's webhook payload (Discord's ``/slack`` endpoint, Rocket.Chat): Slack's message
    with the service's own colours, the default icon, and nothing escaped (these services show text literally)."""

    service: ClassVar[str]
    colors: ClassVar[Mapping[Severity, str]]

    def __init__(self, endpoint: Endpoint, *, channel: str = "general", username: str = "flagger") -> None:
        self.endpoint = endpoint
        self.channel = channel
        self.username = username

    async def post(self, alert: Alert) -> None:
        message = attachment_message(
            alert,
            channel=self.channel,
            username=self.username,
            icon_emoji=DEFAULT_ICON_EMOJI,
            icon_url=None,
            colors=self.colors,
            escape=False,
        )
        await post_json(self.endpoint, message, self.service)


def attachment_message(
    alert: Alert,
    *,
    channel: str,
    username: str,
    icon_emoji: str | None,
    icon_url: str | None,
    colors: Mapping[Severity, str],
    escape: bool,
) -> dict[str, Any]:
    """The Slack-compatible message: identity at the top, the alert in one attachment."""
    text = _escape if escape else _verbatim
    subject = f"{alert.name}.{alert.namespace}"
    message: dict[str, Any] = {"channel": channel, "username": username}
    if icon_url:
        message["icon_url"] = icon_url
    elif icon_emoji:
        message["icon_emoji"] = icon_emoji
    message["attachments"] = [
        {
            "fallback": f"{subject}: {alert.message}",
            "color": colors[alert.severity],
            "author_name": subject,
            "text": text(alert.message),
            "mrkdwn_in": ["text"],
            "fields": [
                {"title": title, "value": text(value), "short": len(value) <= SHORT_FIELD}
                for title, value in alert.fields
            ],
        }
    ]
    return message


def _escape(text: str) -> str:
    # Slack reads <...> as links and mentions: a message like "success rate 80% < 99%" must stay text.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _verbatim(text: str) -> str:
    return text


def _raise_for_web_api_refusal(response: httpx.Response, endpoint: Endpoint) -> None:
    if not response.headers.get("content-type", "").startswith("application/json"):
        return  # an incoming webhook answers a plain "ok"
    try:
        body = response.json()
    except ValueError:
        return
    if isinstance(body, dict) and body.get("ok") is False:
        reason = body.get("error", "no reason given")
        raise DeliveryRefused(f"Slack at {endpoint.host} refused the message: {reason}", response.status_code)
