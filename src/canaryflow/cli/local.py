"""Commands of the local runtime: up, down, status, apply, delete, get, describe, events, logs, promote, abort,
retry. Each talks to the runtime's API (``canaryflow.local.api``) on 127.0.0.1."""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated

import typer
from rich.console import Console
from rich.live import Live

from canaryflow.cli import dashboard as dashboard_cli
from canaryflow.cli import gitops, view
from canaryflow.cli.client import CliError, Runtime, sources

StateDir = Annotated[
    str | None,
    typer.Option("--state-dir", envvar="CANARYFLOW_STATE_DIR", help="Default ./.canaryflow", show_default=False),
]
Files = Annotated[list[str] | None, typer.Option("-f", "--filename", help="File, directory or -; repeatable.")]
Namespace = Annotated[str | None, typer.Option("-n", "--namespace")]
Output = Annotated[str | None, typer.Option("-o", "--output", help="json, yaml or wide")]

console = Console(width=None if sys.stdout.isatty() else 200)


def _fail(error: Exception) -> typer.Exit:
    Console(stderr=True).print(f"[red]error:[/red] {error}")
    return typer.Exit(1)


def register(app: typer.Typer) -> None:
    @app.command()
    def up(
        filename: Files = None,
        detach: Annotated[bool, typer.Option("--detach", "-d", help="Return once everything is ready.")] = False,
        time_scale: Annotated[float, typer.Option(help="Shorten every analysis interval (0.1: 15s → 1.5s).")] = 1.0,
        min_interval: Annotated[float, typer.Option(help="Floor of analysis intervals, before scaling.")] = 10.0,
        git: Annotated[
            str | None, typer.Option("--git", help="Follow this git repository (as flux bootstrap).")
        ] = None,
        branch: Annotated[str, typer.Option(help="Branch to follow, with --git.")] = "main",
        path: Annotated[str, typer.Option(help="Path in the repository to apply, with --git.")] = "./",
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
            if not runtime.running:
                dashboard = dashboard_cli.settings(dashboard_listen, dashboard_token, dashboard_token_file)
                pid = runtime.start(time_scale, min_interval, dashboard=dashboard)
                console.print(f"runtime started (pid {pid}), state in {runtime.dirs.root}")
            console.print(f"dashboard: {dashboard_cli.url(runtime)}")
            if filename:
                _apply(runtime, filename, None, delete=False)
            if git:
                text = gitops.bootstrap(git, branch, path)
                _send(runtime, [{"source": "bootstrap (--git)", "text": text}], None, delete=False)
        except CliError as exc:
            raise _fail(exc) from None
        if detach:
            return
        try:
            _watch(runtime)
        except KeyboardInterrupt:
            runtime.stop()
            console.print("runtime stopped")

    @app.command()
    def down(state_dir: StateDir = None) -> None:
        """Stop the runtime and every process it started."""
        stopped = Runtime(state_dir).stop()
        console.print("runtime stopped" if stopped else "no runtime was running")

    @app.command()
    def status(output: Output = None, state_dir: StateDir = None) -> None:
        """The runtime's endpoints and the health of each process."""
        try:
            data = Runtime(state_dir).json("GET", "/status")
        except CliError as exc:
            raise _fail(exc) from None
        if output == "json":
            typer.echo(json.dumps(data, indent=2))
            return
        for name, url in data["endpoints"].items():
            console.print(f"{name:>12}: {url}")
        for process in data["processes"]:
            console.print(f"  {process['name']:<28} pid {process.get('pid')}  {process.get('health', '')}")

    @app.command()
    def apply(filename: Files = None, namespace: Namespace = None, state_dir: StateDir = None) -> None:
        """Apply manifests (a directory with kustomization.yaml is built with kubectl kustomize); all or nothing."""
        try:
            _apply(Runtime(state_dir), filename or [], namespace, delete=False)
        except CliError as exc:
            raise _fail(exc) from None

    @app.command()
    def delete(filename: Files = None, namespace: Namespace = None, state_dir: StateDir = None) -> None:
        """Delete the objects in the manifests."""
        try:
            _apply(Runtime(state_dir), filename or [], namespace, delete=True)
        except CliError as exc:
            raise _fail(exc) from None

    @app.command()
    def get(
        kind: str,
        name: Annotated[str | None, typer.Argument()] = None,
        namespace: Namespace = None,
        output: Output = None,
        watch: Annotated[bool, typer.Option("-w", "--watch")] = False,
        state_dir: StateDir = None,
    ) -> None:
        """List canaries, deployments, services, metrictemplates, alertproviders; or GitOps objects: sources,
        kustomizations, images, receivers."""
        runtime = Runtime(state_dir)
        params = {k: v for k, v in (("namespace", namespace), ("name", name)) if v}
        try:
            while kind in gitops.LISTINGS:
                gitops.show(runtime, kind, namespace, output, console)
                if not watch:
                    return
                time.sleep(2)
            while True:
                listing = runtime.json("GET", f"/objects/{kind}", params=params)
                if output in ("json", "yaml"):
                    typer.echo(view.dump(listing, output))
                else:
                    console.print(view.table_for(kind, listing["items"], output == "wide"))
                if not watch:
                    return
                time.sleep(2)
        except CliError as exc:
            raise _fail(exc) from None

    @app.command()
    def describe(kind: str, name: str, namespace: Namespace = None, state_dir: StateDir = None) -> None:
        """A canary's spec summary, status and events."""
        runtime = Runtime(state_dir)
        try:
            listing = runtime.json(
                "GET", f"/objects/{kind}", params={"name": name, "namespace": namespace or "default"}
            )
            item = listing["items"][0]
            key = f"{item['metadata']['namespace']}/{item['metadata']['name']}"
            events = runtime.json("GET", "/events", params={"canary": key, "limit": 50})
        except CliError as exc:
            raise _fail(exc) from None
        console.print(view.dump({"metadata": item["metadata"], "status": item.get("status", {})}, "yaml"))
        console.print(view.events_table(events))

    @app.command()
    def events(canary: Annotated[str | None, typer.Argument(help="namespace/name")] = None,
               state_dir: StateDir = None) -> None:  # fmt: skip
        """Recent events (of one canary, or all)."""
        try:
            found = Runtime(state_dir).json("GET", "/events", params={"canary": canary} if canary else {})
        except CliError as exc:
            raise _fail(exc) from None
        console.print(view.events_table(found))

    @app.command()
    def logs(target: Annotated[str, typer.Argument(help="deployment/NAME")], namespace: Namespace = None,
             lines: int = 100, state_dir: StateDir = None) -> None:  # fmt: skip
        """The last lines of a deployment's process logs."""
        kind, _, name = target.partition("/")
        if kind not in ("deployment", "deploy", "deployments") or not name:
            raise _fail(CliError("logs takes deployment/NAME"))
        try:
            text = Runtime(state_dir).request("GET", f"/logs/{namespace or 'default'}/{name}", params={"lines": lines})
        except CliError as exc:
            raise _fail(exc) from None
        sys.stdout.write(text.text)

    for operation, help_text in (
        ("promote", "Skip the rest of the analysis and promote the canary now."),
        ("abort", "Roll the canary back now."),
        ("retry", "Run the analysis of a failed revision again, unchanged."),
    ):
        _operation_command(app, operation, help_text)
    gitops.register(app, console, _fail)


def _operation_command(app: typer.Typer, operation: str, help_text: str) -> None:
    def command(
        kind: Annotated[str, typer.Argument(help="canary")],
        name: str,
        namespace: Namespace = None,
        state_dir: StateDir = None,
    ) -> None:
        if kind not in ("canary", "canaries"):
            raise _fail(CliError(f"{operation} works on canaries: canaryflow {operation} canary NAME"))
        try:
            Runtime(state_dir).json("POST", f"/canaries/{namespace or 'default'}/{name}/{operation}")
        except CliError as exc:
            raise _fail(exc) from None
        console.print(f"canary {namespace or 'default'}/{name}: {operation} requested")

    command.__doc__ = help_text
    app.command(name=operation)(command)


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
        console.print(change)


def _watch(runtime: Runtime) -> None:
    header = f"canaryflow runtime in {runtime.dirs.root} — Ctrl-C stops it"
    with Live(console=console, refresh_per_second=2) as screen:
        while True:
            canaries = runtime.json("GET", "/objects/canaries")["items"]
            events = runtime.json("GET", "/events", params={"limit": 12})
            screen.update(view.live(canaries, events, header))
            time.sleep(1)
