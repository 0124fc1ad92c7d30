"""Builders for the rendering tests: a Canary, its target Deployment, and a render that validates all it returns."""

from __future__ import annotations

import copy
from typing import Any

import yaml

from canaryflow.api.status import Phase
from canaryflow.kube.render import render
from tests.kube import schemas

Json = dict[str, Any]


def canary_doc(service: str = "", analysis: str = "stepWeight: 10", **spec: Any) -> Json:
    """``prod/backend`` targeting Deployment ``backend`` on port 9898; ``service`` and ``analysis`` add YAML."""
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "backend", "namespace": "prod"},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "backend"},
            "service": {"port": 9898, **(yaml.safe_load(service) or {})},
            "analysis": {"interval": "30s", **(yaml.safe_load(analysis) or {})},
            **spec,
        },
    }


def deployment_doc(
    match_labels: dict[str, str] | None = None, pod_spec: Json | None = None, kind: str = "Deployment"
) -> Json:
    """Deployment (or DaemonSet) ``prod/backend`` running podinfo, selected by ``app: backend`` by default."""
    labels = {"app": "backend"} if match_labels is None else match_labels
    spec: Json = {
        "selector": {"matchLabels": dict(labels)},
        "template": {
            "metadata": {"labels": {**labels, "version": "1"}},
            "spec": pod_spec
            or {"containers": [{"name": "backend", "image": "podinfo:6", "ports": [{"containerPort": 9898}]}]},
        },
    }
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": "backend", "namespace": "prod"}, "spec": spec}


def rendered(*documents: Json, weight: int = 0, phase: Phase | None = None) -> list[Json]:
    """The objects rendered for ``documents``, each validated against the API server's schema."""
    rendering = render.render([copy.deepcopy(d) for d in documents], weight, phase)
    for obj in rendering.objects:
        schemas.validate(obj)
    return rendering.objects


def find(objects: list[Json], kind: str, name: str) -> Json:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} rendered"
    return matches[0]


def http_routes(objects: list[Json], name: str = "backend") -> list[Json]:
    routes: list[Json] = find(objects, "VirtualService", name)["spec"]["http"]
    return routes


def weights(route: Json) -> dict[str, int]:
    return {d["destination"]["host"]: d["weight"] for d in route["route"]}
