"""AlertProvider (``flagger.app/v1beta1``): where alerts go (Slack, Teams, Discord, Rocket, Google Chat)."""

from __future__ import annotations

from typing import Any, Literal

from canaryflow.api.base import Model, ObjectMeta
from canaryflow.api.canary import API_VERSION, LocalObjectReference

ALERT_PROVIDER_TYPES = ("slack", "msteams", "discord", "rocket", "gchat")


class AlertProviderSpec(Model):
    type: Literal["slack", "msteams", "discord", "rocket", "gchat"]
    channel: str = "general"
    username: str = "flagger"
    address: str | None = None
    proxy: str | None = None
    secret_ref: LocalObjectReference | None = None


class AlertProvider(Model):
    api_version: Literal["flagger.app/v1beta1"] = API_VERSION
    kind: Literal["AlertProvider"] = "AlertProvider"
    metadata: ObjectMeta
    spec: AlertProviderSpec
    status: dict[str, Any] | None = None
