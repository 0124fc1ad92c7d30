"""Watch-backed reads of the objects every tick compares: Deployments, Services, DestinationRules, VirtualServices.

An idle tick changes nothing, yet it must look at a Canary's target and primary, its three Services, two
DestinationRules and VirtualService to notice drift (a user's edit to be put back, a rollout finishing). Read
with a GET each, that is about ten requests per Canary per interval, most of the operator's CPU. ``KubeCache``
keeps those four kinds in memory instead, as an informer does: one list-then-watch per kind and namespace
(``Api.watch`` resumes and relists by itself), so a read is a dict lookup and an edit by someone else reaches
the cache as a watch event within moments of being made, in time for the next tick.

What the cache answers must never be older than what the operator itself did, nor make a mistake permanent:

- An object the cache does not hold is read from the API server. The cache cannot tell "deleted" from "not
  delivered yet" (the watch is starting, or the object was just created), and a wrong "missing" would create
  or report missing what exists. Objects it holds were current at their last event; DELETED events, including
  those a relist after a broken watch produces, take them out.
- Before the operator writes an object (:func:`canaryflow.kube.converge.converge` calls :meth:`changing`), the
  object is marked *changing*: reads go to the API server until the cache holds the version the server
  answers. So a tick never sees the pre-write copy (a promotion's primary still "ready" at its old
  generation), and a 409 Conflict is retried on a fresh read, not on the cached copy that caused it.
- A watch that fails outright is dropped with what it delivered (reads of its kind and namespace go to the API
  server meanwhile) and started again after a pause that grows while it keeps failing (the Istio CRDs may not
  be installed at all, with provider ``kubernetes``).

An unstarted cache holds nothing, so every read is a GET: that is what the adapters use when they are given
no cache (tests that count requests, tools that run one reconcile). Objects are handed out as copies: callers
may change what they read without changing the cache.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Sequence
from typing import Any

from canaryflow.clock.backoff import Backoff
from canaryflow.kube import informer
from canaryflow.kube.api import Api, WatchEvent
from canaryflow.kube.kinds import DEPLOYMENT, DESTINATION_RULE, SERVICE, VIRTUAL_SERVICE, Kind

log = logging.getLogger(__name__)

Json = dict[str, Any]
Key = tuple[Kind, str, str]  # kind, namespace, name
#: Pauses between attempts to start a failing watch, seconds (the catalog's watches use it too).
WATCH_RESTART = Backoff(first=5.0, cap=300.0)


class KubeCache:
    """Reads of Deployments, Services, DestinationRules and VirtualServices from watches; other kinds, and what
    the cache cannot answer for sure, from the API server (see the module docstring for when)."""

    def __init__(self, api: Api, namespaces: Sequence[str] = (), *, restart: Backoff = WATCH_RESTART) -> None:
        self.api = api
        #: Namespaces to watch; empty means all of them (the operator's ``--namespace`` flags).
        self.namespaces: tuple[str | None, ...] = tuple(namespaces) or (None,)
        self.restart = restart
        self._objects: dict[Key, Json] = {}
        #: Objects being written, with a count of the writes announced (see ``lookup``).
        self._changing: dict[Key, int] = {}
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Start one watch per kind and namespace; reads are answered by the API server until events arrive."""
        for kind in (DEPLOYMENT, SERVICE, DESTINATION_RULE, VIRTUAL_SERVICE):
            for namespace in self.namespaces:
                name = f"cache watch {kind.plural} {namespace or '(all namespaces)'}"
                self._tasks.append(asyncio.create_task(self._follow(kind, namespace), name=name))

    async def close(self) -> None:
        tasks, self._tasks = self._tasks, []
        await informer.stop(tasks)
        self._objects.clear()
        self._changing.clear()

    async def lookup(self, kind: Kind, namespace: str, name: str) -> Json | None:
        """The object as the cache holds it, or as the API server answers when the cache cannot say for sure
        (None: it does not exist)."""
        key = (kind, namespace, name)
        cached = self._objects.get(key)
        if cached is not None and key not in self._changing:
            return copy.deepcopy(cached)
        writes = self._changing.get(key)
        fresh = await self.api.get(kind, namespace, name)
        if (
            writes is not None
            and self._changing.get(key) == writes
            and _version(self._objects.get(key)) == _version(fresh)
        ):
            # The watch has delivered the version the server has, and no write was announced since the GET.
            del self._changing[key]
        return fresh

    def cached(self, kind: Kind, namespace: str, name: str) -> Json | None:
        """What the cache holds for the object (None: nothing), without asking the API server."""
        found = self._objects.get((kind, namespace, name))
        return copy.deepcopy(found) if found is not None else None

    def changing(self, kind: Kind, namespace: str, name: str) -> None:
        """The operator is about to write this object: read it from the API server until the cache has the
        version the server has (which holds the write, or whatever came after it)."""
        key = (kind, namespace, name)
        self._changing[key] = self._changing.get(key, 0) + 1

    def observe(self, kind: Kind, event: WatchEvent) -> None:
        """Apply one watch event."""
        metadata = event.object.get("metadata") or {}
        key = (kind, str(metadata.get("namespace") or ""), str(metadata.get("name")))
        if event.type == "DELETED":
            # A missing object is always read from the server: a write in flight needs no mark any more (and
            # the marks of a deleted Canary's objects do not pile up).
            self._objects.pop(key, None)
            self._changing.pop(key, None)
        elif event.type in ("ADDED", "MODIFIED"):
            self._objects[key] = event.object

    # -- internals ----------------------------------------------------------------------------------------------
    async def _follow(self, kind: Kind, namespace: str | None) -> None:
        """Keep one kind of one namespace (None: all) current, starting the watch again when it fails."""

        async def handle(event: WatchEvent) -> None:
            self.observe(kind, event)

        def lost(exc: Exception | None, delay: float, failures: int) -> None:
            # Forget what it delivered, start again; reads go to the API server meanwhile.
            self._forget(kind, namespace)
            problem = "the watch ended" if exc is None else str(exc) or type(exc).__name__
            (log.warning if failures == 0 else log.debug)(
                "cache of %s in %s: %s; reading them from the API server, watching again in %.0fs",
                kind.plural, namespace or "all namespaces", problem, delay,
            )  # fmt: skip

        await informer.follow(self.api, kind, namespace, handle, lost, self.restart)

    def _forget(self, kind: Kind, namespace: str | None) -> None:
        for key in [k for k in self._objects if k[0] == kind and namespace in (None, k[1])]:
            del self._objects[key]


def _version(obj: Json | None) -> str | None:
    return None if obj is None else str((obj.get("metadata") or {}).get("resourceVersion"))
