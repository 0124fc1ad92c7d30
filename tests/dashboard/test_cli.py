"""``canaryflow dashboard`` and the dashboard flags of ``up``, as a user types them."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from canaryflow.cli.main import app


def test_dashboard_without_a_running_runtime_says_how_to_start_one(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["dashboard", "--state-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "no runtime is running" in result.output and "canaryflow up" in result.output


def test_a_token_and_a_token_file_together_or_an_empty_file_are_usage_errors(tmp_path: Path) -> None:
    empty = tmp_path / "token"
    empty.write_text("\n")
    both = ["up", "--state-dir", str(tmp_path), "--dashboard-token", "x", "--dashboard-token-file", str(empty)]
    result = CliRunner().invoke(app, both)
    assert result.exit_code == 2 and "not both" in result.output
    result = CliRunner().invoke(app, ["up", "--state-dir", str(tmp_path), "--dashboard-token-file", str(empty)])
    assert result.exit_code == 2 and "is empty" in result.output
    assert not (tmp_path / "runtime.json").exists(), "nothing was started"
