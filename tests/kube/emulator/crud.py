"""Reads and writes of objects, with the API server's bookkeeping (kubernetes.io, "API concepts").

- Every write gets a new cluster-wide ``resourceVersion``; a write that changes nothing is not a write (same
  version, no watch event), as the API server skips no-op updates.
- ``uid``, ``creationTimestamp`` and ``generation`` belong to the server; ``generation`` grows when anything but
  metadata (and status, for resources with a status subresource) changes ("Object Meta", generation).
- A PUT, or a patch carrying ``metadata.resourceVersion``, with a stale version is 409 Conflict (optimistic
  concurrency); custom resources refuse a PUT without a version (422), built-ins allow it.
- With a status subresource, writes to the object ignore ``.status`` and writes to ``/status`` change only it.
- Deleting an object with finalizers only sets ``deletionTimestamp``; it goes once the finalizers are removed
  ("Finalizers"). ``generateName`` appends 5 random characters ("Object Names and IDs").
"""

from __future__ import annotations

import copy
import dataclasses
import random
import uuid
from typing import Any

from tests.kube.emulator import apply as ssa
from tests.kube.emulator import validation
from tests.kube.emulator.failure import Failure
from tests.kube.emulator.resources import Resource
from tests.kube.emulator.store import ObjectKey, Store, Stored, now

Json = dict[str, Any]
_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # the API server's: no vowels, no look-alikes
SERVER_METADATA = (
    "uid",
    "creationTimestamp",
    "generation",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "name",
    "namespace",
)  # kept from the stored object whatever a write sends


@dataclasses.dataclass(frozen=True)
class Target:
    resource: Resource
    namespace: str | None
    name: str | None
    subresource: str | None

    def key(self, name: str | None = None) -> ObjectKey:
        return (self.resource.group, self.resource.plural, self.namespace, str(name or self.name))

    def not_found(self, name: str | None = None) -> Failure:
        name = name or self.name
        details = {"name": name, "group": self.resource.group, "kind": self.resource.plural}
        return Failure(404, "NotFound", f'{self.resource.qualified} "{name}" not found', details)

    def conflict(self, name: str) -> Failure:
        message = (
            f'Operation cannot be fulfilled on {self.resource.qualified} "{name}": the object has been modified; '
            "please apply your changes to the latest version and try again"
        )
        return Failure(409, "Conflict", message, {"name": name, "kind": self.resource.plural})


def render(resource: Resource, stored: Stored) -> Json:
    """The object as served in ``resource``'s version, with managedFields from the ownership table."""
    obj = copy.deepcopy(stored.obj)
    obj["apiVersion"], obj["kind"] = resource.api_version, resource.kind
    if stored.owners:
        obj["metadata"]["managedFields"] = ssa.managed_fields(stored.owners, resource.api_version, stored.times)
    return obj


def _spec_of(resource: Resource, obj: Json) -> Json:
    ignored = {"metadata", "apiVersion", "kind"} | ({"status"} if resource.has_status else set())
    return {key: value for key, value in obj.items() if key not in ignored}


def _check_kind(target: Target, body: Any) -> Json:
    if not isinstance(body, dict):
        raise Failure(400, "BadRequest", "the body of the request must be a JSON object")
    resource = target.resource
    if body.get("kind") not in (None, resource.kind) or body.get("apiVersion") not in (None, resource.api_version):
        message = f"the API version in the data ({body.get('apiVersion')}) does not match the expected API version"
        if body.get("kind") not in (None, resource.kind):
            message = f"kind {body.get('kind')!r} does not match the resource ({resource.kind})"
        raise Failure(400, "BadRequest", message)
    return body


