"""The global notifier from the flagger HelmRelease's values (``slack.*``, ``msteams.*``), as Flagger's chart
passes them to Flagger as flags."""

from __future__ import annotations

from typing import Any

import pytest

from canaryflow.notify import chart
from canaryflow.notify.base import Alert
from canaryflow.notify.factory import AlertProviderError
from tests.hooks.receiver import Receiver


def release(values: dict[str, Any], chart_name: str = "flagger") -> dict[str, Any]:
    return {"apiVersion": "helm.toolkit.fluxcd.io/v2beta1", "kind": "HelmRelease",
            "metadata": {"name": "flagger", "namespace": "istio-system"},
            "spec": {"chart": {"spec": {"chart": chart_name}}, "values": values}}  # fmt: skip


async def test_slack_values_post_with_their_channel_and_user(receiver: Receiver, alert: Alert) -> None:
    url = receiver.url("/services/T000/B000/XXXXSECRET")
    found = chart.from_helm_releases([release({"meshProvider": "istio", "slack": {"url": url, "channel": "deploys",
                                                                                  "user": "canary-bot"}})])  # fmt: skip
    assert found is not None
    await found.notifier.post(alert)

    assert receiver.last.target == "/services/T000/B000/XXXXSECRET"
    assert (receiver.last.json["channel"], receiver.last.json["username"]) == ("deploys", "canary-bot")
    assert found.description.startswith("slack to http://127.0.0.1:")
    assert found.description.endswith("(channel deploys, user canary-bot), from HelmRelease istio-system/flagger")
    assert "SECRET" not in found.description


async def test_a_teams_url_wins_over_slack_as_in_flagger(receiver: Receiver, alert: Alert) -> None:
    values = {"slack": {"url": "https://hooks.slack.com/services/X"}, "msteams": {"url": receiver.url("/teams")}}
    found = chart.from_values(values, "HelmRelease istio-system/flagger")
    assert found is not None and found.description.startswith("msteams to http://127.0.0.1:")
    await found.notifier.post(alert)
    assert receiver.last.target == "/teams"


@pytest.mark.parametrize(
    "releases",
    [
        pytest.param([release({"meshProvider": "istio", "prometheus": {"install": True}})], id="seed-values"),
        pytest.param(
            [release({"slack": {"url": "https://hooks.slack.com/x"}}, chart_name="grafana")], id="not-flagger"
        ),
        pytest.param([], id="no-release"),
    ],
)
def test_without_a_url_there_is_no_global_notifier(releases: list[dict[str, Any]]) -> None:
    assert chart.from_helm_releases(releases) is None


def test_a_url_that_is_not_http_is_named() -> None:
    with pytest.raises(AlertProviderError, match="HelmRelease istio-system/flagger: address must be an http"):
        chart.from_helm_releases([release({"slack": {"url": "hooks.slack.com/services/X"}})])
