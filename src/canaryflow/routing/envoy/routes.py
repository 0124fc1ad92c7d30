"""A Canary's routing as Envoy routes, rule for rule as Flagger's Istio router writes its VirtualService.

- progressive canary: one weighted route per ``service.match`` entry (one catch-all route without any);
- A/B: each ``analysis.match`` with each ``service.match`` → weighted, then ``service.match`` → primary only;
- mirroring: the weighted routes copy ``mirrorWeight`` percent (all when unset) of requests to the canary;
- session affinity: while the canary has weight, its responses set a cookie and a sticky route sends requests
  carrying it to the canary; at weight 0 a route matching the previous cookie expires it.

Pure functions over ``CanaryRouting``; regexes are Envoy's RE2 with Istio's full-match semantics. Match fields
the local mesh cannot honour (source labels, source namespaces: every workload shares one proxy listener, so
the caller is unknown) raise ``RouterError``: ignoring them would send more traffic to the canary than the
manifest says. A ``port`` match is the port the client addressed, which a forward proxy sees in ``:authority``
(``backend.prod:9898``; no port is 80).
"""

from __future__ import annotations

import re
from typing import Any

from canaryflow.api import istio
from canaryflow.api.canary import SessionAffinity
from canaryflow.api.duration import parse_duration
from canaryflow.routing.base import RouterError
from canaryflow.routing.envoy.model import CanaryRouting

Json = dict[str, Any]
WEIGHTED, AB, PRIMARY_ONLY, STICKY, STICKY_PRIMARY = "weighted", "ab", "primary-only", "sticky", "sticky-primary"
"""Route name prefixes: ``weighted`` and ``ab`` routes carry the canary's weights (what ``verify`` reads)."""
CORS_FILTER = "envoy.filters.http.cors"
_CORS_POLICY = "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy"
_ISTIO_RETRY_ON = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
_UNSUPPORTED = ("source_labels", "source_namespace")


def canary_routes(state: CanaryRouting, where: str) -> list[Json]:
    """The routes of the canary's apex virtual host on ``where``: ``mesh`` or a gateway's ``namespace/name``."""
    canary, routes = state.canary, state.routes
    analysis = canary.spec.effective_analysis
    service_match = canary.spec.service.match
    if analysis.match:
        ab_match = istio.merge_matches(analysis.match, service_match)
        return [
            *_routes(AB, _matches(ab_match, where, state), state, _weighted(state, routes.primary, routes.canary)),
            *_routes(PRIMARY_ONLY, _matches(service_match, where, state), state, {"cluster": state.primary_cluster}),
        ]
    weighted = _weighted(state, routes.primary, routes.canary, cookies=True)
    if routes.mirrored:
        weighted["request_mirror_policies"] = [_mirror(state)]
    main = _routes(WEIGHTED, _matches(service_match, where, state), state, weighted)
    affinity = analysis.session_affinity
    if affinity is None:
        return main
    sticky: list[Json] = []
    if routes.canary > 0 and state.cookie:
        sticky += _cookie_routes(STICKY, state, state.cookie, where, _weighted(state, 0, 100))
        if state.primary_cookie:
            sticky += _cookie_routes(STICKY_PRIMARY, state, state.primary_cookie, where, _weighted(state, 100, 0))
    elif state.previous_cookie:
        expire = _set_cookie(f"{state.previous_cookie}; Max-Age=-1")
        unchanged = _weighted(state, routes.primary, routes.canary)
        for route in _cookie_routes(STICKY, state, state.previous_cookie, where, unchanged):
            route.setdefault("response_headers_to_add", []).append(expire)
            sticky.append(route)
    return sticky + main


def route_match(match: istio.HTTPMatchRequest) -> Json:
    """One Istio HTTPMatchRequest as an Envoy RouteMatch (all conditions must hold)."""
    unsupported = [name for name in _UNSUPPORTED if getattr(match, name) is not None]
    if unsupported:
        raise RouterError(f"match field(s) {', '.join(unsupported)} cannot be honoured by the local mesh")
    out: Json = {"prefix": "/"}
    if match.uri is not None:
        out = _path_match(match.uri)
    if match.ignore_uri_case:
        out["case_sensitive"] = False
    headers = [_header(name.lower(), sm) for name, sm in (match.headers or {}).items()]
    headers += [_header(name.lower(), sm, invert=True) for name, sm in (match.without_headers or {}).items()]
    for pseudo, sm in ((":method", match.method), (":scheme", match.scheme), (":authority", match.authority)):
        if sm is not None:
            headers.append(_header(pseudo, sm))
    if match.port is not None:
        headers.append(_port(match.port))
    if headers:
        out["headers"] = headers
    if match.query_params:
        out["query_parameters"] = [_query(name, sm) for name, sm in match.query_params.items()]
    return out


