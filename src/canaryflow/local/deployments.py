"""The local runtime's Deployment and Service controllers for what no Canary manages.

A Deployment no Canary targets (the seed's ``apps/loadtest``, or anything a user adds) runs as itself through
``ProcessWorkloads.run_deployment``: applied, it starts; changed (its template, or a ConfigMap or Secret it
tracks), it rolls without a gap; deleted, it stops. Once a Canary targets it, the engine owns it (Flagger's
takeover: initialization adds the primary, then the target is scaled to zero); when that Canary is deleted, the
Deployment is a plain one again, at the scale the Canary left it.

An applied Service routes in the mesh to the Deployment whose pod template's labels its selector matches, by
the four names a Service answers to. A Service that selects no Deployment is left out of the mesh, so it does
not hide a name the runtime serves itself (``flagger-loadtester.*`` is the runtime's load tester until the seed's
``apps/loadtest`` runs). A Canary's own Services take precedence over an applied one of the same name.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from canaryflow.local.objects import Change, ObjectStore
from canaryflow.local.workloads import ProcessWorkloads
from canaryflow.workloads.base import WorkloadError

log = logging.getLogger(__name__)

#: ``(namespace, service, workload or None)``: route the Service's names to the workload, or stop routing them.
ServiceCallback = Callable[[str, str, str | None], Awaitable[None]]


class PlainDeployments:
    """Keeps Deployments without a Canary running and applied Services routed."""

    def __init__(self, objects: ObjectStore, workloads: ProcessWorkloads, on_service: ServiceCallback) -> None:
        self.objects, self.workloads, self.on_service = objects, workloads, on_service
        self._routed: dict[tuple[str, str], str] = {}  # (namespace, service) → the workload it routes to

    async def resync(self) -> None:
        """Everything as stored (at start, and after a Canary is deleted)."""
        for body in self.objects.list("Deployment"):
            self._run(body["metadata"]["namespace"], body["metadata"]["name"])
        await self._route({body["metadata"]["namespace"] for body in self.objects.list("Service")})

    async def changed(self, changes: Iterable[Change]) -> None:
        namespaces: set[str] = set()
        for change in changes:
            if change.kind == "Deployment":
                self._run(change.namespace, change.name)
            elif change.kind in ("ConfigMap", "Secret"):
                for body in self.objects.list("Deployment", change.namespace):
                    self._run(change.namespace, body["metadata"]["name"])
            if change.kind in ("Deployment", "Service", "Canary"):
                namespaces.add(change.namespace)
        await self._route(namespaces)

    def targeted(self, namespace: str, name: str) -> bool:
        """Whether a stored Canary targets Deployment ``namespace/name`` (then the engine runs it)."""
        for body in self.objects.list("Canary", namespace):
            ref = (body.get("spec") or {}).get("targetRef") or {}
            if ref.get("kind", "Deployment") == "Deployment" and ref.get("name") == name:
                return True
        return False

    def _run(self, namespace: str, name: str) -> None:
        if self.targeted(namespace, name):
            return
        try:
            self.workloads.run_deployment(namespace, name)
        except WorkloadError as exc:  # shown as 0 ready replicas; the next apply retries
            log.warning("%s", exc)

    async def _route(self, namespaces: set[str]) -> None:
        for namespace in sorted(namespaces):
            deployments = self.objects.list("Deployment", namespace)
            services = {s["metadata"]["name"]: s for s in self.objects.list("Service", namespace)}
            for name, service in services.items():
                workload = selected(service, deployments)
                if workload is not None and self._routed.get((namespace, name)) != workload:
                    self._routed[(namespace, name)] = workload
                    await self.on_service(namespace, name, workload)
                elif workload is None and self._routed.pop((namespace, name), None) is not None:
                    await self.on_service(namespace, name, None)
            for ns, name in [key for key in self._routed if key[0] == namespace and key[1] not in services]:
                del self._routed[(ns, name)]
                await self.on_service(ns, name, None)


def selected(service: Mapping[str, Any], deployments: Iterable[Mapping[str, Any]]) -> str | None:
    """The Deployment whose pods ``service``'s selector matches (the first by name), or None."""
    selector = (service.get("spec") or {}).get("selector") or {}
    if not selector:
        return None
    for deployment in sorted(deployments, key=lambda d: str(d["metadata"]["name"])):
        labels = (((deployment.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {}
        if all(labels.get(key) == value for key, value in selector.items()):
            return str(deployment["metadata"]["name"])
    return None
