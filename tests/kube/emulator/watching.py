"""Watch streams: newline-delimited JSON events over a chunked HTTP response (kubernetes.io, "API concepts").

- ``resourceVersion`` unset or ``"0"``: synthetic ADDED events for what exists now, then every later change.
- a specific version: every change after it; if the change log no longer reaches back that far, one ERROR
  event with a 410 ``Expired`` Status and the end of the stream, as the API server does.
- with a selector, an object that starts matching arrives as ADDED and one that stops matching as DELETED.
- ``timeoutSeconds`` ends the stream cleanly; ``allowWatchBookmarks`` adds BOOKMARK events at that point.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import Callable
from typing import Any

import aiohttp.web

from tests.kube.emulator.crud import Target, render
from tests.kube.emulator.store import Change, Store

Json = dict[str, Any]


@dataclasses.dataclass(eq=False)
class OpenWatch:
    """A live stream; ``abort`` cuts the connection without the final chunk (a broken network)."""

    raw: aiohttp.web.BaseRequest
    closed: bool = False

    def abort(self) -> None:
        self.closed = True
        transport = self.raw.transport
        if transport is not None:
            transport.close()


def _line(event_type: str, obj: Json) -> bytes:
    return json.dumps({"type": event_type, "object": obj}).encode() + b"\n"


def _status_410(revision: str, oldest: int) -> Json:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "code": 410,
        "reason": "Expired",
        "message": f"too old resource version: {revision} ({oldest + 1})",
    }


def _view(change: Change, namespace: str | None, matches: Callable[[Json], bool]) -> str | None:
    """The event type this watch sees for ``change`` (None: outside its view)."""
    in_namespace = namespace is None or change.obj["metadata"].get("namespace") == namespace
    now_in = in_namespace and matches(change.obj)
    if change.type == "MODIFIED" and change.previous is not None:
        was_in = in_namespace and matches(change.previous)
        if now_in and not was_in:
            return "ADDED"
        if was_in and not now_in:
            return "DELETED"
    return change.type if now_in else None


async def serve(
    store: Store,
    target: Target,
    params: dict[str, str],
    raw: aiohttp.web.BaseRequest,
    matches: Callable[[Json], bool],
    registry: set[OpenWatch],
) -> aiohttp.web.StreamResponse:
    storage = (target.resource.group, target.resource.plural)
    response = aiohttp.web.StreamResponse(status=200)
    response.content_type = "application/json"
    response.enable_chunked_encoding()
    await response.prepare(raw)
    handle = OpenWatch(raw)
    registry.add(handle)
    timeout = float(params["timeoutSeconds"]) if params.get("timeoutSeconds") else None
    deadline = asyncio.get_running_loop().time() + timeout if timeout else None
    try:
        start = params.get("resourceVersion") or "0"
        if start == "0":
            revision = store.revision
            for stored in store.items(storage, target.namespace):
                if matches(stored.obj):
                    await response.write(_line("ADDED", render(target.resource, stored)))
        elif not start.isdigit():
            invalid = {**_status_410(start, store.compacted), "code": 400, "reason": "BadRequest"}
            await response.write(_line("ERROR", {**invalid, "message": f"invalid resourceVersion {start}"}))
            await response.write_eof()
            return response
        elif int(start) < store.compacted:
            await response.write(_line("ERROR", _status_410(start, store.compacted)))
            await response.write_eof()
            return response
        else:
            revision = int(start)
        while not handle.closed:
            checked = store.revision
            for change in store.changes_after(revision, storage):
                revision = change.revision
                seen = _view(change, target.namespace, matches)
                if seen is not None:
                    obj = {**change.obj, "apiVersion": target.resource.api_version, "kind": target.resource.kind}
                    await response.write(_line(seen, obj))
            remaining = None if deadline is None else deadline - asyncio.get_running_loop().time()
            if remaining is not None and remaining <= 0:
                if params.get("allowWatchBookmarks") == "true":
                    bookmark = {
                        "apiVersion": target.resource.api_version,
                        "kind": target.resource.kind,
                        "metadata": {"resourceVersion": str(store.revision)},
                    }
                    await response.write(_line("BOOKMARK", bookmark))
                break
            async with store.changed:  # holding the lock, no change can be recorded between check and wait
                if store.revision == checked and not handle.closed:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(store.changed.wait(), timeout=min(remaining or 1.0, 1.0))
        if not handle.closed:
            await response.write_eof()
    except (ConnectionError, RuntimeError):
        pass  # the client went away, or the stream was aborted under us
    finally:
        registry.discard(handle)
    return response
