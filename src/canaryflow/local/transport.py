"""The HTTP transport of the local control loop: in-cluster names through the mesh, loopback addresses direct.

Metric queries and webhooks name services by their Kubernetes names (``flagger-prometheus.istio-system:9090``,
``flagger-loadtester.test``), which only the mesh's Envoy forward proxy can resolve, so they must go through it.
But the runtime's own Prometheus, and anything else a user runs on this host, is addressed as
``http://127.0.0.1:PORT`` — a host Envoy has no route for (it answers 404). In a cluster such a request would
never touch the sidecar either, so loopback goes direct, exactly as ``no_proxy=127.0.0.1,localhost`` does for
the workloads' own clients. Names outside the cluster (``api.datadoghq.com``: three labels or more, not under
``.svc`` or ``.cluster.local``) go direct as well, as Istio passes outbound traffic through to hosts it does not
know; a single label (``podinfo-canary``) or ``name.namespace`` is an in-cluster name.
"""

from __future__ import annotations

import ipaddress

import httpx

__all__ = ["MeshTransport", "is_in_cluster", "is_loopback"]

CLUSTER_SUFFIXES = (".svc", ".svc.cluster.local", ".cluster.local")


def is_loopback(host: str) -> bool:
    """True for ``localhost`` (and ``*.localhost``) and any loopback IP address (127.0.0.0/8, ``::1``)."""
    name = host.strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def is_in_cluster(host: str) -> bool:
    """True for the names a pod resolves to Services: ``name``, ``name.namespace``, ``….svc[.cluster.local]``."""
    name = host.rstrip(".").lower()
    if is_loopback(name):
        return False
    try:
        ipaddress.ip_address(name.strip("[]"))
        return False
    except ValueError:
        pass
    return name.count(".") <= 1 or name.endswith(CLUSTER_SUFFIXES)


class MeshTransport(httpx.AsyncBaseTransport):
    """Sends requests to in-cluster names through the mesh proxy, everything else (loopback first) direct."""

    def __init__(self, proxy: str) -> None:
        self.proxy = proxy
        self._mesh = httpx.AsyncHTTPTransport(proxy=proxy)
        self._direct = httpx.AsyncHTTPTransport()

    def route(self, url: httpx.URL) -> str:
        """``"direct"`` or ``"mesh"``: which way a request to ``url`` goes."""
        return "mesh" if is_in_cluster(url.host) else "direct"

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        transport = self._direct if self.route(request.url) == "direct" else self._mesh
        return await transport.handle_async_request(request)

    async def aclose(self) -> None:
        await self._mesh.aclose()
        await self._direct.aclose()
