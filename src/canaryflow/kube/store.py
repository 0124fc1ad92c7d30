"""The control loop's memory in Kubernetes: a Canary's status subresource, its annotations, and core/v1 Events.

``KubeStatusStore`` keeps status where Flagger keeps it (``kubectl get canaries`` columns, dashboards and
``kubectl wait --for=condition=Promoted`` keep working) and uses the Canary's resourceVersion for optimistic
concurrency. A resourceVersion guards the whole object, though, and users touch metadata (a promote annotation,
a label) while a tick runs: a 409 whose fresh object still carries the status the tick started from is not a
lost race with another status writer, so the write is repeated on the fresh version. Only a status that really
changed under the tick raises ``store.base.Conflict``.

User operations (promote, abort, retry) are the annotation ``canaryflow.dev/operation`` (``kubectl annotate``
needs no webhook and no extra RBAC); ``clear`` removes it with a JSON-patch ``test``, so a newer request made
while the tick ran is never lost.

``KubeEventSink`` writes Events as ``kubectl describe canary`` shows them, and aggregates repeats the way
client-go's recorder does: the same type, reason and message about the same Canary bump ``count`` and
``lastTimestamp`` of one Event instead of creating another. Events are best effort, as client-go's recorder makes
them: an Event the API server still refuses after the client's retries is logged and dropped, so a tick (a
rollback, say) never stops on the audit trail. The status, which the next tick reads, is never best effort.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from canaryflow.api.status import CanaryStatus
from canaryflow.api.timestamps import parse_rfc3339, rfc3339
from canaryflow.engine.effects import EventType
from canaryflow.engine.machine import Operation
from canaryflow.kube.client import CANARY, EVENT, Api, ApiError, Conflict, Invalid, NotFound
from canaryflow.store.base import Conflict as StoreConflict
from canaryflow.store.base import Event, Stored

log = logging.getLogger(__name__)

OPERATION_ANNOTATION = "canaryflow.dev/operation"
_OPERATION_POINTER = "/metadata/annotations/" + OPERATION_ANNOTATION.replace("~", "~0").replace("/", "~1")
#: Status keys written as RFC 3339 timestamps; Flagger omits them rather than writing "" (its CRD says date-time).
_TIMESTAMPS = ("lastTransitionTime", "runStartedAt", "unreadySince")
Json = dict[str, Any]


def split_key(key: str) -> tuple[str, str]:
    namespace, sep, name = key.partition("/")
    if not sep or not namespace or not name:
        raise ValueError(f"canary key {key!r} is not namespace/name")
    return namespace, name


def status_body(status: CanaryStatus) -> Json:
    """``status`` in Flagger's shape, without empty timestamps (an API server with Flagger's CRD refuses "")."""
    body = status.to_dict()
    for key in _TIMESTAMPS:
        if body.get(key) == "":
            del body[key]
    for condition in body.get("conditions", []):
        for key in ("lastTransitionTime", "lastUpdateTime"):
            if condition.get(key) == "":
                del condition[key]
    return body


def operation_of(canary: Json) -> tuple[Operation | None, str | None]:
    """The operation the Canary's annotation asks for, and the raw value when it names no operation."""
    raw = ((canary.get("metadata") or {}).get("annotations") or {}).get(OPERATION_ANNOTATION)
    if raw is None:
        return None, None
    try:
        return Operation(str(raw).strip().lower()), None
    except ValueError:
        return None, str(raw)


