"""AlertProvider (``flagger.app/v1beta1``): where alerts go (Slack, Teams, Discord, Rocket, Google Chat)."""

from __future__ import annotations

import typing
from typing import Any, Literal

from pydantic import ValidationInfo, field_validator, model_validator

from canaryflow.api.base import Model, ObjectMeta
from canaryflow.api.canary import API_VERSION, LocalObjectReference

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

    # Flagger's CRD requires exactly one of the two: the address is either written here or kept in a Secret.
    @field_validator("secret_ref")
    @classmethod
    def _not_both(cls, value: LocalObjectReference | None, info: ValidationInfo) -> LocalObjectReference | None:
        if value is not None and info.data.get("address") is not None:
            raise ValueError("set address or secretRef (a Secret with an address key), not both")
        return value

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
