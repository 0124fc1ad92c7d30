"""The Canary resource (``flagger.app/v1beta1``) with Flagger's fields, defaults and cross-field rules."""

from __future__ import annotations

import enum
import functools
import itertools
import typing
from typing import Any, Final, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from canaryflow.api import istio
from canaryflow.api.base import Model, ObjectMeta
from canaryflow.api.duration import Duration, parse_duration
from canaryflow.api.judge import CanaryJudge
from canaryflow.api.refs import NamespacedObjectReference

API_VERSION: Final = "flagger.app/v1beta1"
DEFAULT_PROGRESS_DEADLINE = 600
DEFAULT_INTERVAL = "60s"
DEFAULT_METRIC_INTERVAL = "1m"
BUILTIN_METRICS = ("request-success-rate", "request-duration")
#: The traffic-management providers Flagger's CRD accepts in ``spec.provider``.
Provider = Literal[
    "apisix",
    "appmesh",
    "appmesh:v1beta2",
    "contour",
    "gatewayapi:v1",
    "gatewayapi:v1beta1",
    "gloo",
    "istio",
    "knative",
    "kubernetes",
    "kuma",
    "linkerd",
    "nginx",
    "osm",
    "skipper",
    "smi:v1alpha1",
    "smi:v1alpha2",
    "smi:v1alpha3",
    "traefik",
]
PROVIDERS: tuple[str, ...] = typing.get_args(Provider)


class Strategy(enum.StrEnum):
    CANARY = "canary"
    AB_TESTING = "ab-testing"
    BLUE_GREEN = "blue-green"


class HookType(enum.StrEnum):
    """Flagger's eight webhook types; an empty type means ``rollout``."""

    CONFIRM_ROLLOUT = "confirm-rollout"
    PRE_ROLLOUT = "pre-rollout"
    ROLLOUT = "rollout"
    CONFIRM_TRAFFIC_INCREASE = "confirm-traffic-increase"
    CONFIRM_PROMOTION = "confirm-promotion"
    POST_ROLLOUT = "post-rollout"
    ROLLBACK = "rollback"
    EVENT = "event"


class TargetRef(Model):
    api_version: str = Field(min_length=1)
    kind: Literal["Deployment", "DaemonSet", "Service"]
    name: str = Field(min_length=1)


class ScalerReplicas(Model):
    min_replicas: int | None = Field(None, ge=0)
    max_replicas: int | None = Field(None, ge=1)

    @field_validator("max_replicas")
    @classmethod
    def _not_below_min(cls, value: int | None, info: ValidationInfo) -> int | None:
        low = info.data.get("min_replicas")
        if value is not None and low is not None and value < low:
            raise ValueError(f"maxReplicas ({value}) is below minReplicas ({low})")
        return value


class AutoscalerRef(Model):
    api_version: str = Field(min_length=1)
    kind: Literal["HorizontalPodAutoscaler", "ScaledObject"]
    name: str = Field(min_length=1)
    primary_scaler_queries: dict[str, str] | None = None
    primary_scaler_replicas: ScalerReplicas | None = None


class IngressRef(Model):
    api_version: str
    kind: Literal["Ingress"]
    name: str


class RouteRef(Model):
    api_version: str
    kind: Literal["ApisixRoute"]
    name: str


class UpstreamRef(Model):
    api_version: str
    kind: Literal["Upstream"]
    name: str
    namespace: str | None = None


class CustomMetadata(Model):
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class UnmanagedMetadata(Model):
    labels: list[str] | None = None
    annotations: list[str] | None = None


class BackendRef(Model):
    group: str = ""
    kind: str = "Service"
    name: str
    namespace: str | None = None
    port: int | None = None


class MirrorBackend(Model):
    backend_ref: BackendRef


class GatewayRef(Model):
    group: str = "gateway.networking.k8s.io"
    kind: str = "Gateway"
    name: str
    namespace: str | None = None
    section_name: str | None = None
    port: int | None = None


class CanaryService(Model):
    name: str | None = None
    port: int = Field(ge=1, le=65535)
    port_name: str = "http"
    target_port: int | str | None = None
    app_protocol: str | None = None
    traffic_distribution: Literal["PreferClose", "PreferSameZone", "PreferSameNode"] | None = None
    port_discovery: bool = False
    headless: bool = False
    timeout: Duration | None = None
    backend_timeout: Duration | None = None
    mesh_name: str | None = None
    backends: list[str] | None = None
    gateways: list[str] | None = None
    gateway_refs: list[GatewayRef] | None = Field(None, max_length=32)
    hosts: list[str] | None = None
    delegation: bool = False
    match: list[istio.HTTPMatchRequest] | None = None
    rewrite: istio.HTTPRewrite | None = None
    retries: istio.HTTPRetry | None = None
    headers: istio.Headers | None = None
    cors_policy: istio.CorsPolicy | None = None
    traffic_policy: istio.TrafficPolicy | None = None
    mirror: list[MirrorBackend] | None = None
    apex: CustomMetadata | None = None
    primary: CustomMetadata | None = None
    canary: CustomMetadata | None = None
    unmanaged_metadata: UnmanagedMetadata | None = None

    @field_validator("target_port")
    @classmethod
    def _port_or_name(cls, value: int | str | None) -> int | str | None:
        # The generated Services would be refused by Kubernetes; say so where the mistake is written.
        if isinstance(value, int) and not 1 <= value <= 65535:
            raise ValueError(f"a port number must be 1..65535 (got {value})")
        if isinstance(value, str) and not value:
            raise ValueError("a port name must not be empty")
        return value


