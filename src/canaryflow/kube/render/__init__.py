"""Rendering, offline and pure, of every object the Kubernetes operator creates or patches for a Canary.

The objects are named and shaped as Flagger's (``<svc>``, ``<svc>-primary`` and ``<svc>-canary`` Services and
DestinationRules, the ``<svc>`` VirtualService, ``<target>-primary``, ``<config>-primary``, ``<hpa>-primary``),
so dashboards, alert rules and habits carry over. The operator writes these dicts to the API server;
``canaryflow kube render`` prints them for review.

Modules: :mod:`meta` (names, selector label, owner references), :mod:`services`, :mod:`istio`,
:mod:`configs` (ConfigMap/Secret tracking), :mod:`workload` (primary workload and HPA), :mod:`render` (all of
them for a manifest set at a weight and phase: ``render.render(documents, weight, phase)``), :mod:`cli`.

Must not: read a cluster, import kopf or a Kubernetes client, or import canaryflow layers above ``api`` and
``engine``: a render is a function of the manifests alone.
"""

from __future__ import annotations

from canaryflow.kube.render.istio import Cookies, destination_rules, virtual_service
from canaryflow.kube.render.meta import RenderError, ServiceNames, selector_label
from canaryflow.kube.render.render import Rendering, parse_phase, routes_for

__all__ = [
    "Cookies",
    "RenderError",
    "Rendering",
    "ServiceNames",
    "destination_rules",
    "parse_phase",
    "routes_for",
    "selector_label",
    "virtual_service",
]
