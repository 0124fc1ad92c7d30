"""How the CLI shows objects: kubectl-like tables, JSON/YAML, and the live view of ``up``.

Every table is built from rows of strings (``Rows``) so that ``get -w`` can print the changed rows alone, in the
columns of the table it printed first, as ``kubectl get -w`` does.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from collections.abc import Sequence
from typing import Any

import yaml
from rich.console import Group
from rich.table import Table

#: Columns whose cells are free text: on a terminal they are cut with an ellipsis rather than wrapped, so that
#: one object stays one line; elsewhere nothing is cut.
FREE_TEXT = ("MESSAGE",)


@dataclasses.dataclass(frozen=True, slots=True)
class Rows:
    columns: tuple[str, ...]
    rows: Sequence[tuple[str, ...]]
    keys: Sequence[str]  # one per row: namespace/name, what ``get -w`` compares rows by
    title: str | None = None

    def width(self, screen: int) -> int:
        """The width the table takes on a terminal ``screen`` columns wide: more when its fixed columns need it
        (the terminal then wraps the lines, as it does kubectl's)."""
        widest = [max([len(c), *(len(r[i]) for r in self.rows)]) for i, c in enumerate(self.columns)]
        fixed = sum(w for c, w in zip(self.columns, widest, strict=True) if c not in FREE_TEXT)
        free = len(self.columns) - sum(1 for c in self.columns if c not in FREE_TEXT)
        return max(screen, fixed + free * len("MESSAGE") + 2 * (len(self.columns) - 1))

    def table(self, width: int | None = None) -> Table:
        """A rich table; with the terminal's ``width``, free-text cells are cut (with an ellipsis) to what the
        other columns leave, instead of wrapping and pushing the other columns out of the screen."""
        grid = Table(box=None, pad_edge=False, title=self.title)
        widest = [max([len(c), *(len(r[i]) for r in self.rows)]) for i, c in enumerate(self.columns)]
        fixed = sum(w for c, w in zip(self.columns, widest, strict=True) if c not in FREE_TEXT)
        room = None if width is None else max(len("MESSAGE"), width - fixed - 2 * (len(self.columns) - 1))
        for column, most in zip(self.columns, widest, strict=True):
            cut = room is not None and column in FREE_TEXT and most > room
            grid.add_column(column, no_wrap=width is not None, overflow="ellipsis", width=room if cut else None,
                            min_width=None if column in FREE_TEXT else most)  # fmt: skip
        for row in self.rows:
            grid.add_row(*row)
        return grid


def age(stamp: str) -> str:
    if not stamp:
        return "<none>"
    when = datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
    seconds = int((datetime.datetime.now(datetime.UTC) - when).total_seconds())
    return f"{seconds}s" if seconds < 120 else f"{seconds // 60}m" if seconds < 7200 else f"{seconds // 3600}h"


def key(item: dict[str, Any]) -> str:
    meta = item["metadata"]
    return f"{meta.get('namespace', '')}/{meta['name']}"


def message(status: dict[str, Any]) -> str:
    """A canary's condition message on one line."""
    text = next((str(c.get("message", "")) for c in status.get("conditions") or []), "")
    return " ".join(text.split())


def canary_rows(items: list[dict[str, Any]], wide: bool = False) -> Rows:
    columns = ["NAMESPACE", "NAME", "STATUS", "WEIGHT", "FAILEDCHECKS", "LASTTRANSITIONTIME"]
    if wide:
        columns[5:5] = ["INTERVAL", "MIRROR", "STEPWEIGHT", "MAXWEIGHT", "METRICS", "MESSAGE"]
    rows = []
    for item in items:
        status, spec = item.get("status") or {}, item.get("spec") or {}
        analysis = spec.get("analysis") or spec.get("canaryAnalysis") or {}
        row = [item["metadata"]["namespace"], item["metadata"]["name"], status.get("phase", ""),
               str(status.get("canaryWeight", 0)), str(status.get("failedChecks", 0)),
               status.get("lastTransitionTime", "")]  # fmt: skip
        if wide:
            metrics = ", ".join(f"{k}={v:.4g}" for k, v in (status.get("lastMetrics") or {}).items())
            row[5:5] = [str(analysis.get("interval", "")), str(analysis.get("mirror", False)),
                        str(analysis.get("stepWeight", analysis.get("stepWeights", ""))),
                        str(analysis.get("maxWeight", "")), metrics, message(status)]  # fmt: skip
        rows.append(tuple(row))
    return Rows(tuple(columns), rows, [key(i) for i in items])


def deployment_rows(items: list[dict[str, Any]]) -> Rows:
    rows = []
    for item in items:
        status = item.get("status") or {}
        containers = item.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
        image = containers[0].get("image", "") if containers else ""
        replicas, ready = status.get("replicas", 0), status.get("readyReplicas", 0)
        rows.append((item["metadata"]["namespace"], item["metadata"]["name"], f"{ready}/{replicas}",
                     str(status.get("updatedReplicas", replicas)), str(status.get("availableReplicas", ready)),
                     str(status.get("restarts", 0)), image))  # fmt: skip
    columns = ("NAMESPACE", "NAME", "READY", "UP-TO-DATE", "AVAILABLE", "RESTARTS", "IMAGE")
    return Rows(columns, rows, [key(i) for i in items])


def generic_rows(items: list[dict[str, Any]]) -> Rows:
    rows = [(i["metadata"].get("namespace", ""), i["metadata"]["name"], i.get("kind", "")) for i in items]
    return Rows(("NAMESPACE", "NAME", "KIND"), rows, [key(i) for i in items])


def rows_for(kind: str, items: list[dict[str, Any]], wide: bool) -> Rows:
    if kind in ("canaries", "canary"):
        return canary_rows(items, wide)
    if kind in ("deployments", "deployment", "deploy"):
        return deployment_rows(items)
    return generic_rows(items)


def without_namespace(rows: Rows) -> Rows:
    """The rows without their NAMESPACE column: kubectl shows it only with --all-namespaces."""
    if not rows.columns or rows.columns[0] != "NAMESPACE":
        return rows
    return dataclasses.replace(rows, columns=rows.columns[1:], rows=[r[1:] for r in rows.rows])


def plain(rows: Rows, widths: list[int] | None = None, header: bool = True) -> tuple[str, list[int]]:
    """The rows as kubectl prints them (columns three spaces apart), in ``widths`` when given; returns the text
    and the widths used, so that later rows line up under the first table."""
    if widths is None:
        widths = [max([len(c), *(len(r[i]) for r in rows.rows)]) for i, c in enumerate(rows.columns)]
    lines = [rows.columns] if header else []
    lines += rows.rows
    text = "\n".join("   ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in lines)
    return text, widths


def dump(data: Any, output: str) -> str:
    if output == "json":
        return json.dumps(data, indent=2)
    return str(yaml.safe_dump(data, sort_keys=False)).rstrip("\n")


def event_rows(events: list[dict[str, Any]]) -> Rows:
    rows = []
    for e in events:
        when = datetime.datetime.fromtimestamp(e["time"]).strftime("%H:%M:%S")
        rows.append((when, e["type"], e["object"], " ".join(str(e["message"]).split())))
    return Rows(("TIME", "TYPE", "OBJECT", "MESSAGE"), rows, [event_key(e) for e in events])


def event_key(e: dict[str, Any]) -> str:
    return f"{e['time']}|{e['object']}|{e['reason']}|{e['message']}"


def live(canaries: list[dict[str, Any]], events: list[dict[str, Any]], header: str, width: int) -> Group:
    """The screen of ``up``: every canary and the latest events, one line each on a ``width``-column terminal."""
    return Group(header, canary_rows(canaries, wide=True).table(width), "", event_rows(events[-12:]).table(width))
