"""Notifications (``notification.toolkit.fluxcd.io``): Receiver (v1, v1beta2), the webhook that triggers a
reconcile; Provider and Alert (v1beta3), where events are sent.

A Receiver's address is not configured but derived, as Flux does: ``/hook/<sha256(token + name + namespace)>``,
so only someone who knows the token (kept in ``secretRef``) can find it.
"""

from __future__ import annotations

import hashlib
from typing import Final, Literal

from pydantic import Field, model_validator

from canaryflow.api.base import Model
from canaryflow.api.flux.common import FluxObject, Interval, Timeout
from canaryflow.api.refs import LocalObjectReference

RECEIVER_VERSIONS: Final = ("v1", "v1beta2")
ALERTING_VERSIONS: Final = ("v1beta3",)
WEBHOOK_PATH: Final = "/hook/"
#: The kinds a Receiver may notify and an Alert may watch.
EVENT_SOURCE_KINDS = Literal[
    "Bucket",
    "GitRepository",
    "Kustomization",
    "HelmRelease",
    "HelmChart",
    "HelmRepository",
    "ImageRepository",
    "ImagePolicy",
    "ImageUpdateAutomation",
    "OCIRepository",
    "ArtifactGenerator",
    "ExternalArtifact",
]


class CrossNamespaceObjectReference(Model):
    """An object to notify (Receiver) or to listen to (Alert); ``name: "*"`` with ``matchLabels`` selects many."""

    api_version: str | None = None
    kind: EVENT_SOURCE_KINDS
    name: str = Field(min_length=1, max_length=253)
    namespace: str | None = Field(None, min_length=1, max_length=253)
    match_labels: dict[str, str] | None = None


class ResourceReferenceV1(CrossNamespaceObjectReference):
    filter: str | None = None


class OIDCValidation(Model):
    expression: str = Field(min_length=1)
    message: str = Field(min_length=1)


class OIDCVariable(Model):
    name: str = Field(min_length=1)
    expression: str = Field(min_length=1)


class OIDCProvider(Model):
    issuer_url: str = Field(alias="issuerURL", pattern=r"^https?://")
    audience: str | None = None
    validations: list[OIDCValidation] = Field(min_length=1)
    variables: list[OIDCVariable] | None = None


class ReceiverSpecV1(Model):
    type: Literal[
        "generic",
        "generic-hmac",
        "generic-oidc",
        "github",
        "gitlab",
        "bitbucket",
        "harbor",
        "dockerhub",
        "quay",
        "gcr",
        "nexus",
        "acr",
        "cdevents",
    ]
    interval: Interval | None = None
    events: list[str] | None = None
    resources: list[ResourceReferenceV1]
    resource_filter: str | None = None
    secret_ref: LocalObjectReference | None = None
    oidc_providers: list[OIDCProvider] | None = None
    suspend: bool = False

    @model_validator(mode="after")
    def _authentication(self) -> ReceiverSpecV1:
        oidc = self.type == "generic-oidc"
        if oidc and not self.oidc_providers:
            raise ValueError("generic-oidc receivers must define at least one oidcProvider")
        if not oidc and self.oidc_providers:
            raise ValueError("oidcProviders can only be set when type is generic-oidc")
        if oidc and self.secret_ref is not None:
            raise ValueError("secretRef cannot be set when type is generic-oidc")
        if not oidc and self.secret_ref is None:
            raise ValueError("secretRef is required: a Secret whose token key authenticates the calls")
        return self


class ReceiverSpecV1beta2(Model):
    type: Literal[
        "generic", "generic-hmac", "github", "gitlab", "bitbucket", "harbor", "dockerhub", "quay", "gcr", "nexus", "acr"
    ]
    events: list[str] | None = None
    resources: list[CrossNamespaceObjectReference]
    secret_ref: LocalObjectReference
    suspend: bool = False


class _ReceiverBase(FluxObject):
    def webhook_path(self, token: str) -> str:
        """The receiver's URL path for ``token`` (the Secret's ``token`` value), as Flux derives it."""
        digest = hashlib.sha256(f"{token}{self.metadata.name}{self.metadata.namespace}".encode()).hexdigest()
        return f"{WEBHOOK_PATH}{digest}"


class ReceiverV1(_ReceiverBase):
    api_version: Literal["notification.toolkit.fluxcd.io/v1"] = "notification.toolkit.fluxcd.io/v1"
    kind: Literal["Receiver"] = "Receiver"
    spec: ReceiverSpecV1


class ReceiverV1beta2(_ReceiverBase):
    api_version: Literal["notification.toolkit.fluxcd.io/v1beta2"] = "notification.toolkit.fluxcd.io/v1beta2"
    kind: Literal["Receiver"] = "Receiver"
    spec: ReceiverSpecV1beta2


Receiver = ReceiverV1 | ReceiverV1beta2
"""A Receiver of any accepted version (usable with ``isinstance``)."""


GIT_PROVIDERS: Final = ("github", "gitlab", "gitea", "bitbucketserver", "bitbucket", "azuredevops")


class ProviderSpec(Model):
    type: Literal[
        "slack",
        "discord",
        "msteams",
        "rocket",
        "generic",
        "generic-hmac",
        "github",
        "gitlab",
        "gitea",
        "giteapullrequestcomment",
        "bitbucketserver",
        "bitbucket",
        "azuredevops",
        "googlechat",
        "googlepubsub",
        "webex",
        "sentry",
        "azureeventhub",
        "telegram",
        "lark",
        "matrix",
        "opsgenie",
        "alertmanager",
        "grafana",
        "githubdispatch",
        "githubpullrequestcomment",
        "gitlabmergerequestcomment",
        "pagerduty",
        "datadog",
        "nats",
        "zulip",
        "otel",
        "zoom",
        "incident.io",
    ]
    address: str | None = Field(None, max_length=2048)
    channel: str | None = Field(None, max_length=2048)
    username: str | None = Field(None, max_length=2048)
    proxy: str | None = Field(None, max_length=2048, pattern=r"^(http|https)://.*$")
    interval: Interval | None = None
    timeout: Timeout | None = None
    secret_ref: LocalObjectReference | None = None
    cert_secret_ref: LocalObjectReference | None = None
    proxy_secret_ref: LocalObjectReference | None = None
    service_account_name: str | None = None
    commit_status_expr: str | None = None
    suspend: bool = False

    @model_validator(mode="after")
    def _commit_status_for_git_providers(self) -> ProviderSpec:
        if self.commit_status_expr is not None and self.type not in GIT_PROVIDERS:
            raise ValueError(f"commitStatusExpr is only supported for the {', '.join(GIT_PROVIDERS)} provider types")
        return self


class Provider(FluxObject):
    api_version: Literal["notification.toolkit.fluxcd.io/v1beta3"] = "notification.toolkit.fluxcd.io/v1beta3"
    kind: Literal["Provider"] = "Provider"
    spec: ProviderSpec


class AlertSpec(Model):
    provider_ref: LocalObjectReference
    event_sources: list[CrossNamespaceObjectReference]
    event_severity: Literal["info", "error"] = "info"
    event_metadata: dict[str, str] | None = None
    inclusion_list: list[str] | None = None
    exclusion_list: list[str] | None = None
    summary: str | None = Field(None, max_length=255)
    suspend: bool = False


class Alert(FluxObject):
    api_version: Literal["notification.toolkit.fluxcd.io/v1beta3"] = "notification.toolkit.fluxcd.io/v1beta3"
    kind: Literal["Alert"] = "Alert"
    spec: AlertSpec
