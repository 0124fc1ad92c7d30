"""``canaryflow operator``: run the Kubernetes operator (kopf) in this process until SIGINT or SIGTERM.

Every flag has an environment variable, so the Deployment and the Helm chart can configure it either way; a
flag given on the command line wins. Invalid values (an unknown mesh provider, a malformed --listen) stop the
command before it connects to anything, with the flag named.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from typing import Annotated, ParamSpec, TypeVar

import typer

from canaryflow.cli import dashboard as dashboard_cli

LOG_LEVELS = ("debug", "info", "warning", "error")
#: ``--log-level`` of the in-cluster commands (the operator and the GitOps controller).
LogLevel = Annotated[str, typer.Option(envvar="CANARYFLOW_LOG_LEVEL", help="debug, info, warning, error.")]

P = ParamSpec("P")
T = TypeVar("T")


def parse_log_level(value: str) -> str:
    """``--log-level`` in lower case; anything else than LOG_LEVELS is a usage error naming the flag."""
    level = value.lower()
    if level not in LOG_LEVELS:
        raise typer.BadParameter(f"{value!r}: must be one of {', '.join(LOG_LEVELS)}", param_hint="--log-level")
    return level


def namespaces_from(flags: list[str] | None, env: str | None) -> tuple[str, ...]:
    """``--namespace`` flags, else the comma list in CANARYFLOW_NAMESPACES; empty means all namespaces."""
    raw = flags if flags else (env or "").split(",")
    names = tuple(dict.fromkeys(n.strip() for n in raw if n.strip()))
    return names


def from_flags(make: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """``make(*args, **kwargs)``: the options a command runs with; a ValueError (a malformed flag's value) is a
    usage error, before the command connects to anything."""
    try:
        return make(*args, **kwargs)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def log_to_stderr(level: str) -> None:
    """Log at ``level`` (one of LOG_LEVELS) to stderr, each line with its time, level and logger."""
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def register(app: typer.Typer) -> None:
    @app.command()
    def operator(
        namespace: Annotated[
            list[str] | None,
            typer.Option(
                "--namespace",
                help="Watch this namespace (repeatable); default: all namespaces. "
                "Env CANARYFLOW_NAMESPACES (comma list).",
            ),
        ] = None,
        metrics_server: Annotated[
            str, typer.Option(envvar="CANARYFLOW_METRICS_SERVER", help="Prometheus for built-in checks and queries.")
        ] = "http://prometheus.istio-system:9090",
        mesh_provider: Annotated[
            str, typer.Option(envvar="CANARYFLOW_MESH_PROVIDER", help="istio or kubernetes (Services only).")
        ] = "istio",
        slack_url: Annotated[
            str | None, typer.Option(envvar="CANARYFLOW_SLACK_URL", help="Global Slack webhook.")
        ] = None,
        slack_channel: Annotated[
            str | None, typer.Option(envvar="CANARYFLOW_SLACK_CHANNEL", help="Channel of the global Slack webhook.")
        ] = None,
        slack_user: Annotated[
            str | None, typer.Option(envvar="CANARYFLOW_SLACK_USER", help="User name the Slack messages are sent as.")
        ] = None,
        msteams_url: Annotated[
            str | None, typer.Option(envvar="CANARYFLOW_MSTEAMS_URL", help="Global Microsoft Teams webhook.")
        ] = None,
        peering: Annotated[
            str, typer.Option(envvar="CANARYFLOW_PEERING", help="kopf peering name: of several replicas one leads.")
        ] = "canaryflow",
        standalone: Annotated[bool, typer.Option("--standalone", help="No peering (a single replica).")] = False,
        judge: Annotated[
            bool, typer.Option("--judge", envvar="CANARYFLOW_JUDGE", help="The sequential judge for every canary.")
        ] = False,
        listen: Annotated[
            str, typer.Option(envvar="CANARYFLOW_LISTEN", help="HOST:PORT serving /metrics and /healthz.")
        ] = "127.0.0.1:8080",
        log_level: LogLevel = "info",
        dashboard_listen: Annotated[
            str, typer.Option(envvar="CANARYFLOW_DASHBOARD_LISTEN", help="HOST:PORT of the dashboard; '' for none.")
        ] = "127.0.0.1:8090",
        dashboard_token: dashboard_cli.Token = None,
        dashboard_token_file: dashboard_cli.TokenFile = None,
    ) -> None:
        """Run the Kubernetes operator: drive every Canary in the watched namespaces (a drop-in for Flagger)."""
        from canaryflow.api.judge import CanaryJudge
        from canaryflow.engine.checks import Settings
        from canaryflow.kube.runtime import OperatorOptions, OperatorRuntime

        level = parse_log_level(log_level)
        options = from_flags(
            OperatorOptions,
            namespaces=namespaces_from(namespace, os.environ.get("CANARYFLOW_NAMESPACES")),
            metrics_server=metrics_server,
            mesh_provider=mesh_provider,
            slack_url=slack_url or None,
            slack_channel=slack_channel or None,
            slack_user=slack_user or None,
            msteams_url=msteams_url or None,
            peering=None if standalone else peering,
            listen=listen,
            log_level=level,
            settings=Settings(judge=CanaryJudge() if judge else None),
            dashboard_listen=dashboard_listen or None,
            dashboard_token=dashboard_cli.settings(dashboard_listen, dashboard_token, dashboard_token_file)[1],
        )
        log_to_stderr(level)
        if level != "debug":  # kopf logs every handled watch event at info; canaryflow's own logs say what matters
            logging.getLogger("kopf.objects").setLevel(logging.WARNING)
        asyncio.run(OperatorRuntime(options).run())
