"""``canaryflow``: the command-line entry point; commands are registered here, implemented beside it."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from canaryflow import __version__
from canaryflow.cli.options import output_option

app = typer.Typer(
    name="canaryflow",
    help="Progressive delivery (canary, A/B, blue/green, mirroring) with Flagger-compatible manifests.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

Files = Annotated[
    list[str],
    typer.Option("-f", "--filename", metavar="PATH", help="File, directory or - (stdin); repeatable.",
                 show_default=False),
]  # fmt: skip


def _print_version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", metavar="", is_eager=True, callback=_print_version, help="Print the version."),
    ] = False,
) -> None:
    """Progressive delivery (canary, A/B, blue/green, mirroring) with Flagger-compatible manifests."""


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
        typer.Option(
            "--value", metavar="METRIC=V[,V...]", help="A metric's value, or values tick by tick; repeatable."
        ),
    ] = None,
    gate: Annotated[
        list[str] | None,
        typer.Option("--gate", metavar="WEBHOOK=open|closed[,...]", help="A gate's answer tick by tick; repeatable."),
    ] = None,
    name: Annotated[str | None, typer.Option(metavar="NAME", help="Canary name when the files hold several.")] = None,
    output: Annotated[str, output_option("table", "json", "yaml")] = "table",
    rps: Annotated[
        float | None,
        typer.Option(metavar="RATE", help="Simulate Poisson traffic at this rate; compare with and without the judge."),
    ] = None,
    baseline_error: Annotated[
        float, typer.Option(metavar="RATE", help="The primary's error rate, with --rps (0.001: 0.1 %).")
    ] = 0.001,
    fault: Annotated[
        str, typer.Option(metavar="FAULT", help="The canary's fault, with --rps: healthy, errors×K or latency+P%.")
    ] = "healthy",
    runs: Annotated[int, typer.Option(metavar="N", help="Seeded runs per policy, with --rps.")] = 20,
) -> None:
    """Predict a release's rollout with the real engine on simulated time: every tick, the outcome, the time
    it takes and the canary's traffic exposure. With --rps: many seeded runs on simulated traffic, with and
    without the sequential judge (time to promote or roll back, canary and failed requests, error rates)."""
    from canaryflow.cli import simulation

    if rps is None:
        raise typer.Exit(simulation.run(filename, value or [], gate or [], name, output, sys.stdout, sys.stderr))
    from canaryflow.cli import trials

    try:
        canary = simulation.pick(filename, name)
        code = trials.run(canary, rps, baseline_error, fault, runs, output, sys.stdout)
    except (simulation.UsageError, trials.UsageError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        raise typer.Exit(2) from None
    raise typer.Exit(code)


@app.command()
def demo(
    time_scale: Annotated[
        float, typer.Option(metavar="FACTOR", help="Shorten analysis intervals (0.2: the seed's 15s become 3s).")
    ] = 0.2,
    keep: Annotated[bool, typer.Option(metavar="", help="Keep the working copy and state directory.")] = False,
) -> None:
    """Run the seed scenario on the local runtime: progressive canary, A/B test, rollback of a faulty release."""
    from canaryflow.cli import demo as demo_command

    raise typer.Exit(demo_command.run(sys.stdout, time_scale=time_scale, keep=keep))


kube = typer.Typer(help="The Kubernetes side: see what the operator would create.", no_args_is_help=True)
app.add_typer(kube, name="kube")


@kube.command("render")
def kube_render(
    filename: Files,
    weight: Annotated[
        int, typer.Option(metavar="PERCENT", help="The canary's share of traffic to render (0..100).")
    ] = 0,
    phase: Annotated[
        str, typer.Option(metavar="PHASE", help="Canary phase (default: Initialized at 0, Progressing above).")
    ] = "",
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
from canaryflow.cli import release as _release  # noqa: E402

_release.register(app)

_dashboard.register(app)


def main() -> None:  # pragma: no cover - console script
    app()
