"""Who hears an alert: severity filtering, provider lookup, the global fallback; failures reported, not raised."""

from __future__ import annotations

from typing import Any

import pytest

from canaryflow.api.alertprovider import AlertProvider
from canaryflow.api.canary import Canary
from canaryflow.api.catalog import Catalog, MemoryCatalog
from canaryflow.notify.base import Notifier, Severity
from canaryflow.notify.dispatch import AlertDispatcher, canary_fields, receives
from canaryflow.notify.memory import MemoryNotifier
from tests.hooks.receiver import Receiver

MESSAGE = "Canary analysis completed successfully, promotion finished."


def canary(alerts: list[dict[str, Any]] | None = None, **analysis: Any) -> Canary:
    analysis = {"interval": "15s", "threshold": 5, "maxWeight": 50, "stepWeight": 5, **analysis}
    if alerts is not None:
        analysis["alerts"] = alerts
    spec = {
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
        "service": {"port": 9898},
        "analysis": analysis,
    }
    return Canary.model_validate({"metadata": {"name": "podinfo", "namespace": "test"}, "spec": spec})


def alert_entry(provider: str, severity: str = "info", namespace: str | None = None) -> dict[str, Any]:
    ref = {"name": provider} | ({"namespace": namespace} if namespace else {})
    return {"name": f"to-{provider}", "severity": severity, "providerRef": ref}


class Chats:
    """AlertProviders in a catalog, each delivered to a MemoryNotifier of the same name."""

    def __init__(self, *names: str, namespace: str = "test") -> None:
        self.catalog = MemoryCatalog()
        self.notifiers: dict[str, MemoryNotifier] = {}
        for name in names:
            self.add(name, namespace)

    def add(self, name: str, namespace: str = "test") -> MemoryNotifier:
        spec = {"type": "slack", "address": f"https://hooks.example.com/{name}"}
        self.catalog.add(
            AlertProvider.model_validate({"metadata": {"name": name, "namespace": namespace}, "spec": spec})
        )
        self.notifiers[name] = MemoryNotifier()
        return self.notifiers[name]

    def factory(self, provider: AlertProvider, catalog: Catalog) -> Notifier:
        return self.notifiers[provider.metadata.name]

    def dispatcher(self, global_notifier: Notifier | None = None) -> AlertDispatcher:
        return AlertDispatcher(self.catalog, global_notifier, self.factory)


@pytest.mark.parametrize(
    ("entry", "severity", "delivered"),
    [
        ("info", "info", True),
        ("info", "warn", True),
        ("info", "error", True),
        ("", "info", True),
        ("warn", "info", False),
        ("warn", "warn", True),
        ("warn", "error", True),
        ("error", "info", False),
        ("error", "warn", False),
        ("error", "error", True),
    ],
    ids=lambda v: str(v) or "empty",
)
async def test_severity_filtering(entry: str, severity: str, delivered: bool) -> None:
    chats = Chats("slack")

    errors = await chats.dispatcher().send(canary([alert_entry("slack", entry)]), MESSAGE, Severity(severity))

    assert errors == []
    assert chats.notifiers["slack"].messages == ([MESSAGE] if delivered else [])
    assert receives(entry, Severity(severity)) is delivered


async def test_each_entry_is_filtered_on_its_own() -> None:
    chats = Chats("team", "on-call")
    subject = canary([alert_entry("team", "info"), alert_entry("on-call", "error")])

    await chats.dispatcher().send(subject, "New revision detected, progressing canary analysis.", Severity.INFO)
    await chats.dispatcher().send(subject, "Failed checks threshold reached 5", Severity.ERROR)

    assert len(chats.notifiers["team"].alerts) == 2
    assert chats.notifiers["on-call"].messages == ["Failed checks threshold reached 5"]


async def test_alert_carries_canary_message_and_fields() -> None:
    chats = Chats("slack")
    subject = canary([alert_entry("slack")])

    await chats.dispatcher().send(subject, MESSAGE, Severity.INFO, canary_fields(subject))

    [alert] = chats.notifiers["slack"].alerts
    assert (alert.name, alert.namespace, alert.severity) == ("podinfo", "test", Severity.INFO)
    assert dict(alert.fields)["Target"] == "Deployment/podinfo.test"


async def test_a_provider_named_twice_hears_an_alert_once() -> None:
    chats = Chats("slack")
    subject = canary([alert_entry("slack", "info"), alert_entry("slack", "error")])

    await chats.dispatcher().send(subject, "Progress deadline exceeded", Severity.ERROR)

    assert len(chats.notifiers["slack"].alerts) == 1


async def test_provider_namespace_defaults_to_the_canarys() -> None:
    chats = Chats()
    local = chats.add("slack", namespace="test")
    shared = chats.add("shared-slack", namespace="flagger-system")
    subject = canary([alert_entry("slack"), alert_entry("shared-slack", namespace="flagger-system")])

    assert await chats.dispatcher().send(subject, MESSAGE, Severity.INFO) == []
    assert local.messages == shared.messages == [MESSAGE]