class KubeStatusStore:
    def __init__(self, api: Api, *, attempts: int = 3) -> None:
        self.api = api
        self.attempts = attempts
        #: The object each key's last ``load`` returned: ``save`` writes it back with a new status, and
        #: ``pending`` (which the executor calls right after ``load``) reads its annotation without a GET.
        self._loaded: dict[str, Json] = {}

    async def load(self, key: str) -> Stored | None:
        namespace, name = split_key(key)
        obj = await self.api.get(CANARY, namespace, name)
        if obj is None:
            self._loaded.pop(key, None)
            return None
        self._loaded[key] = obj
        return Stored(CanaryStatus.from_dict(obj.get("status")), str(obj["metadata"]["resourceVersion"]))

    async def save(self, key: str, status: CanaryStatus, version: str | None) -> str:
        namespace, name = split_key(key)
        base = self._loaded.get(key)
        if base is None or version is None or str(base["metadata"].get("resourceVersion")) != version:
            base = await self.api.get(CANARY, namespace, name)
            if base is None:
                raise StoreConflict(f"canary {key} was deleted")
            if version is not None and str(base["metadata"]["resourceVersion"]) != version:
                raise StoreConflict(f"status of canary {key} changed since resourceVersion {version}")
        expected = base.get("status")
        new_status = status_body(status)
        for _ in range(self.attempts):
            body = {**base, "status": new_status}
            try:
                written = await self.api.replace_status(CANARY, body)
            except NotFound as exc:
                raise StoreConflict(f"canary {key} was deleted") from exc
            except Conflict:
                fresh = await self.api.get(CANARY, namespace, name)
                if fresh is None:
                    raise StoreConflict(f"canary {key} was deleted") from None
                if fresh.get("status") != expected:
                    raise StoreConflict(
                        f"status of canary {key} was changed by another writer "
                        f"(resourceVersion {version} -> {fresh['metadata']['resourceVersion']})"
                    ) from None
                base = fresh  # only metadata or spec moved on: write the same status on the new version
                continue
            self._loaded[key] = written
            return str(written["metadata"]["resourceVersion"])
        raise StoreConflict(f"status of canary {key}: still conflicting after {self.attempts} attempts")

    async def request(self, key: str, operation: Operation) -> None:
        namespace, name = split_key(key)
        patch = {"metadata": {"annotations": {OPERATION_ANNOTATION: operation.value}}}
        await self.api.patch(CANARY, namespace, name, patch)

    async def pending(self, key: str) -> Operation | None:
        obj = self._loaded.get(key)
        if obj is None:
            namespace, name = split_key(key)
            obj = await self.api.get(CANARY, namespace, name)
            if obj is None:
                return None
        return operation_of(obj)[0]

    async def clear(self, key: str, operation: Operation) -> None:
        """Remove the annotation if it still asks for ``operation`` (a newer request stays for the next tick)."""
        namespace, name = split_key(key)
        obj = self._loaded.get(key) or {}
        raw = ((obj.get("metadata") or {}).get("annotations") or {}).get(OPERATION_ANNOTATION, operation.value)
        patch = [
            {"op": "test", "path": _OPERATION_POINTER, "value": raw},
            {"op": "remove", "path": _OPERATION_POINTER},
        ]
        try:
            await self.api.patch(CANARY, namespace, name, patch, type="json")
        except (Invalid, NotFound, Conflict) as exc:  # changed or gone meanwhile: nothing of ours to remove
            log.debug("%s: operation annotation not cleared: %s", key, exc)
        self._loaded.pop(key, None)

    async def delete(self, key: str) -> None:
        """Nothing to do: the status lives and dies with the Canary object."""
        self._loaded.pop(key, None)


class KubeEventSink:
    def __init__(self, api: Api, component: str = "canaryflow") -> None:
        self.api = api
        self.component = component
        #: uid of each Canary events were recorded for (involvedObject.uid lets ``kubectl describe`` find them).
        self._uids: dict[str, str] = {}
        #: Events the API server refused after the client's retries (logged and dropped).
        self.dropped = 0

    def forget(self, key: str) -> None:
        self._uids.pop(key, None)

    async def record(self, event: Event) -> None:
        try:
            await self._write(event)
        except ApiError as exc:
            self.dropped += 1
            log.warning("%s: event %r not recorded (dropped, as Kubernetes events are best effort): %s",
                        event.canary, event.message, exc)  # fmt: skip

    async def _write(self, event: Event) -> None:
        namespace, name = split_key(event.canary)
        uid = self._uids.get(event.canary)
        if uid is None:
            canary = await self.api.get(CANARY, namespace, name)
            uid = self._uids[event.canary] = str(canary["metadata"].get("uid", "")) if canary else ""
        stamp = rfc3339(event.time)
        # One name per (canary, type, reason, message): a repeat finds the Event it aggregates into even after
        # a restart, without listing events.
        digest = hashlib.sha256(f"{uid}\0{event.type}\0{event.reason}\0{event.message}".encode()).hexdigest()[:16]
        event_name = f"{name}.{digest}"
        existing = await self.api.get(EVENT, namespace, event_name)
        if existing is not None:
            count = int(existing.get("count") or 1) + 1
            try:
                await self.api.patch(EVENT, namespace, event_name, {"count": count, "lastTimestamp": stamp})
                return
            except NotFound:
                pass  # expired between get and patch: create it again
        body: Json = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": event_name, "namespace": namespace},
            "involvedObject": {
                "apiVersion": CANARY.api_version,
                "kind": CANARY.kind,
                "name": name,
                "namespace": namespace,
                **({"uid": uid} if uid else {}),
            },
            "type": event.type.value,
            "reason": event.reason,
            "message": event.message,
            "count": 1,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "source": {"component": self.component},
            "reportingComponent": self.component,
        }
        try:
            await self.api.create(EVENT, body)
        except Conflict:  # created by a concurrent record of the same event: count it there
            await self.api.patch(EVENT, namespace, event_name, {"lastTimestamp": stamp})

    async def recent(self, canary: str | None = None, limit: int = 50) -> list[Event]:
        namespace, name = split_key(canary) if canary else (None, None)
        events = []
        for item in await self.api.list(EVENT, namespace):
            involved = item.get("involvedObject") or {}
            if involved.get("kind") != CANARY.kind or (name is not None and involved.get("name") != name):
                continue
            key = f"{involved.get('namespace')}/{involved.get('name')}"
            when = _parse(item.get("lastTimestamp") or item.get("firstTimestamp"))
            kind = EventType(item.get("type") or EventType.NORMAL.value)
            events.append(Event(when, key, kind, str(item.get("message", "")), str(item.get("reason", ""))))
        events.sort(key=lambda e: e.time)
        return events[-limit:]


def _parse(value: Any) -> float:
    if not value:
        return 0.0
    return parse_rfc3339(str(value))
