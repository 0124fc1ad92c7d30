"""The Router of the local mesh: canaries' routes served by a real Envoy through file-based xDS.

Every change renders the whole configuration, writes the files that differ (clusters, then routes, then
listeners) and waits until Envoy's admin API reports their versions served. A rejected or unconfirmed update is
rolled back: the files return to the last set Envoy accepted and ``RouterError`` carries Envoy's reason.

The canaries' state (spec, routes, session-affinity cookies) is kept in the mesh RDS file itself, as metadata
of each canary's virtual host, so a restarted canaryflow reads back exactly what Envoy serves.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
import string
from collections.abc import Mapping
from typing import Any

import httpx
import pydantic

from canaryflow.api.canary import Canary
from canaryflow.routing.base import RouterError, Routes
from canaryflow.routing.envoy import admin as envoy_admin
from canaryflow.routing.envoy import routes as canary_rules
from canaryflow.routing.envoy import xds
from canaryflow.routing.envoy.files import XdsFiles
from canaryflow.routing.envoy.model import MESH_ROUTE_CONFIG, CanaryRouting, Mesh

logger = logging.getLogger(__name__)
_WRITE_ORDER = {xds.CDS: 0, xds.LDS: 2}  # route files (1) between: new clusters exist before routes use them


class EnvoyRouter:
    """Routes canaries on the Envoy that watches ``files`` and answers on ``admin``."""

    def __init__(
        self, files: XdsFiles, admin: envoy_admin.EnvoyAdmin, mesh: Mesh, *, confirm_timeout: float = 5.0
    ) -> None:
        self._files = files
        self._admin = admin
        self._mesh = mesh
        self._confirm_timeout = confirm_timeout
        self._states = load_states(files)
        self._lock = asyncio.Lock()
        self.conflicts: tuple[str, ...] = ()

    @property
    def mesh(self) -> Mesh:
        return self._mesh

    def canaries(self) -> dict[str, CanaryRouting]:
        """The routed canaries by ``namespace/name``."""
        return dict(self._states)

    def write(self) -> None:
        """Write every file without asking Envoy: for a first start, before Envoy runs."""
        rendered = xds.render(self._mesh, self._states.values(), self._files.directory)
        for name in sorted(rendered.documents, key=lambda n: _WRITE_ORDER.get(n, 1)):
            self._files.write(name, rendered.documents[name])
        self._remove_stale(rendered)
        self.conflicts = rendered.conflicts

    async def update_mesh(self, mesh: Mesh) -> None:
        await self._publish(self._states, mesh)

    async def reconcile(self, canary: Canary) -> None:
        """Serve the canary's services at its current routes (100/0 the first time)."""
        state = self._states.get(canary.key)
        updated = CanaryRouting(canary) if state is None else dataclasses.replace(state, canary=canary)
        await self._publish({**self._states, canary.key: updated}, self._mesh)

    async def set_routes(self, canary: Canary, routes: Routes) -> None:
        if routes.primary < 0 or routes.canary < 0 or routes.primary + routes.canary == 0:
            raise RouterError(f"routes {routes.primary}/{routes.canary} for {canary.key} send traffic nowhere")
        state = self._states.get(canary.key) or CanaryRouting(canary)
        updated = advance_cookies(dataclasses.replace(state, canary=canary, routes=routes))
        await self._publish({**self._states, canary.key: updated}, self._mesh)

    async def get_routes(self, canary: Canary) -> Routes:
        state = self._states.get(canary.key)
        if state is None:
            raise RouterError(f"canary {canary.key} has no routes in the local mesh: reconcile it first")
        return state.routes

    async def verify(self, canary: Canary, routes: Routes) -> bool:
        """Whether every route configuration serving the canary's apex holds ``routes`` (Envoy's config dump)."""
        state = self._states.get(canary.key)
        if state is None:
            return False
        try:
            configs = await self._admin.route_configs()
        except httpx.HTTPError as exc:
            logger.warning("cannot read Envoy's routes at %s: %s", self._admin.url, exc)
            return False
        places = [MESH_ROUTE_CONFIG] if state.in_mesh() else []
        places += [g.route_config for name in state.gateways() if (g := self._mesh.gateway(name))]
        ab = bool(state.canary.spec.effective_analysis.match)
        return bool(places) and all(_serves(configs.get(p, {}), state, routes, ab) for p in places)

    async def finalize(self, canary: Canary) -> None:
        """Stop routing the canary; a plain Service of the same name in the mesh serves its hosts again."""
        await self._publish({k: s for k, s in self._states.items() if k != canary.key}, self._mesh)

    async def aclose(self) -> None:
        await self._admin.aclose()

    async def _publish(self, states: Mapping[str, CanaryRouting], mesh: Mesh) -> None:
        async with self._lock:
            rendered = xds.render(mesh, states.values(), self._files.directory)
            changed = [n for n, doc in rendered.documents.items() if self._files.version(n) != doc["version_info"]]
            if changed:
                changed.sort(key=lambda n: _WRITE_ORDER.get(n, 1))
                await self._apply(changed, rendered)
                self._remove_stale(rendered)
            for conflict in set(rendered.conflicts) - set(self.conflicts):
                logger.warning("local mesh: %s", conflict)
            self._states, self._mesh, self.conflicts = dict(states), mesh, rendered.conflicts

    async def _apply(self, changed: list[str], rendered: xds.Rendered) -> None:
        before = await self._rejections()
        for name in changed:
            self._files.write(name, rendered.documents[name])
        expected = {name: rendered.documents[name]["version_info"] for name in changed}
        outcome = await self._admin.await_served(expected, self._confirm_timeout, rejected_before=before, poll=0.005)
        if outcome is envoy_admin.Outcome.SERVED:
            self._files.mark_good(changed)
            return
        self._files.restore_last_good()
        if outcome is envoy_admin.Outcome.REJECTED:
            reason = await _explain(rendered)
            raise RouterError(f"Envoy rejected the update: {reason or 'see the Envoy log'}")
        raise RouterError(f"Envoy at {self._admin.url} did not apply the update within {self._confirm_timeout:g}s")

    def _remove_stale(self, rendered: xds.Rendered) -> None:
        # Route files of gateways gone from the mesh: no listener reads them, and a restart must not wait for them.
        for name in set(self._files.names()) - set(rendered.documents):
            self._files.remove(name)

    async def _rejections(self) -> int | None:
        try:
            return await self._admin.rejected_updates()
        except httpx.HTTPError:
            return None


