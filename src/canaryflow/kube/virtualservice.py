"""Istio routing of a Canary in a cluster: its DestinationRules and the apex VirtualService, read and written.

The objects are :mod:`canaryflow.kube.render.istio`'s; this module decides what to write given what is live:

- the routes of a VirtualService are read back from it (the last HTTP or TCP route that sends to the canary,
  as Flagger's GetRoutes reads them), so reconciling keeps the weights and mirror the engine set, and
  :func:`verify` compares the live object with the one rendered for the routes the engine expects;
- session-affinity cookies live in the VirtualService itself (the ``Set-Cookie`` values it adds), so the router
  needs no state of its own and a restarted operator carries on with the same cookies;
- a VirtualService (or DestinationRule) that exists but was not created for this Canary is taken over: its spec
  is replaced, its metadata kept (never an owner reference, so deleting the Canary does not delete the user's
  object) and, unless ``kubectl apply`` left its last configuration in an annotation, its original spec is kept
  in ``flagger.kubernetes.io/original-configuration`` (Flagger's annotation, so either tool can revert the
  other's takeover). :func:`finalize` puts that spec back. Objects the operator created carry the Canary as
  owner and are left to Kubernetes' garbage collector, as Flagger leaves them.

Unlike Flagger, the original spec is saved once, at takeover: Flagger saves the spec it is about to replace on
every change of the Canary's service, so after one edit its "original" is its own earlier output.
"""

from __future__ import annotations

import copy
import json
import secrets
import string
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from canaryflow.api.canary import Canary
from canaryflow.engine.effects import Routes
from canaryflow.kube.cache import KubeCache
from canaryflow.kube.client import Api
from canaryflow.kube.converge import Json, controlled_by, converge
from canaryflow.kube.kinds import DESTINATION_RULE, VIRTUAL_SERVICE
from canaryflow.kube.render import istio, meta
from canaryflow.routing.base import RouterError

ORIGINAL_ANNOTATION = "flagger.kubernetes.io/original-configuration"
KUBECTL_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"
#: Annotations kept on an object the operator owns: they record what a takeover must restore.
_KEPT = (ORIGINAL_ANNOTATION, KUBECTL_ANNOTATION)
_EXPIRED = "Max-Age=-1"
_T = TypeVar("_T")


async def reconcile(api: Api, canary: Canary, *, cache: KubeCache | None = None) -> None:
    """The DestinationRules, then the VirtualService at the routes it serves now (100/0 when new). ``cache``,
    here and below: where to read the objects (default: the API server)."""
    ns = canary.metadata.namespace
    for rule in _rendered(lambda: istio.destination_rules(canary)):
        await converge(api, DESTINATION_RULE, ns, rule["metadata"]["name"], _taking(canary, rule), cache=cache)
    await write(api, canary, None, cache=cache)


async def write(api: Api, canary: Canary, routes: Routes | None, *, cache: KubeCache | None = None) -> Json:
    """Render the VirtualService at ``routes`` (None: the routes it has) and write it when it differs."""
    names = meta.ServiceNames.of(canary)

    def decide(live: Json | None) -> Json | None:
        current = _current_routes(canary, live)
        wanted = current if routes is None else routes
        cookies = next_cookies(canary, live_cookies(canary, live), wanted)
        desired = _rendered(lambda: istio.virtual_service(canary, wanted, cookies))
        return _taking(canary, desired)(live)

    result = await converge(api, VIRTUAL_SERVICE, canary.metadata.namespace, names.apex, decide, cache=cache)
    assert result is not None  # decide creates it when missing
    return result


async def get_routes(api: Api, canary: Canary, *, cache: KubeCache | None = None) -> Routes:
    return routes_of(canary, await _live(api, canary, cache))


async def verify(api: Api, canary: Canary, routes: Routes, *, cache: KubeCache | None = None) -> bool:
    """Whether the live VirtualService is exactly the one rendered for ``routes`` (with its own cookies)."""
    live = await _read(api, cache, canary.metadata.namespace, meta.ServiceNames.of(canary).apex)
    if live is None:
        return False
    try:
        desired = _rendered(lambda: istio.virtual_service(canary, routes, live_cookies(canary, live)))
    except RouterError:  # e.g. the canary should have traffic but the object hands out no cookie
        return False
    return bool(live.get("spec") == desired["spec"])


