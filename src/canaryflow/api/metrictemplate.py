"""MetricTemplate (``flagger.app/v1beta1``): a provider and a query template."""

from __future__ import annotations

import typing
from typing import Any, Literal

from pydantic import Field

from canaryflow.api.base import Model, ObjectMeta
from canaryflow.api.canary import API_VERSION
from canaryflow.api.refs import LocalObjectReference

ProviderType = Literal[
    "prometheus",
    "influxdb",
    "datadog",
    "externalmetrics",
    "stackdriver",
    "cloudwatch",
    "newrelic",
    "graphite",
    "dynatrace",
    "keptn",
    "splunk",
]
#: The same names, for messages that list them.
PROVIDER_TYPES: tuple[str, ...] = typing.get_args(ProviderType)


class MetricProvider(Model):
    type: ProviderType
    address: str | None = None
    # Go's http.Header, as in Flagger's CRD: every header name maps to a list of values.
    headers: dict[str, list[str]] | None = None
    secret_ref: LocalObjectReference | None = None
    region: str | None = None
    insecure_skip_verify: bool = False


class MetricTemplateSpec(Model):
    provider: MetricProvider
    query: str = Field(min_length=1)


class MetricTemplate(Model):
    api_version: Literal["flagger.app/v1beta1"] = API_VERSION
    kind: Literal["MetricTemplate"] = "MetricTemplate"
    metadata: ObjectMeta
    spec: MetricTemplateSpec
    status: dict[str, Any] | None = None
