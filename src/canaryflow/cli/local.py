"""Commands of the local runtime: up, down, status, apply, delete, get, describe, events, logs, promote, abort,
retry. Each talks to the runtime's API (``canaryflow.local.api``) on 127.0.0.1."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.live import Live

from canaryflow.cli import dashboard as dashboard_cli
from canaryflow.cli import gitops, reading, view
from canaryflow.cli.client import CliError, Runtime, sources
from canaryflow.cli.options import (
    AllNamespaces,
    Files,
    Namespace,
    StateDir,
    Watch,
    fail,
    flag,
    guarded,
    out,
    output_option,
)
from canaryflow.cli.progress import waiting
from canaryflow.local import snapshot


def _kinds(incomplete: str) -> list[str]:
    """What ``get``/``describe`` complete KIND with in a shell."""
    return sorted(k for k in {*snapshot.KINDS, *gitops.LISTINGS} if k.startswith(incomplete))


Kind = Annotated[
    str,
    typer.Argument(metavar="KIND", autocompletion=_kinds, help="canaries, deployments, services, ... (see above)."),
]
Name = Annotated[str, typer.Argument(metavar="NAME", help="The object's name.")]
Output = Annotated[str | None, output_option("json", "yaml")]
GetOutput = Annotated[str | None, output_option("json", "yaml", "wide")]
GetNamespace = Annotated[
    str | None,
    typer.Option("-n", "--namespace", metavar="NAMESPACE", show_default=False,
                 help="The namespace (default: default; flux-system for GitOps objects)."),
]  # fmt: skip


def register(app: typer.Typer) -> None:
    @app.command()
    def up(
        filename: Files = None,
        detach: Annotated[bool, flag("--detach", "-d", help="Return once everything is ready.")] = False,
        time_scale: Annotated[
            float, typer.Option(metavar="FACTOR", help="Shorten every analysis interval (0.1: 15s → 1.5s).")
        ] = 1.0,
        min_interval: Annotated[
            float, typer.Option(metavar="SECONDS", help="Floor of analysis intervals, before scaling.")
        ] = 10.0,
        judge: Annotated[bool, flag("--judge", help="The sequential judge for every canary.")] = False,
        git: Annotated[
            str | None, typer.Option("--git", metavar="URL", help="Follow this git repository (as flux bootstrap).")
        ] = None,
        branch: Annotated[str, typer.Option(metavar="BRANCH", help="Branch to follow, with --git.")] = "main",
        path: Annotated[str, typer.Option(metavar="PATH", help="Path in the repository to apply, with --git.")] = "./",
        state_dir: StateDir = None,
        dashboard_token: dashboard_cli.Token = None,
        dashboard_token_file: dashboard_cli.TokenFile = None,
        dashboard_listen: dashboard_cli.Listen = "",
    ) -> None:
        """Start Envoy, Prometheus, the load tester and the control loop on loopback, then apply the files.

        With --git the runtime follows a repository as Flux does: it creates the flux-system GitRepository and
        Kustomization for --path, and applies each new commit."""
        runtime = Runtime(state_dir)
        try:
            running = runtime.dirs.running_pid()
            if running is not None:
                out().print(f"a runtime is already running (pid {running}), state in {runtime.dirs.root}")
            else:
                dashboard = dashboard_cli.settings(dashboard_listen, dashboard_token, dashboard_token_file)
                with waiting("starting Envoy, Prometheus, the load tester and the control loop"):
                    pid = runtime.start(time_scale, min_interval, judge=judge, dashboard=dashboard)
                out().print(f"runtime started (pid {pid}), state in {runtime.dirs.root}")
            out().print(f"dashboard: {dashboard_cli.url(runtime)}")
            if filename:
                _apply(runtime, filename, None, delete=False)
            if git:
                text = gitops.bootstrap(git, branch, path)
                _send(runtime, [{"source": "bootstrap (--git)", "text": text}], None, delete=False)
        except CliError as exc:
            raise fail(exc) from None
        if detach:
            return
        try:
            _watch(runtime)
        except KeyboardInterrupt:
            runtime.stop()
            out().print("runtime stopped")

    @app.command()
    def down(state_dir: StateDir = None) -> None:
        """Stop the runtime and every process it started."""
        stopped = Runtime(state_dir).stop()
        out().print("runtime stopped" if stopped else "no runtime was running")

    @app.command()
    def status(output: Output = None, state_dir: StateDir = None) -> None:
        """The runtime's PID, endpoints, gateways and the health of each process."""
        guarded(lambda: _status(Runtime(state_dir), output))

    @app.command()
    def apply(filename: Files = None, namespace: Namespace = None, state_dir: StateDir = None) -> None:
        """Apply manifests (a directory with kustomization.yaml is built with kubectl kustomize); all or nothing."""
        guarded(lambda: _apply(Runtime(state_dir), filename or [], namespace, delete=False))

    @app.command()
    def delete(filename: Files = None, namespace: Namespace = None, state_dir: StateDir = None) -> None:
        """Delete the objects in the manifests."""
        guarded(lambda: _apply(Runtime(state_dir), filename or [], namespace, delete=True))

    @app.command()
    def get(
        kind: Kind,
        name: Annotated[str | None, typer.Argument(metavar="NAME", help="One object, by name.")] = None,
        namespace: GetNamespace = None,
        all_namespaces: AllNamespaces = False,
        output: GetOutput = None,
        watch: Watch = False,
        state_dir: StateDir = None,
    ) -> None:
        """List canaries, deployments, services, metrictemplates, alertproviders, configmaps, secrets; or GitOps
        objects: sources, kustomizations, images, receivers. Without a running runtime, what it saved on disk."""
        if watch and output in ("json", "yaml"):
            raise typer.BadParameter("-w prints tables: use it without -o json|yaml", param_hint="--watch")
        flux = kind in gitops.LISTINGS
        ns = None if all_namespaces else namespace or (gitops.DEFAULT_NAMESPACE if flux else "default")
        guarded(lambda: reading.get(Runtime(state_dir), kind, name, ns, output, watch))

    @app.command()
    def describe(kind: Kind, name: Name, namespace: Namespace = None, state_dir: StateDir = None) -> None:
        """A canary's spec summary, status, the timeline of its current run and its events (any other object:
        its fields). Without a running runtime, what it saved on disk."""
        guarded(lambda: reading.describe(Runtime(state_dir), kind, name, namespace or "default"))

    @app.command()
    def events(
        canary: Annotated[
            str | None, typer.Argument(metavar="CANARY", help="NAME (in -n's namespace) or NAMESPACE/NAME.")
        ] = None,
        namespace: Namespace = None,
        all_namespaces: AllNamespaces = False,
        watch: Watch = False,
        limit: Annotated[int, typer.Option(metavar="N", help="How many of the latest events to show.")] = 100,
        output: Output = None,
        state_dir: StateDir = None,
    ) -> None:
        """The latest events of the canaries of a namespace (-A: of all), or of one canary. Without a running
        runtime, what it saved on disk."""
        ns = None if all_namespaces else namespace or "default"
        key = None if canary is None else canary if "/" in canary else f"{namespace or 'default'}/{canary}"
        if watch and output is not None:
            raise typer.BadParameter("-w prints a table: use it without -o", param_hint="--watch")
        guarded(lambda: reading.events(Runtime(state_dir), key, ns, limit, watch, output))

    @app.command()
    def logs(
        target: Annotated[str, typer.Argument(metavar="deployment/NAME", help="The deployment (or NAME-primary).")],
        namespace: Namespace = None,
        tail: Annotated[
            int, typer.Option("--tail", "--lines", metavar="N", help="Lines to show from the end of each log; -1: all.")
        ] = 100,
        follow: Annotated[bool, flag("-f", "--follow", help="Then print the lines as they are written.")] = False,
        state_dir: StateDir = None,
    ) -> None:
        """A deployment's process logs (one file per replica), read from the state directory."""
        kind, _, name = target.partition("/")
        if kind not in ("deployment", "deploy", "deployments") or not name:
            raise typer.BadParameter(f"{target!r}: expected deployment/NAME", param_hint="deployment/NAME")
        guarded(lambda: reading.logs(Runtime(state_dir), namespace or "default", name, tail, follow))

    for operation, help_text in (
        ("promote", "Skip the rest of the analysis and promote the canary now."),
        ("abort", "Roll the canary back now."),
        ("retry", "Run the analysis of a failed revision again, unchanged."),
    ):
        _operation_command(app, operation, help_text)
    gitops.register(app)


