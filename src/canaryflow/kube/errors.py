"""The errors ``Api`` raises: the API server's Status (code, reason, message) plus the request that failed.

404, 409 and 422 get their own types because callers branch on them: re-read and retry on Conflict, treat
NotFound as "gone", report Invalid to the user. Everything else, including "could not connect" (status 0), is an
``ApiError``.
"""

from __future__ import annotations

import asyncio
import json

import aiohttp


class ApiError(Exception):
    """A request the API server refused (or could not be reached for: status 0)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}" if status else f"{reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


class NotFound(ApiError):
    """404: the object, or the resource itself, does not exist."""


class Conflict(ApiError):
    """409: stale resourceVersion, AlreadyExists, or a server-side-apply field conflict."""


class Invalid(ApiError):
    """422: the object failed validation, or a JSON-patch ``test`` failed."""


class ConfigError(Exception):
    """Neither a kubeconfig nor an in-cluster service account could be loaded."""


_ERRORS: dict[int, type[ApiError]] = {404: NotFound, 409: Conflict, 422: Invalid}


def error_from_response(status: int, body: bytes, request: str) -> ApiError:
    reason, message = "", body.decode("utf-8", "replace").strip()
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        reason, message = str(doc.get("reason") or ""), str(doc.get("message") or message)
    return _ERRORS.get(status, ApiError)(status, reason or f"HTTP{status}", f"{request}: {message}")


CONNECTION_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, OSError)  # retried like 5xx


def retryable(status: int) -> bool:
    """429 (throttled) and 5xx (the server or something before it failed): worth another try."""
    return status == 429 or status >= 500
