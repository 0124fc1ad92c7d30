"""What the pages show, as plain data built from a Canary body and its events: pure functions, no I/O.

Status keys are read defensively: the judge's evidence (``status.judge``) and per-check results
(``status.lastChecks``) appear only where the engine writes them; without ``lastChecks`` each metric's last value
(``lastMetrics``) is set against the thresholds in the spec.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from canaryflow.dashboard.base import Json
from canaryflow.store.base import Event

#: Webhook types whose load-tester gate the dashboard can open or close.
GATE_TYPES = ("confirm-rollout", "confirm-promotion", "confirm-traffic-increase", "rollback")
#: Flagger's built-in checks: the threshold of request-success-rate is a minimum, of request-duration a maximum.
BUILTIN_BOUNDS = {"request-success-rate": "min", "request-duration": "max"}


@dataclasses.dataclass(frozen=True, slots=True)
class Row:
    key: str
    namespace: str
    name: str
    phase: str
    weight: int
    failed_checks: int
    last_transition: str
    message: str


@dataclasses.dataclass(frozen=True, slots=True)
class Check:
    name: str
    value: float | None
    min: float | None
    max: float | None
    passed: bool | None


@dataclasses.dataclass(frozen=True, slots=True)
class Hook:
    name: str
    type: str
    url: str
    gate: bool
    last: str  # the latest event naming this webhook, "" when none


def key_of(body: Json) -> str:
    meta = body.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def status_of(body: Json) -> Json:
    status = body.get("status")
    return status if isinstance(status, dict) else {}


def analysis_of(body: Json) -> Json:
    spec = body.get("spec") or {}
    analysis = spec.get("analysis") or spec.get("canaryAnalysis") or {}
    return analysis if isinstance(analysis, dict) else {}


def row(body: Json) -> Row:
    meta, status = body.get("metadata") or {}, status_of(body)
    conditions = status.get("conditions") or []
    message = next((str(c.get("message") or "") for c in conditions if c.get("type") == "Promoted"), "")
    return Row(
        key_of(body), str(meta.get("namespace", "")), str(meta.get("name", "")), str(status.get("phase") or "—"),
        _int(status.get("canaryWeight")), _int(status.get("failedChecks")),
        str(status.get("lastTransitionTime") or ""), message,
    )  # fmt: skip


def checks(body: Json) -> list[Check]:
    """Each metric's last value against its thresholds, with whether it passed (None: not measured yet)."""
    status = status_of(body)
    reported = status.get("lastChecks")
    if isinstance(reported, list):
        return [
            Check(str(c.get("name", "")), _float(c.get("value")), _float(c.get("min")), _float(c.get("max")),
                  c.get("passed") if isinstance(c.get("passed"), bool) else None)
            for c in reported if isinstance(c, dict)
        ]  # fmt: skip
    values = status.get("lastMetrics") or {}
    out = []
    for metric in analysis_of(body).get("metrics") or []:
        name = str(metric.get("name", ""))
        low, high = thresholds(metric)
        value = _float(values.get(name)) if isinstance(values, dict) else None
        passed = None if value is None else (low is None or value >= low) and (high is None or value <= high)
        out.append(Check(name, value, low, high, passed))
    return out


def thresholds(metric: Json) -> tuple[float | None, float | None]:
    """A metric's (min, max): ``thresholdRange``, or the built-in checks' single ``threshold``."""
    bounds = metric.get("thresholdRange") or {}
    low, high = _float(bounds.get("min")), _float(bounds.get("max"))
    side = BUILTIN_BOUNDS.get(str(metric.get("name")))
    if low is None and high is None and side is not None and metric.get("threshold") is not None:
        return (_float(metric["threshold"]), None) if side == "min" else (None, _float(metric["threshold"]))
    return low, high


def judge(body: Json) -> Json | None:
    """The sequential judge's evidence: ``{"alpha": …, "tests": [{name, statistic, bound, decision, message}]}``."""
    found = status_of(body).get("judge")
    if not isinstance(found, dict):
        return None
    tests = [t for t in found.get("tests") or [] if isinstance(t, dict)]
    return {"alpha": found.get("alpha"), "tests": tests}


def hooks(body: Json, events: list[Event]) -> list[Hook]:
    out = []
    for hook in analysis_of(body).get("webhooks") or []:
        name, kind, url = str(hook.get("name", "")), str(hook.get("type") or "rollout"), str(hook.get("url", ""))
        gate = kind in GATE_TYPES and url.rstrip("/").endswith(("/gate/check", "/rollback/check"))
        last = next((e.message for e in reversed(events) if name and name in e.message), "")
        out.append(Hook(name, kind, url, gate, last))
    return out


def revisions(body: Json) -> dict[str, Any]:
    status = status_of(body)
    return {
        "current": str(status.get("lastAppliedSpec") or ""),
        "promoted": str(status.get("lastPromotedSpec") or ""),
        "configs": dict(status.get("trackedConfigs") or {}),
    }


def target(body: Json) -> str:
    ref = (body.get("spec") or {}).get("targetRef") or {}
    return f"{ref.get('kind', '')}/{ref.get('name', '')}"


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
