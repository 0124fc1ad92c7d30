"""What a git source is: the spec it is given, the artifact it returns, and the one-method Protocol.

A source turns "this URL at this reference" into an immutable directory on disk (an :class:`Artifact`), the way
Flux's source-controller turns a ``GitRepository`` into a tarball. Everything downstream (kustomize builds, the
image automation's checkout) reads only the artifact's directory, never the repository.

This module does no I/O; it is the contract shared by :mod:`.git` (the git CLI) and :mod:`.memory` (tests).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

#: Secret keys Flux reads for a GitRepository, mapped to the GitAuth field that holds them.
_TEXT_KEYS = {"username": "username", "password": "password", "bearerToken": "bearer_token"}
_BYTES_KEYS = {"identity": "identity", "known_hosts": "known_hosts", "ca.crt": "ca", "caFile": "ca"}
#: Keys Flux understands that canaryflow does not: refusing them beats failing later with a confusing TLS error.
_UNSUPPORTED_KEYS = {
    "tls.crt": "client certificates (mTLS) are not supported",
    "tls.key": "client certificates (mTLS) are not supported",
    "certFile": "client certificates (mTLS) are not supported",
    "keyFile": "client certificates (mTLS) are not supported",
    "password_protected_identity": "passphrase-protected SSH keys are not supported",
}


class SourceError(Exception):
    """A fetch or push failed. The message is shown to users (status, events, logs): it never holds credentials."""


@dataclasses.dataclass(frozen=True)
class GitAuth:
    """Credentials from a GitRepository's ``secretRef``. Secret fields are left out of ``repr``/``str``.

    Values are the decoded secret values (what ``kubectl get secret -o jsonpath`` shows after base64 -d).
    """

    username: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)
    bearer_token: str | None = dataclasses.field(default=None, repr=False)
    identity: bytes | None = dataclasses.field(default=None, repr=False)
    known_hosts: bytes | None = None
    ca: bytes | None = None

    @classmethod
    def from_secret(cls, data: Mapping[str, str | bytes]) -> GitAuth:
        """Read the keys Flux reads (``username``/``password``, ``bearerToken``, ``identity``/``known_hosts``,
        ``ca.crt``); keys Flux does not read are ignored, keys it reads but canaryflow cannot honour are errors."""
        text: dict[str, str] = {}
        raw: dict[str, bytes] = {}
        for key, value in data.items():
            if key in _UNSUPPORTED_KEYS:
                raise SourceError(f"secret key {key!r}: {_UNSUPPORTED_KEYS[key]}")
            if key in _TEXT_KEYS:
                text[_TEXT_KEYS[key]] = value.decode() if isinstance(value, bytes) else value
            elif key in _BYTES_KEYS:
                raw[_BYTES_KEYS[key]] = value.encode() if isinstance(value, str) else value
        auth = cls(
            username=text.get("username"),
            password=text.get("password"),
            bearer_token=text.get("bearer_token"),
            identity=raw.get("identity"),
            known_hosts=raw.get("known_hosts"),
            ca=raw.get("ca"),
        )
        auth.validate()
        return auth

    def validate(self) -> None:
        """Reject combinations git could only fail on later, with a message naming the secret keys."""
        if self.password is not None and self.username is None:
            raise SourceError("secret has 'password' but no 'username' (basic auth needs both)")
        if self.bearer_token is not None and self.username is not None:
            raise SourceError("secret has both 'bearerToken' and 'username': choose basic or bearer auth")
        if self.identity is not None and self.known_hosts is None:
            raise SourceError("secret has 'identity' but no 'known_hosts' (host keys are always verified)")

    def secrets(self) -> list[str]:
        """Every secret value as text, longest first, so error messages can be scrubbed of them."""
        values = [self.password, self.bearer_token, self.identity.decode(errors="replace") if self.identity else None]
        found = [v.strip() for v in values if v and v.strip()]
        return sorted(found, key=len, reverse=True)


@dataclasses.dataclass(frozen=True)
class GitRef:
    """Which commit to fetch. Flux's precedence: ``commit`` > ``name`` > ``semver`` > ``tag`` > ``branch``;
    ``commit`` combined with ``branch`` checks the commit out of that branch. Nothing set means branch ``master``."""

    branch: str | None = None
    tag: str | None = None
    semver: str | None = None
    name: str | None = None
    commit: str | None = None

    def validate(self) -> None:
        """Refuse values git would misread (an option-like ``-x``) or reject later with a vaguer message."""
        if self.commit is not None and not _SHA.fullmatch(self.commit):
            raise SourceError(f"spec.ref.commit {self.commit!r}: not a commit sha (4 to 40 hex digits)")
        for field in ("branch", "tag", "name"):
            value = getattr(self, field)
            if value is not None and (not value or value.startswith("-") or _BAD_REF.search(value)):
                raise SourceError(f"spec.ref.{field} {value!r}: not a valid git reference name")


_SHA = re.compile(r"[0-9a-fA-F]{4,40}")
_BAD_REF = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//|^/|/$|\.lock$|\.$")

DEFAULT_BRANCH = "master"


@dataclasses.dataclass(frozen=True)
class GitSpec:
    url: str
    ref: GitRef = GitRef()
    ignore: str | None = None  # .gitignore syntax; when set, replaces Flux's default exclusions (see .ignore)
    timeout: float = 60.0  # seconds, per git operation
    auth: GitAuth | None = None


@dataclasses.dataclass(frozen=True)
class Artifact:
    url: str
    revision: str  # "main@sha1:<sha>" | "v1.2.3@sha1:<sha>" | "sha1:<sha>" (as Flux reports it)
    path: Path  # the tree with ignore rules applied, no .git; never modified afterwards
    digest: str  # "sha256:<hex>" over the sorted relative paths and contents

    @property
    def sha(self) -> str:
        """The commit sha, the part after ``sha1:``."""
        return self.revision.rpartition("sha1:")[2]


class Source(Protocol):
    async def fetch(self, key: str, spec: GitSpec) -> Artifact:
        """Fetch ``spec`` for the object ``key`` ("ns/name"); the same revision gives back the same Artifact."""
        ...


def revision(label: str | None, sha: str) -> str:
    """Flux's revision string: ``<label>@sha1:<sha>``, or ``sha1:<sha>`` for a commit fetched on its own."""
    return f"{label}@sha1:{sha}" if label else f"sha1:{sha}"
