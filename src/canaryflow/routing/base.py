"""The Router seam."""

from __future__ import annotations

from typing import Protocol

from canaryflow.api.canary import Canary
from canaryflow.engine.effects import Routes

__all__ = ["Router", "RouterError", "Routes"]


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
