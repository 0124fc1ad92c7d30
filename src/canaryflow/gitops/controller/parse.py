"""Stored Flux objects as the typed models of :mod:`canaryflow.api.flux`, parsed once per reconcile with the model
of their apiVersion and kind, by the same validation ``canaryflow validate`` runs (so a bad object is told with the
path of what is wrong: ``spec.interval: invalid duration '10'…``).

Every version of a kind is read in one shape: a v1beta2 Kustomization through the documented conversion
:func:`canaryflow.api.flux.kustomize.as_v1`; the other kinds' versions share their spec's base (GitRepository),
or one model (the image kinds), or everything a reconciler reads (Receiver).
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from typing import Any, Final, cast

from canaryflow.api import flux, loader, validate
from canaryflow.api.flux import common, image, kustomize, notification, source
from canaryflow.gitops.controller.objects import Key

#: Flux's own reason where it names one for a refused field.
_REASONS: Final = {
    ("ImageRepository", "spec.image"): common.IMAGE_URL_INVALID,
    ("ImagePolicy", "spec.policy"): common.INVALID_POLICY,
}


class InvalidObject(ValueError):
    """A stored body that is no valid object of the kind it names; ``reason`` is Flux's word for it."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def parse(body: Mapping[str, Any]) -> flux.FluxResource:
    """``body`` as the model of its apiVersion and kind; raises InvalidObject saying where it is wrong."""
    checked = validate.check(loader.Document(source="", line=0, body=dict(body)))
    if checked.problems:
        first = checked.problems[0].path
        reason = _REASONS.get((str(body.get("kind")), first), common.INVALID_SPEC)
        raise InvalidObject(reason, "; ".join(f"{p.path}: {p.message}" if p.path else p.message
                                              for p in checked.problems))  # fmt: skip
    if checked.resource is None or not isinstance(checked.resource, flux.FluxResource):
        raise InvalidObject(common.INVALID_SPEC, f"{body.get('apiVersion')} {body.get('kind')}: not a Flux kind")
    return checked.resource


def generation(body: Mapping[str, Any]) -> int:
    """``metadata.generation`` of a stored body (0 when none), readable even when the rest is not."""
    meta = body.get("metadata")
    return int((meta.get("generation") if isinstance(meta, Mapping) else None) or 0)


def kustomization(body: Mapping[str, Any]) -> kustomize.KustomizationV1:
    """A Kustomization of any accepted version, in the v1 shape."""
    return kustomize.as_v1(cast(kustomize.Kustomization, _of(body, *typing.get_args(kustomize.Kustomization))))


def git_repository(body: Mapping[str, Any]) -> source.GitRepository:
    return cast(source.GitRepository, _of(body, *typing.get_args(source.GitRepository)))


def image_repository(body: Mapping[str, Any]) -> image.ImageRepository:
    return cast(image.ImageRepository, _of(body, image.ImageRepository))


def image_policy(body: Mapping[str, Any]) -> image.ImagePolicy:
    return cast(image.ImagePolicy, _of(body, image.ImagePolicy))


def image_update_automation(body: Mapping[str, Any]) -> image.ImageUpdateAutomation:
    return cast(image.ImageUpdateAutomation, _of(body, image.ImageUpdateAutomation))


def receiver(body: Mapping[str, Any]) -> notification.Receiver:
    return cast(notification.Receiver, _of(body, *typing.get_args(notification.Receiver)))


def _of(body: Mapping[str, Any], *models: type[flux.FluxResource]) -> flux.FluxResource:
    """``body`` parsed, and an object of one of ``models`` (the versions of the kind asked for)."""
    resource = parse(body)
    if not isinstance(resource, models):
        wanted = " or ".join(model.__name__ for model in models)
        raise InvalidObject(common.INVALID_SPEC, f"expected {wanted}, got {resource.api_version} {resource.kind}")
    return resource


def builds_on(resource: flux.FluxResource) -> Key | None:
    """What an object builds on, whose change wakes it: a Kustomization's or an ImageUpdateAutomation's
    ``sourceRef``, an ImagePolicy's ``imageRepositoryRef`` (in the object's namespace unless it names one)."""
    own = resource.metadata.namespace
    if isinstance(resource, kustomize.KustomizationV1 | kustomize.KustomizationV1beta2 | image.ImageUpdateAutomation):
        ref = resource.spec.source_ref
        return Key(ref.kind, ref.namespace or own, ref.name)
    if isinstance(resource, image.ImagePolicy):
        repo = resource.spec.image_repository_ref
        return Key("ImageRepository", repo.namespace or own, repo.name)
    return None
