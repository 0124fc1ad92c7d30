"""The ``-primary`` copies of tracked ConfigMaps and Secrets, and the primary's pod template reading them.

Which configs are tracked, and their checksums, is ``workloads/revision.py`` (shared with the local runtime);
its names are re-exported here for the renderers. ConfigMap ``binaryData`` is copied as well (Flagger drops it,
breaking pods that read it) but, as in Flagger, not summed.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from canaryflow.api.canary import Canary
from canaryflow.kube.render import meta
from canaryflow.workloads import revision
from canaryflow.workloads.revision import KINDS, ConfigKind, ConfigRef, Finder, Tracking, checksum, references, slots

__all__ = [
    "KINDS",
    "ConfigKind",
    "ConfigRef",
    "Finder",
    "Tracking",
    "checksum",
    "primary_config",
    "primary_pod_spec",
    "references",
    "track",
]

Json = meta.Json


def track(pod_spec: Mapping[str, Any], find: Finder) -> Tracking:
    """``revision.track``, with unreadable data as a RenderError (the canary's error)."""
    try:
        return revision.track(pod_spec, find)
    except revision.ConfigError as exc:
        raise meta.RenderError(str(exc)) from exc


def primary_pod_spec(pod_spec: Mapping[str, Any], tracked: frozenset[str]) -> Json:
    """A copy of ``pod_spec`` reading the ``-primary`` copy of every tracked config (keys as ConfigRef.key)."""
    spec: Json = copy.deepcopy(dict(pod_spec))
    for kind, holder, field in slots(spec):
        if f"{kind}/{holder[field]}" in tracked:
            holder[field] = f"{holder[field]}-primary"
    return spec


def primary_config(canary: Canary, source: Mapping[str, Any]) -> Json:
    """The ``<name>-primary`` copy of a tracked ConfigMap or Secret, owned by the Canary; labels are not copied
    (Flagger's default ``include-label-prefix`` is empty), nor annotations."""
    kind = str(source.get("kind"))
    name = f"{(source.get('metadata') or {}).get('name')}-primary"
    copied: Json = {"apiVersion": "v1", "kind": kind, "metadata": meta.object_meta(canary, name)}
    if kind == "Secret":
        copied["type"] = source.get("type") or "Opaque"
        data = _secret_data(source)
        if data:
            copied["data"] = data
        return copied
    for field in ("data", "binaryData"):
        if source.get(field):
            copied[field] = dict(source[field])
    return copied


def _secret_data(source: Mapping[str, Any]) -> dict[str, str]:
    try:
        return revision.data_of("secret", source)
    except revision.ConfigError as exc:
        raise meta.RenderError(str(exc)) from exc