def create(
    store: Store, target: Target, body: Any, manager: str, dry_run: bool, *, owners: ssa.Owners | None = None
) -> Json:
    resource = target.resource
    meta = dict(_check_kind(target, body).get("metadata") or {})
    if not resource.namespaced:
        meta.pop("namespace", None)
    elif target.namespace is None:
        raise Failure(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
    elif meta.get("namespace") not in (None, "", target.namespace):
        raise Failure(
            400, "BadRequest", "the namespace of the provided object does not match the namespace sent on the request"
        )
    name = meta.get("name")
    if not name and meta.get("generateName"):
        name = str(meta["generateName"]) + "".join(random.choices(_GENERATE_ALPHABET, k=5))
    if not name:
        raise Failure(422, "Invalid", "metadata.name: Required value: name or generateName is required")
    if target.key(name) in store.objects:
        details = {"name": name, "group": resource.group, "kind": resource.plural}
        raise Failure(409, "AlreadyExists", f'{resource.qualified} "{name}" already exists', details)
    obj = {key: copy.deepcopy(value) for key, value in body.items() if key not in ("apiVersion", "kind")}
    if resource.has_status:
        obj.pop("status", None)
    for field in ("deletionTimestamp", "deletionGracePeriodSeconds", "managedFields", "resourceVersion"):
        meta.pop(field, None)
    meta.update(name=name, uid=str(uuid.uuid4()), generation=1, creationTimestamp=now())
    if resource.namespaced:
        meta["namespace"] = target.namespace
    validation.check_metadata(meta)
    obj["metadata"] = meta
    if resource.group == "" and resource.plural == "namespaces":  # what the API server fills in for a Namespace
        meta["labels"] = {**(meta.get("labels") or {}), "kubernetes.io/metadata.name": name}
        obj["spec"] = {"finalizers": ["kubernetes"], **(obj.get("spec") or {})}
        obj["status"] = {"phase": "Active"}
    stored = Stored(obj, resource=resource)
    if owners is None:
        ssa.record_update(None, obj, manager, stored.owners)
    else:
        stored.owners = owners
    stored.times = dict.fromkeys(stored.owners, now())
    return _persist_new(store, target, stored, dry_run)


def _persist_new(store: Store, target: Target, stored: Stored, dry_run: bool) -> Json:
    """Store a new object; a dry run answers what would be stored, without a resourceVersion (nothing was)."""
    if not dry_run:
        stored.obj["metadata"]["resourceVersion"] = store.next_revision()
        store.objects[target.key(stored.obj["metadata"]["name"])] = stored
    return render(target.resource, stored)


def lookup(store: Store, target: Target) -> Stored:
    stored = store.objects.get(target.key())
    if stored is None:
        raise target.not_found()
    return stored


def check_version(target: Target, stored: Stored, body: Json) -> None:
    wanted = (body.get("metadata") or {}).get("resourceVersion")
    if wanted and str(wanted) != stored.obj["metadata"]["resourceVersion"]:
        raise target.conflict(str(target.name))


def replace(store: Store, target: Target, body: Any, manager: str, dry_run: bool) -> tuple[Json, Json | None]:
    stored = lookup(store, target)
    body = _check_kind(target, body)
    meta = body.get("metadata") or {}
    if meta.get("name") not in (None, target.name):
        raise Failure(
            400, "BadRequest", f"the name of the object ({meta.get('name')}) does not match the name on the URL"
        )
    check_version(target, stored, body)
    if not meta.get("resourceVersion") and not target.resource.builtin:
        raise Failure(422, "Invalid", "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update")
    return commit(store, target, stored, body, manager, dry_run)


def commit(
    store: Store,
    target: Target,
    stored: Stored,
    new: Json,
    manager: str,
    dry_run: bool,
    owners: ssa.Owners | None = None,
) -> tuple[Json, Json | None]:
    """Write ``new`` over ``stored`` with the server's rules; the served object and the pre-write object."""
    resource, old = target.resource, stored.obj
    if target.subresource == "status":
        result = copy.deepcopy(old)
        result.pop("status", None)
        if new.get("status") is not None:
            result["status"] = copy.deepcopy(new["status"])
    else:
        result = copy.deepcopy(new)
        if resource.has_status:
            result.pop("status", None)
            if "status" in old:
                result["status"] = copy.deepcopy(old["status"])
        meta = dict(result.get("metadata") or {})
        for field in SERVER_METADATA:
            meta.pop(field, None)
            if field in old["metadata"]:
                meta[field] = old["metadata"][field]
        meta.pop("managedFields", None)
        validation.check_metadata(meta)
        validation.check_finalizers(old["metadata"], meta)
        result["metadata"] = meta
    result.pop("apiVersion", None)
    result.pop("kind", None)
    result["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
    if owners is None:
        owners = copy.deepcopy(stored.owners)
        ssa.record_update(old, result, manager, owners)
    if result == old and owners == stored.owners:
        return render(resource, stored), None  # a no-op write is not a write
    if _spec_of(resource, result) != _spec_of(resource, old):
        result["metadata"]["generation"] = int(old["metadata"].get("generation") or 0) + 1
    times = {**stored.times, **{key: now() for key in owners if owners.get(key) != stored.owners.get(key)}}
    updated = Stored(result, owners, {key: times[key] for key in owners if key in times}, stored.resource)
    if dry_run:
        return render(resource, updated), None
    result["metadata"]["resourceVersion"] = store.next_revision()
    store.objects[target.key()] = updated
    return render(resource, updated), old


def remove(store: Store, target: Target) -> Json:
    """Delete from storage now; the DELETED event carries a new resourceVersion, as etcd's delete revision."""
    stored = store.objects.pop(target.key())
    stored.obj["metadata"]["resourceVersion"] = store.next_revision()
    return render(target.resource, stored)


def mark_deleted(store: Store, target: Target, stored: Stored) -> Json:
    meta = stored.obj["metadata"]
    meta["deletionTimestamp"], meta["deletionGracePeriodSeconds"] = now(), 0
    meta["resourceVersion"] = store.next_revision()
    return render(target.resource, stored)
