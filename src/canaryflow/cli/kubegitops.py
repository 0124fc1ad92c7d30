"""``canaryflow gitops-controller``: run the Kubernetes GitOps controller in this process until SIGINT or SIGTERM.

It reconciles the cluster's Flux objects (GitRepository, Kustomization, image automation, Receiver) and applies
what git holds by server-side apply as field manager ``canaryflow``; deploy/gitops installs it as its own
Deployment, the way Flux runs each controller. Every flag has an environment variable; a flag given on the command
line wins. Invalid values stop the command before it connects to anything, with the flag named.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated

import typer

from canaryflow.cli.operator import LogLevel, from_flags, log_to_stderr, namespaces_from, parse_log_level


def register(app: typer.Typer) -> None:
    @app.command("gitops-controller")
    def gitops_controller(
        namespace: Annotated[
            list[str] | None,
            typer.Option(
                "--namespace",
                help="Follow Flux objects in this namespace (repeatable); default: all namespaces. "
                "Env CANARYFLOW_NAMESPACES (comma list).",
            ),
        ] = None,
        workdir: Annotated[
            Path,
            typer.Option(
                envvar="CANARYFLOW_GITOPS_WORKDIR", help="Where git sources are fetched and builds run (writable)."
            ),
        ] = Path("/tmp/canaryflow-gitops"),
        listen: Annotated[
            str, typer.Option(envvar="CANARYFLOW_LISTEN", help="HOST:PORT serving /healthz and /metrics.")
        ] = "127.0.0.1:8081",
        receiver_listen: Annotated[
            str,
            typer.Option(
                envvar="CANARYFLOW_RECEIVER_LISTEN",
                help="HOST:PORT serving the Receivers' webhooks (/hook/...); default: not served.",
            ),
        ] = "",
        log_level: LogLevel = "info",
        leader_elect: Annotated[
            bool,
            typer.Option(
                "--leader-elect/--no-leader-elect",
                envvar="CANARYFLOW_LEADER_ELECT",
                help="Reconcile only while holding a coordination.k8s.io Lease, so replicas never apply at once "
                "(Flux's --enable-leader-election; lease 35s, renew deadline 30s, retry 5s).",
            ),
        ] = False,
        leader_election_id: Annotated[
            str, typer.Option(envvar="CANARYFLOW_LEADER_ELECTION_ID", help="The Lease's name.")
        ] = "canaryflow-gitops-leader-election",
        leader_election_namespace: Annotated[
            str,
            typer.Option(
                envvar="CANARYFLOW_LEADER_ELECTION_NAMESPACE", help="The Lease's namespace (the controller's own)."
            ),
        ] = "canaryflow-system",
    ) -> None:
        """Run the GitOps controller in Kubernetes: apply what git holds, as Flux's controllers do."""
        from canaryflow.kube.errors import ConfigError
        from canaryflow.kube.gitops.run import GitOpsOptions, LeadershipLost, WatchFailed, run

        level = parse_log_level(log_level)
        options = from_flags(
            GitOpsOptions,
            namespaces=namespaces_from(namespace, os.environ.get("CANARYFLOW_NAMESPACES")),
            workdir=workdir,
            listen=listen,
            receiver_listen=receiver_listen or None,
            leader_elect=leader_elect,
            lease_name=leader_election_id,
            lease_namespace=leader_election_namespace,
        )
        log_to_stderr(level)
        try:
            asyncio.run(run(options))
        except (ConfigError, WatchFailed, LeadershipLost) as exc:
            typer.echo(f"canaryflow gitops-controller: {exc}", err=True)
            raise typer.Exit(1) from None
