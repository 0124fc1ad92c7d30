"""The Istio objects of a Canary: two DestinationRules and the apex VirtualService, as Flagger's Istio router
writes them (``networking.istio.io/v1beta1``).

VirtualService ``<svc>``: ``hosts`` are ``spec.service.hosts`` plus the apex name (unless ``*`` or the name is
listed), ``gateways`` default to ``mesh``; with ``delegation`` both are empty (a delegate has neither). Its HTTP
routes, first match wins:

- progressive canary / blue-green: one route on ``service.match`` with the primary and canary destinations at the
  current weights; while mirroring, that route also copies ``mirrorWeight`` % (all when unset) to the canary;
- A/B: each ``analysis.match`` with each ``service.match`` → primary/canary at the current weights, then
  ``service.match`` → primary alone;
- session affinity: while the canary has weight, its answers set ``<cookieName>=<value>`` and a sticky route,
  placed first, sends requests carrying it to the canary (with ``primaryCookieName``, the primary's answers set
  theirs and a second sticky route keeps those on the primary); at weight 0 a route for the previous cookie
  expires it;
- ``appProtocol: tcp``: one TCP route on the ports of ``service.match``, weights only.

``rewrite``, ``timeout``, ``retries``, ``headers`` and ``corsPolicy`` are copied into every HTTP route.

Where we differ from Flagger, on purpose: a ``suffix`` match (in Flagger's CRD, not in Istio's, which drops it
and so matches any value) becomes the equivalent regex; mirroring is set on the weighted route, not on whichever
route comes first; at weight 0 with no previous cookie Flagger writes the weighted route twice, we write it once;
the cookie-expiring route gets its own copy of ``headers`` rather than sharing (and altering) the weighted route's.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence

from canaryflow.api import istio
from canaryflow.api.canary import Canary, SessionAffinity
from canaryflow.api.duration import parse_duration
from canaryflow.engine.effects import Routes
from canaryflow.kube.render import meta

Json = meta.Json
API_VERSION = "networking.istio.io/v1beta1"
MESH_GATEWAY = "mesh"
COOKIE_HEADER = "Cookie"
SET_COOKIE_HEADER = "Set-Cookie"
_REGEX_SPECIALS = frozenset("\\.+*?()|[]{}^$")


@dataclasses.dataclass(frozen=True, slots=True)
class Cookies:
    """Session-affinity cookies as Flagger keeps them in the Canary's status: ``name=value``, empty when none."""

    canary: str = ""
    primary: str = ""
    previous: str = ""


def destination_rules(canary: Canary) -> list[Json]:
    """``<svc>-canary`` and ``<svc>-primary`` (Flagger's order), both with ``spec.service.trafficPolicy``."""
    names = meta.ServiceNames.of(canary)
    return [destination_rule(canary, names.canary), destination_rule(canary, names.primary)]


def destination_rule(canary: Canary, host: str) -> Json:
    spec: Json = {"host": host}
    if canary.spec.service.traffic_policy is not None:
        spec["trafficPolicy"] = canary.spec.service.traffic_policy.to_dict()
    return {
        "apiVersion": API_VERSION,
        "kind": "DestinationRule",
        "metadata": meta.object_meta(canary, host),
        "spec": spec,
    }


def virtual_service(canary: Canary, routes: Routes, cookies: Cookies | None = None) -> Json:
    """The apex VirtualService with ``routes`` applied; ``cookies`` are needed with session affinity only."""
    svc, names = canary.spec.service, meta.ServiceNames.of(canary)
    if svc.delegation and (svc.hosts or svc.gateways):
        raise meta.RenderError(
            f"Canary {canary.key}: spec.service.delegation makes VirtualService {names.apex} a delegate, which "
            "cannot have hosts or gateways: remove spec.service.hosts and spec.service.gateways"
        )
    spec: Json = {"hosts": [] if svc.delegation else hosts(canary)}
    if not svc.delegation:
        spec["gateways"] = list(svc.gateways) if svc.gateways else [MESH_GATEWAY]
    if (svc.app_protocol or "").lower() == "tcp":
        spec["tcp"] = [_tcp_route(canary, routes)]
    else:
        spec["http"] = http_routes(canary, routes, cookies or Cookies())
    apex = svc.apex
    return {
        "apiVersion": API_VERSION,
        "kind": "VirtualService",
        "metadata": meta.object_meta(
            canary,
            names.apex,
            labels=apex.labels if apex else None,
            annotations=meta.router_annotations(apex.annotations if apex else None),
        ),
        "spec": spec,
    }


def hosts(canary: Canary) -> list[str]:
    """``spec.service.hosts`` with the apex Service's name appended, unless it or ``*`` is already there."""
    listed = list(canary.spec.service.hosts or [])
    apex = meta.ServiceNames.of(canary).apex
    return listed if any(h in (apex, "*") for h in listed) else [*listed, apex]


def http_routes(canary: Canary, routes: Routes, cookies: Cookies) -> list[Json]:
    svc, analysis, names = canary.spec.service, canary.spec.effective_analysis, meta.ServiceNames.of(canary)
    service_match = list(svc.match or [])
    if analysis.match:
        return [
            _route(canary, istio.merge_matches(analysis.match, service_match), routes),
            _route(canary, service_match, Routes(routes.primary, 0), canary_destination=False),
        ]
    weighted = _route(canary, service_match, routes)
    if routes.mirrored:
        weighted["mirror"] = {"host": names.canary}
        if analysis.mirror_weight:
            weighted["mirrorPercentage"] = {"value": analysis.mirror_weight}
    affinity = analysis.session_affinity
    if affinity is None:
        return [weighted]
    if routes.canary > 0:
        return [*_sticky_routes(canary, affinity, cookies, weighted), weighted]
    if cookies.previous:
        expiring = _route(canary, istio.merge_matches([_cookie_match(cookies.previous)], service_match), routes)
        response = expiring.setdefault("headers", {}).setdefault("response", {})
        response.setdefault("add", {})[SET_COOKIE_HEADER] = f"{cookies.previous}; Max-Age=-1"
        return [expiring, weighted]
    return [weighted]


