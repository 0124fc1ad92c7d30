"""Microsoft Teams: an Adaptive Card in a ``message`` envelope.

Flagger posts the legacy Office 365 connector ``MessageCard``. Microsoft is retiring those connectors in
favour of Teams Workflows (Power Automate's "When a Teams webhook request is received"), which accept only
Adaptive Cards. The envelope used here, ``{"type": "message", "attachments": [{"contentType":
"application/vnd.microsoft.card.adaptive", "content": <card>}]}``, is what Workflows expect and what the
legacy incoming-webhook connectors also accept, so one shape serves both kinds of address. Card schema 1.4
is the newest that every Teams client renders.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from canaryflow.notify.base import Alert, Severity
from canaryflow.notify.delivery import Endpoint, post_json

CARD_VERSION = "1.4"
CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
# Adaptive Cards name colours by meaning; the host's theme picks the actual shade.
COLORS: Mapping[Severity, str] = {
    Severity.INFO: "Good",
    Severity.WARN: "Warning",
    Severity.ERROR: "Attention",
}


class MSTeamsNotifier:
    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    async def post(self, alert: Alert) -> None:
        await post_json(self.endpoint, adaptive_card_message(alert), "Microsoft Teams")


def adaptive_card_message(alert: Alert) -> dict[str, Any]:
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": alert.message,
            "weight": "Bolder",
            "size": "Medium",
            "color": COLORS[alert.severity],
            "wrap": True,
        },
        {
            "type": "TextBlock",
            "text": f"{alert.name}.{alert.namespace}",
            "isSubtle": True,
            "spacing": "None",
            "wrap": True,
        },
    ]
    if alert.fields:
        body.append({"type": "FactSet", "facts": [{"title": t, "value": v} for t, v in alert.fields]})
    card = {
        "$schema": CARD_SCHEMA,
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "body": body,
        # Without this Teams draws the card at a narrow fixed width and wraps every fact.
        "msteams": {"width": "Full"},
    }
    return {
        "type": "message",
        "attachments": [{"contentType": CARD_CONTENT_TYPE, "contentUrl": None, "content": card}],
    }
