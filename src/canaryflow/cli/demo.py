"""``canaryflow demo``: the seed scenario on the seed repository's unchanged manifests.

Until the local runtime (real Envoy, Prometheus, processes) lands, the demo drives the real engine on simulated
time with in-memory adapters: it shows the same decisions, event by event, but no real traffic flows. It says
so in its output.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TextIO

from rich.console import Console

from canaryflow.api.canary import Canary
from canaryflow.api.validate import validate_paths
from canaryflow.control.simulate import Prediction, simulate

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "gitops-istio"


def load_canaries(root: Path) -> dict[str, Canary]:
    report = validate_paths([str(root / "apps")])
    if not report.ok:
        raise SystemExit("\n".join(str(p) for p in report.problems))
    return {r.metadata.name: r for _, r in report.resources if isinstance(r, Canary)}


async def scenario(canaries: dict[str, Canary]) -> list[tuple[str, str, Prediction]]:
    backend, frontend = canaries["backend"], canaries["frontend"]
    return [
        ("new backend tag: progressive canary", "Succeeded", await simulate(backend)),
        ("new frontend tag: A/B test for Firefox and type=insider", "Succeeded", await simulate(frontend)),
        # the seed's rollback section: 500s and 1 s delays push error-rate and latency over their limits
        (
            "faulty backend release (HTTP 500s, 1 s delays)",
            "Failed",
            await simulate(backend, {"error-rate": 20.0, "latency": 1000.0}),
        ),
    ]


def run(out: TextIO, root: Path = EXAMPLES) -> int:
    console = Console(file=out, width=120)
    console.print("[bold]canaryflow demo[/bold]: the seed scenario on", str(root))
    console.print(
        "[yellow]simulated time, in-memory adapters: the local runtime with real Envoy and Prometheus is "
        "not built yet[/yellow]"
    )
    results = asyncio.run(scenario(load_canaries(root)))
    ok = True
    for title, expected, p in results:
        good = p.outcome == expected
        ok &= good
        mark = "[green]✓[/green]" if good else "[red]✗[/red]"
        console.print(
            f"{mark} {title}: [bold]{p.outcome}[/bold] after {p.seconds:.0f} s of analysis "
            f"({len(p.steps)} ticks), canary exposure {p.exposure:.2f} full-traffic-minutes"
        )
        for step in p.steps:
            for event in step.events:
                console.print(f"    {step.seconds:6.0f}s  {step.phase:<16} {event}")
    return 0 if ok else 1
