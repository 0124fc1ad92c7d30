"""The Docker/OCI registry authentication handshake.

Registries answer an unauthenticated request with ``401`` and a ``WWW-Authenticate`` challenge:
``Basic realm=...`` (send the credentials) or ``Bearer realm=...,service=...,scope=...`` (ask the token
server at ``realm`` for a token for that service and scope — with the credentials if there are any,
anonymously otherwise — and send the request again with ``Authorization: Bearer <token>``). That handshake
is an ``httpx.Auth`` flow here, so every request of a scan (pagination included) goes through it and a
token is fetched once and reused.

No error raised here includes a credential or a token.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Generator, Mapping

import httpx

from canaryflow.gitops.image.base import RegistryAuth

__all__ = ["AuthenticationFailed", "Challenge", "RegistryAuth", "TokenAuth", "parse_challenge"]


class AuthenticationFailed(Exception):
    """The registry or its token server refused the credentials (or their absence)."""


@dataclasses.dataclass(frozen=True)
class Challenge:
    """A parsed ``WWW-Authenticate`` header: scheme (lower case) and its parameters."""

    scheme: str
    params: Mapping[str, str]


_PARAM = re.compile(r'\s*([A-Za-z_][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')


def parse_challenge(header: str) -> Challenge | None:
    """Parse ``Bearer realm="...",service="...",scope="..."``; None for an empty or odd header."""
    scheme, _, rest = header.strip().partition(" ")
    if not scheme:
        return None
    params: dict[str, str] = {}
    for m in _PARAM.finditer(rest):
        value = m.group(2) if m.group(2) is not None else m.group(3)
        params[m.group(1).lower()] = re.sub(r"\\(.)", r"\1", value)
    return Challenge(scheme.lower(), params)


class TokenAuth(httpx.Auth):
    """httpx auth flow answering Basic and Bearer challenges; reuses one token for later requests.

    ``scope`` is what to ask for when the challenge names none (``repository:<name>:pull``).
    """

    requires_response_body = True

    def __init__(self, auth: RegistryAuth | None, scope: str) -> None:
        self._auth = auth or RegistryAuth()
        self._scope = scope
        self._header: str | None = f"Bearer {self._auth.token}" if self._auth.token else None

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._header is not None:
            request.headers["Authorization"] = self._header
        response = yield request
        if response.status_code != 401:
            return
        challenge = parse_challenge(response.headers.get("WWW-Authenticate", ""))
        if challenge is None or challenge.scheme not in ("basic", "bearer"):
            raise AuthenticationFailed("the registry asked for an unsupported authentication scheme")
        if challenge.scheme == "basic":
            if self._auth.basic is None:
                raise AuthenticationFailed("the registry requires credentials and none were given")
            self._header = self._auth.basic
        else:
            self._header = yield from self._fetch_token(request, challenge)
        request.headers["Authorization"] = self._header
        response = yield request
        if response.status_code == 401:
            raise AuthenticationFailed("the registry refused the credentials")

    def _fetch_token(
        self, request: httpx.Request, challenge: Challenge
    ) -> Generator[httpx.Request, httpx.Response, str]:
        realm = challenge.params.get("realm")
        if not realm:
            raise AuthenticationFailed("the registry's bearer challenge names no token realm")
        query = {"scope": challenge.params.get("scope") or self._scope}
        if challenge.params.get("service"):
            query["service"] = challenge.params["service"]
        token_request = httpx.Request("GET", httpx.URL(realm, params=query))
        if self._auth.basic is not None:
            token_request.headers["Authorization"] = self._auth.basic
        token_response = yield token_request
        if token_response.status_code in (401, 403):
            raise AuthenticationFailed(f"the token server refused the credentials (HTTP {token_response.status_code})")
        if token_response.status_code != 200:
            raise AuthenticationFailed(f"the token server answered HTTP {token_response.status_code}")
        try:
            body = token_response.json()
            token = body.get("token") or body.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise AuthenticationFailed("the token server's answer holds no token")
        return f"Bearer {token}"
