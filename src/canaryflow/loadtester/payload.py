"""Flagger's webhook payload, ``{name, namespace, phase, checksum, metadata}``, as the load tester reads it."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping

_TRUE = frozenset({"1", "t", "T", "true", "True", "TRUE"})
_FALSE = frozenset({"0", "f", "F", "false", "False", "FALSE"})


class PayloadError(ValueError):
    """The request body is not a webhook payload; the message says what is wrong (answered with 400)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Payload:
    name: str
    namespace: str
    phase: str = ""
    checksum: str = ""
    metadata: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def canary(self) -> str:
        """``name.namespace``: how Flagger's load tester keys gates and tasks."""
        return f"{self.name}.{self.namespace}"

    def flag(self, key: str) -> bool:
        """A boolean metadata entry (``logCmdOutput: "true"``), read as Go's strconv.ParseBool reads it."""
        value = self.metadata.get(key)
        if value is None or value in _FALSE:
            return False
        if value in _TRUE:
            return True
        raise PayloadError(f'metadata.{key} must be "true" or "false", not {value!r}')


def parse(body: bytes) -> Payload:
    try:
        data = json.loads(body or b"null")
    except ValueError as exc:
        raise PayloadError(f"the body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise PayloadError("the body must be a JSON object {name, namespace, phase, checksum, metadata}")
    fields: dict[str, str] = {}
    for key in ("name", "namespace", "phase", "checksum"):
        value = data.get(key) or ""
        if not isinstance(value, str):
            raise PayloadError(f"{key} must be a string")
        fields[key] = value
    metadata = data.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise PayloadError("metadata must be an object of strings")
    # Flagger's metadata is map[string]string: a number or boolean is an error there too.
    wrong = sorted(key for key, value in metadata.items() if not isinstance(value, str))
    if wrong:
        raise PayloadError(f"metadata values must be strings (quote them in YAML): {', '.join(wrong)}")
    return Payload(metadata=metadata, **fields)
