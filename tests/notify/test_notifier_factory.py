"""Turning an AlertProvider into a notifier: address and token from the spec or its Secret, clear errors."""

from __future__ import annotations

from typing import Any

import pytest

from canaryflow.api.alertprovider import AlertProvider
from canaryflow.api.catalog import MemoryCatalog
from canaryflow.notify.base import Alert
from canaryflow.notify.delivery import Endpoint
from canaryflow.notify.factory import AlertProviderError, build_notifier, notifier_for
from tests.hooks.receiver import Receiver


def provider(**spec: Any) -> AlertProvider:
    return AlertProvider.model_validate({"metadata": {"name": "on-call", "namespace": "test"}, "spec": spec})


async def test_posts_to_the_spec_address_with_its_channel_and_username(receiver: Receiver, alert: Alert) -> None:
    slack = provider(type="slack", address=receiver.url(), channel="deploys", username="canaryflow")

    await build_notifier(slack, MemoryCatalog()).post(alert)

    assert (receiver.last.json["channel"], receiver.last.json["username"]) == ("deploys", "canaryflow")


async def test_reads_address_and_token_from_the_secret(receiver: Receiver, alert: Alert) -> None:
    catalog = MemoryCatalog()
    # written with `kubectl create secret --from-file`, values end in a newline
    catalog.add_secret("test", "slack-url", {"address": receiver.url() + "\n", "token": "xoxb-42\n"})

    await build_notifier(provider(type="slack", secretRef={"name": "slack-url"}), catalog).post(alert)

    assert receiver.last.target == "/hook"
    assert receiver.last.headers["authorization"] == "Bearer xoxb-42"


async def test_the_secrets_address_wins_over_the_spec_address(receiver: Receiver, alert: Alert) -> None:
    """Flagger's alerting docs: a Slack bot token beside the address, both in the Secret, spec.address as well."""
    catalog = MemoryCatalog()
    catalog.add_secret("test", "on-call-url", {"address": receiver.url("/chat.postMessage"), "token": "xoxb-7"})
    slack = provider(type="slack", address="https://hooks.slack.com/services/X", secretRef={"name": "on-call-url"})

    await build_notifier(slack, catalog).post(alert)

    assert receiver.last.target == "/chat.postMessage"
    assert receiver.last.headers["authorization"] == "Bearer xoxb-7"


def test_with_secret_ref_the_secret_must_hold_the_address() -> None:
    catalog = MemoryCatalog()
    catalog.add_secret("test", "on-call-url", {"token": "xoxb-7"})
    slack = provider(type="slack", address="https://hooks.slack.com/services/X", secretRef={"name": "on-call-url"})
    with pytest.raises(AlertProviderError, match=r"has no 'address' key \(spec.address is not used") as caught:
        build_notifier(slack, catalog)
    assert "xoxb-7" not in str(caught.value)


async def test_a_secret_without_a_token_sends_no_authorization(receiver: Receiver, alert: Alert) -> None:
    catalog = MemoryCatalog()
    catalog.add_secret("test", "teams-url", {"address": receiver.url()})

    await build_notifier(provider(type="msteams", secretRef={"name": "teams-url"}), catalog).post(alert)

    assert "authorization" not in receiver.last.headers


async def test_uses_the_providers_proxy(receiver: Receiver, alert: Alert) -> None:
    gchat = provider(type="gchat", address="http://chat.example.invalid/v1/spaces/A", proxy=receiver.origin)

    await build_notifier(gchat, MemoryCatalog()).post(alert)

    assert receiver.last.target == "http://chat.example.invalid/v1/spaces/A"


def test_a_missing_secret_is_named() -> None:
    with pytest.raises(AlertProviderError, match="alert provider test/on-call: secret test/slack-url not found"):
        build_notifier(provider(type="slack", secretRef={"name": "slack-url"}), MemoryCatalog())


def test_a_secret_without_an_address_is_an_error() -> None:
    catalog = MemoryCatalog()
    catalog.add_secret("test", "slack-url", {"token": "xoxb-42"})

    with pytest.raises(AlertProviderError, match="secret test/slack-url has no 'address' key"):
        build_notifier(provider(type="slack", secretRef={"name": "slack-url"}), catalog)


def test_an_address_that_is_not_a_url_is_an_error() -> None:
    with pytest.raises(AlertProviderError, match="alert provider test/on-call: address must be an http"):
        build_notifier(provider(type="discord", address="discord.com/api/webhooks/1/t"), MemoryCatalog())


def test_an_unknown_type_lists_the_valid_ones() -> None:
    with pytest.raises(AlertProviderError) as error:
        notifier_for("mattermost", Endpoint("https://chat.example.com/hooks/1"))

    assert str(error.value) == (
        "unknown alert provider type 'mattermost': valid types are slack, msteams, discord, rocket, gchat"
    )
