"""Delivery: refusals and outages become NotifyError, tokens and proxies are honoured, secrets stay hidden."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from canaryflow.notify.base import Alert, Notifier, NotifyError
from canaryflow.notify.delivery import DeliveryRefused, Endpoint
from canaryflow.notify.discord import DiscordNotifier
from canaryflow.notify.gchat import GChatNotifier
from canaryflow.notify.msteams import MSTeamsNotifier
from canaryflow.notify.rocket import RocketNotifier
from canaryflow.notify.slack import SlackNotifier
from tests.hooks.receiver import Answer, Receiver

SECRET_PATH = "/services/T000/B000/s3cr3t-hook-token"

NOTIFIERS: dict[str, Callable[[Endpoint], Notifier]] = {
    "slack": SlackNotifier,
    "msteams": MSTeamsNotifier,
    "discord": DiscordNotifier,
    "rocket": RocketNotifier,
    "gchat": GChatNotifier,
}


def notifier(kind: str, endpoint: Endpoint) -> Notifier:
    return NOTIFIERS[kind](endpoint)


@pytest.mark.parametrize("kind", NOTIFIERS)
async def test_a_refusal_is_an_error_with_the_status(receiver: Receiver, alert: Alert, kind: str) -> None:
    receiver.answer(Answer(404, "no_service"))

    with pytest.raises(DeliveryRefused) as refused:
        await notifier(kind, Endpoint(receiver.url(SECRET_PATH))).post(alert)

    assert refused.value.status == 404
    assert "answered 404: no_service" in str(refused.value)
    assert "s3cr3t" not in str(refused.value), "webhook URLs are credentials"


@pytest.mark.parametrize("status", [200, 202, 204], ids=str)
async def test_any_2xx_is_delivered(receiver: Receiver, alert: Alert, status: int) -> None:
    receiver.answer(Answer(status, ""))

    await MSTeamsNotifier(Endpoint(receiver.url())).post(alert)

    assert len(receiver.requests) == 1


async def test_an_unreachable_service_is_an_error(alert: Alert) -> None:
    closed = Receiver()
    closed.stop()

    with pytest.raises(NotifyError, match="unreachable"):
        await SlackNotifier(Endpoint(closed.url(SECRET_PATH))).post(alert)


@pytest.mark.parametrize("kind", NOTIFIERS)
async def test_a_token_is_sent_as_bearer(receiver: Receiver, alert: Alert, kind: str) -> None:
    await notifier(kind, Endpoint(receiver.url(), token="xoxb-123")).post(alert)

    assert receiver.last.headers["authorization"] == "Bearer xoxb-123"
    assert receiver.last.headers["content-type"] == "application/json"


async def test_without_a_token_there_is_no_authorization(receiver: Receiver, alert: Alert) -> None:
    await SlackNotifier(Endpoint(receiver.url())).post(alert)

    assert "authorization" not in receiver.last.headers


async def test_posts_through_the_proxy(receiver: Receiver, alert: Alert) -> None:
    # The address does not resolve: only the proxy (the receiver) can take the request.
    endpoint = Endpoint("http://chat.example.invalid/hooks/abc", proxy=receiver.origin)

    await RocketNotifier(endpoint).post(alert)

    assert receiver.last.target == "http://chat.example.invalid/hooks/abc"
    assert receiver.last.json["attachments"][0]["author_name"] == "podinfo.test"


async def test_slack_web_api_refusal_is_an_error(receiver: Receiver, alert: Alert) -> None:
    # chat.postMessage answers 200 even when it refuses; the verdict is in the body.
    receiver.answer(Answer(200, '{"ok": false, "error": "channel_not_found"}', "application/json"))

    with pytest.raises(DeliveryRefused, match="channel_not_found"):
        await SlackNotifier(Endpoint(receiver.url("/api/chat.postMessage"), token="xoxb-1")).post(alert)


async def test_slack_web_api_success_is_delivered(receiver: Receiver, alert: Alert) -> None:
    receiver.answer(Answer(200, '{"ok": true, "ts": "1700000000.000100"}', "application/json"))

    await SlackNotifier(Endpoint(receiver.url("/api/chat.postMessage"), token="xoxb-1")).post(alert)

    assert receiver.last.json["channel"] == "general"


@pytest.mark.parametrize(
    ("url", "proxy"),
    [("hooks.slack.com/services/x", None), ("ftp://example.com/x", None), ("https://x.test/", "proxy:3128")],
    ids=["no-scheme", "not-http", "bad-proxy"],
)
def test_an_endpoint_needs_http_urls(url: str, proxy: str | None) -> None:
    with pytest.raises(ValueError, match="http:// or https://"):
        Endpoint(url, proxy=proxy)
