"""GitRepository (``source.toolkit.fluxcd.io`` v1, and v1beta2 as the seed writes it).

Both versions share most of the spec; each adds what only it has (v1: ``provider``, ``proxySecretRef``,
``sparseCheckout``...; v1beta2: the deprecated ``gitImplementation`` and ``accessFrom``), so a field of the other
version is an unknown field, as the API server would say. Controllers take :data:`GitRepository` (either).
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import Field, field_validator, model_validator

from canaryflow.api.base import Model
from canaryflow.api.flux.common import (
    AccessFrom,
    FluxObject,
    Interval,
    Timeout,
    seconds,
)
from canaryflow.api.refs import LocalObjectReference

VERSIONS: Final = ("v1", "v1beta2")
DEFAULT_BRANCH: Final = "master"
DEFAULT_TIMEOUT: Final = "60s"
#: The schemes Flux clones from, plus ``file`` and ``git`` (daemon) that canaryflow's local runtime also reads.
URL_SCHEMES: Final = ("http", "https", "ssh", "file", "git")

RefKind = Literal["commit", "name", "semver", "tag", "branch"]


class GitRepositoryRef(Model):
    """Which revision to follow. When several are set, the most precise wins (see :attr:`kind`)."""

    branch: str | None = None
    tag: str | None = None
    semver: str | None = None
    name: str | None = None
    commit: str | None = None

    @property
    def kind(self) -> RefKind:
        """What the source controller checks out: commit > name > semver > tag > branch (default ``master``)."""
        for kind in ("commit", "name", "semver", "tag"):
            if getattr(self, kind):
                return kind
        return "branch"

    @property
    def value(self) -> str:
        """The commit, ref name, range, tag or branch :attr:`kind` says is followed."""
        return getattr(self, self.kind) or DEFAULT_BRANCH

    @property
    def effective_branch(self) -> str:
        """The branch to clone: also used with ``commit`` (a shallow clone of the branch holding it)."""
        return self.branch or DEFAULT_BRANCH


class GitRepositoryInclude(Model):
    repository: LocalObjectReference
    from_path: str | None = None
    to_path: str | None = None

    @property
    def destination(self) -> str:
        return self.to_path or self.repository.name


class VerificationV1(Model):
    mode: Literal["head", "HEAD", "Tag", "TagAndHEAD"] = "HEAD"
    secret_ref: LocalObjectReference


class VerificationV1beta2(Model):
    mode: Literal["head"]
    secret_ref: LocalObjectReference


class GitRepositorySpecBase(Model):
    url: str = Field(min_length=1)
    secret_ref: LocalObjectReference | None = None
    interval: Interval
    timeout: Timeout | None = None
    ref: GitRepositoryRef | None = None
    ignore: str | None = None
    suspend: bool = False
    recurse_submodules: bool = False
    include: list[GitRepositoryInclude] | None = None

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: str) -> str:
        scheme, sep, rest = value.partition("://")
        if not sep or scheme not in URL_SCHEMES or not rest:
            raise ValueError(f"url must start with {', '.join(s + '://' for s in URL_SCHEMES)} (got {value!r})")
        return value

    @property
    def reference(self) -> GitRepositoryRef:
        return self.ref or GitRepositoryRef()

    @property
    def interval_seconds(self) -> float:
        return seconds(self.interval)

    @property
    def timeout_seconds(self) -> float:
        return seconds(self.timeout or DEFAULT_TIMEOUT)


class GitRepositorySpecV1(GitRepositorySpecBase):
    provider: Literal["generic", "aws", "azure", "github"] | None = None
    proxy_secret_ref: LocalObjectReference | None = None
    service_account_name: str | None = None
    sparse_checkout: list[str] | None = None
    verify: VerificationV1 | None = None

    @model_validator(mode="after")
    def _service_account_needs_provider(self) -> GitRepositorySpecV1:
        if self.service_account_name is not None and self.provider not in ("azure", "aws"):
            raise ValueError("serviceAccountName can only be set when provider is 'azure' or 'aws'")
        return self


class GitRepositorySpecV1beta2(GitRepositorySpecBase):
    git_implementation: Literal["go-git", "libgit2"] | None = None
    access_from: AccessFrom | None = None
    verify: VerificationV1beta2 | None = None


class GitRepositoryV1(FluxObject):
    api_version: Literal["source.toolkit.fluxcd.io/v1"] = "source.toolkit.fluxcd.io/v1"
    kind: Literal["GitRepository"] = "GitRepository"
    spec: GitRepositorySpecV1


class GitRepositoryV1beta2(FluxObject):
    api_version: Literal["source.toolkit.fluxcd.io/v1beta2"] = "source.toolkit.fluxcd.io/v1beta2"
    kind: Literal["GitRepository"] = "GitRepository"
    spec: GitRepositorySpecV1beta2


GitRepository = GitRepositoryV1 | GitRepositoryV1beta2
"""A GitRepository of any accepted version (usable with ``isinstance``)."""

#: Kinds of the source group canaryflow knows but does not model: validation skips them (the local runtime
#: provides the seed's HelmRepositories itself).
UNMODELLED_KINDS: Final = ("Bucket", "HelmChart", "HelmRepository", "OCIRepository", "ExternalArtifact")
