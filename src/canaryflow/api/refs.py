"""Object references as Flagger's and Flux's CRDs both declare them (the same two shapes in both): ``{name}`` for
an object in the referrer's namespace, ``{name, namespace}`` for one whose namespace defaults to the referrer's."""

from __future__ import annotations

from pydantic import Field

from canaryflow.api.base import Model


class LocalObjectReference(Model):
    """An object in the referrer's namespace (usually a Secret)."""

    name: str = Field(min_length=1)


class NamespacedObjectReference(Model):
    """An object of a known kind; the namespace defaults to the referrer's. Flagger's ``templateRef`` and
    ``providerRef`` (its ``CrossNamespaceObjectReference``), Flux's ``dependsOn`` and ``imageRepositoryRef``."""

    name: str = Field(min_length=1)
    namespace: str | None = None
