"""ImageRepository scanning: list an image's tags with the OCI distribution API.

``GET /v2/<name>/tags/list`` answers ``{"name": ..., "tags": [...]}``; a registry may page the answer and
point at the next page with a ``Link: <...>; rel="next"`` header (we ask for ``n`` tags per page and follow
the links until there are none). Image names are normalised as Docker does (see ``base``). ``localhost``,
loopback and private-network addresses are spoken to over plain http, as go-containerregistry (which Flux
uses) does; ``insecure=True`` forces http for any host (Flux's ``spec.insecure``). The ImageRepository's
``exclusionList`` is applied by ``exclude`` (or ``list_tags(exclusions=...)``), so a caller that passes its
own list is not second-guessed by the default.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

import httpx

from canaryflow.gitops.image.auth import AuthenticationFailed, TokenAuth
from canaryflow.gitops.image.base import ImageName, RegistryAuth, RegistryError, parse_image

__all__ = [
    "DEFAULT_EXCLUSIONS",
    "ImageName",
    "OciRegistry",
    "RegistryAuth",
    "RegistryError",
    "exclude",
    "list_tags",
    "parse_image",
]

DEFAULT_EXCLUSIONS = (r"^.*\.sig$",)
"""ImageRepository's default ``exclusionList``: cosign signature tags."""

_PAGE = 1000
_MAX_PAGES = 10_000


def _plain_http(host: str) -> bool:
    # strip the port: "[v6-address]:port", "host:port"; a bare v6 address has several colons
    name = (
        host[1 : host.find("]")] if host.startswith("[") else host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    )
    if name == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_private


def exclude(tags: Iterable[str], patterns: Iterable[str] = DEFAULT_EXCLUSIONS) -> list[str]:
    """Tags that match none of ``patterns`` (an ImageRepository's ``exclusionList``)."""
    try:
        compiled = [re.compile(p) for p in patterns]
    except re.error as e:
        raise RegistryError(f"spec.exclusionList: invalid regular expression: {e}") from None
    return [t for t in tags if not any(c.search(t) for c in compiled)]


def _next_link(response: httpx.Response) -> httpx.URL | None:
    for part in response.headers.get_list("Link", split_commas=True):
        m = re.match(r"\s*<([^>]*)>\s*;(.*)$", part)
        if m and re.search(r'rel\s*=\s*"?next"?', m.group(2)):
            return response.url.join(m.group(1))
    return None


def _registry_message(response: httpx.Response) -> str:
    try:
        errors = response.json().get("errors") or []
        messages = [f"{e.get('code', '')}: {e.get('message', '')}".strip(": ") for e in errors]
    except (ValueError, AttributeError):
        messages = []
    return "; ".join(m for m in messages if m) or response.reason_phrase


class OciRegistry:
    """The ``Registry`` of real registries (``transport`` replaces the network: a proxy, a test's transport)."""

    def __init__(self, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.transport = transport

    async def list_tags(self, image: str, *, auth: RegistryAuth | None = None, insecure: bool = False) -> list[str]:
        return await list_tags(image, auth=auth, insecure=insecure, transport=self.transport)


async def list_tags(
    image: str,
    *,
    auth: RegistryAuth | None = None,
    insecure: bool = False,
    transport: httpx.AsyncBaseTransport | None = None,
    exclusions: Iterable[str] = (),
    page_size: int = _PAGE,
    timeout: float = 30.0,
) -> list[str]:
    """All tags of ``image`` in the registry's order, minus those matching ``exclusions``.

    Raises RegistryError for an invalid name, an unreachable registry, refused credentials
    ("authentication failed for ..."), an unknown repository or an unexpected answer.
    """
    name = parse_image(image)
    scheme = "http" if insecure or _plain_http(name.api_host) else "https"
    url: httpx.URL | None = httpx.URL(
        f"{scheme}://{name.api_host}/v2/{name.repository}/tags/list", params={"n": page_size}
    )
    flow = TokenAuth(auth, scope=f"repository:{name.repository}:pull")
    tags: list[str] = []
    seen: set[str] = set()
    async with httpx.AsyncClient(transport=transport, timeout=timeout, auth=flow, follow_redirects=True) as client:
        while url is not None:
            if str(url) in seen or len(seen) >= _MAX_PAGES:
                raise RegistryError(f"scanning {name}: the registry's pagination does not end")
            seen.add(str(url))
            try:
                response = await client.get(url)
            except AuthenticationFailed as e:
                raise RegistryError(f"authentication failed for {name}: {e}") from None
            except httpx.HTTPError as e:
                raise RegistryError(f"scanning {name}: cannot reach {scheme}://{name.api_host}: {e}") from None
            if response.status_code in (401, 403):
                raise RegistryError(f"authentication failed for {name}: HTTP {response.status_code}")
            if response.status_code == 404:
                raise RegistryError(f"scanning {name}: repository not found ({_registry_message(response)})")
            if response.status_code != 200:
                raise RegistryError(
                    f"scanning {name}: HTTP {response.status_code} from the registry ({_registry_message(response)})"
                )
            try:
                page = response.json().get("tags")
            except (ValueError, AttributeError):
                page = "invalid"
            if page is not None and not (isinstance(page, list) and all(isinstance(t, str) for t in page)):
                raise RegistryError(f"scanning {name}: the registry's tag list is not a JSON list of strings")
            tags.extend(page or [])
            url = _next_link(response)
    return exclude(tags, exclusions)
