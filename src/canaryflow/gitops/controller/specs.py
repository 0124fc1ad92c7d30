"""From Flux objects (validated bodies, any accepted API version) to what the source, kustomize and image
packages take: plain specs, so those packages do not depend on how an object was stored or which version of
Flux's API it was written in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from canaryflow.api.duration import parse_duration
from canaryflow.gitops.controller.objects import Key
from canaryflow.gitops.source.base import GitAuth, GitRef, GitSpec


def spec(body: Mapping[str, Any]) -> dict[str, Any]:
    value = body.get("spec")
    return value if isinstance(value, dict) else {}


def generation(body: Mapping[str, Any]) -> int:
    return int((body.get("metadata") or {}).get("generation") or 0)


def interval(body: Mapping[str, Any]) -> float:
    return parse_duration(str(spec(body).get("interval", "10m")))


def retry_interval(body: Mapping[str, Any]) -> float:
    value = spec(body).get("retryInterval")
    return parse_duration(str(value)) if value else interval(body)


def suspended(body: Mapping[str, Any]) -> bool:
    return bool(spec(body).get("suspend"))


def ref(body: Mapping[str, Any], field: str, kind: str, key: Key) -> Key:
    """A ``{kind?, name, namespace?}`` reference of ``body`` as a key (namespace defaults to the object's)."""
    target = spec(body).get(field) or {}
    return Key(str(target.get("kind") or kind), str(target.get("namespace") or key.namespace), str(target["name"]))


def git_spec(body: Mapping[str, Any], secret: Mapping[str, str] | None) -> GitSpec:
    s = spec(body)
    r = s.get("ref") or {}
    timeout = parse_duration(str(s["timeout"])) if s.get("timeout") else 60.0
    return GitSpec(
        url=str(s["url"]),
        ref=GitRef(
            branch=r.get("branch"), tag=r.get("tag"), semver=r.get("semver"), name=r.get("name"), commit=r.get("commit")
        ),
        ignore=s.get("ignore"),
        timeout=timeout,
        auth=GitAuth.from_secret(secret) if secret else None,
    )
