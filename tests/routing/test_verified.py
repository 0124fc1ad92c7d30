"""Argo Rollouts' VerifyWeight: a change of weights counts only once the data plane serves it."""

from __future__ import annotations

import pytest

from canaryflow.api.canary import Canary
from canaryflow.routing.base import RouterError, Routes
from canaryflow.routing.memory import MemoryRouter
from canaryflow.routing.verified import Verified
from tests.engine.harness import canary as make_canary


class LaggingRouter(MemoryRouter):
    """A data plane that accepts writes but keeps serving what it served before (until ``catch_up``)."""

    def __init__(self) -> None:
        super().__init__()
        self.served: dict[str, Routes] = {}
        self.lagging = True

    async def verify(self, canary: Canary, routes: Routes) -> bool:
        if not self.lagging:
            self.served[canary.key] = self.routes[canary.key]
        return self.served.get(canary.key) == routes


async def test_routes_the_data_plane_does_not_serve_are_an_error_naming_them() -> None:
    inner = LaggingRouter()
    router, canary = Verified(inner), make_canary()
    await router.reconcile(canary)
    with pytest.raises(RouterError, match=r"routes 90/10 for test/podinfo were written but the data plane does not"):
        await router.set_routes(canary, Routes(90, 10))
    inner.lagging = False
    await router.set_routes(canary, Routes(90, 10))  # the next tick asks again, and now it is served
    assert await router.get_routes(canary) == Routes(90, 10)


async def test_served_routes_pass_through_unchanged() -> None:
    inner = MemoryRouter()
    router, canary = Verified(inner), make_canary()
    await router.reconcile(canary)
    await router.set_routes(canary, Routes(50, 50, mirrored=False))
    await router.finalize(canary)
    assert inner.calls == [(canary.key, "reconcile"), (canary.key, "set_routes"), (canary.key, "finalize")]
