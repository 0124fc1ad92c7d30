"""What each chat service receives: the incoming-webhook payload it documents, coloured by severity."""

from __future__ import annotations

import dataclasses

import pytest

from canaryflow.notify.base import Alert, Severity
from canaryflow.notify.delivery import Endpoint
from canaryflow.notify.discord import DiscordNotifier
from canaryflow.notify.gchat import GChatNotifier
from canaryflow.notify.msteams import MSTeamsNotifier
from canaryflow.notify.rocket import RocketNotifier
from canaryflow.notify.slack import SlackNotifier
from tests.hooks.receiver import Receiver

SEVERITIES = [Severity.INFO, Severity.WARN, Severity.ERROR]


async def test_slack_gets_one_attachment_with_author_text_and_fields(receiver: Receiver, alert: Alert) -> None:
    notifier = SlackNotifier(Endpoint(receiver.url()), channel="deploys", username="canaryflow")

    await notifier.post(alert)

    assert receiver.last.target == "/hook"
    assert receiver.last.json == {
        "channel": "deploys",
        "username": "canaryflow",
        "icon_emoji": ":rocket:",
        "attachments": [
            {
                "fallback": "podinfo.test: Halt advancement podinfo.test: success rate 80% < 99%",
                "color": "warning",
                "author_name": "podinfo.test",
                # Slack would read "<" as the start of a link
                "text": "Halt advancement podinfo.test: success rate 80% &lt; 99%",
                "mrkdwn_in": ["text"],
                "fields": [
                    {"title": "Target", "value": "Deployment/podinfo.test", "short": True},
                    {"title": "Failed checks threshold", "value": "5", "short": True},
                ],
            }
        ],
    }


@pytest.mark.parametrize(("severity", "color"), [("info", "good"), ("warn", "warning"), ("error", "danger")], ids=str)
async def test_slack_colour_follows_severity(receiver: Receiver, alert: Alert, severity: str, color: str) -> None:
    await SlackNotifier(Endpoint(receiver.url())).post(dataclasses.replace(alert, severity=Severity(severity)))

    assert receiver.last.json["attachments"][0]["color"] == color


async def test_slack_icon_url_replaces_the_emoji(receiver: Receiver, alert: Alert) -> None:
    notifier = SlackNotifier(Endpoint(receiver.url()), icon_url="https://example.com/canary.png")

    await notifier.post(alert)

    assert receiver.last.json["icon_url"] == "https://example.com/canary.png"
    assert "icon_emoji" not in receiver.last.json


async def test_slack_long_field_values_take_the_full_width(receiver: Receiver, alert: Alert) -> None:
    long = "Deployment/" + "a-very-long-workload-name" * 3 + ".test"
    await SlackNotifier(Endpoint(receiver.url())).post(dataclasses.replace(alert, fields=(("Target", long),)))

    assert receiver.last.json["attachments"][0]["fields"] == [{"title": "Target", "value": long, "short": False}]


