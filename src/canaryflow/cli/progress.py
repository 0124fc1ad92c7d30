"""Progress of the long waits (``up``, ``reconcile``, ``demo``): a spinner with the time spent, on stderr and only
when stderr is a terminal, so that pipes and CI logs get the results alone."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn


@contextlib.contextmanager
def waiting(what: str, console: Console | None = None) -> Iterator[Callable[[str], None]]:
    """Show ``what`` while the block runs; the function it yields changes the text (e.g. the current phase)."""
    console = console or Console(stderr=True)
    if not console.is_terminal:
        yield lambda text: None
        return
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(what)
        yield lambda text: progress.update(task, description=f"{what}: {text}")
