"""Pages and fragments from templates (Jinja2, autoescaped: a canary or event holding ``<script>`` is text)."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from canaryflow.dashboard import model
from canaryflow.dashboard.base import Json
from canaryflow.store.base import Event

TEMPLATES = Path(__file__).with_name("templates")
_env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined)


def _clock(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, tz=datetime.UTC).strftime("%Y-%m-%d %H:%M:%SZ") if ts else ""


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


_env.filters["clock"] = _clock
_env.filters["number"] = _number


def page(name: str, **context: Any) -> Markup:
    """A rendered template: escaped already, so it is marked safe to place in another one."""
    return Markup(_env.get_template(name).render(**context))


def rows(canaries: list[Json]) -> Markup:
    items = sorted((model.row(c) for c in canaries), key=lambda r: r.key)
    return page("_rows.html", rows=items)


def canary_fragments(body: Json, events: list[Event], csrf: str, can_act: bool) -> dict[str, Markup]:
    """The parts of a canary's page that change while it runs, by element id."""
    hooks = model.hooks(body, events)
    return {
        "summary": page("_summary.html", row=model.row(body), target=model.target(body),
                        revisions=model.revisions(body)),
        "checks": page("_checks.html", checks=model.checks(body), judge=model.judge(body)),
        "hooks": page("_hooks.html", hooks=hooks, key=model.key_of(body), csrf=csrf, can_act=can_act),
        "events": page("_events.html", events=list(reversed(events))),
    }  # fmt: skip
