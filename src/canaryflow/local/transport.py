"""The HTTP transport of the local control loop: in-cluster names through the mesh, loopback addresses direct.

Metric queries and webhooks name services by their Kubernetes names (``flagger-prometheus.istio-system:9090``,
``flagger-loadtester.test``), which only the mesh's Envoy forward proxy can resolve, so they must go through it.
But the runtime's own Prometheus, and anything else a user runs on this host, is addressed as
``http://127.0.0.1:PORT`` — a host Envoy has no route for (it answers 404). In a cluster such a request would
never touch the sidecar either, so loopback goes direct, exactly as ``no_proxy=127.0.0.1,localhost`` does for
the workloads' own clients.
"""

from __future__ import annotations

import ipaddress

import httpx

__all__ = ["MeshTransport", "is_loopback"]


def is_loopback(host: str) -> bool:
    """True for ``localhost`` (and ``*.localhost``) and any loopback IP address (127.0.0.0/8, ``::1``)."""
    name = host.strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class MeshTransport(httpx.AsyncBaseTransport):
    """Sends each request through the mesh proxy, unless its host is a loopback address."""

    def __init__(self, proxy: str) -> None:
        self.proxy = proxy
        self._mesh = httpx.AsyncHTTPTransport(proxy=proxy)
        self._direct = httpx.AsyncHTTPTransport()

    def route(self, url: httpx.URL) -> str:
        """``"direct"`` or ``"mesh"``: which way a request to ``url`` goes."""
        return "direct" if is_loopback(url.host) else "mesh"

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        transport = self._direct if self.route(request.url) == "direct" else self._mesh
        return await transport.handle_async_request(request)

    async def aclose(self) -> None:
        await self._mesh.aclose()
        await self._direct.aclose()
