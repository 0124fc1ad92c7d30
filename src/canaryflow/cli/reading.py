"""``get``, ``describe``, ``events`` and ``logs``: what the commands that read show, and where from (the running
runtime, else the state on disk: ``cli/reader.py``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from canaryflow.cli import describe as describe_view
from canaryflow.cli import gitops, view, watching
from canaryflow.cli.client import CliError, Runtime
from canaryflow.cli.options import err, out
from canaryflow.cli.reader import Reader
from canaryflow.local import snapshot

#: Events ``describe`` reads for a canary's timeline.
TIMELINE = 500


def _reader(runtime: Runtime) -> Reader:
    reader = Reader(runtime)
    if reader.note:
        err().print(reader.note, highlight=False)
    return reader


def print_rows(rows: view.Rows) -> None:
    """A table: rich's on a terminal, kubectl's plain columns elsewhere."""
    console = out()
    if console.is_terminal:
        width = rows.width(console.width)
        console.print(rows.table(width), width=width, crop=False)
    else:
        console.print(view.plain(rows)[0], highlight=False, markup=False)


def get(runtime: Runtime, kind: str, name: str | None, namespace: str | None, output: str | None,
         watch: bool) -> None:  # fmt: skip
    reader = _reader(runtime)

    def fetch() -> list[tuple[str | None, list[dict[str, Any]]]]:
        if kind in gitops.LISTINGS:
            return [(plural, _named(reader.gitops(plural, namespace), plural, namespace, name))
                    for plural in gitops.LISTINGS[kind]]  # fmt: skip
        return [(None, reader.objects(kind, namespace, name))]

    def table(plural: str | None, items: list[dict[str, Any]]) -> view.Rows:
        found = gitops.rows(plural, items) if plural else view.rows_for(kind, items, output == "wide")
        return found if namespace is None else view.without_namespace(found)

    def rows() -> view.Rows:
        parts = [table(plural, items) for plural, items in fetch()]
        return view.Rows(parts[0].columns, [r for p in parts for r in p.rows], [k for p in parts for k in p.keys])

    if watch:
        watching.rows(rows, sys.stdout)
    if output in ("json", "yaml"):
        for _, items in fetch():
            single = name is not None and len(items) == 1
            typer.echo(view.dump(items[0] if single else snapshot.as_list(items), output))
        return
    parts = fetch()
    if not any(items for _, items in parts):
        err().print("No resources found" + (f" in {namespace} namespace." if namespace else "."), highlight=False)
        return
    for plural, items in parts:
        if len(parts) > 1:
            out().print(plural, highlight=False)
        print_rows(table(plural, items))


def _named(items: list[dict[str, Any]], plural: str, namespace: str | None, name: str | None) -> list[dict[str, Any]]:
    if name is None:
        return items
    found = [i for i in items if i["metadata"]["name"] == name]
    if not found:
        raise CliError(snapshot.not_found(gitops.KIND_OF[plural], namespace or "", name))
    return found


def describe(runtime: Runtime, kind: str, name: str, namespace: str) -> None:
    reader = _reader(runtime)
    item = reader.objects(kind, namespace, name)[0]
    if item.get("kind") != "Canary":
        out().print(describe_view.other(item), highlight=False, markup=False)
        return
    events = reader.events(view.key(item), None, TIMELINE)
    out().print(describe_view.canary(item, events), highlight=False, markup=False)


def events(runtime: Runtime, canary: str | None, namespace: str | None, limit: int, watch: bool,
            output: str | None) -> None:  # fmt: skip
    reader = _reader(runtime)
    if watch:
        watching.events(lambda: reader.events(canary, namespace, limit), sys.stdout)
    found = reader.events(canary, namespace, limit)
    if output is not None:
        typer.echo(view.dump(found, output))
        return
    if not found:
        where = f"canary {canary}" if canary else f"namespace {namespace}" if namespace else "any namespace"
        err().print(f"No events found in {where}.", highlight=False)
        return
    print_rows(view.event_rows(found))


def logs(runtime: Runtime, namespace: str, name: str, tail: int, follow: bool) -> None:
    directory = runtime.dirs.logs / namespace

    def paths() -> list[Path]:
        return sorted(directory.glob(f"{name}-[0-9]*.log"))

    if not paths():
        raise CliError(f"{snapshot.not_found('Deployment', namespace, name)}: no logs in {directory}")
    watching.logs(paths, tail, follow, sys.stdout)
