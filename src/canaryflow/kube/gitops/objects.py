"""Flux objects in the API server: canaryflow.gitops.controller.objects.FluxObjects for Kubernetes.

The controller sees the same small view as in the local runtime. Here the objects are custom resources served by
Flux's CRDs, read across all namespaces, and their status lives in the status subresource, so a status write
never bumps ``metadata.generation`` and never races a user's ``kubectl apply`` of the spec. A status write that
loses a race (409 Conflict: someone changed the object since it was read) re-reads and writes again: the status
is the controller's alone, so the newest read is always the right base.
"""

from __future__ import annotations

import base64
import binascii
import copy
import logging
from typing import Any

from canaryflow.api.flux.status import FluxStatus
from canaryflow.gitops.controller.objects import FLUX_KINDS, Key, stored
from canaryflow.kube.client import CONFIGMAP, SECRET, Api, Conflict, Kind, NotFound

log = logging.getLogger(__name__)

#: The API versions tried for each Flux group, newest first: clusters with Flux before 2.7 serve the image
#: automation APIs only as ``v1beta2``.
FLUX_VERSIONS = ("v1", "v1beta2")
#: How often a status write is retried after a Conflict before the reconcile fails (and is retried itself).
STATUS_ATTEMPTS = 5


class KubeFluxObjects:
    """Flux kinds (GitRepository, Kustomization, Image*, Receiver), ConfigMaps and Secrets, via ``Api``."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self._kinds: dict[str, Kind] = {}

    async def kind(self, kind: str) -> Kind:
        """The served resource for a Flux kind (discovered once: the newest version the cluster serves)."""
        if kind in self._kinds:
            return self._kinds[kind]
        group = FLUX_KINDS.get(kind)
        if group is None:
            raise ValueError(f"{kind!r} is not a Flux kind (known: {', '.join(sorted(FLUX_KINDS))})")
        for version in FLUX_VERSIONS:
            try:
                found = await self.api.discover(f"{group}/{version}", kind)
            except NotFound:
                continue
            self._kinds[kind] = found
            return found
        versions = ", ".join(f"{group}/{v}" for v in FLUX_VERSIONS)
        raise NotFound(404, "NotFound", f"the API server serves no {kind} ({versions}): are Flux's CRDs installed?")

    async def list(self, kind: str) -> list[dict[str, Any]]:
        return await self.api.list(await self.kind(kind))

    async def get(self, key: Key) -> dict[str, Any] | None:
        return await self.api.get(await self.kind(key.kind), key.namespace, key.name)

    async def data(self, kind: str, namespace: str, name: str) -> dict[str, str] | None:
        """A ConfigMap's ``data`` (and ``binaryData``), or a Secret's ``data`` base64-decoded."""
        if kind not in ("ConfigMap", "Secret"):
            raise ValueError(f"data of {kind} '{namespace}/{name}': only ConfigMap and Secret hold data")
        body = await self.api.get(SECRET if kind == "Secret" else CONFIGMAP, namespace, name)
        if body is None:
            return None
        data: dict[str, str] = {}
        encoded = dict(body.get("data") or {}) if kind == "Secret" else dict(body.get("binaryData") or {})
        for field, value in encoded.items():
            try:
                data[field] = base64.b64decode(str(value), validate=True).decode(errors="replace")
            except (binascii.Error, ValueError):
                raise ValueError(f"{kind} '{namespace}/{name}': data.{field} is not valid base64") from None
        if kind == "ConfigMap":
            data.update({field: str(value) for field, value in (body.get("data") or {}).items()})
        # stringData is write-only on a real API server; an emulator or an admission webhook may leave it
        data.update({field: str(value) for field, value in (body.get("stringData") or {}).items()})
        return data

    async def status(self, key: Key) -> dict[str, Any]:
        body = await self.get(key)
        status = (body or {}).get("status")
        return copy.deepcopy(status) if isinstance(status, dict) else {}

    async def set_status(self, key: Key, status: FluxStatus) -> None:
        """Replace the whole status (the controller computed it from the one it read), guarded by the
        resourceVersion just read; a deleted object's status is not written (its task is about to end)."""
        kind = await self.kind(key.kind)
        written = stored(status)
        for attempt in range(1, STATUS_ATTEMPTS + 1):
            body = await self.api.get(kind, key.namespace, key.name)
            if body is None:
                log.debug("%s: deleted before its status was written", key)
                return
            try:
                await self.api.replace_status(kind, {**body, "status": written})
                return
            except NotFound:
                return
            except Conflict:
                if attempt == STATUS_ATTEMPTS:
                    raise
                log.debug("%s: status write conflicted (attempt %d), re-reading", key, attempt)
