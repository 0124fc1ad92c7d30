"""The three ClusterIP Services of a Canary, as Flagger's Kubernetes router writes them.

- ``<svc>-canary`` selects the target's pods (``app: backend``);
- ``<svc>-primary`` and the apex ``<svc>`` select the primary's pods (``app: backend-primary``), so once the
  operator has initialised a canary every client of ``<svc>`` reaches the primary unless the mesh says otherwise.

The selector key is the workload's selector label (:func:`meta.selector_label`); each Service is labelled with
that key set to its own name. ``spec.service.{apex,primary,canary}`` add labels and annotations.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

from canaryflow.api.canary import Canary, CustomMetadata
from canaryflow.kube.render import meta

Json = meta.Json
#: Containers that are the mesh's proxies, not the application: their ports are never discovered.
SIDECARS = ("istio-proxy", "envoy")


class Role(enum.StrEnum):
    """Which of the three Services: the name and the pods it selects follow from it."""

    APEX = "apex"
    PRIMARY = "primary"
    CANARY = "canary"


def service(canary: Canary, workload: Mapping[str, Any], role: Role) -> Json:
    """The Service of ``role`` for ``canary`` whose target is ``workload`` (a Deployment or DaemonSet manifest)."""
    names = meta.ServiceNames.of(canary)
    name = {Role.APEX: names.apex, Role.PRIMARY: names.primary, Role.CANARY: names.canary}[role]
    key, value = meta.selector_label(workload)
    pods = value if role is Role.CANARY else f"{value}-primary"
    custom: CustomMetadata | None = getattr(canary.spec.service, role.value)
    labels = {**((custom.labels if custom else None) or {}), key: name}
    annotations = meta.router_annotations(custom.annotations if custom else None)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta.object_meta(canary, name, labels=labels, annotations=annotations),
        "spec": _spec(canary, workload, {key: pods}),
    }


def _spec(canary: Canary, workload: Mapping[str, Any], selector: dict[str, str]) -> Json:
    svc = canary.spec.service
    main: Json = {
        "name": svc.port_name or "http",
        "protocol": "TCP",
        "port": svc.port,
        # Without a targetPort the pods listen on the Service's own port number.
        "targetPort": svc.target_port if svc.target_port is not None else svc.port,
    }
    if svc.app_protocol:
        main["appProtocol"] = svc.app_protocol
    ports = [main]
    if svc.port_discovery:
        discovered = discovered_ports(canary, workload)
        for port_name, number in sorted(discovered.items(), key=lambda item: (item[1], item[0])):
            ports.append({"name": port_name, "protocol": "TCP", "port": number, "targetPort": number})
    spec: Json = {"type": "ClusterIP", "selector": selector, "ports": ports}
    if svc.headless:
        spec["clusterIP"] = "None"
    if svc.traffic_distribution:
        spec["trafficDistribution"] = svc.traffic_distribution
    return spec


def discovered_ports(canary: Canary, workload: Mapping[str, Any]) -> dict[str, int]:
    """``spec.service.portDiscovery``: the application containers' ports, by name, other than the one the
    Service already exposes (its ``targetPort``, by number or name, else its ``port``).

    Unnamed ports are called ``tcp-<container>-<index>``; a name used twice keeps the last port, as in Flagger.
    """
    svc = canary.spec.service
    template = workload.get("spec", {}).get("template") or {}
    found: dict[str, int] = {}
    for container in (template.get("spec") or {}).get("containers") or []:
        if container.get("name") in SIDECARS:
            continue
        for index, port in enumerate(container.get("ports") or []):
            number = port.get("containerPort")
            if not isinstance(number, int) or _exposed(svc.port, svc.target_port, port):
                continue
            found[port.get("name") or f"tcp-{container.get('name')}-{index}"] = number
    return found


def _exposed(service_port: int, target_port: int | str | None, port: Mapping[str, Any]) -> bool:
    if target_port is None:
        return bool(port.get("containerPort") == service_port)
    if isinstance(target_port, int):
        return bool(port.get("containerPort") == target_port)
    return bool(port.get("name") == target_port)
