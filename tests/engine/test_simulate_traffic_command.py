"""``canaryflow simulate --rps``: what a user reads when comparing the thresholds with the judge."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from canaryflow.cli.main import app

SEED = str(Path(__file__).resolve().parents[2] / "examples/gitops-istio/apps/backend/canary.yaml")


def test_a_10x_error_regression_is_promoted_by_the_thresholds_and_rolled_back_by_the_judge() -> None:
    result = CliRunner().invoke(app, ["simulate", "-f", SEED, "--rps", "1000", "--fault", "errors×10", "--runs", "5",
                                      "-o", "json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = {row["policy"]: row for row in json.loads(result.output)["results"]}
    assert rows["judge"]["rolledBack"] == 5 and rows["judge"]["missRate"] == 0
    assert rows["thresholds"]["missRate"] > 0  # the seed's 1 % error-rate check lets some 1 % canaries through
    assert rows["judge"]["failedRequests"] * 10 < rows["thresholds"]["failedRequests"]


def test_the_table_names_the_policies_and_the_false_rollback_rate() -> None:
    result = CliRunner().invoke(app, ["simulate", "-f", SEED, "--rps", "500", "--runs", "3"])
    assert result.exit_code == 0, result.output
    assert "thresholds" in result.output and "judge" in result.output and "false rollbacks" in result.output


def test_a_fault_it_cannot_read_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["simulate", "-f", SEED, "--rps", "500", "--fault", "errors+5"])
    assert result.exit_code == 2
    assert "expected healthy, errors×K (e.g. errors×5) or latency+P%" in result.output
