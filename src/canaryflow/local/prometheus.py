"""The local Prometheus: scrapes Envoy every second and relabels its cluster stats into Istio's metrics.

Envoy counts each workload's requests in the cluster ``<namespace>_<workload>``. The scrape renames
``envoy_cluster_external_upstream_rq`` to ``istio_requests_total`` and
``envoy_cluster_external_upstream_rq_time_{bucket,sum,count}`` to
``istio_request_duration_milliseconds_{bucket,sum,count}``, adding ``destination_workload``,
``destination_workload_namespace``, ``response_code`` and ``reporter="destination"``, so Istio
MetricTemplates and Flagger's built-in checks run unchanged.

Only the *external* series are mapped, each to one name: Envoy counts its own mirrored copies as internal
requests, which keeps shadow traffic out of the canary's numbers; mapping two source series to one name would
silently drop one of them.

Envoy also counts the 503s it answers itself (no healthy upstream: a workload scaled to zero; a refused
connection; a full queue) as the cluster's responses. In Istio only the calling sidecar sees those: a
destination reporter never hears of a request that reached no pod. So the scrape writes
``istio_requests_total{reporter="source"}`` (everything the mesh answered) and Envoy's own-503 counters as
``canaryflow_envoy_local_replies_total``; recording rules, evaluated at each scrape, derive
``reporter="destination"``: every code as the source saw it, but 503 less Envoy's own. Durations are recorded
only for answers a workload gave, so the histogram is ``reporter="destination"`` straight from the scrape.
"""

from __future__ import annotations

import json
import shutil
import urllib.parse
from pathlib import Path
from typing import Any

import httpx

from canaryflow.local.procs import Command, ProcessError, Supervised
from canaryflow.routing.envoy.model import CLUSTER_NAME_PATTERN

Json = dict[str, Any]
REQUESTS = "envoy_cluster_external_upstream_rq"
HISTOGRAM = {
    "envoy_cluster_external_upstream_rq_time_bucket": "istio_request_duration_milliseconds_bucket",
    "envoy_cluster_external_upstream_rq_time_sum": "istio_request_duration_milliseconds_sum",
    "envoy_cluster_external_upstream_rq_time_count": "istio_request_duration_milliseconds_count",
}
#: Envoy's counters of the 503s it generates for a cluster, by the reason it gives (response flags UH, UF, UO).
LOCAL_REPLIES = {
    "envoy_cluster_upstream_cx_none_healthy": "no_healthy_upstream",
    "envoy_cluster_upstream_cx_connect_fail": "connect_failure",
    "envoy_cluster_upstream_rq_pending_overflow": "overflow",
}
LOCAL_REPLIES_METRIC = "canaryflow_envoy_local_replies_total"
ISTIO_METRICS = {REQUESTS: "istio_requests_total", **HISTOGRAM, **dict.fromkeys(LOCAL_REPLIES, LOCAL_REPLIES_METRIC)}
_WORKLOAD_LABELS = "destination_workload_namespace, destination_workload"


def istio_relabelling() -> list[Json]:
    """``metric_relabel_configs`` turning Envoy's per-workload cluster stats into Istio's standard metrics."""
    sources = "|".join(ISTIO_METRICS)
    workload = ["__name__", "envoy_cluster_name"]
    rules: list[Json] = [
        _rule(workload, f"(?:{sources});{CLUSTER_NAME_PATTERN}", "destination_workload_namespace", "${1}"),
        _rule(workload, f"(?:{sources});{CLUSTER_NAME_PATTERN}", "destination_workload", "${2}"),
        _rule(workload, f"{REQUESTS};{CLUSTER_NAME_PATTERN}", "reporter", "source"),
        _rule(workload, f"(?:{'|'.join(HISTOGRAM)});{CLUSTER_NAME_PATTERN}", "reporter", "destination"),
        *(_rule(workload, f"{src};{CLUSTER_NAME_PATTERN}", "reason", reason) for src, reason in LOCAL_REPLIES.items()),
        _rule(
            [*workload, "envoy_response_code"],
            f"envoy_cluster_external_upstream_rq;{CLUSTER_NAME_PATTERN};(.+)",
            "response_code",
            "${3}",
        ),
    ]
    # Renaming last: the rules above still see Envoy's names. Exact names only (see the module docstring).
    rules += [_rule(workload, f"{src};{CLUSTER_NAME_PATTERN}", "__name__", dst) for src, dst in ISTIO_METRICS.items()]
    return rules


