"""``diff kustomization``: what applying the Kustomization's current revision would change, without changing it.

Each object of the revision is compared with the live one field by field, only on the fields the manifest sets
(what the server adds — defaults, status, managed metadata — is never a difference); objects the last inventory
holds and the revision no longer does are listed as to be deleted when the Kustomization prunes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from canaryflow.gitops.controller import parse
from canaryflow.gitops.controller.context import Context
from canaryflow.gitops.controller.kustomizations import inventory_of, source_of, variables
from canaryflow.gitops.controller.objects import Key
from canaryflow.gitops.kustomize import inventory
from canaryflow.gitops.kustomize import reconcile as kustomize
from canaryflow.gitops.target.base import ObjRef
from canaryflow.gitops.target.memory import desired_state


async def diff_kustomization(ctx: Context, key: Key) -> list[dict[str, Any]]:
    """One entry per object that would change: ``{"object", "action", "lines"}``; [] when in sync."""
    body = await ctx.objects.get(key)
    if body is None:
        raise LookupError(f"{key} not found")
    try:
        kustomization = parse.kustomization(body)
    except parse.InvalidObject as exc:
        raise LookupError(f"{key}: {exc}") from None
    source = source_of(kustomization)
    artifact = ctx.artifacts.get(source)
    if artifact is None:
        raise LookupError(f"the source {source} has no artifact yet")
    try:
        objects = kustomize.desired(kustomization, artifact, await variables(ctx, kustomization), True)
    except kustomize.Failed as failed:
        raise LookupError(f"{key}: {failed.message}") from None
    found: list[dict[str, Any]] = []
    for obj in inventory.ordered(objects):
        ref = ObjRef.of(obj)
        live = await ctx.target.get(ref)
        if live is None:
            found.append({"object": str(ref), "action": "created", "lines": []})
            continue
        lines = list(_differences(desired_state(obj), live, ""))
        if lines:
            found.append({"object": str(ref), "action": "configured", "lines": lines})
    if kustomization.spec.prune:
        current = [ObjRef.of(obj) for obj in objects]
        for ref in inventory.stale(inventory_of(await ctx.objects.status(key)), current):
            if await ctx.target.get(ref) is not None:
                found.append({"object": str(ref), "action": "deleted", "lines": []})
    return found


def _differences(want: Any, have: Any, path: str) -> Iterator[str]:
    if isinstance(want, Mapping) and isinstance(have, Mapping):
        for field, value in want.items():
            yield from _differences(value, have.get(field), f"{path}.{field}" if path else str(field))
        return
    if want != have:
        yield f"{path}: {_show(have)} → {_show(want)}"


def _show(value: Any) -> str:
    return "<none>" if value is None else json.dumps(value, sort_keys=True)
