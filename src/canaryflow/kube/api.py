"""``Api``: what kube/ modules need from the Kubernetes API server (``KubeApi`` in client.py implements it).

Objects are plain JSON dicts, exactly as the server sends them, so any group/version/kind works and nothing is
lost in a model conversion; ``Kind`` (kinds.py) says where a kind lives.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Mapping
from typing import Any, Literal, Protocol

from canaryflow.kube.kinds import Kind

Json = dict[str, Any]
JsonList = list[Json]  # an alias: inside the protocol, ``list`` is the method
PatchType = Literal["merge", "json", "strategic"]


@dataclasses.dataclass(frozen=True, slots=True)
class WatchEvent:
    type: str  # ADDED | MODIFIED | DELETED
    object: Json


class Api(Protocol):
    """What kube/ modules need from the API server. Objects are plain JSON dicts, as the server sends them.

    ``get`` answers None for a missing object and ``delete`` False for one already gone; every other failure
    raises (``NotFound``, ``Conflict``, ``Invalid``, ``ApiError``). ``replace`` is a PUT guarded by the body's
    ``metadata.resourceVersion``; ``replace_status`` writes only the status subresource; ``apply`` is a server-side
    apply; ``watch`` lists first (ADDED for each object), then streams and resumes by itself.
    """

    async def get(self, kind: Kind, namespace: str | None, name: str) -> Json | None: ...
    async def list(self, kind: Kind, namespace: str | None = None, *, labels: str | None = None) -> JsonList: ...
    async def create(self, kind: Kind, body: Mapping[str, Any]) -> Json: ...
    async def replace(self, kind: Kind, body: Mapping[str, Any]) -> Json: ...
    async def replace_status(self, kind: Kind, body: Mapping[str, Any]) -> Json: ...
    async def patch(
        self, kind: Kind, namespace: str | None, name: str, patch: Any, *, type: PatchType = "merge"
    ) -> Json: ...
    async def apply(
        self,
        kind: Kind,
        body: Mapping[str, Any],
        *,
        manager: str = "canaryflow",
        force: bool = True,
        dry_run: bool = False,
    ) -> Json: ...
    async def delete(self, kind: Kind, namespace: str | None, name: str) -> bool: ...
    def watch(
        self, kind: Kind, namespace: str | None = None, *, labels: str | None = None
    ) -> AsyncIterator[WatchEvent]: ...
    async def discover(self, api_version: str, kind: str) -> Kind: ...
    async def close(self) -> None: ...
