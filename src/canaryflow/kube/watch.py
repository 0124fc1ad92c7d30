"""List-then-watch with resume: the event stream ``KubeApi.watch`` returns.

The API server's contract (kubernetes.io, "API concepts", Efficient detection of changes): a list returns a
resourceVersion; a watch from it streams every later change; a broken stream is resumed from the last
resourceVersion seen; when that version is too old the server answers 410 Gone and the client must list again.
After such a relist this module emits only what changed while it was not watching (ADDED, MODIFIED, DELETED), so
a consumer's cache stays correct without seeing duplicates of objects it already has.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TYPE_CHECKING, Any

from canaryflow.kube.api import WatchEvent
from canaryflow.kube.errors import CONNECTION_ERRORS, ApiError, error_from_response, retryable
from canaryflow.kube.kinds import Kind

if TYPE_CHECKING:
    from canaryflow.kube.client import KubeApi

Json = dict[str, Any]
Key = tuple[str | None, str]


class _Gone(Exception):
    """The resourceVersion we resume from was compacted away: list again."""


def _key(obj: Json) -> Key:
    meta = obj.get("metadata") or {}
    return meta.get("namespace"), str(meta.get("name"))


def _version(obj: Json) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


async def list_and_watch(
    api: KubeApi, kind: Kind, namespace: str | None = None, *, labels: str | None = None
) -> AsyncIterator[WatchEvent]:
    known: dict[Key, Json] = {}
    resource_version: str | None = None
    failures = 0
    while True:
        if resource_version is None:
            items, resource_version = await api.list_with_version(kind, namespace, labels=labels)
            for event in _relist_diff(known, items):
                yield event
        try:
            async with contextlib.aclosing(_stream(api, kind, namespace, labels, resource_version)) as stream:
                async for event in stream:
                    failures = 0
                    resource_version = _version(event.object) or resource_version
                    if event.type == "BOOKMARK":
                        continue
                    if event.type == "DELETED":
                        known.pop(_key(event.object), None)
                    else:
                        known[_key(event.object)] = event.object
                    yield event
        except _Gone:
            resource_version = None
        except CONNECTION_ERRORS as exc:
            failures += 1
            if failures >= api.retry.attempts:
                raise ApiError(0, "ConnectionError", f"watch {kind.path(namespace)}: {exc!r}") from exc
            await api.sleep(api.retry.delay(failures))


def _relist_diff(known: dict[Key, Json], items: list[Json]) -> list[WatchEvent]:
    """Events that turn ``known`` into ``items`` (and update ``known``): the first list is all ADDED."""
    events: list[WatchEvent] = []
    fresh = {_key(item): item for item in items}
    for key, old in list(known.items()):
        if key not in fresh:
            events.append(WatchEvent("DELETED", old))
            del known[key]
    for key, item in fresh.items():
        if key not in known:
            events.append(WatchEvent("ADDED", item))
        elif _version(known[key]) != _version(item):
            events.append(WatchEvent("MODIFIED", item))
        known[key] = item
    return events


async def _stream(
    api: KubeApi, kind: Kind, namespace: str | None, labels: str | None, resource_version: str
) -> AsyncGenerator[WatchEvent, None]:
    query = [
        ("watch", "true"),
        ("resourceVersion", resource_version),
        ("allowWatchBookmarks", "true"),
        ("timeoutSeconds", str(api.watch_timeout)),  # the server ends the stream then; we resume
    ]
    if labels:
        query.append(("labelSelector", labels))
    path = kind.path(namespace)
    response = await api.open_stream(path, query)
    async with response:
        if response.status == 410:
            raise _Gone()
        if response.status >= 400:
            error = error_from_response(response.status, await response.read(), f"GET {path}?watch=true")
            if retryable(response.status):
                raise ConnectionError(str(error))  # retried like a broken connection
            raise error
        async for line in response.content:
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
            except ValueError as exc:  # a line cut short: the stream broke under us
                raise ConnectionError(f"watch {path}: malformed event line {line[:100]!r}") from exc
            if doc.get("type") == "ERROR":
                status = doc.get("object") or {}
                code = int(status.get("code") or 500)
                if code == 410:
                    raise _Gone()
                error = ApiError(code, str(status.get("reason")), f"watch {path}: {status.get('message')}")
                if retryable(code):
                    raise ConnectionError(str(error))  # the server gave up on this stream: resume like a break
                raise error
            obj = doc.get("object") or {}
            obj.setdefault("apiVersion", kind.api_version)
            obj.setdefault("kind", kind.kind)
            yield WatchEvent(str(doc.get("type")), obj)
