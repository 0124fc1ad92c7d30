"""Flux's Receiver: a webhook that makes the listed objects reconcile now instead of at their next interval.

The endpoint is ``/hook/<sha256(token + name + namespace)>`` (a secret path: it cannot be guessed without the
token). ``github`` and ``generic-hmac`` calls must also carry an HMAC of the body made with the token; ``gitlab``
sends the token itself; ``generic`` relies on the path alone. A bad signature is refused with 401 and changes
nothing. Comparisons are constant-time.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

TYPES = ("generic", "generic-hmac", "github", "gitlab")
#: Hash functions a ``generic-hmac`` ``X-Signature: <hash>=<hex>`` may name.
HASHES = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}


def webhook_path(token: str, name: str, namespace: str) -> str:
    return "/hook/" + hashlib.sha256(f"{token}{name}{namespace}".encode()).hexdigest()


@dataclasses.dataclass(frozen=True, slots=True)
class Verdict:
    status: int
    message: str
    #: ``(kind, namespace, name-or-*, matchLabels)`` of each resource to reconcile; empty when refused or ignored.
    resources: tuple[tuple[str, str, str, tuple[tuple[str, str], ...]], ...] = ()


def judge(receiver: Mapping[str, Any], token: str, headers: Mapping[str, str], payload: bytes) -> Verdict:
    """Verify one call to a Receiver's endpoint; ``headers`` keys are lower-case."""
    spec = receiver.get("spec") or {}
    kind = spec.get("type")
    if kind not in TYPES:
        return Verdict(400, f"receiver type {kind!r} is not supported (supported: {', '.join(TYPES)})")
    events = [str(e).lower() for e in spec.get("events") or []]
    if kind == "github":
        signature = headers.get("x-hub-signature-256", "")
        if not _valid_hmac(token, payload, signature, default="sha256", only="sha256"):
            return Verdict(401, "invalid X-Hub-Signature-256")
        event = headers.get("x-github-event", "").lower()
        if event == "ping":
            return Verdict(200, "pong")
        if events and event not in events:
            return Verdict(200, f"event {event!r} ignored (the receiver handles {', '.join(events)})")
    elif kind == "gitlab":
        if not hmac.compare_digest(headers.get("x-gitlab-token", "").encode(), token.encode()):
            return Verdict(401, "invalid X-Gitlab-Token")
        event = headers.get("x-gitlab-event", "").lower()
        if events and event not in events:
            return Verdict(200, f"event {event!r} ignored")
    elif kind == "generic-hmac" and not _valid_hmac(
        token, payload, headers.get("x-signature", ""), default=None, only=None
    ):
        return Verdict(401, "invalid X-Signature")
    namespace = str((receiver.get("metadata") or {}).get("namespace") or "default")
    resources = []
    for item in spec.get("resources") or []:
        labels = tuple(sorted((str(k), str(v)) for k, v in (item.get("matchLabels") or {}).items()))
        resources.append((str(item["kind"]), str(item.get("namespace") or namespace), str(item["name"]), labels))
    return Verdict(200, f"{len(resources)} resources annotated for reconciliation", tuple(resources))


def _valid_hmac(token: str, payload: bytes, header: str, *, default: str | None, only: str | None) -> bool:
    algorithm, _, digest = header.partition("=")
    if not digest:
        return False
    if only is not None and algorithm != only:
        return False
    hash_fn = HASHES.get(algorithm or (default or ""))
    if hash_fn is None:
        return False
    expected = hmac.new(token.encode(), payload, hash_fn).hexdigest()
    return hmac.compare_digest(expected, digest.lower())


def sign(token: str, payload: bytes, algorithm: str = "sha256") -> str:
    """The signature header value a sender computes (for tests and `canaryflow` clients)."""
    return f"{algorithm}=" + hmac.new(token.encode(), payload, HASHES[algorithm]).hexdigest()
