"""canaryflow's own metrics under Flagger's names (flagger-behaviour.md §7), so that existing Grafana
dashboards and alert rules for Flagger keep working."""

from __future__ import annotations

import bisect
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import metrics as prometheus_metrics
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from canaryflow import __version__
from canaryflow.api.canary import Canary
from canaryflow.api.status import CanaryStatus, Phase


class Recorder:
    """One registry per runtime (never the global one: two runtimes in one process stay apart)."""

    def __init__(self, mesh_provider: str = "istio") -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        info = Gauge(
            "flagger_info",
            "Flagger version and mesh provider information",
            ["version", "mesh_provider"],
            registry=r,
        )
        info.labels(__version__, mesh_provider).set(1)
        self.total = Gauge("flagger_canary_total", "Total number of canary objects", ["namespace"], registry=r)
        self.successes = Counter(
            "flagger_canary_successes",
            "Total number of canary successful promotions",
            ["name", "namespace"],
            registry=r,
        )
        self.failures = Counter(
            "flagger_canary_failures", "Total number of canary failures", ["name", "namespace"], registry=r
        )
        # The gauges of last values and the analysis duration are set on every tick of every canary: plain dicts
        # and lists, read at scrape time.
        self._last = _LastValues()
        r.register(self._last)
        self._namespaces: dict[str, set[str]] = {}
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}

    def track(self, canary: Canary) -> None:
        names = self._namespaces.setdefault(canary.metadata.namespace, set())
        names.add(canary.metadata.name)
        self.total.labels(canary.metadata.namespace).set(len(names))

    def forget(self, namespace: str, name: str) -> None:
        names = self._namespaces.get(namespace, set())
        names.discard(name)
        self.total.labels(namespace).set(len(names))

    def set_weight(self, canary: Canary, primary: int, canary_weight: int) -> None:
        target, ns = canary.spec.target_ref.name, canary.metadata.namespace
        weights = self._last.weights
        weights[f"{target}-primary", ns] = float(primary)
        weights[target, ns] = float(canary_weight)

    def observe(self, canary: Canary, before: Phase, status: CanaryStatus, analysis_seconds: float | None) -> None:
        name, ns = canary.metadata.name, canary.metadata.namespace
        phase = status.phase
        code = 0 if phase is Phase.PROGRESSING else 2 if phase is Phase.FAILED else 1
        last = self._last.canaries.get((name, ns))
        if last is None:
            last = self._last.canaries[name, ns] = _Last()
        last.status = float(code)
        if status.last_metrics:
            last.metrics.update(status.last_metrics)
        for check in status.last_checks:
            last.checks[str(check["name"])] = 0.0 if check.get("passed") else 1.0
        if status.judge is not None:
            for test in status.judge.to_dict()["tests"]:
                last.judge[test["name"]] = (float(test["statistic"]), float(test["bound"]))
        if analysis_seconds is not None:
            last.observe(analysis_seconds)
        if phase is not before:
            if phase is Phase.SUCCEEDED:
                self._child(self.successes, name, ns).inc()
            elif phase is Phase.FAILED:
                self._child(self.failures, name, ns).inc()

    def _child(self, family: Any, *labels: str) -> Any:
        # prometheus_client validates and hashes labels on every .labels() call; cache the children (ticks are hot).
        key = (id(family), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = family.labels(*labels)
        return child

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


#: flagger_canary_duration_seconds' buckets: prometheus_client's default ones, as a Histogram had them.
_BOUNDS = tuple(float(b) for b in Histogram.DEFAULT_BUCKETS)
_LE = tuple(floatToGoString(b) for b in _BOUNDS)  # type: ignore[no-untyped-call]


class _Last:
    """One canary's last values (what its gauges show) and its analysis durations (a histogram: counts per
    bucket, not cumulative, as prometheus_client keeps them)."""

    __slots__ = ("checks", "durations", "judge", "metrics", "since", "status", "total")

    def __init__(self) -> None:
        self.status = 0.0
        self.metrics: dict[str, float] = {}
        self.checks: dict[str, float] = {}
        self.judge: dict[str, tuple[float, float]] = {}
        self.durations: list[float] | None = None  # made at the first observation, as a Histogram's child
        self.total = self.since = 0.0

    def observe(self, seconds: float) -> None:
        if self.durations is None:
            self.durations, self.since = [0.0] * len(_BOUNDS), time.time()
        self.total += seconds
        self.durations[bisect.bisect_left(_BOUNDS, seconds)] += 1.0


class _LastValues(Collector):
    """The gauges of last values, kept in dicts and turned into samples when scraped: a prometheus_client Gauge
    takes a lock and checks its value on every ``set``, which on the tick path cost about a sixth of a tick."""

    def __init__(self) -> None:
        self.canaries: dict[tuple[str, str], _Last] = {}
        self.weights: dict[tuple[str, str], float] = {}

    def collect(self) -> Iterator[Metric]:
        # Scrapes run in the control loop's thread; copies all the same, so one never sees a dict change size.
        canaries = [(key, last.status, dict(last.metrics), dict(last.checks), dict(last.judge))
                    for key, last in list(self.canaries.items())]  # fmt: skip
        durations = [(key, list(last.durations), last.total, last.since)
                     for key, last in list(self.canaries.items()) if last.durations is not None]  # fmt: skip
        status = GaugeMetricFamily(
            "flagger_canary_status",
            "Last canary analysis result (0 running, 1 other, 2 failed)",
            labels=["name", "namespace"],
        )
        weight = GaugeMetricFamily(
            "flagger_canary_weight", "The virtual service destination weight", labels=["workload", "namespace"]
        )
        analysis = GaugeMetricFamily(
            "flagger_canary_metric_analysis",
            "Last canary analysis metric value",
            labels=["name", "namespace", "metric"],
        )
        judge = GaugeMetricFamily(
            "canaryflow_judge_evidence",
            "The judge's e-value per test (rolls back at canaryflow_judge_bound)",
            labels=["name", "namespace", "test"],
        )
        bound = GaugeMetricFamily(
            "canaryflow_judge_bound", "The bound each judge test is compared with", labels=["name", "namespace", "test"]
        )
        checks = GaugeMetricFamily(
            "canaryflow_check_failed",
            "1 when the last threshold check of a metric failed (its value is flagger_canary_metric_analysis)",
            labels=["name", "namespace", "metric"],
        )
        for (name, ns), code, metrics, failed, tests in canaries:
            status.add_metric([name, ns], code)
            for metric, value in metrics.items():
                analysis.add_metric([name, ns, metric], value)
            for metric, value in failed.items():
                checks.add_metric([name, ns, metric], value)
            for test, (statistic, limit) in tests.items():
                judge.add_metric([name, ns, test], statistic)
                bound.add_metric([name, ns, test], limit)
        for (workload, ns), value in list(self.weights.items()):
            weight.add_metric([workload, ns], value)
        yield from (status, weight, analysis, judge, bound, checks, self._durations(durations))

    @staticmethod
    def _durations(durations: list[tuple[tuple[str, str], list[float], float, float]]) -> Metric:
        """The samples prometheus_client's Histogram gives (``_created`` unless switched off process-wide)."""
        name = "flagger_canary_duration_seconds"
        family = Metric(name, "Seconds spent performing canary analysis.", "histogram")
        created = prometheus_metrics._use_created
        for (canary, ns), counts, total, since in durations:
            labels = {"name": canary, "namespace": ns}
            count = 0.0
            for le, n in zip(_LE, counts, strict=True):
                count += n
                family.add_sample(f"{name}_bucket", {**labels, "le": le}, count)
            family.add_sample(f"{name}_count", labels, count)
            family.add_sample(f"{name}_sum", labels, total)
            if created:
                family.add_sample(f"{name}_created", labels, since)
        return family
