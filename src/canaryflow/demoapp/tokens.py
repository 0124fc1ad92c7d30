"""Short-lived HS256 JSON Web Tokens for the demo app's ``/token`` endpoints, built on the standard library.

The seed's conformance test only checks that ``/token`` answers with a token; the tokens are nevertheless
real (signed, expiring, verifiable at ``/token/validate``) so that a test written against podinfo behaves
the same here. No JWT library is pulled in for a demo endpoint.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import time

LIFETIME_SECONDS = 60  # podinfo's tokens are valid for one minute


@dataclasses.dataclass(frozen=True, slots=True)
class Claims:
    name: str
    expires_at: float  # seconds since the epoch


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(signing_input: str, secret: str) -> str:
    return _b64(hmac.new(secret.encode(), signing_input.encode("ascii"), hashlib.sha256).digest())


def issue(name: str, secret: str, now: float | None = None) -> tuple[str, Claims]:
    """A token for ``name`` and its claims."""
    claims = Claims(name=name, expires_at=(time.time() if now is None else now) + LIFETIME_SECONDS)
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    body = {"name": claims.name, "exp": int(claims.expires_at), "iss": "canaryflow-demoapp"}
    payload = _b64(json.dumps(body, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}"
    return f"{signing_input}.{_sign(signing_input, secret)}", claims


def verify(token: str, secret: str, now: float | None = None) -> Claims | None:
    """The claims of a valid, unexpired token; None for anything else (malformed, forged or expired)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    signing_input = f"{parts[0]}.{parts[1]}"
    if not hmac.compare_digest(_sign(signing_input, secret), parts[2]):
        return None
    try:
        body = json.loads(_unb64(parts[1]))
        claims = Claims(name=str(body["name"]), expires_at=float(body["exp"]))
    except (ValueError, KeyError, TypeError):
        return None
    if claims.expires_at < (time.time() if now is None else now):
        return None
    return claims
