"""From Flux objects (validated bodies, any accepted API version) to what the source, kustomize and image
packages take: plain specs, so those packages do not depend on how an object was stored or which version of
Flux's API it was written in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from canaryflow.api.duration import parse_duration
from canaryflow.gitops.controller.objects import Key
from canaryflow.gitops.kustomize.spec import Image, KustomizationSpec, Patch, SubstituteFrom
from canaryflow.gitops.source.base import GitAuth, GitRef, GitSpec
from canaryflow.gitops.target.base import ObjRef

#: Flux re-checks unready dependencies (and a missing artifact) every 30 s.
DEPENDENCY_RETRY = 30.0


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


def kustomization_spec(key: Key, body: Mapping[str, Any]) -> KustomizationSpec:
    s = spec(body)
    every = interval(body)
    timeout = parse_duration(str(s["timeout"])) if s.get("timeout") else None
    checks = tuple(
        ObjRef(str(c.get("apiVersion", "")), str(c["kind"]), str(c.get("namespace") or ""), str(c["name"]))
        for c in s.get("healthChecks") or []
    )
    return KustomizationSpec(
        namespace=key.namespace,
        name=key.name,
        path=str(s.get("path") or "./"),
        prune=bool(s.get("prune")),
        interval=every,
        timeout=timeout,
        target_namespace=s.get("targetNamespace"),
        substitute=dict((s.get("postBuild") or {}).get("substitute") or {}),
        wait=bool(s.get("wait")),
        health_checks=checks,
        force=bool(s.get("force")),
        substitute_from=tuple(SubstituteFrom(kind, name, optional) for kind, name, optional in substitute_from(body)),
        images=tuple(
            Image(
                str(i["name"]), i.get("newName"), None if i.get("newTag") is None else str(i["newTag"]), i.get("digest")
            )
            for i in s.get("images") or []
        ),
        patches=tuple(Patch(str(p["patch"]), dict(p.get("target") or {})) for p in s.get("patches") or []),
        name_prefix=s.get("namePrefix"),
        name_suffix=s.get("nameSuffix"),
        common_labels=dict((s.get("commonMetadata") or {}).get("labels") or {}),
        common_annotations=dict((s.get("commonMetadata") or {}).get("annotations") or {}),
        depends_on=tuple((str(d.get("namespace") or key.namespace), str(d["name"])) for d in s.get("dependsOn") or []),
    )


def substitute_from(body: Mapping[str, Any]) -> list[tuple[str, str, bool]]:
    """``postBuild.substituteFrom`` as (kind, name, optional), in order: later entries override earlier ones."""
    refs = (spec(body).get("postBuild") or {}).get("substituteFrom") or []
    return [(str(r["kind"]), str(r["name"]), bool(r.get("optional"))) for r in refs]