async def test_teams_gets_an_adaptive_card(receiver: Receiver, alert: Alert) -> None:
    await MSTeamsNotifier(Endpoint(receiver.url("/workflows/abc/triggers/manual/run"))).post(alert)

    message = receiver.last.json
    assert message["type"] == "message"
    [attachment] = message["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    title, subtitle, facts = card["body"]
    assert title["text"] == alert.message
    assert title["color"] == "Warning"
    assert subtitle["text"] == "podinfo.test"
    assert facts == {
        "type": "FactSet",
        "facts": [
            {"title": "Target", "value": "Deployment/podinfo.test"},
            {"title": "Failed checks threshold", "value": "5"},
        ],
    }


@pytest.mark.parametrize(
    ("severity", "color"), [("info", "Good"), ("warn", "Warning"), ("error", "Attention")], ids=str
)
async def test_teams_colour_follows_severity(receiver: Receiver, alert: Alert, severity: str, color: str) -> None:
    await MSTeamsNotifier(Endpoint(receiver.url())).post(dataclasses.replace(alert, severity=Severity(severity)))

    assert receiver.last.json["attachments"][0]["content"]["body"][0]["color"] == color


async def test_teams_card_without_fields_has_no_fact_set(receiver: Receiver, alert: Alert) -> None:
    await MSTeamsNotifier(Endpoint(receiver.url())).post(dataclasses.replace(alert, fields=()))

    body = receiver.last.json["attachments"][0]["content"]["body"]
    assert [element["type"] for element in body] == ["TextBlock", "TextBlock"]


@pytest.mark.parametrize(
    ("path", "posted_to"),
    [
        ("/api/webhooks/123/tok", "/api/webhooks/123/tok/slack"),
        ("/api/webhooks/123/tok/", "/api/webhooks/123/tok/slack"),
        ("/api/webhooks/123/tok/slack", "/api/webhooks/123/tok/slack"),
        ("/api/webhooks/123/tok?wait=true", "/api/webhooks/123/tok/slack?wait=true"),
    ],
    ids=["plain", "trailing-slash", "already-slack", "with-query"],
)
async def test_discord_posts_to_its_slack_compatible_endpoint(
    receiver: Receiver, alert: Alert, path: str, posted_to: str
) -> None:
    await DiscordNotifier(Endpoint(receiver.url(path)), username="canaryflow").post(alert)

    assert receiver.last.target == posted_to


async def test_discord_gets_slacks_payload_unescaped(receiver: Receiver, alert: Alert) -> None:
    await DiscordNotifier(Endpoint(receiver.url("/api/webhooks/1/t")), username="canaryflow").post(alert)

    message = receiver.last.json
    assert message["username"] == "canaryflow"
    [attachment] = message["attachments"]
    assert attachment["author_name"] == "podinfo.test"
    assert attachment["color"] == "warning"
    # Discord shows text as written: no HTML entities
    assert attachment["text"] == alert.message


@pytest.mark.parametrize(
    ("severity", "color"), [("info", "#2eb886"), ("warn", "#daa038"), ("error", "#a30200")], ids=str
)
async def test_rocket_gets_slacks_payload_with_css_colours(
    receiver: Receiver, alert: Alert, severity: str, color: str
) -> None:
    notifier = RocketNotifier(Endpoint(receiver.url("/hooks/abc/xyz")), channel="#deploys")

    await notifier.post(dataclasses.replace(alert, severity=Severity(severity)))

    message = receiver.last.json
    assert (message["channel"], message["username"]) == ("#deploys", "flagger")
    [attachment] = message["attachments"]
    assert attachment["color"] == color
    assert attachment["text"] == alert.message
    assert attachment["fields"][0] == {"title": "Target", "value": "Deployment/podinfo.test", "short": True}


async def test_google_chat_gets_a_card_with_escaped_text(receiver: Receiver, alert: Alert) -> None:
    await GChatNotifier(Endpoint(receiver.url("/v1/spaces/AAA/messages?key=k&token=t"))).post(alert)

    [card] = receiver.last.json["cardsV2"]
    assert card["cardId"]
    header, (message, fields) = card["card"]["header"], card["card"]["sections"]
    assert header["title"] == "podinfo.test"
    [paragraph] = message["widgets"]
    assert "success rate 80% &lt; 99%" in paragraph["textParagraph"]["text"]
    assert fields["widgets"][0] == {
        "decoratedText": {"topLabel": "Target", "text": "Deployment/podinfo.test", "wrapText": True}
    }


@pytest.mark.parametrize("severity", SEVERITIES, ids=str)
async def test_google_chat_colours_the_message_by_severity(
    receiver: Receiver, alert: Alert, severity: Severity
) -> None:
    colors = {Severity.INFO: "#188038", Severity.WARN: "#e37400", Severity.ERROR: "#d93025"}

    await GChatNotifier(Endpoint(receiver.url())).post(dataclasses.replace(alert, severity=severity))

    paragraph = receiver.last.json["cardsV2"][0]["card"]["sections"][0]["widgets"][0]["textParagraph"]
    assert f'color="{colors[severity]}"' in paragraph["text"]
