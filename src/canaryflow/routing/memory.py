"""A Router held in memory: routes per canary, every call recorded, failures on demand."""

from __future__ import annotations

from canaryflow.api.canary import Canary
from canaryflow.routing.base import RouterError, Routes

#: What a canary's routes are before anything set them (made once: read on every tick).
_ALL_ON_PRIMARY = Routes(100, 0)


class MemoryRouter:
    def __init__(self) -> None:
        self.routes: dict[str, Routes] = {}
        self.calls: list[tuple[str, str]] = []
        self.fail_with: str | None = None

    def _check(self, canary: Canary, call: str) -> None:
        self.calls.append((canary.key, call))
        if self.fail_with is not None:
            raise RouterError(self.fail_with)

    async def reconcile(self, canary: Canary) -> None:
        self._check(canary, "reconcile")
        self.routes.setdefault(canary.key, _ALL_ON_PRIMARY)

    async def set_routes(self, canary: Canary, routes: Routes) -> None:
        self._check(canary, "set_routes")
        self.routes[canary.key] = routes

    async def get_routes(self, canary: Canary) -> Routes:
        return self.routes.get(canary.key, _ALL_ON_PRIMARY)

    async def verify(self, canary: Canary, routes: Routes) -> bool:
        return self.routes.get(canary.key) == routes

    async def finalize(self, canary: Canary) -> None:
        self._check(canary, "finalize")
        self.routes.pop(canary.key, None)
