"""The global notifier from the ``flagger`` HelmRelease's values, as Flagger's chart turns them into flags.

The chart passes ``slack.url``, ``slack.proxyUrl``, ``slack.user`` and ``slack.channel`` as ``-slack-*`` flags
and ``msteams.url``/``msteams.proxyUrl`` as ``-msteams-*``; Flagger then posts every canary's alerts that have
no ``analysis.alerts`` to Slack, or to Teams when a Teams URL is set (it wins). The local runtime reads the
HelmRelease it stands in for and does the same. ``describe`` says which notifier is active without the URL's
path, which is the webhook's secret.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from canaryflow.notify.base import Notifier
from canaryflow.notify.delivery import Endpoint
from canaryflow.notify.factory import AlertProviderError, notifier_for

CHART = "flagger"
DEFAULT_USER = "flagger"
DEFAULT_CHANNEL = "general"


@dataclasses.dataclass(frozen=True)
class GlobalNotifier:
    notifier: Notifier
    description: str  # "slack to https://hooks.slack.com (channel deploys, user flagger), from istio-system/flagger"


def from_values(values: Mapping[str, Any], source: str) -> GlobalNotifier | None:
    """The notifier the chart's values configure, or None; raises AlertProviderError for a bad URL."""
    slack, teams = _section(values, "slack"), _section(values, "msteams")
    if teams.get("url"):
        endpoint = _endpoint(teams["url"], teams.get("proxyUrl"), source)
        return GlobalNotifier(notifier_for("msteams", endpoint), f"msteams to {endpoint.host}, from {source}")
    if not slack.get("url"):
        return None
    endpoint = _endpoint(slack["url"], slack.get("proxyUrl") or slack.get("proxy"), source)
    channel, user = str(slack.get("channel") or DEFAULT_CHANNEL), str(slack.get("user") or DEFAULT_USER)
    notifier = notifier_for("slack", endpoint, channel=channel, username=user)
    where = f"slack to {endpoint.host} (channel {channel}, user {user}), from {source}"
    return GlobalNotifier(notifier, where)


def from_helm_releases(releases: Iterable[Mapping[str, Any]]) -> GlobalNotifier | None:
    """The global notifier of the first HelmRelease of Flagger's chart that configures one."""
    for release in releases:
        spec = release.get("spec") or {}
        chart = ((spec.get("chart") or {}).get("spec") or {}).get("chart")
        if chart != CHART:
            continue
        meta = release.get("metadata") or {}
        found = from_values(spec.get("values") or {}, f"HelmRelease {meta.get('namespace')}/{meta.get('name')}")
        if found is not None:
            return found
    return None


def _section(values: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    section = values.get(name)
    return section if isinstance(section, Mapping) else {}


def _endpoint(url: object, proxy: object, source: str) -> Endpoint:
    try:
        return Endpoint(str(url).strip(), proxy=str(proxy).strip() if proxy else None)
    except ValueError as exc:
        raise AlertProviderError(f"{source}: {exc}") from None
