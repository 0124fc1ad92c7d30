"""The local runtime as a GitOps Target: a Kustomization applies to the same object store ``canaryflow apply``
writes, and the runtime reacts to what changed exactly as it does to an apply (a changed Deployment wakes its
canary, a new Canary starts).

The store decides what it can hold (its RUN and PROVIDED kinds) and validates Flagger's kinds, all or nothing;
this adapter only translates: dicts to Documents, the store's changes to the Target's, its refusals to
ApplyError.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from canaryflow.api.loader import Document
from canaryflow.gitops.target.base import ApplyError, Change, Health, ObjRef, Support, group_of
from canaryflow.local import objects

OnChange = Callable[[list[objects.Change]], Awaitable[None]]
HealthOf = Callable[[ObjRef, dict[str, Any]], Awaitable[Health]]


class LocalTarget:
    def __init__(self, store: objects.ObjectStore, on_change: OnChange, health: HealthOf | None = None) -> None:
        """``on_change`` is the runtime's ``changed``; ``health`` reports on a stored object (a Deployment's
        replicas) and defaults to "current" for everything stored."""
        self.store = store
        self.on_change = on_change
        self._health = health

    def support(self, api_version: str, kind: str) -> tuple[Support, str]:
        group = group_of(api_version)
        if objects.RUN.get(kind) == group:
            return Support.RUN, ""
        if objects.PROVIDED.get(kind) == group:
            return Support.PROVIDED, ""
        if kind in objects.RUN or kind in objects.PROVIDED:
            return Support.UNSUPPORTED, f"apiVersion {api_version!r} does not serve kind {kind} in the local runtime"
        supported = ", ".join(sorted(objects.RUN) + sorted(objects.PROVIDED))
        return Support.UNSUPPORTED, f"kind {kind!r} is not supported by the local runtime (supported: {supported})"

    async def apply(self, objs: Sequence[Mapping[str, Any]], *, manager: str = "canaryflow") -> list[Change]:
        documents = [_document(obj) for obj in objs]
        try:
            changes = self.store.apply(documents)
        except objects.Rejected as exc:
            raise ApplyError([_unprefixed(problem, documents) for problem in exc.problems]) from None
        await self._changed(changes)
        refs = {(ref.kind, ref.namespace, ref.name): ref for ref in map(ObjRef.of, objs)}
        return [Change(refs[(c.kind, c.namespace, c.name)], c.action) for c in changes]

    async def get(self, ref: ObjRef) -> dict[str, Any] | None:
        live = self.store.get(ref.kind, ref.namespace, ref.name)
        if live is None or group_of(str(live.get("apiVersion", ""))) != ref.group:
            return None
        return live

    async def delete(self, ref: ObjRef) -> bool:
        live = await self.get(ref)
        if live is None:
            return False
        changes = self.store.delete([Document(str(ref), 0, live)])
        await self._changed(changes)
        return bool(changes)

    async def health(self, ref: ObjRef) -> Health:
        live = await self.get(ref)
        if live is None:
            return Health("in-progress", "not found")
        if self._health is not None:
            return await self._health(ref, live)
        return Health("current")

    async def _changed(self, changes: list[objects.Change]) -> None:
        written = [c for c in changes if c.action in ("created", "configured", "deleted")]
        if written:
            await self.on_change(written)


def _document(obj: Mapping[str, Any]) -> Document:
    """The store validates Documents; a built object has no file of its own any more, so it is named by kind,
    namespace and name."""
    return Document(str(ObjRef.of(obj)), 0, dict(obj))


def _unprefixed(problem: str, documents: Sequence[Document]) -> str:
    """The store writes ``SOURCE:LINE: ...``; without a file and line, ``SOURCE: ...`` reads better."""
    for document in documents:
        prefix = f"{document.source}:0: "
        if problem.startswith(prefix):
            return f"{document.source}: {problem.removeprefix(prefix)}"
    return problem
