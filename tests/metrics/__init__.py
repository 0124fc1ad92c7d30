"""Tests of the metrics package: Prometheus semantics, query templates, providers, the metric runner."""
