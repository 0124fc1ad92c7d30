"""An in-memory Notifier: keeps every alert it is given, or refuses them when told to.

Engine and dispatcher tests read ``alerts`` to see what a user would have been told.
"""

from __future__ import annotations

from canaryflow.notify.base import Alert, NotifyError


class MemoryNotifier:
    def __init__(self, *, refuse: str | None = None) -> None:
        """``refuse``: when set, every post raises NotifyError with this reason (an unreachable service)."""
        self.alerts: list[Alert] = []
        self.refuse = refuse

    async def post(self, alert: Alert) -> None:
        if self.refuse is not None:
            raise NotifyError(self.refuse)
        self.alerts.append(alert)

    @property
    def messages(self) -> list[str]:
        return [a.message for a in self.alerts]