async def test_a_missing_provider_is_reported_by_name_and_others_still_hear() -> None:
    chats = Chats("slack")
    subject = canary([alert_entry("teams", namespace="ops"), alert_entry("slack")])

    errors = await chats.dispatcher().send(subject, MESSAGE, Severity.INFO)

    assert errors == ["alert to-teams: alert provider ops/teams not found"]
    assert chats.notifiers["slack"].messages == [MESSAGE]


async def test_a_failed_delivery_is_reported_not_raised() -> None:
    chats = Chats("slack")
    chats.notifiers["slack"].refuse = "Slack at https://hooks.slack.com answered 500"

    errors = await chats.dispatcher().send(canary([alert_entry("slack")]), MESSAGE, Severity.INFO)

    assert errors == ["alert to-slack: alert provider test/slack: Slack at https://hooks.slack.com answered 500"]


async def test_a_provider_that_cannot_be_built_is_reported_not_raised() -> None:
    catalog = MemoryCatalog()
    spec = {"type": "slack", "secretRef": {"name": "slack-url"}}
    catalog.add(AlertProvider.model_validate({"metadata": {"name": "slack", "namespace": "test"}, "spec": spec}))

    errors = await AlertDispatcher(catalog).send(canary([alert_entry("slack")]), MESSAGE, Severity.INFO)

    assert errors == ["alert to-slack: alert provider test/slack: secret test/slack-url not found"]


async def test_the_global_notifier_serves_canaries_without_alerts() -> None:
    chats = Chats("slack")
    global_notifier = MemoryNotifier()

    errors = await chats.dispatcher(global_notifier).send(canary(), MESSAGE, Severity.INFO)

    assert errors == []
    assert global_notifier.messages == [MESSAGE]


async def test_the_global_notifier_is_not_used_when_the_canary_has_alerts() -> None:
    chats = Chats("slack")
    global_notifier = MemoryNotifier()

    await chats.dispatcher(global_notifier).send(canary([alert_entry("slack", "error")]), MESSAGE, Severity.INFO)

    assert global_notifier.alerts == []
    assert chats.notifiers["slack"].alerts == []


async def test_without_alerts_or_global_notifier_nothing_is_sent() -> None:
    assert await Chats().dispatcher().send(canary(), MESSAGE, Severity.ERROR) == []


async def test_a_failing_global_notifier_is_reported() -> None:
    dispatcher = Chats().dispatcher(MemoryNotifier(refuse="Microsoft Teams unreachable"))

    assert await dispatcher.send(canary(), MESSAGE, Severity.INFO) == ["global notifier: Microsoft Teams unreachable"]


async def test_end_to_end_from_secret_to_slack(receiver: Receiver) -> None:
    catalog = MemoryCatalog()
    catalog.add_secret("test", "slack-url", {"address": receiver.url(), "token": "xoxb-7"})
    spec = {"type": "slack", "channel": "deploys", "secretRef": {"name": "slack-url"}}
    catalog.add(AlertProvider.model_validate({"metadata": {"name": "slack", "namespace": "test"}, "spec": spec}))
    subject = canary([alert_entry("slack", "warn")])

    errors = await AlertDispatcher(catalog).send(
        subject, "Failed checks threshold reached 5", Severity.ERROR, canary_fields(subject)
    )

    assert errors == []
    assert receiver.last.headers["authorization"] == "Bearer xoxb-7"
    [attachment] = receiver.last.json["attachments"]
    assert (attachment["color"], attachment["text"]) == ("danger", "Failed checks threshold reached 5")
    assert [f["title"] for f in attachment["fields"]] == [
        "Target",
        "Failed checks threshold",
        "Progress deadline",
        "Traffic routing",
    ]


@pytest.mark.parametrize(
    ("analysis", "routing"),
    [
        ({}, "Weight step: 5 max: 50"),
        ({"stepWeight": None, "maxWeight": None, "stepWeights": [10, 20, 60]}, "Weight steps: 10,20,60 max: 60"),
        ({"stepWeight": None, "maxWeight": None, "iterations": 10}, "Blue/Green"),
        (
            {
                "stepWeight": None,
                "maxWeight": None,
                "iterations": 10,
                "match": [{"headers": {"x-canary": {"exact": "insider"}}}],
            },
            "A/B Testing",
        ),
    ],
    ids=["step-weight", "step-weights", "blue-green", "ab-testing"],
)
def test_standard_fields(analysis: dict[str, Any], routing: str) -> None:
    fields = canary_fields(canary(**analysis))

    assert fields == (
        ("Target", "Deployment/podinfo.test"),
        ("Failed checks threshold", "5"),
        ("Progress deadline", "600s"),
        ("Traffic routing", routing),
    )


def test_standard_fields_start_with_the_cluster_when_named() -> None:
    assert canary_fields(canary(), cluster="eu-west-1")[0] == ("Cluster", "eu-west-1")