def advance_cookies(state: CanaryRouting) -> CanaryRouting:
    """Flagger's cookie life cycle: a new cookie when the canary gets traffic, kept as "previous" at weight 0."""
    affinity = state.canary.spec.effective_analysis.session_affinity
    if affinity is None:
        return dataclasses.replace(state, cookie=None, previous_cookie=None, primary_cookie=None)
    if state.routes.canary > 0:
        cookie = state.cookie or f"{affinity.cookie_name}={_token()}"
        primary = state.primary_cookie
        if primary is None and affinity.primary_cookie_name:
            primary = f"{affinity.primary_cookie_name}={_token()}"
        return dataclasses.replace(state, cookie=cookie, primary_cookie=primary)
    return dataclasses.replace(state, cookie=None, previous_cookie=state.cookie or state.previous_cookie)


def load_states(files: XdsFiles) -> dict[str, CanaryRouting]:
    """The canaries a previous router left in the mesh RDS file."""
    document = files.read(xds.rds_file(MESH_ROUTE_CONFIG))
    states: dict[str, CanaryRouting] = {}
    for resource in (document or {}).get("resources", []):
        for vhost in resource.get("virtual_hosts", []):
            data = vhost.get("metadata", {}).get("filter_metadata", {}).get(xds.STATE_KEY)
            if data is not None:
                state = _state(data, files)
                states[state.canary.key] = state
    return states


def _state(data: dict[str, Any], files: XdsFiles) -> CanaryRouting:
    try:
        canary = Canary.model_validate(data["canary"])
        routes = Routes(int(data["routes"]["primary"]), int(data["routes"]["canary"]), data["routes"]["mirrored"])
    except (KeyError, TypeError, ValueError, pydantic.ValidationError) as exc:
        raise RouterError(f"unreadable canary state in {files.directory}: {exc}") from exc
    cookies = {k: data.get(k) or None for k in ("cookie", "previous_cookie", "primary_cookie")}
    return CanaryRouting(canary, routes, **cookies)


def _serves(config: dict[str, Any], state: CanaryRouting, routes: Routes, ab: bool) -> bool:
    vhost = next((v for v in config.get("virtual_hosts", []) if v.get("name") == f"canary:{state.canary.key}"), None)
    weighted = [
        r
        for r in (vhost or {}).get("routes", [])
        if r.get("name", "").startswith((f"{canary_rules.WEIGHTED}-", f"{canary_rules.AB}-"))
    ]
    if not weighted:
        return False
    for route in weighted:
        action = route.get("route", {})
        # Envoy's JSON leaves out zero values, so a missing weight is 0.
        weights = {c["name"]: c.get("weight", 0) for c in action.get("weighted_clusters", {}).get("clusters", [])}
        if (weights.get(state.primary_cluster, 0), weights.get(state.canary_cluster, 0)) != (
            routes.primary,
            routes.canary,
        ):
            return False
        mirrored = any(p.get("cluster") == state.canary_cluster for p in action.get("request_mirror_policies", []))
        if not ab and mirrored != routes.mirrored:
            return False
    return True


async def _explain(rendered: xds.Rendered) -> str:
    try:
        return await envoy_admin.explain_rejection(envoy_admin.envoy_binary(), rendered.documents)
    except (RuntimeError, OSError):
        return ""


def _token() -> str:
    return "".join(secrets.choice(string.ascii_letters) for _ in range(10))
