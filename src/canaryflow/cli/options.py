"""Options shared by the commands, the consoles they print on, and how they fail.

Every option has a help text and a metavar (typer would otherwise print ``<bool>`` or ``<list[str]>``). Output
goes through ``out()``: on a terminal rich lays it out to the terminal's width; elsewhere (a pipe, a CI log)
nothing is wrapped or cut, so that a line can be grepped whole.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer
import typer.core
from rich.console import Console
from rich.text import Text

from canaryflow.cli.client import CliError

_typer_display_type = typer.core.TyperOption.display_type_rich


def _display_type(self: typer.core.TyperOption, ctx: Any) -> str | None:
    """A flag takes no value: typer would show it (``--help`` and ``--install-completion`` too) as ``<bool>``;
    a repeatable option takes one value each time: ``<str>...``, not ``<list[str]>``."""
    if self.is_flag:
        return None
    shown = _typer_display_type(self, ctx)
    if shown and shown.startswith("<list[") and shown.endswith("]>"):
        return f"<{shown[6:-2]}>..."
    return shown


typer.core.TyperOption.display_type_rich = _display_type  # type: ignore[method-assign]

#: Wide enough that rich never wraps a line when output is not a terminal.
UNWRAPPED = 1_000_000

StateDir = Annotated[
    str | None,
    typer.Option("--state-dir", envvar="CANARYFLOW_STATE_DIR", metavar="DIR", show_default=False,
                 help="The runtime's state directory (default ./.canaryflow)."),
]  # fmt: skip
Files = Annotated[
    list[str] | None,
    typer.Option("-f", "--filename", metavar="PATH", help="File, directory or - (stdin); repeatable."),
]
Namespace = Annotated[
    str | None,
    typer.Option("-n", "--namespace", metavar="NAMESPACE", help="The namespace (default: default).",
                 show_default=False),
]  # fmt: skip
AllNamespaces = Annotated[
    bool, typer.Option("-A", "--all-namespaces", metavar="", help="Every namespace (overrides -n).")
]
Watch = Annotated[bool, typer.Option("-w", "--watch", metavar="", help="Go on printing what changes (Ctrl-C stops).")]


def output_option(*choices: str) -> Any:
    """``-o/--output`` taking one of ``choices``; anything else is a usage error (exit 2)."""

    def check(value: str | None) -> str | None:
        if value is not None and value not in choices:
            raise typer.BadParameter(f"{value!r} is not one of {', '.join(choices)}")
        return value

    return typer.Option("-o", "--output", metavar="FORMAT", callback=check, help=f"One of {', '.join(choices)}.")


def flag(*names: str, help: str) -> Any:
    """A boolean flag, shown without a ``<bool>`` placeholder."""
    return typer.Option(*names, metavar="", help=help)


def out() -> Console:
    """The console for results (stdout)."""
    return _console(stderr=False)


def err() -> Console:
    """The console for notes, warnings and progress (stderr)."""
    return _console(stderr=True)


def _console(stderr: bool) -> Console:
    probe = Console(stderr=stderr)
    if probe.is_terminal:
        return probe
    return Console(stderr=stderr, width=UNWRAPPED, soft_wrap=True)


def fail(error: Exception) -> typer.Exit:
    """Print ``error`` on stderr; the command then exits 1."""
    err().print(Text.assemble(("error:", "red"), f" {error}"), highlight=False)
    return typer.Exit(1)


def guarded(action: Callable[[], None]) -> None:
    """Run ``action``; a CliError becomes an error message and exit 1."""
    try:
        action()
    except CliError as exc:
        raise fail(exc) from None
    except KeyboardInterrupt:  # the end of a -w or -f
        raise typer.Exit(130) from None
