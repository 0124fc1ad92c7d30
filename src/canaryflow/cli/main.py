"""``canaryflow``: the command-line entry point; commands are registered here, implemented beside it."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from canaryflow import __version__

app = typer.Typer(
    name="canaryflow",
    help="Progressive delivery (canary, A/B, blue/green, mirroring) with Flagger-compatible manifests.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

Files = Annotated[
    list[str],
    typer.Option("-f", "--filename", help="File, directory or - (stdin); repeatable.", show_default=False),
]


@app.command()
def version() -> None:
    """Print canaryflow's version."""
    typer.echo(__version__)


@app.command()
def validate(filename: Files) -> None:
    """Validate Canary, MetricTemplate and AlertProvider manifests; other kinds are listed as skipped."""
    from canaryflow.cli import resources

    raise typer.Exit(resources.run_validate(filename, sys.stdout, sys.stderr))


@app.command()
def crds() -> None:
    """Print the CustomResourceDefinitions generated from canaryflow's models."""
    from canaryflow.cli import resources

    raise typer.Exit(resources.run_crds(sys.stdout))


@app.command()
def simulate(
    filename: Files,
    value: Annotated[
        list[str] | None,
        typer.Option("--value", help="metric=VALUE or metric=V1,V2,... (tick by tick); repeatable."),
    ] = None,
    gate: Annotated[
        list[str] | None,
        typer.Option("--gate", help="webhook=closed|open or webhook=closed,closed,open; repeatable."),
    ] = None,
    name: Annotated[str | None, typer.Option(help="Canary name when the files hold several.")] = None,
    output: Annotated[str, typer.Option("-o", "--output", help="table or json")] = "table",
) -> None:
    """Predict a release's rollout with the real engine on simulated time: every tick, the outcome, the time
    it takes and the canary's traffic exposure."""
    from canaryflow.cli import simulation

    raise typer.Exit(simulation.run(filename, value or [], gate or [], name, output, sys.stdout, sys.stderr))


@app.command()
def demo(
    time_scale: Annotated[
        float, typer.Option(help="Shorten analysis intervals (0.2: the seed's 15s become 3s).")
    ] = 0.2,
    keep: Annotated[bool, typer.Option(help="Keep the working copy and state directory.")] = False,
) -> None:
    """Run the seed scenario on the local runtime: progressive canary, A/B test, rollback of a faulty release."""
    from canaryflow.cli import demo as demo_command

    raise typer.Exit(demo_command.run(sys.stdout, time_scale=time_scale, keep=keep))


kube = typer.Typer(help="The Kubernetes side: see what the operator would create.", no_args_is_help=True)
app.add_typer(kube, name="kube")


@kube.command("render")
def kube_render(
    filename: Files,
    weight: Annotated[int, typer.Option(help="The canary's share of traffic to render (0..100).")] = 0,
    phase: Annotated[str, typer.Option(help="Canary phase (default: Initialized at 0, Progressing above).")] = "",
) -> None:
    """Print, offline, every object the operator would create or patch for these manifests (a YAML stream)."""
    from canaryflow.kube.render import cli as render_cli

    raise typer.Exit(render_cli.run_render(filename, weight, phase, sys.stdout, sys.stderr))


from canaryflow.cli import local as _local  # noqa: E402

_local.register(app)

from canaryflow.cli import operator as _operator  # noqa: E402

_operator.register(app)

from canaryflow.cli import kubegitops as _kubegitops  # noqa: E402

_kubegitops.register(app)

from canaryflow.cli import dashboard as _dashboard  # noqa: E402

_dashboard.register(app)


def main() -> None:  # pragma: no cover - console script
    app()
