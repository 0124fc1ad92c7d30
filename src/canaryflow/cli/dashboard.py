"""``canaryflow dashboard``: print (or open) the URL of the running runtime's dashboard; and the dashboard flags
that ``up`` takes."""

from __future__ import annotations

import webbrowser
from pathlib import Path
from typing import Annotated

import typer

from canaryflow.cli.client import CliError, Runtime
from canaryflow.cli.options import StateDir, flag

Token = Annotated[
    str | None,
    typer.Option("--dashboard-token", envvar="CANARYFLOW_DASHBOARD_TOKEN", show_default=False,
                 help="Token that allows the dashboard's actions (promote, abort, retry, gates); none: read-only."),
]  # fmt: skip
TokenFile = Annotated[
    Path | None,
    typer.Option("--dashboard-token-file", show_default=False, help="File holding the dashboard token."),
]
Listen = Annotated[
    str, typer.Option("--dashboard-listen", help="HOST:PORT of the dashboard (default: 127.0.0.1, a free port).")
]


def settings(listen: str, token: str | None, token_file: Path | None) -> tuple[str, str | None]:
    """What ``Runtime.start`` passes on: the address and the token (from the flag, or read from the file)."""
    if token and token_file:
        raise typer.BadParameter("give --dashboard-token or --dashboard-token-file, not both")
    if token_file is not None:
        try:
            token = token_file.read_text().strip()
        except OSError as exc:
            raise typer.BadParameter(f"{token_file}: {exc.strerror}", param_hint="--dashboard-token-file") from None
        if not token:
            raise typer.BadParameter(f"{token_file} is empty", param_hint="--dashboard-token-file")
    return listen, token or None


def url(runtime: Runtime) -> str:
    runtime.url()  # raises when no runtime is running
    found = ((runtime.dirs.record() or {}).get("endpoints") or {}).get("dashboard")
    if not found:
        raise CliError("this runtime serves no dashboard (it was started by an older canaryflow): restart it")
    return str(found)


def register(app: typer.Typer) -> None:
    @app.command()
    def dashboard(
        open_: Annotated[bool, flag("--open", help="Open it in the default browser.")] = False,
        state_dir: StateDir = None,
    ) -> None:
        """Print the URL of the running runtime's dashboard (every canary live, GitOps, the Istio Canary view)."""
        try:
            address = url(Runtime(state_dir))
        except CliError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        typer.echo(address)
        if open_:
            webbrowser.open(address)
