"""canaryflow's own metrics under Flagger's names (flagger-behaviour.md §7), so that existing Grafana
dashboards and alert rules for Flagger keep working."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

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
        self.status = Gauge(
            "flagger_canary_status",
            "Last canary analysis result (0 running, 1 other, 2 failed)",
            ["name", "namespace"],
            registry=r,
        )
        self.weight = Gauge(
            "flagger_canary_weight",
            "The virtual service destination weight",
            ["workload", "namespace"],
            registry=r,
        )
        self.duration = Histogram(
            "flagger_canary_duration_seconds",
            "Seconds spent performing canary analysis.",
            ["name", "namespace"],
            registry=r,
        )
        self.analysis = Gauge(
            "flagger_canary_metric_analysis",
            "Last canary analysis metric value",
            ["name", "namespace", "metric"],
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
        self.judge = Gauge(
            "canaryflow_judge_evidence",
            "The judge's e-value per test (rolls back at canaryflow_judge_bound)",
            ["name", "namespace", "test"],
            registry=r,
        )
        self.judge_bound = Gauge(
            "canaryflow_judge_bound",
            "The bound each judge test is compared with",
            ["name", "namespace", "test"],
            registry=r,
        )
        self.checks = Gauge(
            "canaryflow_check_failed",
            "1 when the last threshold check of a metric failed (its value is flagger_canary_metric_analysis)",
            ["name", "namespace", "metric"],
            registry=r,
        )
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
        self._child(self.weight, f"{target}-primary", ns).set(primary)
        self._child(self.weight, target, ns).set(canary_weight)

    def observe(self, canary: Canary, before: Phase, status: CanaryStatus, analysis_seconds: float | None) -> None:
        name, ns = canary.metadata.name, canary.metadata.namespace
        phase = status.phase
        code = 0 if phase is Phase.PROGRESSING else 2 if phase is Phase.FAILED else 1
        self._child(self.status, name, ns).set(code)
        for metric, value in status.last_metrics.items():
            self._child(self.analysis, name, ns, metric).set(value)
        for check in status.last_checks:
            self._child(self.checks, name, ns, str(check["name"])).set(0 if check.get("passed") else 1)
        if status.judge is not None:
            for test in status.judge.to_dict()["tests"]:
                self._child(self.judge, name, ns, test["name"]).set(test["statistic"])
                self._child(self.judge_bound, name, ns, test["name"]).set(test["bound"])
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
