"""Read, compare, write: how the workload and routing adapters change objects in the cluster.

Every write the operator makes goes through :func:`converge`: it reads the object, asks ``decide`` what the
object should be given what is there, and writes only when that differs (an idle tick writes nothing, which is
what keeps the API server's load flat with thousands of canaries). A replace carries the ``resourceVersion`` it
read, so a concurrent change by someone else (a user, Flux, the HPA controller) is a 409 Conflict rather than a
lost update; on a conflict the object is read again and ``decide`` runs again on the fresh copy, a few times,
before the Conflict is raised to the caller (the executor turns it into a warning event and the next tick tries
again). Other API errors are not retried here: the client already retried the transient ones.

With a :class:`~canaryflow.kube.cache.KubeCache` the first read is usually the cache's (no request at all on an
idle tick); the object is announced to the cache as changing before every write, so a retry after a conflict,
and the reads after a write, come from the API server until the cache has caught up.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from canaryflow.api.canary import Canary
from canaryflow.kube.cache import KubeCache
from canaryflow.kube.client import Api, Conflict
from canaryflow.kube.kinds import Kind

Json = dict[str, Any]
#: Given the live object (None when it does not exist), the object to write, or None when nothing must change.
Decide = Callable[[Json | None], Json | None]
ATTEMPTS = 4


async def converge(
    api: Api, kind: Kind, namespace: str, name: str, decide: Decide, *, cache: KubeCache | None = None
) -> Json | None:
    """Bring ``namespace/name`` to what ``decide`` wants; returns the object as it is afterwards (None when it
    does not exist and ``decide`` did not create it). ``cache``: where to read it (default: the API server)."""

    def plan(live: Json | None) -> Write | None:
        body = decide(live)
        if body is None:
            return None
        if live is None:
            return lambda: api.create(kind, body)
        body.setdefault("metadata", {})["resourceVersion"] = (live.get("metadata") or {}).get("resourceVersion")
        return lambda: api.replace(kind, body)

    return await _write_retrying_conflicts(api, kind, namespace, name, plan, cache)


async def patch_until(
    api: Api,
    kind: Kind,
    namespace: str,
    name: str,
    decide: Callable[[Json], Any | None],
    *,
    cache: KubeCache | None = None,
) -> Json | None:
    """Merge-patch ``namespace/name`` with what ``decide`` returns for the live object (None: no change),
    retrying a conflict like :func:`converge`. Returns None when the object does not exist."""

    def plan(live: Json | None) -> Write | None:
        patch = decide(live) if live is not None else None
        if patch is None:
            return None
        return lambda: api.patch(kind, namespace, name, patch, type="merge")

    return await _write_retrying_conflicts(api, kind, namespace, name, plan, cache)


#: The write ``plan`` chose for the live object.
Write = Callable[[], Awaitable[Json]]


async def _write_retrying_conflicts(
    api: Api,
    kind: Kind,
    namespace: str,
    name: str,
    plan: Callable[[Json | None], Write | None],
    cache: KubeCache | None,
) -> Json | None:
    """Read the object (None: it does not exist), let ``plan`` choose a write for it (None: the object stays as
    read, and is returned) and make it, announced to ``cache``; a Conflict reads again and plans again on the
    fresh copy, ``ATTEMPTS`` times in all before it is raised."""
    for attempt in range(1, ATTEMPTS + 1):
        live = await (cache.lookup(kind, namespace, name) if cache is not None else api.get(kind, namespace, name))
        write = plan(live)
        if write is None:
            return live
        if cache is not None:
            cache.changing(kind, namespace, name)
        try:
            return await write()
        except Conflict:
            # Created meanwhile (AlreadyExists) or changed since the read: decide again on a fresh copy.
            if attempt == ATTEMPTS:
                raise
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


def controlled_by(obj: Mapping[str, Any], canary: Canary) -> bool:
    """Whether the Canary is the object's controller (Flagger's isOwnedByCanary: kind Canary, same name): an
    object the operator created, which Kubernetes deletes with the Canary."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") == "Canary" and ref.get("name") == canary.metadata.name:
            return True
    return False


def contains(live: Any, wanted: Any) -> bool:
    """Whether ``live`` holds everything ``wanted`` holds: maps may have more keys (what the API server
    defaults), lists must have the same length and hold each wanted item in order, scalars must be equal."""
    if isinstance(wanted, Mapping):
        return isinstance(live, Mapping) and all(k in live and contains(live[k], v) for k, v in wanted.items())
    if isinstance(wanted, list):
        return isinstance(live, list) and len(live) == len(wanted) and all(map(contains, live, wanted))
    return bool(live == wanted)
