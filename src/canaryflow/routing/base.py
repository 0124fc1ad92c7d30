"""The Router seam."""

from __future__ import annotations

import dataclasses
from typing import Protocol

from canaryflow.api.canary import Canary


@dataclasses.dataclass(frozen=True, slots=True)
class Routes:
    primary: int
    canary: int
    mirrored: bool = False


class RouterError(Exception):
    """The routing objects could not be read or written."""


class Router(Protocol):
    async def reconcile(self, canary: Canary) -> None:
        """Create or update the routing objects (services, virtual service...) at their current weights."""
        ...

    async def set_routes(self, canary: Canary, routes: Routes) -> None: ...
    async def get_routes(self, canary: Canary) -> Routes: ...
    async def verify(self, canary: Canary, routes: Routes) -> bool:
        """True when the data plane really serves ``routes`` (Argo Rollouts' VerifyWeight)."""
        ...

    async def finalize(self, canary: Canary) -> None: ...