def build_cookie(affinity: SessionAffinity, cookie: str, max_age: int) -> str:
    """The ``Set-Cookie`` value for ``cookie`` (``name=value``) with the attributes of ``sessionAffinity``."""
    out = f"{cookie}; Max-Age={max_age}"
    if affinity.domain:
        out += f"; Domain={affinity.domain}"
    if affinity.http_only:
        out += "; HttpOnly"
    if affinity.partitioned:
        out += "; Partitioned"
    if affinity.path:
        out += f"; Path={affinity.path}"
    if affinity.same_site:
        out += f"; SameSite={affinity.same_site}"
    if affinity.secure:
        out += "; Secure"
    return out


def _sticky_routes(canary: Canary, affinity: SessionAffinity, cookies: Cookies, weighted: Json) -> list[Json]:
    """Set the cookies on the weighted route's destinations; return the sticky routes that honour them."""
    if not cookies.canary or (affinity.primary_cookie_name and not cookies.primary):
        raise meta.RenderError(f"Canary {canary.key}: session affinity at weight > 0 needs its cookie values")
    service_match = list(canary.spec.service.match or [])
    by_host = {d["destination"]["host"]: d for d in weighted["route"]}
    names = meta.ServiceNames.of(canary)
    max_age = affinity.max_age or 86400
    _set_cookie(by_host[names.canary], build_cookie(affinity, cookies.canary, max_age))
    sticky = [_route(canary, istio.merge_matches([_cookie_match(cookies.canary)], service_match), Routes(0, 100))]
    if affinity.primary_cookie_name:
        # The primary's cookie lives one analysis interval: the next step re-draws who stays on the primary.
        interval = int(parse_duration(canary.spec.effective_analysis.interval))
        _set_cookie(by_host[names.primary], build_cookie(affinity, cookies.primary, interval))
        primary_match = istio.merge_matches([_cookie_match(cookies.primary)], service_match)
        sticky.append(_route(canary, primary_match, Routes(100, 0)))
    return sticky


def _set_cookie(destination: Json, value: str) -> None:
    destination.setdefault("headers", {}).setdefault("response", {})["add"] = {SET_COOKIE_HEADER: value}


def _cookie_match(cookie: str) -> istio.HTTPMatchRequest:
    name, _, value = cookie.partition("=")
    return istio.HTTPMatchRequest(headers={COOKIE_HEADER: istio.StringMatch(regex=f".*{name}.*{value}.*")})


def _route(
    canary: Canary, match: Sequence[istio.HTTPMatchRequest], routes: Routes, *, canary_destination: bool = True
) -> Json:
    svc, names = canary.spec.service, meta.ServiceNames.of(canary)
    route: Json = {}
    if match:
        route["match"] = [_match(m) for m in match]
    route["route"] = [_destination(canary, names.primary, routes.primary)]
    if canary_destination:
        route["route"].append(_destination(canary, names.canary, routes.canary))
    if svc.rewrite is not None:
        # Istio's rewrite has no type (Flagger's CRD takes one for the Gateway API).
        route["rewrite"] = {k: v for k, v in (("uri", svc.rewrite.uri), ("authority", svc.rewrite.authority)) if v}
    if svc.timeout:
        route["timeout"] = svc.timeout
    if svc.retries is not None:
        # Flagger always sends attempts (0 when unset), which Istio reads as "no retries".
        route["retries"] = {"attempts": svc.retries.attempts or 0, **svc.retries.to_dict()}
    if svc.cors_policy is not None:
        route["corsPolicy"] = svc.cors_policy.to_dict()
    if svc.headers is not None:
        route["headers"] = copy.deepcopy(svc.headers.to_dict())
    return route


def _destination(canary: Canary, host: str, weight: int) -> Json:
    svc = canary.spec.service
    destination: Json = {"host": host}
    # Behind an ingress gateway (or as a delegate) the port must be named: the gateway's port is not the service's.
    if svc.port_discovery and ((svc.gateways and svc.gateways[0] != MESH_GATEWAY) or svc.delegation):
        destination["port"] = {"number": svc.port}
    return {"destination": destination, "weight": weight}


def _tcp_route(canary: Canary, routes: Routes) -> Json:
    names = meta.ServiceNames.of(canary)
    route: Json = {}
    if canary.spec.service.match:
        route["match"] = [{"port": m.port} if m.port else {} for m in canary.spec.service.match]
    route["route"] = [
        _destination(canary, names.primary, routes.primary),
        _destination(canary, names.canary, routes.canary),
    ]
    return route


def _match(match: istio.HTTPMatchRequest) -> Json:
    out = match.to_dict()
    for key in ("uri", "scheme", "method", "authority"):
        if key in out:
            out[key] = _string_match(out[key])
    for key in ("headers", "queryParams", "withoutHeaders"):
        if key in out:
            out[key] = {name: _string_match(value) for name, value in out[key].items()}
    return out


def _string_match(value: Json) -> Json:
    if "suffix" not in value:
        return value
    escaped = "".join(f"\\{c}" if c in _REGEX_SPECIALS else c for c in value["suffix"])
    return {"regex": f".*{escaped}"}
