"""``spec.analysis.judge``: canaryflow's sequential judge, an extension of Flagger's Canary (docs/judge.md).

A Canary without it behaves exactly as in Flagger; ``canaryflow up --judge`` / ``canaryflow operator --judge``
turn it on with these defaults for every canary that does not say ``judge: {enabled: false}``.
"""

from __future__ import annotations

import enum
import typing
from typing import Literal

from pydantic import Field, field_validator

from canaryflow.api.base import Model
from canaryflow.api.duration import Duration, parse_duration


class JudgeTest(enum.StrEnum):
    #: canary vs primary: is the canary's share of the errors larger than its share of the requests?
    ERRORS = "errors"
    #: canary vs primary, per histogram bucket boundary: is its share of the slow requests larger?
    LATENCY = "latency"
    #: canary alone against ``sloErrorRate`` (Wald's SPRT): only while the primary serves no traffic
    SLO = "slo"


#: The names a manifest writes (a Literal, so a wrong one is reported with the valid ones).
TestName = Literal["errors", "latency", "slo"]
assert set(typing.get_args(TestName)) == {t.value for t in JudgeTest}


class JudgeCounts(Model):
    """Where the judge reads its per-arm counts: Prometheus counters, summed per workload (Istio's names by
    default; point these at other names for another mesh)."""

    requests: str = Field("istio_requests_total", min_length=1)
    duration: str = Field("istio_request_duration_milliseconds_bucket", min_length=1)
    workload_label: str = Field("destination_workload", min_length=1)
    namespace_label: str = Field("destination_workload_namespace", min_length=1)
    #: A regular expression over ``response_code``: which responses are errors.
    error_codes: str = Field("5.*", min_length=1)
    #: Extra label matchers for both queries, e.g. ``reporter="destination"``.
    selector: str = 'reporter="destination"'
    #: The Prometheus to ask; the runtime's own (or ``metricsServer``'s) when unset.
    address: str | None = None


class CanaryJudge(Model):
    enabled: bool = True
    #: The false-rollback bound: a healthy canary is rolled back by the judge with probability at most alpha.
    alpha: float = 0.05
    #: ``slo`` adds evidence only while the primary serves nothing (e.g. the seed's load test hits the canary alone).
    tests: list[TestName] = Field(default_factory=lambda: [t.value for t in JudgeTest])
    #: "Not worse" means: the canary's error rate exceeds the primary's by less than this many percentage points.
    margin: float = Field(0.5, ge=0, le=100)
    #: Step as soon as the judge has shown the canary not worse (at confidence 1 - alpha), not only every interval.
    early_steps: bool = True
    #: How often the judge looks at the counts (the metrics' resolution, not analysis.interval).
    interval: Duration = "5s"
    #: For the ``slo`` test: the error rate (percent) a canary serving alone must stay under.
    slo_error_rate: float = Field(1.0, gt=0, lt=100)
    counts: JudgeCounts = Field(default_factory=JudgeCounts)

    @field_validator("alpha")
    @classmethod
    def _alpha(cls, value: float) -> float:
        if not 0 < value < 0.5:
            raise ValueError(f"alpha is a false-rollback probability: it must be above 0 and below 0.5 (got {value:g})")
        return value

    @field_validator("tests")
    @classmethod
    def _tests(cls, value: list[TestName]) -> list[TestName]:
        if not value:
            raise ValueError(f"name at least one test: {', '.join(t.value for t in JudgeTest)}")
        if len(set(value)) != len(value):
            raise ValueError("each test may be named once")
        return value

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: str) -> str:
        if parse_duration(value) < 1:
            raise ValueError(f"the judge looks at most once a second (got {value})")
        return value

    @property
    def interval_seconds(self) -> float:
        return parse_duration(self.interval)
