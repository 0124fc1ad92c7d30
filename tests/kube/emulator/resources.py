"""The resources the emulator serves: kmock's bundled built-ins plus the CRDs canaryflow meets.

Each entry matches what ``kubectl api-resources`` shows on a cluster with Flagger, Istio, Flux and kopf's peering
CRDs installed: kind, plural, scope and subresources. A resource with a ``status`` subresource gets the split the
API server makes (kubernetes.io, "API concepts", Subresources; "Custom resources", Status subresource).
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import importlib.resources
import re

import kmock

# (group, versions (preferred first), plural, kind, namespaced, subresources)
CRDS: list[tuple[str, tuple[str, ...], str, str, bool, tuple[str, ...]]] = [
    ("flagger.app", ("v1beta1",), "canaries", "Canary", True, ("status",)),
    ("flagger.app", ("v1beta1",), "metrictemplates", "MetricTemplate", True, ("status",)),
    ("flagger.app", ("v1beta1",), "alertproviders", "AlertProvider", True, ("status",)),
    ("networking.istio.io", ("v1", "v1beta1"), "virtualservices", "VirtualService", True, ("status",)),
    ("networking.istio.io", ("v1", "v1beta1"), "destinationrules", "DestinationRule", True, ("status",)),
    ("networking.istio.io", ("v1", "v1beta1"), "gateways", "Gateway", True, ("status",)),
    ("source.toolkit.fluxcd.io", ("v1", "v1beta2"), "gitrepositories", "GitRepository", True, ("status",)),
    ("kustomize.toolkit.fluxcd.io", ("v1", "v1beta2"), "kustomizations", "Kustomization", True, ("status",)),
    ("image.toolkit.fluxcd.io", ("v1", "v1beta2"), "imagerepositories", "ImageRepository", True, ("status",)),
    ("image.toolkit.fluxcd.io", ("v1", "v1beta2"), "imagepolicies", "ImagePolicy", True, ("status",)),
    (
        "image.toolkit.fluxcd.io",
        ("v1", "v1beta2"),
        "imageupdateautomations",
        "ImageUpdateAutomation",
        True,
        ("status",),
    ),
    ("notification.toolkit.fluxcd.io", ("v1", "v1beta2"), "receivers", "Receiver", True, ("status",)),
    ("kopf.dev", ("v1",), "kopfpeerings", "KopfPeering", True, ()),
    ("kopf.dev", ("v1",), "clusterkopfpeerings", "ClusterKopfPeering", False, ()),
]
ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
SUBRESOURCE_VERBS = ("get", "patch", "update")

_VERSION = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple[int, int, int]:
    """Kubernetes version ordering: GA > beta > alpha, then by number (v1 > v1beta2 > v1beta1 > v1alpha1)."""
    match = _VERSION.match(version)
    if not match:
        return (-1, 0, 0)
    stage = {"alpha": 0, "beta": 1, None: 2}[match.group(2)]
    return (stage, int(match.group(1)), int(match.group(3) or 0))


@dataclasses.dataclass(frozen=True, slots=True)
class Resource:
    """One served resource (of one version); objects are stored per (group, plural), shared across versions."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    subresources: frozenset[str]
    builtin: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """``deployments.apps``: how the API server names a resource in its messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources


@functools.cache
def _bundled() -> dict[tuple[str, str, str], kmock.ResourceInfo]:
    """kmock's bundled discovery data (a recent K3s), read once per process."""
    array = kmock.ResourcesArray()
    data = importlib.resources.files("kmock._internal").joinpath("resources.json.gz").read_bytes()
    array.load_data(gzip.decompress(data))
    return {(str(r.group), str(r.version), str(r.plural)): array[r] for r in array}


def register_all(resources: kmock.ResourcesArray) -> None:
    """Load the built-ins and the CRDs into a kmock resource array (what its discovery and ours read)."""
    for (group, version, plural), info in _bundled().items():
        resources[kmock.resource(group, version, plural)] = kmock.ResourceInfo(
            namespaced=info.namespaced,
            kind=info.kind,
            singular=info.singular,
            verbs=set(info.verbs),
            shortnames=set(info.shortnames),
            categories=set(info.categories),
            subresources=set(info.subresources),
        )
    for group, versions, plural, kind, namespaced, subresources in CRDS:
        for version in versions:
            resources[kmock.resource(group, version, plural)] = kmock.ResourceInfo(
                namespaced=namespaced,
                kind=kind,
                singular=kind.lower(),
                verbs=set(ALL_VERBS),
                subresources=set(subresources),
            )


def builtin_groups() -> frozenset[str]:
    return frozenset(group for group, _, _ in _bundled())


def resolve(resources: kmock.ResourcesArray, group: str, version: str, plural: str) -> Resource | None:
    key = kmock.resource(group, version, plural)
    if key not in resources:
        return None
    info = resources[key]
    return Resource(
        group=group,
        version=version,
        plural=plural,
        kind=info.kind or plural.capitalize(),
        namespaced=bool(info.namespaced),
        subresources=frozenset(info.subresources),
        builtin=group in builtin_groups(),
    )