class ThresholdRange(Model):
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> ThresholdRange:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min:g}) is greater than max ({self.max:g}): no value can pass")
        return self


class CanaryMetric(Model):
    name: str = Field(min_length=1)
    interval: Duration = DEFAULT_METRIC_INTERVAL
    threshold: float | None = None
    threshold_range: ThresholdRange | None = None
    query: str | None = None
    template_ref: NamespacedObjectReference | None = None
    template_variables: dict[str, str] | None = None

    @model_validator(mode="after")
    def _source(self) -> CanaryMetric:
        if self.template_ref is None and self.query is None and self.name not in BUILTIN_METRICS:
            raise ValueError(
                f"metric {self.name!r} has no templateRef and no query; built-in metrics are "
                + ", ".join(BUILTIN_METRICS)
            )
        return self


class CanaryAlert(Model):
    name: str = Field(min_length=1)
    severity: Literal["", "info", "warn", "error"] = "info"
    provider_ref: NamespacedObjectReference


class CanaryWebhook(Model):
    name: str = Field(min_length=1)
    type: Literal[
        "",
        "confirm-rollout",
        "pre-rollout",
        "rollout",
        "confirm-promotion",
        "post-rollout",
        "event",
        "rollback",
        "confirm-traffic-increase",
    ] = ""
    url: str = Field(min_length=1)
    timeout: Duration | None = None
    retries: int | None = Field(None, ge=0)
    disable_tls: bool = Field(False, alias="disableTLS")
    mute_alert: bool = False
    metadata: dict[str, str] | None = None

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        # Flagger only finds out when the first call fails mid-analysis; a load-time error costs nothing.
        scheme, sep, rest = value.partition("://")
        if not sep or scheme.lower() not in ("http", "https") or not rest or rest.startswith("/"):
            raise ValueError(f"url must be an http:// or https:// address with a host (got {value!r})")
        return value

    @property
    def hook_type(self) -> HookType:
        return HookType(self.type or "rollout")

    @property
    def timeout_seconds(self) -> float:
        return parse_duration(self.timeout) if self.timeout else 10.0


