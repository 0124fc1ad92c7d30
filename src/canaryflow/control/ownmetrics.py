"""canaryflow's own metrics under Flagger's names (flagger-behaviour.md §7), so that existing Grafana
dashboards and alert rules for Flagger keep working."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

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
        self.duration = Histogram(
            "flagger_canary_duration_seconds",
            "Seconds spent performing canary analysis.",
            ["name", "namespace"],
            registry=r,
        )
        self.successes = Counter(
            "flagger_canary_successes",
            "Total number of canary successful promotions",
            ["name", "namespace"],
            registry=r,
        )
        self.failures = Counter(
            "flagger_canary_failures", "Total number of canary failures", ["name", "namespace"], registry=r
        )
        # The gauges of last values are set on every tick of every canary: plain dicts, read at scrape time.
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
            self._child(self.duration, name, ns).observe(analysis_seconds)
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


class _Last:
    """One canary's last values (what its gauges show)."""

    __slots__ = ("checks", "judge", "metrics", "status")

    def __init__(self) -> None:
        self.status = 0.0
        self.metrics: dict[str, float] = {}
        self.checks: dict[str, float] = {}
        self.judge: dict[str, tuple[float, float]] = {}


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
        yield from (status, weight, analysis, judge, bound, checks)
