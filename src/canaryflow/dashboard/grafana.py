"""The seed's Grafana view (``/d/flagger-istio/istio-canary``) without Grafana: the panels of the dashboard JSON
shipped in ``deploy/grafana/`` (``istio-canary.json`` here is the same file), queried from Prometheus.

Grafana puts template variables into PromQL as they are; here a variable must look like a Kubernetes name, so a
query string cannot smuggle PromQL into the expressions.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import time
from functools import cache
from pathlib import Path
from typing import Any

import httpx

from canaryflow.dashboard.base import Json

DASHBOARD = Path(__file__).with_name("istio-canary.json")
VARIABLES = ("namespace", "primary", "canary")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_LEGEND = re.compile(r"\{\{\s*(\w+)\s*\}\}")


class BadVariable(ValueError):
    pass


@dataclasses.dataclass(frozen=True, slots=True)
class Target:
    expr: str
    legend: str


@dataclasses.dataclass(frozen=True, slots=True)
class Panel:
    title: str
    unit: str
    row: str  # "traffic" (RED), "analysis" (canaryflow's own metrics) or "resources" (USE)
    targets: tuple[Target, ...]


@cache
def panels() -> tuple[Panel, ...]:
    data = json.loads(DASHBOARD.read_text())
    out, row = [], "traffic"
    for panel in data["panels"]:
        if panel.get("type") == "row":
            title = str(panel.get("title"))
            row = "traffic" if title.startswith("RED") else "resources" if title.startswith("USE") else "analysis"
            continue
        unit = str(((panel.get("fieldConfig") or {}).get("defaults") or {}).get("unit") or "")
        targets = tuple(Target(t["expr"], str(t.get("legendFormat") or "")) for t in panel.get("targets") or [])
        out.append(Panel(str(panel["title"]), unit, row, targets))
    return tuple(out)


def variables(params: dict[str, str]) -> dict[str, str]:
    """``var-namespace``, ``var-primary``, ``var-canary`` from a query string; ``BadVariable`` names the bad one."""
    found = {}
    for name in VARIABLES:
        value = params.get(f"var-{name}", "")
        if not _NAME.match(value):
            raise BadVariable(f"var-{name}={value!r}: expected a Kubernetes name such as 'prod' or 'backend-primary'")
        found[name] = value
    return found


def substitute(expr: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        expr = expr.replace(f"${{{name}}}", value).replace(f"${name}", value)
    return expr


async def query(prometheus: str, values: dict[str, str], window: float = 300.0, step: float = 2.0) -> Json:
    """Each panel's series over the last ``window`` seconds, on one time grid (uPlot's aligned columns)."""
    end = math.floor(time.time() / step) * step
    start = end - window
    grid = [start + i * step for i in range(int(window / step) + 1)]
    out = []
    async with httpx.AsyncClient(base_url=prometheus, timeout=10.0, trust_env=False) as client:
        for panel in panels():
            series = []
            for target in panel.targets:
                params: dict[str, str | float] = {
                    "query": substitute(target.expr, values),
                    "start": start,
                    "end": end,
                    "step": step,
                }
                response = await client.get("/api/v1/query_range", params=params)
                result = response.json().get("data", {}).get("result", []) if response.is_success else []
                for item in result:
                    by_time = {float(t): _value(v) for t, v in item.get("values", [])}
                    series.append({"label": legend(substitute(target.legend, values), item.get("metric", {})),
                                   "values": [by_time.get(t) for t in grid]})  # fmt: skip
            out.append({"title": panel.title, "unit": panel.unit, "row": panel.row, "series": series})
    return {"time": grid, "panels": out}


def legend(template: str, labels: dict[str, Any]) -> str:
    if not template:
        return ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "value"
    return _LEGEND.sub(lambda m: str(labels.get(m.group(1), "")), template)


def _value(raw: str) -> float | None:
    value = float(raw)
    return None if math.isnan(value) or math.isinf(value) else value
