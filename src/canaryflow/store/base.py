"""The StatusStore and EventSink seams."""

from __future__ import annotations

import dataclasses
from typing import Protocol

from canaryflow.api.status import CanaryStatus
from canaryflow.engine.effects import EventType
from canaryflow.engine.machine import Operation


class Conflict(Exception):
    """The status changed since it was loaded (another writer): reload and tick again."""


@dataclasses.dataclass(frozen=True, slots=True)
class Stored:
    status: CanaryStatus
    #: Opaque version for optimistic concurrency (a counter locally, resourceVersion in Kubernetes).
    version: str


@dataclasses.dataclass(frozen=True, slots=True)
class Event:
    """A Kubernetes-style event about one canary (``namespace/name``)."""

    time: float
    canary: str
    type: EventType
    message: str
    reason: str = "Synced"


class StatusStore(Protocol):
    async def load(self, key: str) -> Stored | None: ...

    async def save(self, key: str, status: CanaryStatus, version: str | None) -> str:
        """Store ``status`` if the stored version is still ``version`` (None: there was none); returns the
        new version; raises Conflict otherwise."""
        ...

    async def request(self, key: str, operation: Operation) -> None:
        """Record a user's request (promote, abort, retry); the next tick acts on it."""
        ...

    async def pending(self, key: str) -> Operation | None: ...
    async def clear(self, key: str, operation: Operation) -> None: ...
    async def delete(self, key: str) -> None: ...


class EventSink(Protocol):
    async def record(self, event: Event) -> None: ...
    async def recent(self, canary: str | None = None, limit: int = 50) -> list[Event]: ...