def recording_rules() -> Json:
    """The rules deriving the destination reporter's requests from the source's, less Envoy's own 503s."""
    source = 'istio_requests_total{reporter="source", response_code%s"503"}'
    own = f"sum by ({_WORKLOAD_LABELS}) ({LOCAL_REPLIES_METRIC})"
    workload_503 = f"clamp_min({source % '='} - on({_WORKLOAD_LABELS}) group_left() {own}, 0)"
    as_destination = 'label_replace({}, "reporter", "destination", "", "")'
    return {
        "groups": [
            {
                "name": "istio-destination-reporter",
                "rules": [
                    {"record": "istio_requests_total", "expr": as_destination.format(source % "!=")},
                    {"record": "istio_requests_total", "expr": as_destination.format(workload_503)},
                ],
            }
        ]
    }


def prometheus_config(envoy_admin: str, *, scrape_interval: str = "1s", runtime_api: str | None = None) -> Json:
    """Prometheus' configuration: a job scraping Envoy's admin API every ``scrape_interval``; with ``runtime_api``
    two more on the runtime's API: its own Flagger-named metrics (``/metrics``) and the workload processes' CPU and
    memory under cAdvisor's names (``/metrics/cadvisor``), as Flagger's Grafana dashboard expects them.

    ``envoy_admin`` and ``runtime_api`` are ``host:port`` or URLs such as ``http://127.0.0.1:9901``.
    """
    target = _host_port(envoy_admin)
    runtime_jobs = [
        {"job_name": job, "metrics_path": path, "static_configs": [{"targets": [_host_port(runtime_api)]}]}
        for job, path in (("canaryflow", "/metrics"), ("cadvisor", "/metrics/cadvisor"))
    ] if runtime_api else []  # fmt: skip
    return {
        # Prometheus refuses a scrape timeout longer than the interval; its default (10s) is.
        "global": {
            "scrape_interval": scrape_interval,
            "scrape_timeout": scrape_interval,
            "evaluation_interval": scrape_interval,
        },
        "rule_files": ["rules.yml"],
        "scrape_configs": [
            {
                "job_name": "envoy",
                "metrics_path": "/stats/prometheus",
                "static_configs": [{"targets": [target]}],
                "metric_relabel_configs": istio_relabelling(),
            },
            *runtime_jobs,
        ],
    }


def _host_port(address: str) -> str:
    return urllib.parse.urlsplit(address).netloc if "://" in address else address


def _rule(source: list[str], regex: str, target: str, replacement: str) -> Json:
    return {"source_labels": source, "separator": ";", "regex": regex, "target_label": target,
            "replacement": replacement, "action": "replace"}  # fmt: skip


class PrometheusProcess:
    """Prometheus on ``127.0.0.1:port`` with its data and configuration under ``directory``."""

    def __init__(
        self,
        directory: Path,
        *,
        port: int,
        envoy_admin: str,
        log_path: Path,
        binary: str | None = None,
        scrape_interval: str = "1s",
        runtime_api: str | None = None,
    ) -> None:
        self.directory = directory
        self.port = port
        self.envoy_admin = envoy_admin
        self._log_path = log_path
        self._binary = binary
        self._scrape_interval = scrape_interval
        self._runtime_api = runtime_api
        self._process: Supervised | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.running

    @property
    def restarts(self) -> int:
        return self._process.restarts if self._process else 0

    async def ready(self) -> bool:
        try:
            async with httpx.AsyncClient(timeout=1.0, trust_env=False) as client:
                return (await client.get(f"{self.url}/-/ready")).status_code == 200
        except httpx.HTTPError:
            return False

    async def start(self, timeout: float = 15.0) -> None:
        binary = self._binary or shutil.which("prometheus") or "/usr/bin/prometheus"
        if not Path(binary).exists():
            raise ProcessError("Prometheus is not installed: apt-get install --no-install-recommends prometheus")
        config = self.write_config()
        argv = [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={self.directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--web.enable-lifecycle",
            "--storage.tsdb.retention.time=2d",
        ]
        self._process = Supervised(Command("prometheus", argv, self._log_path), self.ready)
        await self._process.start(timeout)

    def write_config(self) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / "prometheus.yml"
        # JSON is YAML: no YAML writer needed for a generated file. rule_files are relative to the config file.
        (self.directory / "rules.yml").write_text(json.dumps(recording_rules()))
        path.write_text(
            json.dumps(
                prometheus_config(
                    self.envoy_admin, scrape_interval=self._scrape_interval, runtime_api=self._runtime_api
                )
            )
        )
        return path

    async def reload(self) -> None:
        """Re-read a rewritten configuration (``--web.enable-lifecycle``)."""
        self.write_config()
        async with httpx.AsyncClient(timeout=5.0, trust_env=False) as client:
            response = await client.post(f"{self.url}/-/reload")
        if response.status_code != 200:
            raise ProcessError(f"Prometheus refused its configuration: {response.text.strip()}")

    async def stop(self) -> None:
        if self._process is not None:
            await self._process.stop()
