"""The Router seam on Kubernetes: a Canary's three Services, and its Istio objects (provider ``istio``).

``reconcile`` writes the ``<svc>-canary``, ``<svc>-primary`` and apex ``<svc>`` Services (as
:mod:`canaryflow.kube.render.services` renders them) and, with Istio, the DestinationRules and VirtualService
(:mod:`canaryflow.kube.virtualservice`). Each is written only when it differs from the live object.

A Service that exists but was not created for this Canary (the user's own ``backend`` Service) is taken over
as Flagger takes it over: only its selector and ports are changed, its metadata stays the user's and it gets no
owner reference. On ``finalize`` (``revertOnDeletion``) such an apex Service selects the target's pods again
(the selector ``kubectl apply`` recorded, when there is one); the Services the operator created belong to the
Canary and go with it.

Provider ``kubernetes`` has no mesh: routes are all-or-nothing, made by pointing the apex Service at the
primary's pods (100/0) or at the canary's (0/100), which is blue/green. Flagger's ``kubernetes`` router never
moves the apex (its blue/green only tests the canary through ``<svc>-canary``); switching it lets clients of the
apex reach the new version while the primary rolls, and makes ``verify`` meaningful.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from typing import Any

from canaryflow.api.canary import Canary
from canaryflow.engine.effects import Routes
from canaryflow.kube import virtualservice
from canaryflow.kube.cache import KubeCache
from canaryflow.kube.client import Api
from canaryflow.kube.converge import Json, controlled_by, converge
from canaryflow.kube.kinds import DAEMONSET, DEPLOYMENT, SERVICE
from canaryflow.kube.render import meta, services
from canaryflow.routing.base import RouterError

PROVIDERS = ("istio", "kubernetes")
_TARGETS = {"Deployment": DEPLOYMENT, "DaemonSet": DAEMONSET}
_PORT_FIELDS = ("name", "protocol", "port", "targetPort", "appProtocol")


class KubeRouter:
    """``Router`` for provider ``istio`` (Services, DestinationRules, VirtualService) and ``kubernetes``
    (Services only); ``default_provider`` is for Canaries that name none (the operator's ``--mesh-provider``).
    Objects are read through ``cache`` (the operator's watch-backed one); without one, from the API server."""

    def __init__(self, api: Api, *, default_provider: str = "istio", cache: KubeCache | None = None) -> None:
        if default_provider not in PROVIDERS:
            raise ValueError(f"mesh provider {default_provider!r} is not supported; providers: {', '.join(PROVIDERS)}")
        self.api = api
        self.cache = cache if cache is not None else KubeCache(api)
        self.default_provider = default_provider

    async def reconcile(self, canary: Canary) -> None:
        provider = self._provider(canary)
        target = await self._target(canary)
        for role in (services.Role.CANARY, services.Role.PRIMARY):
            await self._service(canary, target, role)
        if provider == "kubernetes":
            _meshless(canary)
            apex = await self.cache.lookup(SERVICE, canary.metadata.namespace, meta.ServiceNames.of(canary).apex)
            keep = _apex_routes(canary, target, apex) if apex is not None else None
            await self._service(canary, target, services.Role.APEX, keep or Routes(100, 0))
            return
        await self._service(canary, target, services.Role.APEX)
        await virtualservice.reconcile(self.api, canary, cache=self.cache)

    async def set_routes(self, canary: Canary, routes: Routes) -> None:
        if routes.primary < 0 or routes.canary < 0 or routes.primary + routes.canary != 100:
            raise RouterError(f"routes {routes.primary}/{routes.canary} for {canary.key} do not add up to 100")
        if self._provider(canary) == "kubernetes":
            _meshless(canary)
            _all_or_nothing(canary, routes)
            await self._service(canary, await self._target(canary), services.Role.APEX, routes)
            return
        await virtualservice.write(self.api, canary, routes, cache=self.cache)

    async def get_routes(self, canary: Canary) -> Routes:
        if self._provider(canary) == "kubernetes":
            target = await self._target(canary)
            apex = await self._apex(canary)
            routes = _apex_routes(canary, target, apex)
            if routes is None:
                selector = (apex.get("spec") or {}).get("selector")
                raise RouterError(
                    f"service {meta.name_of(apex)} selects {selector}: neither {canary.spec.target_ref.name}'s pods "
                    "nor its primary's; reconcile the canary's routing first"
                )
            return routes
        return await virtualservice.get_routes(self.api, canary, cache=self.cache)

    async def verify(self, canary: Canary, routes: Routes) -> bool:
        if self._provider(canary) == "kubernetes":
            try:
                return await self.get_routes(canary) == routes
            except RouterError:
                return False
        return await virtualservice.verify(self.api, canary, routes, cache=self.cache)

    async def finalize(self, canary: Canary) -> None:
        """Revert on deletion: a taken-over apex Service selects the target's pods again and a taken-over
        VirtualService gets its original spec back (Flagger's finalizer, router part)."""
        if self._provider(canary) == "istio":
            await virtualservice.finalize(self.api, canary, cache=self.cache)
        ref = canary.spec.target_ref
        kind = _TARGETS.get(ref.kind)
        target = await self.cache.lookup(kind, canary.metadata.namespace, ref.name) if kind else None
        # Without the target (deleted first) only a recorded selector can be restored: deletion must not block.
        fallback = dict([_selector_label(target)]) if target is not None else None

        def decide(live: Json | None) -> Json | None:
            if live is None or controlled_by(live, canary):
                return None
            selector = _recorded_selector(live) or fallback
            if selector is None or (live.get("spec") or {}).get("selector") == selector:
                return None
            body = copy.deepcopy(live)
            body["spec"]["selector"] = selector
            return body

        apex = meta.ServiceNames.of(canary).apex
        await converge(self.api, SERVICE, canary.metadata.namespace, apex, decide, cache=self.cache)

    # -- internals ----------------------------------------------------------------------------------------------
    def _provider(self, canary: Canary) -> str:
        provider = canary.spec.provider or self.default_provider
        if provider not in PROVIDERS:
            raise RouterError(
                f"Canary {canary.key}: provider {provider} is not supported by the operator; "
                f"providers: {', '.join(PROVIDERS)}"
            )
        return provider

    async def _target(self, canary: Canary) -> Json:
        ref, ns = canary.spec.target_ref, canary.metadata.namespace
        kind = _TARGETS.get(ref.kind)
        if kind is None:
            raise RouterError(
                f"Canary {canary.key}: a {ref.kind} target is not supported; targets: {', '.join(_TARGETS)}"
            )
        target = await self.cache.lookup(kind, ns, ref.name)
        if target is None:
            raise RouterError(f"{ref.kind.lower()} {ns}/{ref.name} not found")
        return target

    async def _apex(self, canary: Canary) -> Json:
        name, ns = meta.ServiceNames.of(canary).apex, canary.metadata.namespace
        apex = await self.cache.lookup(SERVICE, ns, name)
        if apex is None:
            raise RouterError(f"service {ns}/{name} not found: reconcile the canary's routing first")
        return apex

    async def _service(self, canary: Canary, target: Json, role: services.Role, routes: Routes | None = None) -> None:
        """Write one Service; ``routes`` (apex, provider kubernetes) say whose pods the apex selects."""
        try:
            desired = services.service(canary, target, role)
        except meta.RenderError as exc:
            raise RouterError(str(exc)) from exc
        if routes is not None and routes.canary == 100:
            key, value = _selector_label(target)
            desired["spec"]["selector"] = {key: value}
        name = desired["metadata"]["name"]
        decide = _service_decider(canary, desired)
        await converge(self.api, SERVICE, canary.metadata.namespace, name, decide, cache=self.cache)


def _service_decider(canary: Canary, desired: Json) -> Callable[[Json | None], Json | None]:
    def decide(live: Json | None) -> Json | None:
        if live is None:
            return copy.deepcopy(desired)
        spec, live_spec = desired["spec"], live.get("spec") or {}
        body = copy.deepcopy(live)
        body["spec"]["selector"] = dict(spec["selector"])
        body["spec"]["ports"] = _with_node_ports(spec["ports"], live_spec.get("ports") or [])
        if "trafficDistribution" in spec or "trafficDistribution" in live_spec:
            body["spec"].pop("trafficDistribution", None)
            if "trafficDistribution" in spec:
                body["spec"]["trafficDistribution"] = spec["trafficDistribution"]
        if controlled_by(live, canary):
            # Only what the operator created gets its metadata managed; a user's Service keeps theirs.
            kept = _unmanaged(canary, live)
            for field in ("labels", "annotations"):
                body["metadata"][field] = {**(desired["metadata"].get(field) or {}), **kept[field]}
        same_meta = all(
            ((live.get("metadata") or {}).get(f) or {}) == (body["metadata"].get(f) or {})
            for f in ("labels", "annotations")
        )
        same_spec = (
            live_spec.get("selector") == body["spec"]["selector"]
            and _ports(live_spec.get("ports")) == _ports(body["spec"]["ports"])
            and live_spec.get("trafficDistribution") == body["spec"].get("trafficDistribution")
        )
        return None if same_meta and same_spec else body

    return decide


def _ports(ports: Any) -> list[dict[str, Any]]:
    """Ports as compared: the fields the operator sets, protocol defaulted as the API server defaults it."""
    out = []
    for port in ports or []:
        item = {k: port[k] for k in _PORT_FIELDS if k in port}
        item.setdefault("protocol", "TCP")
        out.append(item)
    return sorted(out, key=lambda p: (p.get("port", 0), str(p.get("name"))))


def _with_node_ports(wanted: list[Json], live: list[Json]) -> list[Json]:
    """The wanted ports keeping the node ports the cluster allocated (a NodePort Service taken over)."""
    allocated = {p.get("name"): p["nodePort"] for p in live if p.get("nodePort")}
    return [{**p, "nodePort": allocated[p.get("name")]} if p.get("name") in allocated else dict(p) for p in wanted]


def _unmanaged(canary: Canary, live: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """``spec.service.unmanagedMetadata``: label and annotation keys others set on the Services, kept as they are."""
    unmanaged = canary.spec.service.unmanaged_metadata
    live_meta = live.get("metadata") or {}
    kept: dict[str, dict[str, str]] = {"labels": {}, "annotations": {}}
    for field, keys in (("labels", unmanaged.labels if unmanaged else None),
                        ("annotations", unmanaged.annotations if unmanaged else None)):  # fmt: skip
        values = live_meta.get(field) or {}
        kept[field] = {k: values[k] for k in keys or () if k in values}
    return kept


def _selector_label(target: Mapping[str, Any]) -> tuple[str, str]:
    try:
        return meta.selector_label(target)
    except meta.RenderError as exc:
        raise RouterError(str(exc)) from exc


def _apex_routes(canary: Canary, target: Mapping[str, Any], apex: Mapping[str, Any]) -> Routes | None:
    """Provider kubernetes: 100/0 when the apex selects the primary's pods, 0/100 the canary's, else None."""
    key, value = _selector_label(target)
    selector = (apex.get("spec") or {}).get("selector") or {}
    if selector == {key: f"{value}-primary"}:
        return Routes(100, 0)
    if selector == {key: value}:
        return Routes(0, 100)
    return None


def _meshless(canary: Canary) -> None:
    """What provider kubernetes cannot do: route by request (A/B testing) or keep sessions on one side."""
    analysis = canary.spec.effective_analysis
    for field, used in (("analysis.match", analysis.match), ("analysis.sessionAffinity", analysis.session_affinity)):
        if used:
            raise RouterError(
                f"Canary {canary.key}: provider kubernetes cannot apply {field}, which needs a mesh; "
                "use provider istio or remove it"
            )


def _all_or_nothing(canary: Canary, routes: Routes) -> None:
    if routes.mirrored:
        raise RouterError(f"Canary {canary.key}: provider kubernetes cannot mirror traffic; use a mesh (istio)")
    if (routes.primary, routes.canary) not in ((100, 0), (0, 100)):
        raise RouterError(
            f"Canary {canary.key}: provider kubernetes switches all traffic at once (100/0 or 0/100), not "
            f"{routes.primary}/{routes.canary}: use blue/green (analysis.iterations) or a mesh (istio)"
        )


def _recorded_selector(live: Mapping[str, Any]) -> dict[str, str] | None:
    """The selector ``kubectl apply`` recorded for a Service, if it did."""
    recorded = ((live.get("metadata") or {}).get("annotations") or {}).get(virtualservice.KUBECTL_ANNOTATION)
    if not recorded:
        return None
    try:
        selector = (json.loads(recorded).get("spec") or {}).get("selector")
    except (json.JSONDecodeError, AttributeError):
        return None
    return dict(selector) if isinstance(selector, dict) and selector else None
