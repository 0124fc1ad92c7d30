"""Rocket.Chat, through an incoming-webhook integration, which reads Slack's message shape.

Rocket.Chat maps ``username`` to the message alias and ``icon_emoji`` to its emoji, and draws an
attachment's ``color`` as a CSS colour, so colours are hex values rather than Slack's names.
"""

from __future__ import annotations

from collections.abc import Mapping

from canaryflow.notify.base import Alert, Severity
from canaryflow.notify.delivery import Endpoint, post_json
from canaryflow.notify.slack import DEFAULT_ICON_EMOJI, attachment_message

COLORS: Mapping[Severity, str] = {
    Severity.INFO: "#2eb886",
    Severity.WARN: "#daa038",
    Severity.ERROR: "#a30200",
}


class RocketNotifier:
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
            colors=COLORS,
            escape=False,
        )
        await post_json(self.endpoint, message, "Rocket.Chat")
