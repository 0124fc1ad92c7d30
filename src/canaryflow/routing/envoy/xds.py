"""Envoy's configuration for the local mesh as JSON: the bootstrap, and the LDS, CDS and RDS files it watches.

Pure functions of the ``Mesh`` and the canaries' ``CanaryRouting``. Routes live in RDS files (one per route
configuration, as file-based RDS requires) so that even open keep-alive connections take a change on their
next request; listeners and clusters change only when the mesh does.

Virtual hosts are claimed domain by domain: a Canary's services first, then plain services, then aliases. A
domain already claimed is left out of later hosts (Envoy rejects a route configuration with duplicates) and
reported in ``Rendered.conflicts``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from canaryflow.routing.envoy import routes as canary_rules
from canaryflow.routing.envoy.model import (
    LOOPBACK,
    MESH_ROUTE_CONFIG,
    CanaryRouting,
    Endpoint,
    Mesh,
    cluster_name,
    service_hosts,
)

Json = dict[str, Any]
LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener"
CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
ROUTE_CONFIG = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
_HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
LDS, CDS = "lds", "cds"
STATE_KEY = "canaryflow"
"""Metadata key of a canary's apex virtual host in the mesh RDS file: its spec, routes and cookies."""
# Finer than Envoy's default (10 → 25 ms jumps) so a p99 of 12 ms reads as ~12, not ~23.
LATENCY_BUCKETS_MS = [
    *(0.5, *range(1, 16), 17.5, 20, 25, 30, 40, 50, 60, 75, 100, 125, 150, 200, 250, 300, 400, 500, 600),
    *(750, 1000, 1250, 1500, 2000, 2500, 3000, 4000, 5000, 7500, 10000, 15000, 30000, 60000, 300000, 600000),
]
# A range no caller comes from: with it, loopback callers count as external and only Envoy's own mirrored
# copies are internal, which keeps shadow traffic out of the canary's request metrics.
_INTERNAL_ONLY = {"cidr_ranges": [{"address_prefix": "192.0.2.1", "prefix_len": 32}]}
_CONNECTION_LIMIT = {
    "name": "envoy.resource_monitors.global_downstream_max_connections",
    "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3"
        ".DownstreamConnectionsConfig",
        "max_active_downstream_connections": 65536,
    },
}
_UNLIMITED = 4294967295  # Istio's circuit-breaker defaults: nothing is shed on one machine either


@dataclasses.dataclass(frozen=True, slots=True)
class Rendered:
    """Every xDS file's document by file name (``lds``, ``cds``, ``rds_<route config>``), and domain conflicts."""

    documents: Mapping[str, Json]
    conflicts: tuple[str, ...] = ()


def rds_file(route_config: str) -> str:
    return f"rds_{route_config}"


def bootstrap(directory: Path, admin_port: int) -> Json:
    """Envoy's bootstrap: admin on loopback, listeners and clusters from the files in ``directory``."""
    return {
        "node": {"id": "canaryflow", "cluster": "canaryflow"},
        "admin": {"address": _address(LOOPBACK, admin_port)},
        "dynamic_resources": {
            "lds_config": _file_source(directory, LDS),
            "cds_config": _file_source(directory, CDS),
        },
        # Histograms reach /stats/prometheus only when flushed; Prometheus scrapes every second.
        "stats_flush_interval": "1s",
        "overload_manager": {"resource_monitors": [_CONNECTION_LIMIT]},
        "stats_config": {
            "histogram_bucket_settings": [{"match": {"suffix": "upstream_rq_time"}, "buckets": LATENCY_BUCKETS_MS}]
        },
    }


def render(mesh: Mesh, canaries: Iterable[CanaryRouting], directory: Path) -> Rendered:
    """All xDS documents for ``mesh`` with ``canaries`` routed."""
    states = sorted(canaries, key=lambda s: s.canary.key)
    configs, conflicts = route_configurations(mesh, states)
    documents = {
        LDS: document(LISTENER, listeners(mesh, directory)),
        CDS: document(CLUSTER, clusters(mesh, states)),
    }
    for name, config in configs.items():
        documents[rds_file(name)] = document(ROUTE_CONFIG, [config])
    return Rendered(documents, tuple(conflicts))


