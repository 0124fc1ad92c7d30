"""Rocket.Chat, through an incoming-webhook integration, which reads Slack's message shape.

Rocket.Chat maps ``username`` to the message alias and ``icon_emoji`` to its emoji, and draws an
attachment's ``color`` as a CSS colour, so colours are hex values rather than Slack's names.
"""

from __future__ import annotations

from collections.abc import Mapping

from canaryflow.notify.base import Severity
from canaryflow.notify.slack import SlackCompatibleNotifier

COLORS: Mapping[Severity, str] = {
    Severity.INFO: "#2eb886",
    Severity.WARN: "#daa038",
    Severity.ERROR: "#a30200",
}


class RocketNotifier(SlackCompatibleNotifier):
    service = "Rocket.Chat"
    colors = COLORS
