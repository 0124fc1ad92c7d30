"""Flux's kinds as strict models: GitRepository, Kustomization, the image automation kinds and the
notification kinds, in the API versions canaryflow accepts (Flux's current ones and the older ones the seed writes).

The models validate what users write (``spec``); ``status`` is left free-form on input, and the shape canaryflow
writes is given by :mod:`canaryflow.api.flux.status`. :data:`MODELS` is what the validator reads, :data:`STATUS`
the status type written for each kind.
"""

from __future__ import annotations

from typing import Final

from canaryflow.api.flux import common, image, kustomize, notification, source, status
from canaryflow.api.flux.common import FluxObject

FluxResource = (
    source.GitRepositoryV1
    | source.GitRepositoryV1beta2
    | kustomize.KustomizationV1
    | kustomize.KustomizationV1beta2
    | image.ImageRepository
    | image.ImagePolicy
    | image.ImageUpdateAutomation
    | notification.ReceiverV1
    | notification.ReceiverV1beta2
    | notification.Provider
    | notification.Alert
)

#: group -> version -> kind -> model.
MODELS: Final[dict[str, dict[str, dict[str, type[FluxResource]]]]] = {
    common.SOURCE_GROUP: {
        "v1": {"GitRepository": source.GitRepositoryV1},
        "v1beta2": {"GitRepository": source.GitRepositoryV1beta2},
    },
    common.KUSTOMIZE_GROUP: {
        "v1": {"Kustomization": kustomize.KustomizationV1},
        "v1beta2": {"Kustomization": kustomize.KustomizationV1beta2},
    },
    common.IMAGE_GROUP: {
        version: {
            "ImageRepository": image.ImageRepository,
            "ImagePolicy": image.ImagePolicy,
            "ImageUpdateAutomation": image.ImageUpdateAutomation,
        }
        for version in image.VERSIONS
    },
    common.NOTIFICATION_GROUP: {
        "v1": {"Receiver": notification.ReceiverV1},
        "v1beta2": {"Receiver": notification.ReceiverV1beta2},
        "v1beta3": {"Provider": notification.Provider, "Alert": notification.Alert},
    },
}

#: Kinds of Flux's groups that canaryflow knows and does not model: validation skips them, in any version.
UNMODELLED: Final[dict[str, tuple[str, ...]]] = {common.SOURCE_GROUP: source.UNMODELLED_KINDS}

#: The status type canaryflow writes for each kind it reconciles.
STATUS: Final[dict[str, type[status.FluxStatus]]] = {
    "GitRepository": status.GitRepositoryStatus,
    "Kustomization": status.KustomizationStatus,
    "ImageRepository": status.ImageRepositoryStatus,
    "ImagePolicy": status.ImagePolicyStatus,
    "ImageUpdateAutomation": status.ImageUpdateAutomationStatus,
    "Receiver": status.ReceiverStatus,
}

#: Flux groups canaryflow does not model at all (the seed's HelmReleases): their documents are skipped.
OTHER_GROUPS: Final = ("helm.toolkit.fluxcd.io",)

__all__ = [
    "MODELS",
    "OTHER_GROUPS",
    "STATUS",
    "UNMODELLED",
    "FluxObject",
    "FluxResource",
    "common",
    "image",
    "kustomize",
    "notification",
    "source",
    "status",
]