async def finalize(api: Api, canary: Canary, *, cache: KubeCache | None = None) -> None:
    """Give a taken-over VirtualService and DestinationRules their original spec back; those the operator
    created are left to the garbage collector (they are owned by the Canary)."""
    names = meta.ServiceNames.of(canary)
    for kind, name in (
        (DESTINATION_RULE, names.canary),
        (DESTINATION_RULE, names.primary),
        (VIRTUAL_SERVICE, names.apex),
    ):
        await converge(api, kind, canary.metadata.namespace, name, _reverting(canary), cache=cache)


def _reverting(canary: Canary) -> Callable[[Json | None], Json | None]:
    def decide(live: Json | None) -> Json | None:
        if live is None or controlled_by(live, canary):
            return None
        original = original_spec(live)
        if original is None:
            return None
        body = copy.deepcopy(live)
        body["spec"] = original
        annotations = body["metadata"].get("annotations") or {}
        annotations.pop(ORIGINAL_ANNOTATION, None)
        # The annotations that kept Flux off the object while the operator routed it: Flux takes it back now.
        for key, value in meta.router_annotations(None).items():
            if annotations.get(key) == value:
                del annotations[key]
        body["metadata"]["annotations"] = annotations
        return None if _same(live, body) else body

    return decide


def original_spec(live: Mapping[str, Any]) -> Json | None:
    """The spec a taken-over object had: ``kubectl apply``'s record first (as Flagger reads it), else ours."""
    annotations = (live.get("metadata") or {}).get("annotations") or {}
    name = f"{live.get('kind', 'object')} {meta.name_of(live)}"
    try:
        if KUBECTL_ANNOTATION in annotations:
            spec = json.loads(annotations[KUBECTL_ANNOTATION]).get("spec")
        elif ORIGINAL_ANNOTATION in annotations:
            spec = json.loads(annotations[ORIGINAL_ANNOTATION])
        else:
            return None
    except (json.JSONDecodeError, AttributeError) as exc:
        raise RouterError(f"{name}: its saved original configuration is not readable: {exc}") from exc
    if not isinstance(spec, dict):
        raise RouterError(f"{name}: its saved original configuration holds no spec")
    return spec


def routes_of(canary: Canary, vs: Mapping[str, Any]) -> Routes:
    """The weights (and mirror) of the last route that sends to the canary: Flagger's GetRoutes."""
    names = meta.ServiceNames.of(canary)
    spec = vs.get("spec") or {}
    routes = [r for r in spec.get("http") or spec.get("tcp") or [] if _hosts(r) & {names.canary}]
    if not routes:
        raise RouterError(
            f"VirtualService {meta.name_of(vs)} does not route to {names.primary} and {names.canary}: "
            "it is not (yet) the Canary's; reconcile it first"
        )
    route = routes[-1]
    weights = {d["destination"]["host"]: int(d.get("weight") or 0) for d in route.get("route") or []}
    mirrored = bool((route.get("mirror") or {}).get("host"))
    return Routes(weights.get(names.primary, 0), weights.get(names.canary, 0), mirrored)


def live_cookies(canary: Canary, vs: Mapping[str, Any] | None) -> istio.Cookies:
    """The session-affinity cookies a VirtualService hands out: ``Set-Cookie`` on the canary's and the
    primary's destinations, and the expired one on the route that clears the previous cookie."""
    names = meta.ServiceNames.of(canary)
    found = {"canary": "", "primary": "", "previous": ""}
    for route in ((vs or {}).get("spec") or {}).get("http") or []:
        expiring = _set_cookie(route)
        if expiring and _EXPIRED in expiring:
            found["previous"] = expiring.split(";")[0]
        for destination in route.get("route") or []:
            value = _set_cookie(destination)
            host = (destination.get("destination") or {}).get("host")
            if value and host in (names.canary, names.primary):
                found["canary" if host == names.canary else "primary"] = value.split(";")[0]
    return istio.Cookies(**found)


