"""Events on Flux objects, as Flux's controllers record them: core/v1 Events whose involvedObject is the
GitRepository or Kustomization, so ``kubectl describe kustomization apps`` and ``kubectl events`` show what was
applied and why a reconcile failed.

A repeat of the same event (same object, type, reason and message) is counted on the existing Event rather than
recorded again, as the API server's event recorder does: a Kustomization failing every minute for a day is one
Event with a count, not 1,440 objects.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from canaryflow.api.timestamps import rfc3339
from canaryflow.clock import Clock, SystemClock
from canaryflow.gitops.controller.objects import Key
from canaryflow.kube.client import EVENT, Api, ApiError, Conflict, NotFound
from canaryflow.kube.gitops.objects import KubeFluxObjects

log = logging.getLogger(__name__)

#: The controller Flux would report each kind's events from (``source.component`` / ``reportingComponent``).
COMPONENTS = {
    "GitRepository": "source-controller",
    "Kustomization": "kustomize-controller",
    "ImageRepository": "image-reflector-controller",
    "ImagePolicy": "image-reflector-controller",
    "ImageUpdateAutomation": "image-automation-controller",
    "Receiver": "notification-controller",
}
#: events.k8s.io caps a note at 1 kB; a longer message (a list of every refused object) is cut there.
MESSAGE_LIMIT = 1024


class KubeFluxEvents:
    """An Emitter (canaryflow.gitops.controller.context.Emitter) writing Kubernetes Events."""

    def __init__(self, api: Api, objects: KubeFluxObjects, *, clock: Clock | None = None) -> None:
        self.api = api
        self.objects = objects
        self._now = (clock or SystemClock()).now

    async def __call__(self, subject: str, warning: bool, reason: str, message: str) -> None:
        """``subject`` is a Key's text, ``Kind/namespace/name``. An event that cannot be recorded is logged: a
        failing event write must never fail the reconcile it reports on."""
        kind, namespace, name = subject.split("/", 2)
        try:
            await self._record(Key(kind, namespace, name), "Warning" if warning else "Normal", reason, message)
        except (ApiError, ValueError) as exc:
            log.warning("%s: could not record event %s: %s", subject, reason, exc)

    async def _record(self, key: Key, type_: str, reason: str, message: str) -> None:
        involved = await self.objects.get(key)
        uid = str(((involved or {}).get("metadata") or {}).get("uid") or "")
        stamp = rfc3339(self._now())
        message = message if len(message) <= MESSAGE_LIMIT else message[: MESSAGE_LIMIT - 3] + "..."
        digest = hashlib.sha256(f"{key.kind}\0{uid}\0{type_}\0{reason}\0{message}".encode()).hexdigest()[:16]
        event_name = f"{key.name}.{digest}"
        existing = await self.api.get(EVENT, key.namespace, event_name)
        if existing is not None:
            count = int(existing.get("count") or 1) + 1
            try:
                await self.api.patch(EVENT, key.namespace, event_name, {"count": count, "lastTimestamp": stamp})
                return
            except NotFound:
                pass  # expired between the read and the patch: record it anew
        component = COMPONENTS.get(key.kind, "canaryflow")
        kind = await self.objects.kind(key.kind)
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": event_name, "namespace": key.namespace},
            "involvedObject": {"apiVersion": kind.api_version, "kind": key.kind, "name": key.name,
                               "namespace": key.namespace, **({"uid": uid} if uid else {})},
            "type": type_,
            "reason": reason,
            "message": message,
            "count": 1,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "source": {"component": component},
            "reportingComponent": component,
            "reportingInstance": "canaryflow",
        }  # fmt: skip
        try:
            await self.api.create(EVENT, body)
        except Conflict:  # a concurrent record of the same event created it first
            await self.api.patch(EVENT, key.namespace, event_name, {"lastTimestamp": stamp})
