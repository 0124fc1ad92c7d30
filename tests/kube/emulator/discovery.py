"""API discovery documents, shaped as the API server serves them (kubernetes.io, "API concepts", Discovery API).

``/api`` lists the core versions; ``/apis`` every group with its versions and the preferred one (the highest by
Kubernetes version priority); ``/api/v1`` and ``/apis/<g>/<v>`` list each resource with its kind, plural name,
scope and verbs, and each subresource as ``<plural>/<sub>``. kopf and ``KubeApi.discover`` read these.
"""

from __future__ import annotations

from typing import Any

import kmock

from tests.kube.emulator.resources import SUBRESOURCE_VERBS, version_priority

Json = dict[str, Any]


def _served(resources: kmock.ResourcesArray) -> dict[str, set[str]]:
    groups: dict[str, set[str]] = {}
    for resource in resources:
        groups.setdefault(str(resource.group), set()).add(str(resource.version))
    return groups


def _group_doc(group: str, versions: set[str]) -> Json:
    ordered = sorted(versions, key=version_priority, reverse=True)
    entries = [{"groupVersion": f"{group}/{version}", "version": version} for version in ordered]
    return {"name": group, "versions": entries, "preferredVersion": entries[0]}


def api_versions(host: str) -> Json:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}],
    }


def group_list(resources: kmock.ResourcesArray) -> Json:
    groups = _served(resources)
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group_doc(group, versions) for group, versions in sorted(groups.items()) if group],
    }


def group(resources: kmock.ResourcesArray, name: str) -> Json | None:
    versions = _served(resources).get(name)
    if not name or not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group_doc(name, versions)}


def resource_list(resources: kmock.ResourcesArray, group: str, version: str) -> Json | None:
    entries: list[Json] = []
    for resource in sorted(resources, key=lambda r: str(r.plural)):
        if resource.group != group or resource.version != version:
            continue
        info = resources[resource]
        common = {"namespaced": bool(info.namespaced), "kind": info.kind}
        entry: Json = {
            "name": resource.plural,
            "singularName": info.singular or "",
            **common,
            "verbs": sorted(info.verbs),
        }
        if info.shortnames:
            entry["shortNames"] = sorted(info.shortnames)
        if info.categories:
            entry["categories"] = sorted(info.categories)
        entries.append(entry)
        for sub in sorted(info.subresources):
            entries.append(
                {"name": f"{resource.plural}/{sub}", "singularName": "", **common, "verbs": list(SUBRESOURCE_VERBS)}
            )
    if not entries:
        return None
    group_version = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": entries}
