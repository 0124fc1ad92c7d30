"""``canaryflow simulate``: load a Canary, script its metrics and gates, print the predicted rollout."""

from __future__ import annotations

import asyncio
import json
from typing import TextIO

import yaml
from rich.console import Console
from rich.table import Table

from canaryflow.api.canary import Canary
from canaryflow.api.suggest import closest
from canaryflow.api.validate import validate_paths
from canaryflow.cli.options import UNWRAPPED
from canaryflow.control.simulate import Prediction, Script, simulate


class UsageError(ValueError):
    pass


def parse_values(items: list[str]) -> dict[str, Script]:
    values: dict[str, Script] = {}
    for item in items:
        metric, sep, text = item.partition("=")
        if not sep or not metric or not text:
            raise UsageError(f"--value {item!r}: expected metric=VALUE or metric=V1,V2,...")
        try:
            numbers = [float(v) for v in text.split(",")]
        except ValueError as exc:
            raise UsageError(f"--value {item!r}: {exc}") from None
        values[metric] = numbers[0] if len(numbers) == 1 else list(numbers)
    return values


def parse_gates(items: list[str]) -> dict[str, list[bool]]:
    gates: dict[str, list[bool]] = {}
    for item in items:
        hook, sep, text = item.partition("=")
        answers = text.split(",")
        if not sep or not hook or any(a not in ("open", "closed") for a in answers):
            raise UsageError(f"--gate {item!r}: expected webhook=open|closed[,open|closed...]")
        gates[hook] = [a == "open" for a in answers]
    return gates


def pick(files: list[str], name: str | None) -> Canary:
    report = validate_paths(files)
    if not report.ok:
        raise UsageError("\n".join(str(p) for p in report.problems))
    canaries = [r for _, r in report.resources if isinstance(r, Canary)]
    if name is not None:
        canaries = [c for c in canaries if c.metadata.name == name]
    if len(canaries) != 1:
        found = ", ".join(c.key for c in canaries) or "none"
        raise UsageError(f"expected exactly one Canary (use --name); found {found}")
    return canaries[0]


def check_names(canary: Canary, values: dict[str, Script], gates: dict[str, list[bool]]) -> None:
    """A --value or --gate naming no metric or webhook of the canary would be ignored: it is an error."""
    analysis = canary.spec.effective_analysis
    for flag, given, names in (("--value", values, [m.name for m in analysis.metrics or []]),
                               ("--gate", gates, [w.name for w in analysis.webhooks or []])):  # fmt: skip
        for name in given:
            if name not in names:
                what = "metric" if flag == "--value" else "webhook"
                near = closest(name, names)
                hint = f"; did you mean {near}?" if near else f"; its {what}s: {', '.join(names) or 'none'}"
                raise UsageError(f"{flag} {name}: {canary.key} has no {what} {name!r}{hint}")


def run(
    files: list[str], values: list[str], gates: list[str], name: str | None, output: str, out: TextIO, err: TextIO
) -> int:
    try:
        canary = pick(files, name)
        scripted, answers = parse_values(values), parse_gates(gates)
        check_names(canary, scripted, answers)
        prediction = asyncio.run(simulate(canary, scripted, answers))
    except UsageError as exc:
        err.write(f"error: {exc}\n")
        return 2
    if output == "json":
        json.dump(as_json(canary, prediction), out, indent=2)
        out.write("\n")
    elif output == "yaml":
        yaml.safe_dump(as_json(canary, prediction), out, sort_keys=False)
    else:
        render(
            canary, prediction, Console(file=out, width=140 if out.isatty() else UNWRAPPED, soft_wrap=not out.isatty())
        )
    return 0 if prediction.outcome in ("Succeeded", "Failed") else 1


def as_json(canary: Canary, p: Prediction) -> dict[str, object]:
    return {
        "canary": canary.key,
        "outcome": p.outcome,
        "seconds": p.seconds,
        "canaryExposureMinutes": round(p.exposure, 3),
        "exposureOf": p.exposure_scope,
        "ticks": [
            {
                "seconds": s.seconds,
                "phase": s.phase,
                "primaryWeight": s.primary,
                "canaryWeight": s.canary,
                "iterations": s.iterations,
                "failedChecks": s.failed,
                "events": list(s.events),
            }
            for s in p.steps
        ],
    }


def render(canary: Canary, p: Prediction, console: Console) -> None:
    table = Table(title=f"Predicted rollout of {canary.key}", show_lines=False)
    for column in ("t", "phase", "primary", "canary", "iter", "failed", "events"):
        table.add_column(column, justify="right" if column in ("t", "primary", "canary", "iter", "failed") else "left")
    for s in p.steps:
        table.add_row(
            _clock(s.seconds),
            s.phase,
            str(s.primary),
            str(s.canary),
            str(s.iterations),
            str(s.failed),
            "\n".join(s.events),
        )
    console.print(table)
    console.print(
        f"outcome: [bold]{p.outcome}[/bold] after {_clock(p.seconds)} "
        f"({len(p.steps)} ticks); canary exposure {p.exposure:.2f} full-traffic-minutes of {p.exposure_scope}"
    )


def _clock(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s"