def document(type_url: str, resources: list[Json]) -> Json:
    """A DiscoveryResponse file; its version is a digest of the content, so equal content means equal version."""
    typed = [{"@type": type_url, **r} for r in resources]
    digest = hashlib.sha256(json.dumps(typed, sort_keys=True).encode()).hexdigest()[:16]
    return {"version_info": digest, "resources": typed}


def listeners(mesh: Mesh, directory: Path) -> list[Json]:
    out = [_http_listener(MESH_ROUTE_CONFIG, mesh.proxy_port, directory)]
    out += [_http_listener(g.route_config, g.port, directory) for g in mesh.gateways]
    return out


def clusters(mesh: Mesh, canaries: Iterable[CanaryRouting]) -> list[Json]:
    """One cluster per workload, including the canaries' workloads that have no process yet."""
    endpoints: dict[str, tuple[Endpoint, ...]] = {w.cluster: w.endpoints for w in mesh.workloads}
    for state in canaries:
        for name in (state.primary_cluster, state.canary_cluster):
            endpoints.setdefault(name, ())
    for service in mesh.services:
        endpoints.setdefault(cluster_name(service.namespace, service.workload), ())
    for alias in mesh.aliases:
        endpoints[alias.cluster] = (Endpoint(alias.port, alias.host),)
    return [_cluster(name, endpoints[name]) for name in sorted(endpoints)]


def route_configurations(mesh: Mesh, canaries: list[CanaryRouting]) -> tuple[dict[str, Json], list[str]]:
    """The mesh's route configuration and each gateway's, by name, and the domain conflicts found."""
    conflicts: list[str] = []
    mesh_hosts = _Hosts(MESH_ROUTE_CONFIG, conflicts)
    gateway_hosts = {g.name: _Hosts(g.route_config, conflicts) for g in mesh.gateways}
    for state in canaries:
        _add_canary(mesh_hosts, gateway_hosts, state, conflicts)
    for service in mesh.services:
        target = cluster_name(service.namespace, service.workload)
        mesh_hosts.add(
            f"service:{service.namespace}/{service.name}",
            service_hosts(service.name, service.namespace),
            [_plain_route(target)],
        )
    for alias in mesh.aliases:
        mesh_hosts.add(f"alias:{alias.name}", alias.hosts, [_plain_route(alias.cluster)])
    configs = {mesh_hosts.name: mesh_hosts.config()}
    configs.update({hosts.name: hosts.config() for hosts in gateway_hosts.values()})
    return configs, conflicts


def _add_canary(mesh_hosts: _Hosts, gateways: dict[str, _Hosts], state: CanaryRouting, conflicts: list[str]) -> None:
    ns, apex, key = state.namespace, state.apex, state.canary.key
    hosts = [h for h in state.canary.spec.service.hosts or () if h != "*"]
    metadata = {"filter_metadata": {STATE_KEY: state_metadata(state)}}
    if state.in_mesh():
        apex_hosts = (*service_hosts(apex, ns), *(_expand(h, ns) for h in hosts))
        mesh_hosts.add(f"canary:{key}", apex_hosts, canary_rules.canary_routes(state, "mesh"), metadata)
    else:
        # A VirtualService bound to gateways only leaves the mesh to the apex Service, which selects the primary.
        mesh_hosts.add(f"canary:{key}", service_hosts(apex, ns), [_plain_route(state.primary_cluster)], metadata)
    mesh_hosts.add(f"canary:{key}:primary", service_hosts(f"{apex}-primary", ns), [_plain_route(state.primary_cluster)])
    mesh_hosts.add(f"canary:{key}:canary", service_hosts(f"{apex}-canary", ns), [_plain_route(state.canary_cluster)])
    for name in state.gateways():
        if name == "mesh":
            continue
        if name not in gateways:
            conflicts.append(f"canary {key}: gateway {name} is not served by the local mesh")
            continue
        vs_hosts = state.canary.spec.service.hosts or []
        domains = ["*"] if "*" in vs_hosts else [*service_hosts(apex, ns), *(_expand(h, ns) for h in vs_hosts)]
        gateways[name].add(f"canary:{key}", domains, canary_rules.canary_routes(state, name))


