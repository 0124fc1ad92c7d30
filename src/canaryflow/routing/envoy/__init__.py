"""The local mesh on Envoy: a ``Mesh`` model, Envoy's xDS documents built from it, and ``EnvoyRouter``.

Envoy reads its configuration from files (``xds``) written by atomic rename (``files``); the router confirms
each change through Envoy's admin API (``admin``). Starting and supervising the Envoy process is the local
runtime's job (``canaryflow.local.envoy``), not this package's.
"""

from canaryflow.routing.envoy.admin import EnvoyAdmin, envoy_binary
from canaryflow.routing.envoy.files import XdsFiles
from canaryflow.routing.envoy.model import (
    Alias,
    CanaryRouting,
    Endpoint,
    Gateway,
    Mesh,
    Service,
    Workload,
    cluster_name,
    service_hosts,
)
from canaryflow.routing.envoy.router import EnvoyRouter

__all__ = [
    "Alias",
    "CanaryRouting",
    "Endpoint",
    "EnvoyAdmin",
    "EnvoyRouter",
    "Gateway",
    "Mesh",
    "Service",
    "Workload",
    "XdsFiles",
    "cluster_name",
    "envoy_binary",
    "service_hosts",
]