def string_match(sm: istio.StringMatch) -> Json | None:
    """An Envoy StringMatcher; ``None`` for an empty match, which Istio reads as "present"."""
    if sm.exact is not None:
        return {"exact": sm.exact}
    if sm.prefix is not None:
        return {"prefix": sm.prefix}
    if sm.suffix is not None:
        return {"suffix": sm.suffix}
    if sm.regex is not None:
        return {"safe_regex": {"regex": sm.regex}}
    return None


def build_cookie(affinity: SessionAffinity, cookie: str, max_age: int) -> str:
    """A Set-Cookie value with the attributes of ``sessionAffinity``, as Flagger's BuildCookie writes it."""
    parts = [cookie, f"Max-Age={max_age}"]
    parts += [f"Domain={affinity.domain}"] if affinity.domain else []
    parts += ["HttpOnly"] if affinity.http_only else []
    parts += ["Partitioned"] if affinity.partitioned else []
    parts += [f"Path={affinity.path}"] if affinity.path else []
    parts += [f"SameSite={affinity.same_site}"] if affinity.same_site else []
    parts += ["Secure"] if affinity.secure else []
    return "; ".join(parts)


def envoy_duration(text: str) -> str:
    return f"{parse_duration(text):.3f}s"


def _routes(kind: str, matches: list[Json], state: CanaryRouting, action: Json) -> list[Json]:
    service = state.canary.spec.service
    route_action: Json = {**action, "timeout": envoy_duration(service.timeout) if service.timeout else "0s"}
    if service.retries is not None and service.retries.attempts:
        route_action["retry_policy"] = _retry_policy(service.retries)
    if service.rewrite is not None and service.rewrite.uri is not None:
        route_action["prefix_rewrite"] = service.rewrite.uri
    if service.rewrite is not None and service.rewrite.authority is not None:
        route_action["host_rewrite_literal"] = service.rewrite.authority
    out = []
    for i, match in enumerate(matches):
        route: Json = {"name": f"{kind}-{i}", "match": match, "route": route_action}
        route.update(_header_operations(service.headers))
        if service.cors_policy is not None:
            route["typed_per_filter_config"] = {CORS_FILTER: _cors(service.cors_policy)}
        out.append(route)
    return out


def _matches(matches: list[istio.HTTPMatchRequest] | None, where: str, state: CanaryRouting) -> list[Json]:
    """RouteMatches of an Istio match list on ``where``; none at all means one catch-all match."""
    if not matches:
        return [{"prefix": "/"}]
    # A match limited to other gateways does not exist here; if none is left the rule does not apply.
    return [route_match(m) for m in matches if m.gateways is None or where in state.qualified(m.gateways)]


def _cookie_routes(kind: str, state: CanaryRouting, cookie: str, where: str, action: Json) -> list[Json]:
    name, _, value = cookie.partition("=")
    regex = f".*{re.escape(name)}.*{re.escape(value)}.*"
    cookie_match = istio.HTTPMatchRequest(headers={"cookie": istio.StringMatch(regex=regex)})
    matches = istio.merge_matches([cookie_match], state.canary.spec.service.match)
    return _routes(kind, _matches(matches, where, state), state, action)


def _weighted(state: CanaryRouting, primary: int, canary: int, *, cookies: bool = False) -> Json:
    primary_cluster: Json = {"name": state.primary_cluster, "weight": primary}
    canary_cluster: Json = {"name": state.canary_cluster, "weight": canary}
    affinity = state.canary.spec.effective_analysis.session_affinity
    if cookies and affinity is not None and canary > 0:
        if state.cookie:
            cookie = build_cookie(affinity, state.cookie, affinity.max_age)
            canary_cluster["response_headers_to_add"] = [_set_cookie(cookie)]
        if state.primary_cookie:
            interval = int(state.canary.spec.effective_analysis.interval_seconds)
            primary_cluster["response_headers_to_add"] = [
                _set_cookie(build_cookie(affinity, state.primary_cookie, interval))
            ]
    return {"weighted_clusters": {"clusters": [primary_cluster, canary_cluster]}}


