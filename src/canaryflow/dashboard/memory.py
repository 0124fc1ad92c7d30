"""A Backend held in memory: the dashboard's tests drive it as a runtime would (statuses change, events arrive)."""

from __future__ import annotations

import time

from canaryflow.dashboard.base import Json, NotFound
from canaryflow.engine.effects import EventType
from canaryflow.engine.machine import Operation
from canaryflow.store.base import Event


class MemoryBackend:
    def __init__(self, canaries: list[Json] | None = None, gitops: dict[str, list[Json]] | None = None) -> None:
        self.items: dict[str, Json] = {}
        for body in canaries or []:
            self.put(body)
        self.objects = gitops or {}
        self.recorded: list[Event] = []
        self.operations: list[tuple[str, Operation]] = []
        self.gates: dict[tuple[str, str], bool] = {}
        self.prometheus: str | None = None

    def put(self, body: Json) -> None:
        meta = body["metadata"]
        self.items[f"{meta['namespace']}/{meta['name']}"] = body

    def emit(self, canary: str, message: str, warning: bool = False) -> None:
        kind = EventType.WARNING if warning else EventType.NORMAL
        self.recorded.append(Event(time.time(), canary, kind, message))

    async def canaries(self) -> list[Json]:
        return list(self.items.values())

    async def events(self, canary: str | None, limit: int) -> list[Event]:
        return [e for e in self.recorded if canary in (None, e.canary)][-limit:]

    async def gitops(self) -> dict[str, list[Json]]:
        return self.objects

    async def operate(self, canary: str, operation: Operation) -> None:
        if canary not in self.items:
            raise NotFound(f"canary {canary} not found")
        self.operations.append((canary, operation))

    async def gate(self, canary: str, webhook: str, open_: bool) -> str:
        if canary not in self.items:
            raise NotFound(f"canary {canary} not found")
        self.gates[(canary, webhook)] = open_
        return f"gate {'opened' if open_ else 'closed'}"
