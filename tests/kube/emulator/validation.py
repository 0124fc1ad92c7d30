"""The metadata checks every API server write goes through (422 Invalid when they fail).

kubernetes.io, "Object Names and IDs": most names are DNS subdomains (lowercase alphanumerics, '-' and '.',
at most 253 characters). "Labels and Selectors" > Syntax and character set: label keys are an optional DNS
prefix and a name of at most 63 characters; values at most 63 characters of alphanumerics, '-', '_', '.',
beginning and ending with an alphanumeric. Annotations are string to string. "Finalizers": no new finalizer
can be added to an object that is being deleted.
"""

from __future__ import annotations

import re
from typing import Any

from tests.kube.emulator.failure import Failure

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


def _invalid(field: str, value: Any, why: str) -> Failure:
    return Failure(422, "Invalid", f"{field}: Invalid value: {value!r}: {why}")


def _label_key(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _SUBDOMAIN.match(prefix)):
        return False
    return 0 < len(name) <= 63 and bool(_LABEL_NAME.match(name))


def check_metadata(meta: dict[str, Any]) -> None:
    name = str(meta.get("name") or "")
    if len(name) > 253 or not _SUBDOMAIN.match(name):
        why = "a lowercase RFC 1123 subdomain: lowercase alphanumerics, '-' or '.', alphanumeric at both ends"
        raise _invalid("metadata.name", name, why)
    for key, value in (meta.get("labels") or {}).items():
        if not _label_key(str(key)):
            raise _invalid(
                "metadata.labels", key, "name part must be 63 characters or less, alphanumerics, '-', '_' or '.'"
            )
        if not isinstance(value, str) or len(value) > 63 or (value and not _LABEL_NAME.match(value)):
            raise _invalid(
                f"metadata.labels[{key}]",
                value,
                "a valid label must be 63 characters or less, "
                "alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric",
            )
    for key, value in (meta.get("annotations") or {}).items():
        if not isinstance(value, str):
            raise _invalid(f"metadata.annotations[{key}]", value, "annotation values must be strings")


def check_finalizers(old: dict[str, Any], new: dict[str, Any]) -> None:
    if not old.get("deletionTimestamp"):
        return
    added = set(new.get("finalizers") or []) - set(old.get("finalizers") or [])
    if added:
        raise Failure(
            422,
            "Invalid",
            f"metadata.finalizers: Forbidden: no new finalizers can be added if the "
            f"object is being deleted, found new finalizers {sorted(added)}",
        )
