"""The local mesh as Envoy serves it: workloads and their endpoints, services, host aliases and gateways.

The local runtime owns a ``Mesh`` and hands each new version to ``EnvoyRouter.update_mesh``; the canaries'
routing state (``CanaryRouting``) is owned by the router. Everything here is a frozen value.

Names follow Kubernetes: a workload is a Deployment (``backend-primary``, ``backend``), a service a Service.
Each workload becomes one Envoy cluster named ``<namespace>_<workload>``; Prometheus relabels that name back
into Istio's ``destination_workload_namespace`` and ``destination_workload`` labels.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable

from canaryflow.api.canary import Canary
from canaryflow.routing.base import Routes

LOOPBACK = "127.0.0.1"
ALL_TO_PRIMARY = Routes(100, 0)
CLUSTER_DOMAIN = "cluster.local"
# Envoy extracts the cluster name from stat names up to the first dot, so neither part may contain one.
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
CLUSTER_NAME_PATTERN = r"([a-z0-9](?:[-a-z0-9]*[a-z0-9])?)_([a-z0-9](?:[-a-z0-9]*[a-z0-9])?)"
"""A workload cluster name; group 1 is the namespace, group 2 the workload (RE2 and Python agree on it)."""


def cluster_name(namespace: str, workload: str) -> str:
    """The Envoy cluster of a workload: ``prod_backend-primary``."""
    for kind, value in (("namespace", namespace), ("workload", workload)):
        if not _DNS_LABEL.fullmatch(value):
            raise ValueError(f"{kind} {value!r} must be a DNS label (a-z, 0-9, '-') to name a local mesh cluster")
    return f"{namespace}_{workload}"


def service_hosts(name: str, namespace: str) -> tuple[str, ...]:
    """The four names a Kubernetes Service answers to inside the cluster."""
    return (name, f"{name}.{namespace}", f"{name}.{namespace}.svc", f"{name}.{namespace}.svc.{CLUSTER_DOMAIN}")


@dataclasses.dataclass(frozen=True, slots=True)
class Endpoint:
    """One process of a workload, listening on ``host:port``."""

    port: int
    host: str = LOOPBACK


@dataclasses.dataclass(frozen=True, slots=True)
class Workload:
    """The ready processes of one Deployment; no endpoints means requests get Envoy's 503."""

    namespace: str
    name: str
    endpoints: tuple[Endpoint, ...] = ()

    @property
    def cluster(self) -> str:
        return cluster_name(self.namespace, self.name)


@dataclasses.dataclass(frozen=True, slots=True)
class Service:
    """A Service not managed by a Canary: its four names route to one workload.

    A Canary's own services (``<svc>``, ``<svc>-primary``, ``<svc>-canary``) take precedence over a Service of
    the same name, so the runtime may keep ``Service(ns, "backend", "backend")`` in the mesh: it serves before
    the Canary is reconciled and again after ``finalize``.
    """

    namespace: str
    name: str
    workload: str


@dataclasses.dataclass(frozen=True, slots=True)
class Alias:
    """Host names served by a local port, e.g. ``flagger-prometheus.istio-system`` → the local Prometheus.

    Hosts are Envoy domains: exact names, or wildcards such as ``flagger-loadtester.*``.
    """

    name: str
    hosts: tuple[str, ...]
    port: int
    host: str = LOOPBACK

    @property
    def cluster(self) -> str:
        # Two underscores never parse as <namespace>_<workload>: alias traffic stays out of Istio's metrics.
        return f"alias__{self.name}"


@dataclasses.dataclass(frozen=True, slots=True)
class Gateway:
    """An Istio ingress gateway (``istio-system/public-gateway``) as an Envoy listener on a local port."""

    name: str
    port: int

    @property
    def route_config(self) -> str:
        return "gateway_" + re.sub(r"[^a-z0-9-]", "_", self.name.lower())


MESH_ROUTE_CONFIG = "mesh"


@dataclasses.dataclass(frozen=True, slots=True)
class Mesh:
    """Everything the local mesh routes besides the canaries, and the port of its HTTP proxy listener."""

    proxy_port: int
    workloads: tuple[Workload, ...] = ()
    services: tuple[Service, ...] = ()
    aliases: tuple[Alias, ...] = ()
    gateways: tuple[Gateway, ...] = ()

    def with_workload(self, workload: Workload) -> Mesh:
        """This mesh with ``workload`` added, or replacing the one with its namespace and name."""
        kept = tuple(w for w in self.workloads if (w.namespace, w.name) != (workload.namespace, workload.name))
        return dataclasses.replace(self, workloads=(*kept, workload))

    def without_workload(self, namespace: str, name: str) -> Mesh:
        kept = tuple(w for w in self.workloads if (w.namespace, w.name) != (namespace, name))
        return dataclasses.replace(self, workloads=kept)

    def with_service(self, service: Service) -> Mesh:
        kept = tuple(s for s in self.services if (s.namespace, s.name) != (service.namespace, service.name))
        return dataclasses.replace(self, services=(*kept, service))

    def without_service(self, namespace: str, name: str) -> Mesh:
        kept = tuple(s for s in self.services if (s.namespace, s.name) != (namespace, name))
        return dataclasses.replace(self, services=kept)

    def endpoints(self, namespace: str, workload: str) -> tuple[Endpoint, ...]:
        for w in self.workloads:
            if (w.namespace, w.name) == (namespace, workload):
                return w.endpoints
        return ()

    def gateway(self, name: str) -> Gateway | None:
        return next((g for g in self.gateways if g.name == name), None)


@dataclasses.dataclass(frozen=True, slots=True)
class CanaryRouting:
    """What the router serves for one Canary: its spec, its routes and its session-affinity cookies.

    Cookies are ``name=value`` pairs, kept by the router as Flagger keeps them in the Canary's status.
    """

    canary: Canary
    routes: Routes = ALL_TO_PRIMARY
    cookie: str | None = None
    previous_cookie: str | None = None
    primary_cookie: str | None = None

    @property
    def apex(self) -> str:
        return self.canary.service_name

    @property
    def namespace(self) -> str:
        return self.canary.metadata.namespace

    @property
    def primary_cluster(self) -> str:
        return cluster_name(self.namespace, f"{self.canary.spec.target_ref.name}-primary")

    @property
    def canary_cluster(self) -> str:
        return cluster_name(self.namespace, self.canary.spec.target_ref.name)

    def gateways(self) -> tuple[str, ...]:
        """The gateways of ``service.gateways`` as ``namespace/name`` (``mesh`` stays ``mesh``)."""
        return self.qualified(self.canary.spec.service.gateways or ())

    def qualified(self, gateways: Iterable[str]) -> tuple[str, ...]:
        """Gateway names as Istio reads them in this canary's namespace."""
        return tuple(g if g == "mesh" or "/" in g else f"{self.namespace}/{g}" for g in gateways)

    def in_mesh(self) -> bool:
        """Whether the canary's routes apply inside the mesh; Istio applies a VirtualService with gateways
        only to those gateways unless ``mesh`` is listed."""
        gateways = self.gateways()
        return not gateways or "mesh" in gateways
