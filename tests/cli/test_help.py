"""The CLI's own surface: --version, -h, shell completion, help texts, simulate's names, progress on stderr."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from typer.testing import CliRunner

from canaryflow import __version__
from canaryflow.cli.main import app
from canaryflow.cli.progress import waiting

CANARY = str(Path(__file__).resolve().parents[2] / "examples" / "gitops-istio" / "apps" / "backend" / "canary.yaml")


def commands(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command under ``group`` (typer's own click copy: walked by its methods, not its classes)."""
    ctx = group.context_class(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        yield (*path, name), command
        if hasattr(command, "list_commands"):
            yield from commands(command, (*path, name))


def test_version_and_short_help() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert (result.exit_code, result.stdout.strip()) == (0, __version__)
    result = CliRunner().invoke(app, ["get", "-h"])
    assert result.exit_code == 0 and "--all-namespaces" in result.stdout


def test_every_option_of_every_command_is_described_without_type_placeholders() -> None:
    found = list(commands(typer.main.get_command(app)))
    assert len(found) > 20
    for path, command in found:
        for param in command.params:
            if param.param_type_name == "option":
                assert param.help, f"canaryflow {' '.join(path)} {param.opts[-1]}: no description"
        text = CliRunner().invoke(app, [*path, "--help"], terminal_width=200).stdout
        assert "<bool>" not in text and "<list[" not in text, f"canaryflow {' '.join(path)} --help:\n{text}"


def test_shell_completion_is_offered_and_completes_commands() -> None:
    result = CliRunner().invoke(app, ["--help"], terminal_width=200)
    assert "--install-completion" in result.stdout and "--show-completion" in result.stdout
    completed = CliRunner().invoke(
        app, [], prog_name="canaryflow",
        env={"_CANARYFLOW_COMPLETE": "complete_bash", "COMP_WORDS": "canaryflow descr", "COMP_CWORD": "1"},
    )  # fmt: skip
    assert "describe" in completed.stdout.split()
    completed = CliRunner().invoke(
        app, [], prog_name="canaryflow",
        env={"_CANARYFLOW_COMPLETE": "complete_bash", "COMP_WORDS": "canaryflow get kustom", "COMP_CWORD": "2"},
    )  # fmt: skip
    assert completed.stdout.split() == ["kustomization", "kustomizations"]


def test_simulate_refuses_a_metric_or_gate_the_canary_does_not_have() -> None:
    result = CliRunner().invoke(app, ["simulate", "-f", CANARY, "--value", "errorrate=5"])
    assert result.exit_code == 2
    assert "--value errorrate: prod/backend has no metric 'errorrate'; did you mean error-rate?" in result.stderr
    result = CliRunner().invoke(app, ["simulate", "-f", CANARY, "--gate", "approval=open"])
    assert result.exit_code == 2
    assert "has no webhook 'approval'; its webhooks: conformance-test, load-test" in result.stderr
    result = CliRunner().invoke(app, ["simulate", "-f", CANARY, "--value", "error-rate=0", "-o", "json"])
    assert result.exit_code == 0 and '"outcome": "Succeeded"' in result.stdout
    result = CliRunner().invoke(app, ["simulate", "-f", CANARY, "--value", "error-rate=0", "-o", "yaml"])
    assert result.exit_code == 0 and "outcome: Succeeded" in result.stdout


def test_progress_shows_on_a_terminal_and_stays_out_of_pipes() -> None:
    screen = io.StringIO()
    with waiting("starting the runtime", Console(file=screen, force_terminal=True, width=80)) as say:
        say("Envoy ready")
    assert "starting the runtime" in screen.getvalue()
    piped = io.StringIO()
    with waiting("starting the runtime", Console(file=piped, width=80)) as say:
        say("Envoy ready")
    assert piped.getvalue() == ""
