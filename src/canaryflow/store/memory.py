"""StatusStore and EventSink in memory: for tests, benchmarks and throw-away runs."""

from __future__ import annotations

import collections

from canaryflow.api.status import CanaryStatus
from canaryflow.engine.machine import Operation
from canaryflow.store.base import Conflict, Event, Stored


class MemoryStatusStore:
    def __init__(self) -> None:
        self._status: dict[str, tuple[CanaryStatus, int]] = {}
        self._ops: dict[str, Operation] = {}
        self.saves = 0

    async def load(self, key: str) -> Stored | None:
        found = self._status.get(key)
        return Stored(found[0].copy(), str(found[1])) if found else None

    async def save(self, key: str, status: CanaryStatus, version: str | None) -> str:
        found = self._status.get(key)
        current = str(found[1]) if found else None
        if current != version:
            raise Conflict(f"status of {key} changed (version {current}, expected {version})")
        new = (found[1] if found else 0) + 1
        self._status[key] = (status.copy(), new)
        self.saves += 1
        return str(new)

    async def request(self, key: str, operation: Operation) -> None:
        self._ops[key] = operation

    async def pending(self, key: str) -> Operation | None:
        return self._ops.get(key)

    async def clear(self, key: str, operation: Operation) -> None:
        if self._ops.get(key) is operation:
            del self._ops[key]

    async def delete(self, key: str) -> None:
        self._status.pop(key, None)
        self._ops.pop(key, None)


class MemoryEventSink:
    def __init__(self, keep: int = 10_000) -> None:
        self.events: collections.deque[Event] = collections.deque(maxlen=keep)

    async def record(self, event: Event) -> None:
        self.events.append(event)

    async def recent(self, canary: str | None = None, limit: int = 50) -> list[Event]:
        chosen = [e for e in self.events if canary is None or e.canary == canary]
        return chosen[-limit:]
