"""The relabelling from Envoy stats to Istio metrics, applied as Prometheus applies it (anchored regexes)."""

from __future__ import annotations

import re

import pytest

from canaryflow.local.prometheus import istio_relabelling, prometheus_config


def relabel(labels: dict[str, str]) -> dict[str, str]:
    out = dict(labels)
    for rule in istio_relabelling():
        value = rule["separator"].join(out.get(name, "") for name in rule["source_labels"])
        found = re.fullmatch(rule["regex"], value)
        if found:
            # Prometheus writes groups as ${1}; Python's expand() reads \g<1>.
            out[rule["target_label"]] = found.expand(re.sub(r"\$\{(\d)\}", r"\\g<\1>", rule["replacement"]))
    return out


def test_external_requests_of_a_workload_become_istio_requests() -> None:
    series = {"__name__": "envoy_cluster_external_upstream_rq", "envoy_cluster_name": "prod_backend-primary",
              "envoy_response_code": "503"}  # fmt: skip

    assert relabel(series) == {
        **series,
        "__name__": "istio_requests_total",
        "destination_workload": "backend-primary",
        "destination_workload_namespace": "prod",
        "reporter": "source",  # the destination reporter is derived by recording rules (Envoy's own 503s out)
        "response_code": "503",
    }


def test_envoys_own_503_counters_are_labelled_with_their_workload_and_reason() -> None:
    series = {"__name__": "envoy_cluster_upstream_cx_none_healthy", "envoy_cluster_name": "prod_backend"}

    assert relabel(series) == {
        **series,
        "__name__": "canaryflow_envoy_local_replies_total",
        "destination_workload": "backend",
        "destination_workload_namespace": "prod",
        "reason": "no_healthy_upstream",
    }


def test_latency_histogram_becomes_istio_request_duration() -> None:
    series = {"__name__": "envoy_cluster_external_upstream_rq_time_bucket", "envoy_cluster_name": "prod_backend",
              "le": "12"}  # fmt: skip

    out = relabel(series)

    assert (out["__name__"], out["destination_workload"], out["le"]) == (
        "istio_request_duration_milliseconds_bucket", "backend", "12",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("name", "cluster"),
    [
        ("envoy_cluster_upstream_rq", "prod_backend"),  # also counts mirrored copies
        ("envoy_cluster_internal_upstream_rq", "prod_backend"),  # mirrored copies
        ("envoy_cluster_external_upstream_rq_xx", "prod_backend"),  # would double-count if mapped too
        ("envoy_cluster_external_upstream_rq", "alias__prometheus"),  # not a workload
    ],
)
def test_other_series_are_left_as_envoy_wrote_them(name: str, cluster: str) -> None:
    series = {"__name__": name, "envoy_cluster_name": cluster, "envoy_response_code": "200"}

    assert relabel(series) == series


@pytest.mark.parametrize("admin", ["127.0.0.1:9901", "http://127.0.0.1:9901", "http://127.0.0.1:9901/"])
def test_one_second_scrapes_of_envoys_admin_api(admin: str) -> None:
    config = prometheus_config(admin)

    # Prometheus refuses a scrape timeout longer than the interval.
    assert config["global"] == {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"}
    assert config["scrape_configs"][0]["static_configs"] == [{"targets": ["127.0.0.1:9901"]}]
    assert config["scrape_configs"][0]["metrics_path"] == "/stats/prometheus"


def test_the_runtimes_own_metrics_and_its_processes_cadvisor_metrics_are_scraped() -> None:
    config = prometheus_config("127.0.0.1:9901", runtime_api="http://127.0.0.1:7000")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"envoy", "canaryflow", "cadvisor"}
    assert (jobs["canaryflow"]["metrics_path"], jobs["cadvisor"]["metrics_path"]) == ("/metrics", "/metrics/cadvisor")
    assert jobs["cadvisor"]["static_configs"] == [{"targets": ["127.0.0.1:7000"]}]