def _operation_command(app: typer.Typer, operation: str, help_text: str) -> None:
    def command(
        kind: Annotated[str, typer.Argument(metavar="canary", help="canary")],
        name: Name,
        namespace: Namespace = None,
        state_dir: StateDir = None,
    ) -> None:
        if kind not in ("canary", "canaries"):
            raise typer.BadParameter(f"{operation} works on canaries: canaryflow {operation} canary NAME")
        key = f"{namespace or 'default'}/{name}"
        guarded(lambda: Runtime(state_dir).json("POST", f"/canaries/{key}/{operation}"))
        out().print(f"canary {key}: {operation} requested")

    command.__doc__ = help_text + " Refused (exit 1, with the reason) when the canary's phase does not allow it."
    app.command(name=operation)(command)


def _status(runtime: Runtime, output: str | None) -> None:
    data = runtime.json("GET", "/status")
    if output is not None:
        typer.echo(view.dump(data, output))
        return
    console = out()
    console.print(f"runtime pid {data.get('pid')}, state in {runtime.dirs.root}", highlight=False)
    endpoints = {k: v for k, v in data["endpoints"].items() if k != "gateways"}
    for name, url in endpoints.items():
        console.print(f"{name:>12}: {url}", highlight=False)
    gateways = view.Rows(("GATEWAY", "URL"), list(data["endpoints"].get("gateways", {}).items()), [])
    processes = [(p["name"], str(p.get("pid") or ""), str(p.get("health", "")), str(p.get("restarts", 0)))
                 for p in data["processes"]]  # fmt: skip
    for rows in (gateways, view.Rows(("PROCESS", "PID", "HEALTH", "RESTARTS"), processes, [])):
        console.print("")
        reading.print_rows(rows)


def _apply(runtime: Runtime, paths: list[str], namespace: str | None, delete: bool) -> None:
    _send(runtime, sources(paths), namespace, delete)


def _send(runtime: Runtime, texts: list[dict[str, str]], namespace: str | None, delete: bool) -> None:
    response = runtime.request(
        "POST", "/delete" if delete else "/apply", json={"sources": texts, "namespace": namespace}
    )
    data = response.json()
    if response.status_code == 422:
        raise CliError("nothing applied:\n" + "\n".join(data["problems"]))
    for change in data["changes"]:
        out().print(change, highlight=False, markup=False)


def _watch(runtime: Runtime) -> None:
    header = f"canaryflow runtime in {runtime.dirs.root} — Ctrl-C stops it"
    console = out()
    with Live(console=console, refresh_per_second=2) as screen:
        while True:
            canaries = runtime.json("GET", "/objects/canaries")["items"]
            found = runtime.json("GET", "/events", params={"limit": 12})
            screen.update(view.live(canaries, found, header, console.width))
            time.sleep(1)
