"""One request against one resource: the verb dispatch (get, list, create, update, patch, apply, delete).

The bookkeeping rules live in ``crud``; this module maps HTTP to them, records watch events, and applies the
deletion rules: an object whose finalizers are all gone after a write is removed; deleting a Namespace deletes
what is in it (the namespace controller's job); deleting an owner deletes its dependents unless
``propagationPolicy=Orphan`` (the garbage collector's job). Both happen at once, without the controllers' delay.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from tests.kube.emulator import apply as ssa
from tests.kube.emulator import crud
from tests.kube.emulator.crud import Target
from tests.kube.emulator.failure import Failure
from tests.kube.emulator.patches import PatchError, json_patch, merge_patch, strategic_merge_patch
from tests.kube.emulator.selectors import EVENT_FIELDS, SelectorError, field_selector, label_selector
from tests.kube.emulator.store import Store, Stored

Json = dict[str, Any]
APPLY = "application/apply-patch+yaml"
PATCHES = {
    "application/merge-patch+json": "merge",
    "application/json-patch+json": "json",
    "application/strategic-merge-patch+json": "strategic",
    APPLY: "apply",
}


class Operations:
    def __init__(self, store: Store, target: Target, params: dict[str, str], user_agent: str) -> None:
        self.store, self.target, self.params = store, target, params
        self.resource = target.resource
        self.manager = params.get("fieldManager") or user_agent.split("/")[0]
        self.dry_run = params.get("dryRun") == "All"
        self.propagation = "Background"  # how deletions reach dependents: Background (= Foreground here) | Orphan

    def watch_filter(self) -> Callable[[Json], bool]:
        fields = self.params.get("fieldSelector") or ""
        if self.target.name is not None:
            fields = ",".join(filter(None, [fields, f"metadata.name={self.target.name}"]))
        return self._filter(self.params.get("labelSelector"), fields)

    def _filter(self, labels: str | None, fields: str | None) -> Callable[[Json], bool]:
        allowed = EVENT_FIELDS if self.resource.plural == "events" else frozenset()
        try:
            by_labels, by_fields = label_selector(labels), field_selector(fields, allowed=allowed)
        except SelectorError as exc:
            raise Failure(400, "BadRequest", str(exc)) from exc
        return lambda obj: by_labels(obj) and by_fields(obj)

    def namespace_missing(self, method: str, strict: bool) -> bool:
        if not (strict and method == "POST" and self.resource.namespaced and self.target.namespace):
            return False
        return ("", "namespaces", None, self.target.namespace) not in self.store.objects

    async def dispatch(self, method: str, content_type: str | None, body: Any) -> tuple[int, Json]:
        name, sub = self.target.name, self.target.subresource
        if method == "GET" and name is None:
            return 200, self.list()
        if method == "GET":
            return 200, crud.render(self.resource, crud.lookup(self.store, self.target))
        if method == "POST" and name is None:
            obj = crud.create(self.store, self.target, body, self.manager, self.dry_run)
            await self._created(obj)
            return 201, obj
        if method == "PUT" and name is not None:
            return 200, await self._commit(*self._replace(body))
        if method == "PATCH" and name is not None:
            return await self.patch(content_type, body)
        if method == "DELETE" and name is not None and sub is None:
            return 200, await self.delete(body)
        if method == "DELETE" and name is None:
            return 200, await self.delete_collection()
        raise Failure(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    def list(self) -> Json:
        matches = self._filter(self.params.get("labelSelector"), self.params.get("fieldSelector"))
        storage = (self.resource.group, self.resource.plural)
        items = [crud.render(self.resource, s) for s in self.store.items(storage, self.target.namespace)]
        return {
            "apiVersion": self.resource.api_version,
            "kind": f"{self.resource.kind}List",
            "metadata": {"resourceVersion": str(self.store.revision)},
            "items": [item for item in items if matches(item)],
        }

    async def _created(self, obj: Json) -> None:
        if not self.dry_run:
            await self.store.record((self.resource.group, self.resource.plural), "ADDED", obj)

    def _replace(self, body: Any) -> tuple[Json, Json | None]:
        return crud.replace(self.store, self.target, body, self.manager, self.dry_run)

    async def _commit(self, obj: Json, previous: Json | None) -> Json:
        """Record the write's event. A write that empties the finalizers of a deleting object deletes it instead,
        as the API server does (watches see DELETED, not a MODIFIED first)."""
        if previous is None:
            return obj
        meta = obj["metadata"]
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            return await self._remove(self.target)
        await self.store.record((self.resource.group, self.resource.plural), "MODIFIED", obj, previous)
        return obj

    async def patch(self, content_type: str | None, body: Any) -> tuple[int, Json]:
        kind = PATCHES.get(content_type or "")
        if kind is None:
            raise Failure(
                415, "UnsupportedMediaType", f"the body of the request was in an unknown format: {content_type}"
            )
        if kind == "strategic" and not self.resource.builtin:
            raise Failure(415, "UnsupportedMediaType", "strategic merge patch is not supported for custom resources")
        if kind == "apply":
            return await self.apply(body)
        stored = crud.lookup(self.store, self.target)
        live = crud.render(self.resource, stored)
        live["metadata"].pop("managedFields", None)
        try:
            if kind == "json":
                patched = json_patch(live, body)
            elif not isinstance(body, dict):
                raise PatchError(400, f"a {kind} patch must be a JSON object")
            elif kind == "merge":
                patched = merge_patch(live, body)
            else:
                patched = strategic_merge_patch(live, body)
            if not isinstance(patched, dict):
                raise PatchError(422, "the patched object is not an object")
        except PatchError as exc:
            raise Failure(exc.status, "Invalid" if exc.status == 422 else "BadRequest", str(exc)) from exc
        crud.check_version(self.target, stored, patched)
        result = crud.commit(self.store, self.target, stored, patched, self.manager, self.dry_run)
        return 200, await self._commit(*result)

    async def apply(self, body: Any) -> tuple[int, Json]:
        if not self.params.get("fieldManager"):
            raise Failure(
                400,
                "BadRequest",
                'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch',
            )
        force = self.params.get("force") == "true"
        if not isinstance(body, dict):
            raise Failure(400, "BadRequest", "an apply patch must be an object")
        config = copy.deepcopy(body)
        if self.resource.has_status and self.target.subresource is None:
            config.pop("status", None)
        if (config.get("metadata") or {}).get("name") not in (None, self.target.name):
            raise Failure(400, "BadRequest", "the name of the object does not match the name on the URL")
        stored = self.store.objects.get(self.target.key())
        try:
            if stored is None:
                owners: ssa.Owners = {}
                merged = ssa.apply(None, config, self.manager, force, owners)
                merged.setdefault("metadata", {})["name"] = self.target.name
                created = Target(self.resource, self.target.namespace, None, None)
                obj = crud.create(self.store, created, merged, self.manager, self.dry_run, owners=owners)
                await self._created(obj)
                return 201, obj
            live = crud.render(self.resource, stored)
            live["metadata"].pop("managedFields", None)
            owners = copy.deepcopy(stored.owners)
            merged = ssa.apply(live, config, self.manager, force, owners)
        except ssa.ApplyConflict as exc:
            raise Failure(409, "Conflict", str(exc)) from exc
        crud.check_version(self.target, stored, config)
        result = crud.commit(self.store, self.target, stored, merged, self.manager, self.dry_run, owners)
        return 200, await self._commit(*result)

    async def delete(self, body: Any) -> Json:
        stored = crud.lookup(self.store, self.target)
        options = body if isinstance(body, dict) else {}
        preconditions = options.get("preconditions") or {}
        meta = stored.obj["metadata"]
        if preconditions.get("uid") not in (None, meta["uid"]):
            raise Failure(
                409,
                "Conflict",
                f"Precondition failed: UID in precondition: {preconditions['uid']}, UID in object meta: {meta['uid']}",
            )
        if preconditions.get("resourceVersion") not in (None, meta["resourceVersion"]):
            raise self.target.conflict(str(self.target.name))
        if self.dry_run:
            return crud.render(self.resource, stored)
        self.propagation = self.params.get("propagationPolicy") or options.get("propagationPolicy") or "Background"
        obj = await self._delete(self.target, stored)
        if obj["metadata"].get("deletionTimestamp") or not self.resource.builtin:
            return obj
        details = {
            "name": self.target.name,
            "group": self.resource.group,
            "kind": self.resource.plural,
            "uid": obj["metadata"]["uid"],
        }
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}

    async def _delete(self, target: Target, stored: Stored) -> Json:
        """Mark the object deleting when finalizers hold it, else remove it now."""
        if not stored.obj["metadata"].get("finalizers"):
            return await self._remove(target)
        if stored.obj["metadata"].get("deletionTimestamp"):
            return crud.render(target.resource, stored)
        previous = copy.deepcopy(stored.obj)
        obj = crud.mark_deleted(self.store, target, stored)
        await self.store.record((target.resource.group, target.resource.plural), "MODIFIED", obj, previous)
        return obj

    async def _remove(self, target: Target) -> Json:
        """Remove from storage, then what controllers would: a Namespace's contents, and the dependents the
        garbage collector deletes ("Garbage Collection": dependents of this object whose owners are all gone).
        Only dependents of a deleted owner are collected: objects created with dangling ownerReferences stay."""
        obj = crud.remove(self.store, target)
        await self.store.record((target.resource.group, target.resource.plural), "DELETED", obj)
        if target.resource.group == "" and target.resource.plural == "namespaces":
            for (_, _, ns, name), stored in list(self.store.objects.items()):
                if ns == target.name and stored.resource is not None:
                    await self._delete(Target(stored.resource, ns, name, None), stored)
        if self.propagation != "Orphan":
            await self._collect_dependents(obj["metadata"]["uid"])
        return obj

    async def _collect_dependents(self, owner: str) -> None:
        alive = {stored.obj["metadata"]["uid"] for stored in self.store.objects.values()}
        for (_, _, ns, name), stored in list(self.store.objects.items()):
            owners = [ref.get("uid") for ref in stored.obj["metadata"].get("ownerReferences") or []]
            resource = stored.resource
            if resource is None or owner not in owners or alive.intersection(owners):
                continue
            if (resource.group, resource.plural, ns, name) in self.store.objects:  # not removed meanwhile
                await self._delete(Target(resource, ns, name, None), stored)

    async def delete_collection(self) -> Json:
        listed = self.list()
        for item in listed["items"]:
            target = Target(self.resource, item["metadata"].get("namespace"), item["metadata"]["name"], None)
            stored = self.store.objects.get(target.key())
            if stored is not None:
                await self._delete(target, stored)
        return {**listed, "items": listed["items"]}
