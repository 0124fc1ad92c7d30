"""Discord, through its Slack-compatible webhook endpoint, as Flagger does.

A Discord webhook URL ``https://discord.com/api/webhooks/<id>/<token>`` also accepts Slack's payload at
``.../<token>/slack``. Using it keeps Discord's alerts identical to Slack's (author, colour, fields) and keeps
``username`` working; the ``channel`` field is ignored there, since a Discord webhook belongs to one channel.
Discord shows text literally, so nothing is escaped the way Slack needs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import httpx

from canaryflow.notify.base import Severity
from canaryflow.notify.delivery import Endpoint
from canaryflow.notify.slack import SlackCompatibleNotifier

# Discord's Slack endpoint understands Slack's colour names.
COLORS: Mapping[Severity, str] = {Severity.INFO: "good", Severity.WARN: "warning", Severity.ERROR: "danger"}


class DiscordNotifier(SlackCompatibleNotifier):
    service = "Discord"
    colors = COLORS

    def __init__(self, endpoint: Endpoint, *, channel: str = "general", username: str = "flagger") -> None:
        url = slack_compatible_url(endpoint.url)
        super().__init__(dataclasses.replace(endpoint, url=url), channel=channel, username=username)


def slack_compatible_url(url: str) -> str:
    """``<webhook>/slack``, keeping the query (``?wait=true``, ``?thread_id=``) where Discord expects it."""
    parsed = httpx.URL(url)
    path = parsed.path.rstrip("/")
    if path.endswith("/slack"):
        return url
    return str(parsed.copy_with(path=f"{path}/slack"))