def state_metadata(state: CanaryRouting) -> Json:
    """What a restarted router needs to serve a canary again, stored beside its routes."""
    r = state.routes
    return {
        "canary": state.canary.model_dump(by_alias=True, exclude_none=True, mode="json", exclude={"status"}),
        "routes": {"primary": r.primary, "canary": r.canary, "mirrored": r.mirrored},
        "cookie": state.cookie or "",
        "previous_cookie": state.previous_cookie or "",
        "primary_cookie": state.primary_cookie or "",
    }


class _Hosts:
    """Virtual hosts of one route configuration, each domain claimed once."""

    def __init__(self, name: str, conflicts: list[str]) -> None:
        self.name = name
        self._owners: dict[str, str] = {}
        self._virtual_hosts: list[Json] = []
        self._conflicts = conflicts

    def add(self, vhost: str, domains: Iterable[str], routes: list[Json], metadata: Json | None = None) -> None:
        free = []
        for domain in dict.fromkeys(domains):
            owner = self._owners.get(domain)
            if owner is None:
                self._owners[domain] = vhost
                free.append(domain)
            elif owner != vhost:
                self._conflicts.append(f"{self.name}: {domain} is served by {owner}, not by {vhost}")
        if not free:
            return
        host: Json = {"name": vhost, "domains": free, "routes": routes}
        if metadata is not None:
            host["metadata"] = metadata
        self._virtual_hosts.append(host)

    def config(self) -> Json:
        # Hosts match without their port, but routes still see it in :authority (an Istio ``port`` match).
        return {"name": self.name, "virtual_hosts": self._virtual_hosts, "ignore_port_in_host_matching": True}


def _expand(host: str, namespace: str) -> str:
    # Istio reads a short VirtualService host as a service in the VirtualService's namespace.
    return f"{host}.{namespace}.svc.cluster.local" if "." not in host and "*" not in host else host


def _plain_route(cluster: str) -> Json:
    return {"name": "default", "match": {"prefix": "/"}, "route": {"cluster": cluster, "timeout": "0s"}}


def _http_listener(name: str, port: int, directory: Path) -> Json:
    manager = {
        "@type": _HCM,
        "stat_prefix": name,
        "use_remote_address": True,
        "internal_address_config": _INTERNAL_ONLY,
        "rds": {"route_config_name": name, "config_source": _file_source(directory, rds_file(name))},
        "http_filters": [
            {
                "name": canary_rules.CORS_FILTER,
                "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors"},
            },
            {
                "name": "envoy.filters.http.router",
                "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
            },
        ],
    }
    return {
        "name": name,
        "address": _address(LOOPBACK, port),
        "filter_chains": [
            {"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": manager}]}
        ],
    }


def _cluster(name: str, endpoints: tuple[Endpoint, ...]) -> Json:
    limits = {"max_connections": _UNLIMITED, "max_pending_requests": _UNLIMITED, "max_requests": _UNLIMITED}
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "circuit_breakers": {"thresholds": [{**limits, "max_retries": _UNLIMITED}]},
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": _address(e.host, e.port)}} for e in endpoints]}]
            if endpoints
            else [],
        },
    }


def _address(host: str, port: int) -> Json:
    return {"socket_address": {"address": host, "port_value": port}}


def _file_source(directory: Path, name: str) -> Json:
    # Envoy reloads a watched file only when it is moved into place (os.replace), never on in-place writes.
    return {
        "resource_api_version": "V3",
        "path_config_source": {"path": str(directory / f"{name}.json"), "watched_directory": {"path": str(directory)}},
    }


def validation_bootstrap(documents: Mapping[str, Json]) -> Json:
    """The same configuration as static resources, for ``envoy --mode validate`` to explain a rejection."""
    routes = {}
    for name, doc in documents.items():
        if name.startswith("rds_"):
            for resource in doc["resources"]:
                routes[resource["name"]] = _untyped(resource)
    listeners = []
    for resource in documents[LDS]["resources"]:
        listener = json.loads(json.dumps(_untyped(resource)))
        manager = listener["filter_chains"][0]["filters"][0]["typed_config"]
        manager["route_config"] = routes.get(manager.pop("rds")["route_config_name"], {})
        listeners.append(listener)
    clusters = [_untyped(r) for r in documents[CDS]["resources"]]
    return {"static_resources": {"listeners": listeners, "clusters": clusters}}


def _untyped(resource: Json) -> Json:
    return {k: v for k, v in resource.items() if k != "@type"}
