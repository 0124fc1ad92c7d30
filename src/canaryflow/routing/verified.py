"""Argo Rollouts' ``VerifyWeight`` for every router: a change of weights counts once the data plane serves it.

Each runtime hands the executor its router wrapped in ``Verified``: after ``set_routes`` the wrapper asks the
router's ``verify`` (the local Envoy: its config dump; Kubernetes: the live VirtualService or Service), and
raises ``RouterError`` when the data plane holds something else. The executor then abandons the tick without
saving the status, so the engine does not count the step as taken and the next tick sets the routes again.
"""

from __future__ import annotations

from canaryflow.api.canary import Canary
from canaryflow.routing.base import Router, RouterError, Routes


class Verified:
    """``router``, with every ``set_routes`` confirmed by its ``verify``."""

    def __init__(self, router: Router) -> None:
        self.router = router

    async def reconcile(self, canary: Canary) -> None:
        await self.router.reconcile(canary)

    async def set_routes(self, canary: Canary, routes: Routes) -> None:
        await self.router.set_routes(canary, routes)
        if not await self.router.verify(canary, routes):
            mirror = ", mirrored" if routes.mirrored else ""
            raise RouterError(
                f"routes {routes.primary}/{routes.canary}{mirror} for {canary.key} were written but the data plane "
                "does not serve them"
            )

    async def get_routes(self, canary: Canary) -> Routes:
        return await self.router.get_routes(canary)

    async def verify(self, canary: Canary, routes: Routes) -> bool:
        return await self.router.verify(canary, routes)

    async def finalize(self, canary: Canary) -> None:
        await self.router.finalize(canary)
