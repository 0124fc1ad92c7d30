"""The status canaryflow writes on Flux objects, shaped as Flux's controllers write it, so ``flux get``,
``kubectl wait --for=condition=Ready`` and dashboards built for Flux read it unchanged.

Every GitOps reconciler builds one of these and hands it to its ``FluxObjects`` store, which serialises it once,
with ``to_dict()`` (camelCase, unset fields left out), into the local store or the status subresource. Each type
holds only what the kind's Flux CRD declares (``tests/api/test_flux_crd_paths.py`` holds them to the CRDs): a
field the CRD lacks would be pruned by the API server. Status read back is free-form (``FluxObject.status``,
anything may have written it); :func:`read` takes from it what a reconcile carries over, as the typed model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import Field, ValidationError

from canaryflow.api.base import Model
from canaryflow.api.flux.common import READY, Condition, conditions_of
from canaryflow.api.refs import LocalObjectReference


class FluxStatus(Model):
    """What every Flux status has: the generation it reflects, conditions, and the last handled
    ``reconcile.fluxcd.io/requestedAt`` value (so ``flux reconcile`` knows its request was seen)."""

    observed_generation: int | None = None
    conditions: list[Condition] | None = None
    last_handled_reconcile_at: str | None = None

    def condition(self, type_: str) -> Condition | None:
        return next((c for c in self.conditions or () if c.type == type_), None)

    @property
    def ready(self) -> bool:
        """Whether it says ``Ready=True`` (of whichever generation)."""
        found = self.condition(READY)
        return found is not None and found.status == "True"


class Artifact(Model):
    """A fetched revision: ``revision`` as Flux reports it (``main@sha1:<sha>``), ``digest`` ``sha256:<hex>``."""

    path: str
    url: str
    revision: str
    digest: str = Field(pattern=r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
    last_update_time: str
    size: int | None = None
    metadata: dict[str, str] | None = None


class IncludedRepository(Model):
    repository: LocalObjectReference
    from_path: str | None = None
    to_path: str | None = None


class GitRepositoryStatus(FluxStatus):
    artifact: Artifact | None = None
    included_artifacts: list[Artifact] | None = None
    observed_ignore: str | None = None
    observed_recurse_submodules: bool | None = None
    observed_include: list[IncludedRepository] | None = None
    observed_sparse_checkout: list[str] | None = None
    source_verification_mode: str | None = None


class InventoryEntry(Model):
    """One applied object: ``id`` is ``<namespace>_<name>_<group>_<kind>``, ``v`` its API version."""

    id: str
    v: str


class ResourceInventory(Model):
    entries: list[InventoryEntry]


class KustomizationStatus(FluxStatus):
    last_applied_revision: str | None = None
    last_applied_origin_revision: str | None = None
    last_attempted_revision: str | None = None
    inventory: ResourceInventory | None = None


class ScanResult(Model):
    tag_count: int = Field(ge=0)
    scan_time: str | None = None
    latest_tags: list[str] | None = None
    revision: str | None = None


class ImageRepositoryStatus(FluxStatus):
    canonical_image_name: str | None = None
    last_scan_result: ScanResult | None = None
    observed_exclusion_list: list[str] | None = None


class ImageRef(Model):
    """An image as a policy chose it; ``name`` without the tag; ``str()`` is the image as a setter writes it."""

    name: str
    tag: str
    digest: str | None = None

    def __str__(self) -> str:
        return f"{self.name}:{self.tag}" + (f"@{self.digest}" if self.digest else "")


class ImagePolicyStatus(FluxStatus):
    latest_ref: ImageRef | None = None
    observed_previous_ref: ImageRef | None = None


class ImageUpdateAutomationStatus(FluxStatus):
    last_automation_run_time: str | None = None
    last_push_commit: str | None = None
    last_push_time: str | None = None
    observed_policies: dict[str, ImageRef] | None = None
    observed_source_revision: str | None = None


class ReceiverStatus(FluxStatus):
    webhook_path: str | None = None


S = TypeVar("S", bound=FluxStatus)


def read(model: type[S], stored: Mapping[str, Any] | None) -> S:
    """A status read back from storage as ``model``, to carry over what a reconcile keeps (the inventory, an
    artifact's time): as Flux's controllers decode it into their types, a field ``model`` does not declare, or
    whose value does not fit it (written by hand, by an older version), is left out, and so are ill-formed
    conditions (:func:`~canaryflow.api.flux.common.conditions_of`)."""
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        alias = info.alias or name
        if not stored or alias not in stored or stored[alias] is None:
            continue
        if name == "conditions":
            fields[name] = conditions_of(stored)
            continue
        try:
            fields[name] = getattr(model.model_validate({alias: stored[alias]}, by_alias=True, by_name=False), name)
        except ValidationError:
            continue
    return model(**fields)