def _mirror(state: CanaryRouting) -> Json:
    policy: Json = {"cluster": state.canary_cluster}
    weight = state.canary.spec.effective_analysis.mirror_weight
    if weight:
        policy["runtime_fraction"] = {"default_value": {"numerator": weight, "denominator": "HUNDRED"}}
    return policy


def _set_cookie(value: str) -> Json:
    # Appended, so the application's own Set-Cookie headers survive.
    return {"header": {"key": "set-cookie", "value": value}, "append_action": "APPEND_IF_EXISTS_OR_ADD"}


def _path_match(uri: istio.StringMatch) -> Json:
    if uri.exact is not None:
        return {"path": uri.exact}
    if uri.prefix is not None:
        return {"prefix": uri.prefix}
    if uri.suffix is not None:
        return {"safe_regex": {"regex": f".*{re.escape(uri.suffix)}"}}
    if uri.regex is not None:
        return {"safe_regex": {"regex": uri.regex}}
    return {"prefix": "/"}


def _header(name: str, sm: istio.StringMatch, *, invert: bool = False) -> Json:
    matcher = string_match(sm)
    out: Json = {"name": name, "string_match": matcher} if matcher else {"name": name, "present_match": True}
    if invert:
        out["invert_match"] = True
    return out


def _port(port: int) -> Json:
    """The request was addressed to ``port``: ``host:port`` in the authority (plain ``host`` for port 80)."""
    regex = r"[^:/]+(:80)?" if port == 80 else rf"[^:/]+:{port}"
    return {"name": ":authority", "string_match": {"safe_regex": {"regex": regex}}}


def _query(name: str, sm: istio.StringMatch) -> Json:
    matcher = string_match(sm)
    return {"name": name, "string_match": matcher} if matcher else {"name": name, "present_match": True}


def _retry_policy(retries: istio.HTTPRetry) -> Json:
    conditions = [c.strip() for c in (retries.retry_on or _ISTIO_RETRY_ON).split(",") if c.strip()]
    codes = [int(c) for c in conditions if c.isdigit()]
    names = [c for c in conditions if not c.isdigit()]
    if codes and "retriable-status-codes" not in names:
        names.append("retriable-status-codes")
    policy: Json = {"retry_on": ",".join(names), "num_retries": retries.attempts}
    if codes:
        policy["retriable_status_codes"] = codes
    if retries.per_try_timeout:
        policy["per_try_timeout"] = envoy_duration(retries.per_try_timeout)
    return policy


def _header_operations(headers: istio.Headers | None) -> Json:
    out: Json = {}
    for direction, ops in (("request", headers and headers.request), ("response", headers and headers.response)):
        if not ops:
            continue
        add = [_header_value(k, v, "OVERWRITE_IF_EXISTS_OR_ADD") for k, v in (ops.set or {}).items()]
        add += [_header_value(k, v, "APPEND_IF_EXISTS_OR_ADD") for k, v in (ops.add or {}).items()]
        if add:
            out[f"{direction}_headers_to_add"] = add
        if ops.remove:
            out[f"{direction}_headers_to_remove"] = list(ops.remove)
    return out


def _header_value(key: str, value: str, action: str) -> Json:
    return {"header": {"key": key, "value": value}, "append_action": action}


def _cors(cors: istio.CorsPolicy) -> Json:
    origins: list[Json] = [{"exact": o} for o in cors.allow_origin or ()]
    origins += [m for m in (string_match(o) for o in cors.allow_origins or ()) if m is not None]
    policy: Json = {"@type": _CORS_POLICY}
    if origins:
        policy["allow_origin_string_match"] = origins
    for field in ("allow_methods", "allow_headers", "expose_headers"):
        values = getattr(cors, field)
        if values:
            policy[field] = ",".join(values)
    if cors.max_age:
        policy["max_age"] = str(int(parse_duration(cors.max_age)))
    if cors.allow_credentials is not None:
        policy["allow_credentials"] = cors.allow_credentials
    return policy
