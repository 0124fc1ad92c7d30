"""The Registry seam (list an image's tags), and what an ImageRepository's ``image`` and ``secretRef`` mean.

``Registry`` is implemented over the OCI distribution API (``registry.OciRegistry``) and in memory
(``memory.MemoryRegistry``).

Names are normalised as Docker normalises references, so ``podinfo`` is ``docker.io/library/podinfo``,
served by ``registry-1.docker.io``. Credentials come from a ``kubernetes.io/dockerconfigjson`` Secret (the
kind Flux's ``secretRef`` names) and never appear in a repr, a log line or an error message.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
from collections.abc import Mapping
from typing import Protocol

__all__ = ["DOCKER_HUB", "ImageName", "Registry", "RegistryAuth", "RegistryError", "parse_image"]

DOCKER_HUB = "docker.io"
_DOCKER_HUB_API = "registry-1.docker.io"
_DOCKER_HUB_ALIASES = frozenset({DOCKER_HUB, "index.docker.io", _DOCKER_HUB_API})


class RegistryError(Exception):
    """A name, secret or scan that failed; the message names the image and the reason, never a credential."""


class Registry(Protocol):
    async def list_tags(self, image: str, *, auth: RegistryAuth | None = None, insecure: bool = False) -> list[str]:
        """Every tag of ``image`` in the registry's order. RegistryError for an invalid name, an unreachable
        registry, refused credentials, an unknown repository or an unexpected answer."""
        ...


@dataclasses.dataclass(frozen=True)
class ImageName:
    """A normalised repository reference: ``registry`` (as users write it) and ``repository`` path."""

    registry: str
    repository: str

    @property
    def api_host(self) -> str:
        """The host that serves the API (Docker Hub's API is not at ``docker.io``)."""
        return _DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    def __str__(self) -> str:
        return f"{self.registry}/{self.repository}"


_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$")


def parse_image(image: str) -> ImageName:
    """Normalise ``image`` (no scheme, tag or digest) as Docker does; RegistryError says what is wrong."""
    text = image.strip()
    if not text or "://" in text:
        raise RegistryError(f"invalid image {image!r}: expected a repository such as ghcr.io/org/app (no scheme)")
    if "@" in text:
        raise RegistryError(f"invalid image {image!r}: a repository may not carry a digest")
    first, sep, rest = text.partition("/")
    # Docker's rule: the first component is a registry when it looks like a host (has "." or ":", is
    # "localhost", or has upper case letters, which repository paths cannot have).
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        registry, path = first, rest
    else:
        registry, path = DOCKER_HUB, text
    if registry in _DOCKER_HUB_ALIASES:
        registry = DOCKER_HUB
    if ":" in path:
        raise RegistryError(f"invalid image {image!r}: a repository may not carry a tag (got {path.split(':')[-1]!r})")
    if registry == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    bad = [c for c in path.split("/") if not _COMPONENT.match(c)]
    if bad:
        raise RegistryError(f"invalid image {image!r}: {bad[0]!r} is not a valid repository path component")
    return ImageName(registry, path)


@dataclasses.dataclass(frozen=True)
class RegistryAuth:
    """Credentials for one registry: a username/password pair or a ready-made bearer token."""

    username: str | None = None
    password: str | None = None
    token: str | None = None

    def __repr__(self) -> str:
        kind = "token" if self.token else "basic" if self.username else "anonymous"
        return f"RegistryAuth({kind})"

    __str__ = __repr__

    @property
    def basic(self) -> str | None:
        """The ``Authorization`` value for basic auth, or None without a username."""
        if self.username is None:
            return None
        raw = f"{self.username}:{self.password or ''}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    @classmethod
    def from_secret(cls, data: Mapping[str, str | bytes], image: str) -> RegistryAuth | None:
        """From a Secret's data holding ``.dockerconfigjson``: the entry for ``image``'s registry, or None.

        RegistryError when the Secret has no ``.dockerconfigjson`` or it does not parse.
        """
        raw = data.get(".dockerconfigjson")
        if raw is None:
            raise RegistryError("secret has no '.dockerconfigjson' key (expected type kubernetes.io/dockerconfigjson)")
        return cls.from_docker_config(raw, parse_image(image).registry)

    @classmethod
    def from_docker_config(cls, config: str | bytes | Mapping[str, object], registry: str) -> RegistryAuth | None:
        """The entry for ``registry`` in a ``.dockerconfigjson``, or None when there is none.

        Keys may be bare hosts or URLs (``https://index.docker.io/v1/`` for Docker Hub); ``auth`` is base64
        ``user:password`` and wins over separate ``username``/``password`` fields, as in Docker.
        """
        try:
            data = json.loads(config) if isinstance(config, str | bytes) else config
        except ValueError:
            raise RegistryError(".dockerconfigjson: not valid JSON") from None
        auths = data.get("auths") if isinstance(data, Mapping) else None
        if not isinstance(auths, Mapping):
            raise RegistryError(".dockerconfigjson: missing 'auths' mapping")
        wanted = _DOCKER_HUB_ALIASES if registry in _DOCKER_HUB_ALIASES else {registry}
        for key, entry in auths.items():
            host = re.sub(r"^[a-z]+://", "", str(key)).split("/", 1)[0]
            if host not in wanted or not isinstance(entry, Mapping):
                continue
            if entry.get("registrytoken"):
                return cls(token=str(entry["registrytoken"]))
            if entry.get("auth"):
                try:
                    user, _, password = base64.b64decode(str(entry["auth"]), validate=True).decode().partition(":")
                except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
                    raise RegistryError(f".dockerconfigjson: 'auth' for {host} is not base64 user:password") from None
                return cls(username=user, password=password)
            if entry.get("username"):
                return cls(username=str(entry["username"]), password=str(entry.get("password") or ""))
        return None
