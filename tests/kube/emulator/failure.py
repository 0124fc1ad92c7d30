"""The emulator's API errors."""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]


class Failure(Exception):
    """An API error: rendered as a ``Status`` with this code, reason and message."""

    def __init__(self, status: int, reason: str, message: str, details: Json | None = None) -> None:
        super().__init__(message)
        self.status, self.reason, self.message, self.details = status, reason, message, details or {}