def next_cookies(canary: Canary, current: istio.Cookies, routes: Routes) -> istio.Cookies:
    """Flagger's cookie life cycle: drawn when the canary gets traffic, kept while it has some, and remembered
    as the previous one (to expire it) once it has none."""
    affinity = canary.spec.effective_analysis.session_affinity
    if affinity is None:
        return istio.Cookies()
    if routes.canary == 0:
        return istio.Cookies(previous=current.canary or current.previous)
    cookie = current.canary if current.canary.startswith(f"{affinity.cookie_name}=") else _draw(affinity.cookie_name)
    primary = ""
    if affinity.primary_cookie_name:
        name = affinity.primary_cookie_name
        primary = current.primary if current.primary.startswith(f"{name}=") else _draw(name)
    return istio.Cookies(canary=cookie, primary=primary)


def _taking(canary: Canary, desired: Json) -> Callable[[Json | None], Json | None]:
    """A ``converge`` decider writing ``desired`` into an object the operator owns, or taking over one it
    does not (spec replaced, metadata merged, original spec saved)."""

    def decide(live: Json | None) -> Json | None:
        if live is None:
            return copy.deepcopy(desired)
        body = copy.deepcopy(live)
        body["spec"] = copy.deepcopy(desired["spec"])
        labels, annotations = desired["metadata"].get("labels") or {}, desired["metadata"].get("annotations") or {}
        live_meta = live.get("metadata") or {}
        live_annotations = live_meta.get("annotations") or {}
        if controlled_by(live, canary):
            kept = {k: live_annotations[k] for k in _KEPT if k in live_annotations}
            body["metadata"]["labels"], body["metadata"]["annotations"] = dict(labels), {**annotations, **kept}
        else:
            body["metadata"]["labels"] = {**(live_meta.get("labels") or {}), **labels}
            merged = {**live_annotations, **annotations}
            if not (set(_KEPT) & set(live_annotations)):
                merged[ORIGINAL_ANNOTATION] = json.dumps(live.get("spec") or {}, sort_keys=True, separators=(",", ":"))
            body["metadata"]["annotations"] = merged
        if _same(live, body):
            return None
        return body

    return decide


def _same(live: Mapping[str, Any], body: Mapping[str, Any]) -> bool:
    live_meta, body_meta = live.get("metadata") or {}, body.get("metadata") or {}
    return live.get("spec") == body.get("spec") and all(
        (live_meta.get(k) or {}) == (body_meta.get(k) or {}) for k in ("labels", "annotations")
    )


def _current_routes(canary: Canary, live: Mapping[str, Any] | None) -> Routes:
    if live is None:
        return Routes(100, 0)
    try:
        return routes_of(canary, live)
    except RouterError:  # a taken-over VirtualService: it does not route to our Services yet
        return Routes(100, 0)


async def _read(api: Api, cache: KubeCache | None, namespace: str, name: str) -> Json | None:
    if cache is not None:
        return await cache.lookup(VIRTUAL_SERVICE, namespace, name)
    return await api.get(VIRTUAL_SERVICE, namespace, name)


async def _live(api: Api, canary: Canary, cache: KubeCache | None) -> Json:
    name, ns = meta.ServiceNames.of(canary).apex, canary.metadata.namespace
    live = await _read(api, cache, ns, name)
    if live is None:
        raise RouterError(f"virtualservice {ns}/{name} not found: reconcile the canary's routing first")
    return live


def _hosts(route: Mapping[str, Any]) -> set[str]:
    return {str((d.get("destination") or {}).get("host")) for d in route.get("route") or []}


def _set_cookie(holder: Mapping[str, Any]) -> str:
    add = (((holder.get("headers") or {}).get("response") or {}).get("add")) or {}
    return str(add.get(istio.SET_COOKIE_HEADER) or "")


def _draw(name: str) -> str:
    # Flagger draws 10 random letters: the cookie must not be guessable from the canary's name.
    return f"{name}=" + "".join(secrets.choice(string.ascii_letters) for _ in range(10))


def _rendered(build: Callable[[], _T]) -> _T:
    try:
        return build()
    except meta.RenderError as exc:
        raise RouterError(str(exc)) from exc
