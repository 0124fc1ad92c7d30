"""``canaryflow dashboard`` and the dashboard flags of ``up``, as a user types them."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer.rich_utils
from typer.testing import CliRunner

from canaryflow.cli.main import app


def test_dashboard_without_a_running_runtime_says_how_to_start_one(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["dashboard", "--state-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "no runtime is running" in result.output and "canaryflow up" in result.output


def test_a_token_and_a_token_file_together_or_an_empty_file_are_usage_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # typer draws usage errors in an 80-column box: a long temporary path would wrap the message mid-phrase.
    monkeypatch.setattr(typer.rich_utils, "MAX_WIDTH", 400)
    empty = tmp_path / "token"
    empty.write_text("\n")
    both = ["up", "--state-dir", str(tmp_path), "--dashboard-token", "x", "--dashboard-token-file", str(empty)]
    result = CliRunner().invoke(app, both)
    assert result.exit_code == 2 and "not both" in result.output
    result = CliRunner().invoke(app, ["up", "--state-dir", str(tmp_path), "--dashboard-token-file", str(empty)])
    assert result.exit_code == 2 and "is empty" in result.output
    assert not (tmp_path / "runtime.json").exists(), "nothing was started"
