"""``canaryflow describe``: an object as ``kubectl describe`` shows it, for a person deciding what to do.

For a canary: the spec summary (target, service, analysis, metrics, webhooks), its status, the timeline of the
current run (every event since the run started, with the time into the run) and the latest events. Fields
without a value are left out rather than shown empty.
"""

from __future__ import annotations

import datetime
from typing import Any

from canaryflow.cli import view

RECENT = 10


def blank(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def pruned(value: Any) -> Any:
    """``value`` without empty fields, at any depth."""
    if isinstance(value, dict):
        kept = {k: pruned(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if not blank(v)}
    if isinstance(value, list):
        return [pruned(v) for v in value if not blank(v)]
    return value


def canary(item: dict[str, Any], events: list[dict[str, Any]]) -> str:
    spec, status = item.get("spec") or {}, pruned(item.get("status") or {})
    analysis = spec.get("analysis") or spec.get("canaryAnalysis") or {}
    target = spec.get("targetRef") or {}
    lines = _fields([
        ("Name", item["metadata"]["name"]),
        ("Namespace", item["metadata"].get("namespace")),
        ("Target", f"{target.get('kind', 'Deployment')}/{target.get('name', '')}"),
        ("Autoscaler", _ref(spec.get("autoscalerRef"))),
        ("Service", _service(spec.get("service") or {})),
        ("Analysis", _analysis(analysis)),
        ("Progress deadline", f"{spec['progressDeadlineSeconds']}s" if "progressDeadlineSeconds" in spec else None),
        ("Skip analysis", "true" if spec.get("skipAnalysis") else None),
    ])  # fmt: skip
    metrics = [_metric(m) for m in analysis.get("metrics") or []]
    hooks = [
        f"{h.get('name', '')}  {h.get('type', 'rollout')}  {h.get('url', '')}" for h in analysis.get("webhooks") or []
    ]
    lines += _section("Metrics", metrics) + _section("Webhooks", hooks)
    lines.append("Status:")
    lines += ["  " + line for line in _fields([
        ("Phase", status.get("phase")), ("Canary weight", status.get("canaryWeight")),
        ("Failed checks", status.get("failedChecks")), ("Iterations", status.get("iterations") or None),
        ("Message", view.message(status) or None), ("Last transition", status.get("lastTransitionTime")),
        ("Run started", status.get("runStartedAt")), ("Unready since", status.get("unreadySince")),
        ("Last metrics", ", ".join(f"{k}={v:.4g}" for k, v in (status.get("lastMetrics") or {}).items()) or None),
        ("Last applied spec", status.get("lastAppliedSpec")), ("Last promoted spec", status.get("lastPromotedSpec")),
    ])]  # fmt: skip
    started = _parse(status.get("runStartedAt"))
    run = [e for e in events if started is not None and e["time"] >= started]
    if run:
        lines.append(f"Timeline of the current run (since {status['runStartedAt']}):")
        lines += [f"  +{_clock(e['time'] - started)}  {e['type']:<8} {_one_line(e['message'])}" for e in run]
    recent = events[-RECENT:]
    lines.append("Events:" if recent else "Events:  <none>")
    if recent:
        lines += ["  " + line for line in view.plain(view.event_rows(recent))[0].splitlines()]
    return "\n".join(lines)


def other(item: dict[str, Any]) -> str:
    return view.dump(pruned(item), "yaml")


def _fields(pairs: list[tuple[str, Any]]) -> list[str]:
    kept = [(k, v) for k, v in pairs if not blank(v)]
    width = max((len(k) for k, _ in kept), default=0) + 2
    return [f"{k + ':':<{width}}{v}" for k, v in kept]


def _section(title: str, entries: list[str]) -> list[str]:
    return [f"{title}:", *("  " + e for e in entries)] if entries else []


def _ref(ref: dict[str, Any] | None) -> str | None:
    return f"{ref.get('kind', '')}/{ref.get('name', '')}" if ref else None


def _service(service: dict[str, Any]) -> str:
    parts = [f"port {service.get('port', '')}"]
    if service.get("targetPort") not in (None, service.get("port")):
        parts.append(f"targetPort {service['targetPort']}")
    for key in ("name", "portName"):
        if service.get(key):
            parts.append(f"{key} {service[key]}")
    for key in ("gateways", "hosts"):
        if service.get(key):
            parts.append(f"{key} {', '.join(service[key])}")
    return ", ".join(parts)


def _analysis(analysis: dict[str, Any]) -> str:
    names = (("interval", "interval"), ("threshold", "threshold"), ("iterations", "iterations"),
             ("maxWeight", "max weight"), ("stepWeight", "step weight"), ("stepWeights", "step weights"),
             ("stepWeightPromotion", "promotion step"), ("mirror", "mirror"), ("mirrorWeight", "mirror weight"),
             ("primaryReadyThreshold", "primary ready %"), ("canaryReadyThreshold", "canary ready %"))  # fmt: skip
    parts = [f"{label} {analysis[key]}" for key, label in names if not blank(analysis.get(key))]
    if analysis.get("match"):
        parts.append(f"{len(analysis['match'])} match rule(s) (A/B test)")
    return ", ".join(parts)


def _metric(metric: dict[str, Any]) -> str:
    bounds = metric.get("thresholdRange") or {}
    limits = " ".join(f"{k} {bounds[k]}" for k in ("min", "max") if k in bounds)
    if "threshold" in metric:
        limits = f"threshold {metric['threshold']}"
    template = metric.get("templateRef") or {}
    source = (
        f"template {template.get('namespace', '')}/{template.get('name', '')}".replace(" /", " ") if template else ""
    )
    return "  ".join(p for p in (metric.get("name", ""), limits, f"interval {metric['interval']}"
                                 if metric.get("interval") else "", source) if p)  # fmt: skip


def _parse(stamp: Any) -> float | None:
    if not stamp:
        return None
    when = datetime.datetime.strptime(str(stamp), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
    return when.timestamp()


def _clock(seconds: float) -> str:
    minutes, rest = divmod(max(0, round(seconds)), 60)
    return f"{minutes}m{rest:02d}s"


def _one_line(text: str) -> str:
    return " ".join(text.split())
