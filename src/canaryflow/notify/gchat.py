"""Google Chat: a card (``cardsV2``) posted to a space's incoming webhook.

Flagger posts the first-generation ``cards`` field, which Google has deprecated; ``cardsV2`` is the shape
the Chat API documents today. The card's header names the canary; the message is a text paragraph coloured
by severity, and each field is a ``decoratedText`` with its title as the top label. Card text is a small
HTML subset, so the alert's own text is escaped.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from canaryflow.notify.base import Alert, Severity
from canaryflow.notify.delivery import Endpoint, post_json

COLORS: Mapping[Severity, str] = {
    Severity.INFO: "#188038",
    Severity.WARN: "#e37400",
    Severity.ERROR: "#d93025",
}
CARD_ID = "canaryflow-alert"


class GChatNotifier:
    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    async def post(self, alert: Alert) -> None:
        await post_json(self.endpoint, card_message(alert), "Google Chat")


def card_message(alert: Alert) -> dict[str, Any]:
    subject = f"{alert.name}.{alert.namespace}"
    message = f'<font color="{COLORS[alert.severity]}"><b>{html.escape(alert.message)}</b></font>'
    sections: list[dict[str, Any]] = [{"widgets": [{"textParagraph": {"text": message}}]}]
    if alert.fields:
        sections.append(
            {
                "widgets": [
                    {"decoratedText": {"topLabel": html.escape(t), "text": html.escape(v), "wrapText": True}}
                    for t, v in alert.fields
                ]
            }
        )
    card = {"header": {"title": subject, "subtitle": f"canaryflow · {alert.severity}"}, "sections": sections}
    return {"cardsV2": [{"cardId": CARD_ID, "card": card}]}
