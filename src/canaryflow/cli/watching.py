"""``get -w``, ``events -w`` and ``logs -f``: print what is there, then only what changes, until Ctrl-C.

As ``kubectl get -w``: the table once, then each row that changed (a phase, a weight) in the first table's
columns; no screen is redrawn, so the output can be piped, logged and grepped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from canaryflow.cli import view

POLL = 1.0


def rows(fetch: Callable[[], view.Rows], out: TextIO, sleep: Callable[[float], None] = time.sleep) -> None:
    first = fetch()
    text, widths = view.plain(first)
    _write(out, text)
    last = dict(zip(first.keys, first.rows, strict=True))
    while True:
        sleep(POLL)
        current = fetch()
        changed = [row for k, row in zip(current.keys, current.rows, strict=True) if last.get(k) != row]
        if changed:
            _write(out, view.plain(view.Rows(current.columns, changed, []), widths, header=False)[0])
        last = dict(zip(current.keys, current.rows, strict=True))


def events(fetch: Callable[[], list[dict[str, Any]]], out: TextIO, sleep: Callable[[float], None] = time.sleep) -> None:
    found = fetch()
    text, widths = view.plain(view.event_rows(found))
    _write(out, text)
    seen = {view.event_key(e) for e in found}
    while True:
        sleep(POLL)
        found = fetch()
        new = [e for e in found if view.event_key(e) not in seen]
        if new:
            _write(out, view.plain(view.event_rows(new), widths, header=False)[0])
        seen = {view.event_key(e) for e in found} | {view.event_key(e) for e in new}


def logs(paths: Callable[[], list[Path]], tail: int, follow: bool, out: TextIO,
         sleep: Callable[[float], None] = time.sleep) -> None:  # fmt: skip
    """The last ``tail`` lines (-1: all) of each file, each under a ``==> NAME <==`` header when there are
    several; with ``follow``, then every line appended, and the files of replicas that appear later."""
    offsets: dict[Path, int] = {}
    files = paths()
    for path in files:
        data = path.read_bytes()
        offsets[path] = len(data)
        lines = data.decode(errors="replace").splitlines()
        shown = lines if tail < 0 else lines[len(lines) - tail :] if tail else []
        if len(files) > 1:
            out.write(f"==> {path.stem} <==\n")
        out.write("".join(f"{line}\n" for line in shown))
    out.flush()
    while follow:
        sleep(POLL / 2)
        for path in paths():
            data = _complete_lines(path, offsets.get(path, 0))
            if data:
                offsets[path] = offsets.get(path, 0) + len(data)
                prefix = f"[{path.stem}] " if len(offsets) > 1 else ""
                out.write("".join(f"{prefix}{line}\n" for line in data.decode(errors="replace").splitlines()))
                out.flush()


def _complete_lines(path: Path, offset: int) -> bytes:
    """What was appended to ``path`` after ``offset``, up to its last complete line."""
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            data = handle.read()
    except FileNotFoundError:
        return b""
    return data[: data.rfind(b"\n") + 1]


def _write(out: TextIO, text: str) -> None:
    if text:
        out.write(text + "\n")
        out.flush()


def canary_run(
    fetch: Callable[[], dict[str, Any]], before: str, timeout: float, say: Callable[[str], None],
    clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any] | None:  # fmt: skip
    """Follow the canary run of a new revision: ``say`` each phase and weight as they change, once the canary's
    ``lastAppliedSpec`` is no longer ``before``; return its status when Succeeded or Failed, None after
    ``timeout`` seconds."""
    deadline = clock() + timeout
    last: tuple[str, int] | None = None
    while True:
        status = fetch()
        if status.get("lastAppliedSpec", "") != before:
            phase, weight = str(status.get("phase", "")), int(status.get("canaryWeight") or 0)
            if (phase, weight) != last:
                say(f"{phase} weight {weight}")
                last = phase, weight
            if phase in ("Succeeded", "Failed"):
                return status
        if clock() >= deadline:
            return None
        sleep(POLL)
