"""The emulator's storage: objects, the cluster-wide resourceVersion counter, and the change log watches read.

Like etcd behind the API server (kubernetes.io, "API concepts", Resource versions): every write gets the next
revision of ONE counter shared by all resources, so versions are comparable across kinds only for equality but
increase monotonically; a deletion is a write too. The change log keeps the most recent events; a watch that
asks for a version older than the log ("compacted") gets 410 Gone and must list again.
"""

from __future__ import annotations

import asyncio
import bisect
import dataclasses
import datetime
from typing import Any

from tests.kube.emulator.apply import Owners
from tests.kube.emulator.resources import Resource

Json = dict[str, Any]
StorageKey = tuple[str, str]  # (group, plural): one storage shared by all served versions
ObjectKey = tuple[str, str, str | None, str]  # group, plural, namespace, name

LOG_SIZE = 10_000


def now() -> str:
    return datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclasses.dataclass
class Stored:
    obj: Json
    owners: Owners = dataclasses.field(default_factory=dict)
    times: dict[tuple[str, str], str] = dataclasses.field(default_factory=dict)
    resource: Resource | None = None  # the version it was created through (namespace cleanup renders with it)


@dataclasses.dataclass(frozen=True)
class Change:
    revision: int
    storage: StorageKey
    type: str  # ADDED | MODIFIED | DELETED
    obj: Json
    previous: Json | None  # the object before a MODIFIED (selectors: entering/leaving a watch's view)


class Store:
    def __init__(self) -> None:
        self.objects: dict[ObjectKey, Stored] = {}
        self.revision = 1  # never "0": a list's version must be resumable, and "0" means "any" to a watch
        self.log: list[Change] = []
        self.compacted = 1  # changes up to and including this revision are gone from the log
        self._changed: asyncio.Condition | None = None

    @property
    def changed(self) -> asyncio.Condition:
        if self._changed is None:  # created in the emulator's loop on first use
            self._changed = asyncio.Condition()
        return self._changed

    def next_revision(self) -> str:
        self.revision += 1
        return str(self.revision)

    async def record(self, storage: StorageKey, type: str, obj: Json, previous: Json | None = None) -> None:
        """Append to the log before the first await, so the log stays in write order whatever runs next."""
        revision = int(obj["metadata"]["resourceVersion"])
        self.log.append(Change(revision, storage, type, obj, previous))
        if len(self.log) > LOG_SIZE:
            dropped = self.log[: len(self.log) - LOG_SIZE]
            self.log = self.log[len(dropped) :]
            self.compacted = dropped[-1].revision
        async with self.changed:
            self.changed.notify_all()

    def compact(self) -> None:
        """Forget the change log, as etcd compaction does: watches from older versions get 410 Gone."""
        self.log.clear()
        self.compacted = self.revision

    def changes_after(self, revision: int, storage: StorageKey) -> list[Change]:
        start = bisect.bisect_right(self.log, revision, key=lambda change: change.revision)  # the log is ordered
        return [change for change in self.log[start:] if change.storage == storage]

    def items(self, storage: StorageKey, namespace: str | None) -> list[Stored]:
        found = [
            stored
            for (group, plural, ns, _), stored in self.objects.items()
            if (group, plural) == storage and (namespace is None or ns == namespace)
        ]
        return sorted(found, key=lambda s: (s.obj["metadata"].get("namespace") or "", s.obj["metadata"]["name"]))

    async def wake(self) -> None:
        async with self.changed:
            self.changed.notify_all()
