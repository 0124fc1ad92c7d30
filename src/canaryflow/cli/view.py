"""How the CLI shows objects: kubectl-like tables, JSON/YAML lists, and the live view of ``up``."""

from __future__ import annotations

import datetime
import json
from typing import Any

import yaml
from rich.console import Group
from rich.table import Table


def age(stamp: str) -> str:
    if not stamp:
        return "<none>"
    when = datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
    seconds = int((datetime.datetime.now(datetime.UTC) - when).total_seconds())
    return f"{seconds}s" if seconds < 120 else f"{seconds // 60}m" if seconds < 7200 else f"{seconds // 3600}h"


def canary_table(items: list[dict[str, Any]], wide: bool = False) -> Table:
    table = Table(box=None, pad_edge=False)
    columns = ["NAMESPACE", "NAME", "STATUS", "WEIGHT", "FAILEDCHECKS", "LASTTRANSITIONTIME"]
    if wide:
        columns[5:5] = ["INTERVAL", "MIRROR", "STEPWEIGHT", "MAXWEIGHT", "METRICS", "MESSAGE"]
    for column in columns:
        table.add_column(column)
    for item in items:
        status, spec = item.get("status") or {}, item.get("spec") or {}
        analysis = spec.get("analysis") or spec.get("canaryAnalysis") or {}
        row = [item["metadata"]["namespace"], item["metadata"]["name"], status.get("phase", ""),
               str(status.get("canaryWeight", 0)), str(status.get("failedChecks", 0)),
               status.get("lastTransitionTime", "")]  # fmt: skip
        if wide:
            metrics = ", ".join(f"{k}={v:.4g}" for k, v in (status.get("lastMetrics") or {}).items())
            message = next((c.get("message", "") for c in status.get("conditions", [])), "")
            row[5:5] = [str(analysis.get("interval", "")), str(analysis.get("mirror", False)),
                        str(analysis.get("stepWeight", analysis.get("stepWeights", ""))),
                        str(analysis.get("maxWeight", "")), metrics, message]  # fmt: skip
        table.add_row(*row)
    return table


def deployment_table(items: list[dict[str, Any]]) -> Table:
    table = Table(box=None, pad_edge=False)
    for column in ("NAMESPACE", "NAME", "READY", "UP-TO-DATE", "AVAILABLE", "IMAGE"):
        table.add_column(column)
    for item in items:
        status = item.get("status") or {}
        containers = item.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
        image = containers[0].get("image", "") if containers else ""
        replicas = status.get("replicas", 0)
        ready = status.get("readyReplicas", 0)
        table.add_row(
            item["metadata"]["namespace"],
            item["metadata"]["name"],
            f"{ready}/{replicas}",
            str(status.get("updatedReplicas", replicas)),
            str(status.get("availableReplicas", ready)),
            image,
        )
    return table


def generic_table(items: list[dict[str, Any]]) -> Table:
    table = Table(box=None, pad_edge=False)
    for column in ("NAMESPACE", "NAME", "KIND"):
        table.add_column(column)
    for item in items:
        table.add_row(item["metadata"].get("namespace", ""), item["metadata"]["name"], item.get("kind", ""))
    return table


def table_for(kind: str, items: list[dict[str, Any]], wide: bool) -> Table:
    if kind in ("canaries", "canary"):
        return canary_table(items, wide)
    if kind in ("deployments", "deployment"):
        return deployment_table(items)
    return generic_table(items)


def dump(listing: dict[str, Any], output: str) -> str:
    if output == "json":
        return json.dumps(listing, indent=2)
    return str(yaml.safe_dump(listing, sort_keys=False))


def events_table(events: list[dict[str, Any]]) -> Table:
    table = Table(box=None, pad_edge=False)
    for column in ("TIME", "TYPE", "OBJECT", "MESSAGE"):
        table.add_column(column)
    for e in events:
        when = datetime.datetime.fromtimestamp(e["time"]).strftime("%H:%M:%S")
        table.add_row(when, e["type"], e["object"], e["message"])
    return table


def live(canaries: list[dict[str, Any]], events: list[dict[str, Any]], header: str) -> Group:
    return Group(header, canary_table(canaries, wide=True), "", events_table(events[-12:]))
