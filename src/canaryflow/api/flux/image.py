"""Image automation (``image.toolkit.fluxcd.io`` v1 and v1beta2): ImageRepository (which registry to scan),
ImagePolicy (which of its tags is the latest) and ImageUpdateAutomation (where to write it in git).

v1 promoted v1beta2 unchanged (the fields added in v1beta2's last releases, ``digestReflectionPolicy`` and
``interval``, are the same in both), so one model per kind reads either version.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import Field, field_validator, model_validator

from canaryflow.api.base import Model
from canaryflow.api.flux.common import (
    AccessFrom,
    FluxObject,
    Interval,
    LabelSelector,
    Timeout,
    seconds,
)
from canaryflow.api.flux.source import GitRepositoryRef
from canaryflow.api.refs import LocalObjectReference, NamespacedObjectReference

VERSIONS: Final = ("v1", "v1beta2")
DEFAULT_EXCLUSIONS: Final = (r"^.*\.sig$",)
MAX_EXCLUSIONS: Final = 25

ApiVersion = Literal["image.toolkit.fluxcd.io/v1", "image.toolkit.fluxcd.io/v1beta2"]
Order = Literal["asc", "desc"]


class ImageRepositorySpec(Model):
    image: str = Field(min_length=1)
    interval: Interval
    timeout: Timeout | None = None
    secret_ref: LocalObjectReference | None = None
    cert_secret_ref: LocalObjectReference | None = None
    proxy_secret_ref: LocalObjectReference | None = None
    service_account_name: str | None = Field(None, max_length=253)
    provider: Literal["generic", "aws", "azure", "gcp"] = "generic"
    insecure: bool = False
    suspend: bool = False
    access_from: AccessFrom | None = None
    exclusion_list: list[str] | None = Field(None, max_length=MAX_EXCLUSIONS)

    @field_validator("image")
    @classmethod
    def _no_scheme(cls, image: str) -> str:
        if "://" in image:
            raise ValueError(f"invalid image {image!r}: a repository name has no scheme, e.g. ghcr.io/org/app")
        return image

    @property
    def interval_seconds(self) -> float:
        return seconds(self.interval)

    @property
    def timeout_seconds(self) -> float:
        """How long one scan may take: ``timeout``, else the interval."""
        return seconds(self.timeout) if self.timeout else self.interval_seconds

    @property
    def exclusions(self) -> tuple[str, ...]:
        """Regexes of tags never listed: ``exclusionList``, else Flux's default (signature tags)."""
        return tuple(self.exclusion_list) if self.exclusion_list is not None else DEFAULT_EXCLUSIONS


class ImageRepository(FluxObject):
    api_version: ApiVersion = "image.toolkit.fluxcd.io/v1"
    kind: Literal["ImageRepository"] = "ImageRepository"
    spec: ImageRepositorySpec


class SemVerPolicy(Model):
    range: str = Field(min_length=1)


class OrderPolicy(Model):
    order: Order = "asc"


class ImagePolicyChoice(Model):
    """Exactly one way of ordering tags."""

    semver: SemVerPolicy | None = None
    alphabetical: OrderPolicy | None = None
    numerical: OrderPolicy | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ImagePolicyChoice:
        given = [name for name in ("semver", "alphabetical", "numerical") if getattr(self, name) is not None]
        if len(given) != 1:
            what = "none is" if not given else " and ".join(given) + " are"
            raise ValueError(f"set exactly one of semver, alphabetical, numerical ({what} set)")
        return self

    @property
    def chosen(self) -> tuple[Literal["semver", "alphabetical", "numerical"], str]:
        """The policy as (kind, argument): ``("semver", ">=1.0.0")`` or ``("numerical", "asc")``."""
        if self.semver is not None:
            return "semver", self.semver.range
        if self.alphabetical is not None:
            return "alphabetical", self.alphabetical.order
        assert self.numerical is not None  # exactly one is set (checked above)
        return "numerical", self.numerical.order


class TagFilter(Model):
    pattern: str | None = None
    extract: str | None = None


class ImagePolicySpec(Model):
    image_repository_ref: NamespacedObjectReference
    policy: ImagePolicyChoice
    filter_tags: TagFilter | None = None
    digest_reflection_policy: Literal["Always", "IfNotPresent", "Never"] = "Never"
    interval: Interval | None = None
    suspend: bool = False

    @model_validator(mode="after")
    def _interval_only_when_reflecting(self) -> ImagePolicySpec:
        always = self.digest_reflection_policy == "Always"
        if self.interval is not None and not always:
            raise ValueError("interval is only accepted when digestReflectionPolicy is Always")
        if self.interval is None and always:
            raise ValueError("interval must be set when digestReflectionPolicy is Always")
        return self


class ImagePolicy(FluxObject):
    api_version: ApiVersion = "image.toolkit.fluxcd.io/v1"
    kind: Literal["ImagePolicy"] = "ImagePolicy"
    spec: ImagePolicySpec

    @property
    def repository_key(self) -> str:
        """``namespace/name`` of the ImageRepository whose tags this policy orders."""
        return self.ref_key(self.spec.image_repository_ref)

    @property
    def marker(self) -> str:
        """``namespace:name``, as setter markers write it: ``# {"$imagepolicy": "flux-system:backend"}``."""
        return f"{self.metadata.namespace}:{self.metadata.name}"


class GitRepositorySourceRef(Model):
    api_version: str | None = None
    kind: Literal["GitRepository"] = "GitRepository"
    name: str = Field(min_length=1)
    namespace: str | None = None


class GitCheckout(Model):
    ref: GitRepositoryRef


class CommitUser(Model):
    email: str = Field(min_length=1)
    name: str | None = None


class SigningKey(Model):
    secret_ref: LocalObjectReference
    type: Literal["gpg", "ssh"] | None = None


class CommitSpec(Model):
    author: CommitUser
    message_template: str | None = None
    message_template_values: dict[str, str] | None = None
    signing_key: SigningKey | None = None


class PushSpec(Model):
    branch: str | None = None
    refspec: str | None = None
    options: dict[str, str] | None = None


class GitSpec(Model):
    checkout: GitCheckout | None = None
    commit: CommitSpec
    push: PushSpec | None = None


class UpdateStrategy(Model):
    strategy: Literal["Setters"] = "Setters"
    path: str | None = None


class ImageUpdateAutomationSpec(Model):
    source_ref: GitRepositorySourceRef
    interval: Interval
    git: GitSpec | None = None
    update: UpdateStrategy | None = None
    policy_selector: LabelSelector | None = None
    suspend: bool = False

    @property
    def interval_seconds(self) -> float:
        return seconds(self.interval)

    @property
    def update_path(self) -> str:
        """The directory whose files are searched for setter markers (default: the whole checkout)."""
        return self.update.path if self.update and self.update.path else "./"


class ImageUpdateAutomation(FluxObject):
    api_version: ApiVersion = "image.toolkit.fluxcd.io/v1"
    kind: Literal["ImageUpdateAutomation"] = "ImageUpdateAutomation"
    spec: ImageUpdateAutomationSpec

    @property
    def source_key(self) -> str:
        """``namespace/name`` of the GitRepository it commits to."""
        return self.ref_key(self.spec.source_ref)

    @property
    def checkout_branch(self) -> str | None:
        """The branch to check out, when ``git.checkout`` names one (else the GitRepository's ref is used)."""
        git = self.spec.git
        return git.checkout.ref.branch if git and git.checkout else None

    @property
    def push_branch(self) -> str | None:
        """Where commits are pushed; None: to the checked-out branch."""
        git = self.spec.git
        return git.push.branch if git and git.push else None