class SessionAffinity(Model):
    cookie_name: str = Field(min_length=1)
    primary_cookie_name: str | None = None
    max_age: int = 86400
    domain: str | None = None
    path: str | None = None
    http_only: bool | None = None
    secure: bool | None = None
    partitioned: bool | None = None
    same_site: Literal["Strict", "Lax", "None"] | None = None

    @field_validator("primary_cookie_name")
    @classmethod
    def _distinct(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and value == info.data.get("cookie_name"):
            raise ValueError(f"primaryCookieName must differ from cookieName (both are {value!r})")
        return value


_STEPPING = (("stepWeight", "step_weight"), ("stepWeights", "step_weights"))


class CanaryAnalysis(Model):
    interval: Duration = DEFAULT_INTERVAL
    threshold: int = 0
    max_weight: int | None = Field(None, ge=0, le=100)
    step_weight: int | None = Field(None, ge=0, le=100)
    step_weights: list[int] | None = None
    step_weight_promotion: int | None = Field(None, ge=0, le=100)
    iterations: int | None = Field(None, ge=0)
    mirror: bool = False
    mirror_weight: int | None = Field(None, ge=0, le=100)
    primary_ready_threshold: int | None = Field(None, ge=0, le=100)
    canary_ready_threshold: int | None = Field(None, ge=0, le=100)
    match: list[istio.HTTPMatchRequest] | None = None
    alerts: list[CanaryAlert] | None = None
    metrics: list[CanaryMetric] | None = None
    webhooks: list[CanaryWebhook] | None = None
    session_affinity: SessionAffinity | None = None
    #: canaryflow's sequential judge (an extension: Flagger's CRD has no such field).
    judge: CanaryJudge | None = None

    # Field validators rather than one model validator, so each message points at the field that is wrong
    # (``spec.analysis.stepWeights``, not ``spec.analysis``); ``info.data`` holds the fields declared above.
    @field_validator("step_weights")
    @classmethod
    def _ascending(cls, value: list[int] | None, info: ValidationInfo) -> list[int] | None:
        if not value:
            return value
        if info.data.get("step_weight") is not None:
            raise ValueError("set stepWeight or stepWeights, not both")
        for i, (a, b) in enumerate(itertools.pairwise(value)):
            if b <= a:
                raise ValueError(f"stepWeights must be ascending: entry {i + 1} ({b}) is not above {a}")
        bad = [w for w in value if not 0 < w <= 100]
        if bad:
            raise ValueError(f"stepWeights entries must be 1..100 (got {bad})")
        return value

    @field_validator("iterations")
    @classmethod
    def _one_strategy(cls, value: int | None, info: ValidationInfo) -> int | None:
        # Flagger's CRD requires exactly one of iterations, stepWeight and stepWeights.
        given = [alias for alias, key in _STEPPING if info.data.get(key) is not None]
        if value is not None and given:
            raise ValueError(
                f"set iterations (A/B testing, blue/green) or {' / '.join(given)} (progressive canary), not both"
            )
        return value

    @field_validator("match")
    @classmethod
    def _match_needs_iterations(
        cls, value: list[istio.HTTPMatchRequest] | None, info: ValidationInfo
    ) -> list[istio.HTTPMatchRequest] | None:
        if value and not info.data.get("iterations"):
            raise ValueError("match (A/B testing) needs iterations: the number of analysis runs before promotion")
        return value

    # Effective values, as Flagger computes them.
    @property
    def interval_seconds(self) -> float:
        return parse_duration(self.interval)

    @property
    def effective_threshold(self) -> int:
        return self.threshold if self.threshold > 0 else 1

    @property
    def effective_max_weight(self) -> int:
        if self.step_weights:
            return min(100, self.step_weights[-1])
        return self.max_weight if self.max_weight else 100

    @property
    def strategy(self) -> Strategy:
        if self.iterations and self.match:
            return Strategy.AB_TESTING
        if self.iterations:
            return Strategy.BLUE_GREEN
        return Strategy.CANARY

    def hooks(self, kind: HookType) -> tuple[CanaryWebhook, ...]:
        """The webhooks of one type, in the order they are declared."""
        return self._hooks_by_type.get(kind, ())

    @functools.cached_property
    def _hooks_by_type(self) -> dict[HookType, tuple[CanaryWebhook, ...]]:
        # Read on every tick: grouped once per (immutable) spec.
        grouped: dict[HookType, list[CanaryWebhook]] = {}
        for hook in self.webhooks or ():
            grouped.setdefault(hook.hook_type, []).append(hook)
        return {kind: tuple(hooks) for kind, hooks in grouped.items()}


class CanarySpec(Model):
    provider: Provider | None = None
    metrics_server: str | None = None
    target_ref: TargetRef
    autoscaler_ref: AutoscalerRef | None = None
    ingress_ref: IngressRef | None = None
    route_ref: RouteRef | None = None
    upstream_ref: UpstreamRef | None = None
    service: CanaryService
    progress_deadline_seconds: int = Field(DEFAULT_PROGRESS_DEADLINE, ge=0)
    skip_analysis: bool = False
    revert_on_deletion: bool = False
    suspend: bool = False
    analysis: CanaryAnalysis | None = None
    canary_analysis: CanaryAnalysis | None = Field(None, description="Deprecated alias of analysis.")

    @field_validator("analysis", "canary_analysis")
    @classmethod
    def _advances(cls, value: CanaryAnalysis | None, info: ValidationInfo) -> CanaryAnalysis | None:
        if value is None:
            return value
        if info.field_name == "canary_analysis" and info.data.get("analysis") is not None:
            raise ValueError("set analysis or its deprecated alias canaryAnalysis, not both")
        advances = value.step_weight or value.step_weights or value.iterations
        if not advances and not info.data.get("skip_analysis"):
            raise ValueError("analysis needs stepWeight, stepWeights or iterations, or the canary never advances")
        if info.data.get("provider") == "kubernetes":
            routed = [n for n, v in (("stepWeight", value.step_weight), ("stepWeights", value.step_weights),
                                     ("match", value.match), ("mirror", value.mirror)) if v]  # fmt: skip
            if routed:
                raise ValueError(
                    "provider kubernetes switches Services only (100/0 or 0/100: blue/green with iterations), so it "
                    f"cannot honour {', '.join(routed)}; use a mesh provider such as istio"
                )
        return value

    @property
    def effective_analysis(self) -> CanaryAnalysis:
        return self.analysis or self.canary_analysis or CanaryAnalysis()

    @property
    def skips_analysis(self) -> bool:
        """Flagger skips the analysis when asked to, and when there is no analysis block at all."""
        return self.skip_analysis or (self.analysis is None and self.canary_analysis is None)


class Canary(Model):
    api_version: Literal["flagger.app/v1beta1"] = API_VERSION
    kind: Literal["Canary"] = "Canary"
    metadata: ObjectMeta
    spec: CanarySpec
    status: dict[str, Any] | None = None

    @property
    def key(self) -> str:
        """``namespace/name``: how canaries are named across the runtime."""
        return f"{self.metadata.namespace}/{self.metadata.name}"

    @property
    def service_name(self) -> str:
        return self.spec.service.name or self.spec.target_ref.name
