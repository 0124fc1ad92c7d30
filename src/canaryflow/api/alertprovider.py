"""AlertProvider (``flagger.app/v1beta1``): where alerts go (Slack, Teams, Discord, Rocket, Google Chat)."""

from __future__ import annotations

import typing
from typing import Any, Literal

from pydantic import model_validator

from canaryflow.api.base import Model, ObjectMeta
from canaryflow.api.canary import API_VERSION
from canaryflow.api.refs import LocalObjectReference

AlertProviderType = Literal["slack", "msteams", "discord", "rocket", "gchat"]
#: The same names, for messages that list them.
ALERT_PROVIDER_TYPES: tuple[str, ...] = typing.get_args(AlertProviderType)


class AlertProviderSpec(Model):
    type: AlertProviderType
    channel: str = "general"
    username: str = "flagger"
    address: str | None = None
    proxy: str | None = None
    secret_ref: LocalObjectReference | None = None

    # Both may be set, as Flagger's alerting docs do (a Slack bot token in the Secret, the chat.postMessage URL
    # in spec.address): the Secret's address, when it has one, takes precedence (notify/factory.py).
    @model_validator(mode="after")
    def _somewhere_to_send(self) -> AlertProviderSpec:
        if self.address is None and self.secret_ref is None:
            raise ValueError("set address, or secretRef to a Secret with an address key: alerts need somewhere to go")
        return self


class AlertProvider(Model):
    api_version: Literal["flagger.app/v1beta1"] = API_VERSION
    kind: Literal["AlertProvider"] = "AlertProvider"
    metadata: ObjectMeta
    spec: AlertProviderSpec
    status: dict[str, Any] | None = None
