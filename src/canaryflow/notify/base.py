"""The Notifier seam and the Alert it carries."""

from __future__ import annotations

import dataclasses
from typing import Protocol

from canaryflow.engine.effects import AlertSeverity as Severity

__all__ = ["Alert", "Notifier", "NotifyError", "Severity"]


@dataclasses.dataclass(frozen=True, slots=True)
class Alert:
    """What Flagger's notifiers post: who (``name.namespace``), what happened, and a few fields."""

    name: str
    namespace: str
    message: str
    severity: Severity
    fields: tuple[tuple[str, str], ...] = ()


class Notifier(Protocol):
    async def post(self, alert: Alert) -> None:
        """Deliver one alert; raises NotifyError when the service refuses it or cannot be reached."""
        ...


class NotifyError(Exception):
    """An alert could not be delivered."""
