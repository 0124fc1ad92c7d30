"""Receiver: nothing to fetch; reconciling one publishes its webhook path (which depends on its token)."""

from __future__ import annotations

from canaryflow.api.flux import common as flux
from canaryflow.api.flux.notification import Receiver
from canaryflow.api.flux.status import ReceiverStatus
from canaryflow.gitops import receiver
from canaryflow.gitops.controller.context import DEPENDENCY_RETRY, Context, Result, conditions
from canaryflow.gitops.controller.objects import FluxObjects, Key

#: A Receiver has no interval; its token secret is re-read this often (and at every change of the Receiver).
RECHECK = 600.0


async def reconcile_receiver(ctx: Context, key: Key, hook: Receiver, failures: int) -> Result:
    gen = hook.metadata.generation or 0
    previous = await ctx.status(key, ReceiverStatus)
    ref = hook.spec.secret_ref
    try:
        secret = await ctx.secret(key.namespace, ref) or {}
        if "token" not in secret:
            raise LookupError(f"secret '{key.namespace}/{ref.name if ref else None}' has no 'token' key")
        if hook.spec.type not in receiver.TYPES:
            raise LookupError(
                f"receiver type {hook.spec.type!r} is not supported (supported: {', '.join(receiver.TYPES)})"
            )
    except LookupError as exc:
        failed = ReceiverStatus(
            observed_generation=gen,
            conditions=conditions(previous, ctx.condition(flux.READY, False, flux.TOKEN_NOT_FOUND, str(exc), gen)),
            last_handled_reconcile_at=hook.requested_at,
        )
        await ctx.write(key, previous, failed)
        return Result(DEPENDENCY_RETRY, failed=True)
    path = receiver.webhook_path(secret["token"], key.name, key.namespace)
    message = f"Receiver initialized for path: {path}"
    status = ReceiverStatus(
        observed_generation=gen,
        webhook_path=path,
        conditions=conditions(previous, ctx.condition(flux.READY, True, flux.SUCCEEDED, message, gen)),
        last_handled_reconcile_at=hook.requested_at,
    )
    await ctx.write(key, previous, status)
    return Result(RECHECK)


async def targets(objects: FluxObjects, verdict: receiver.Verdict) -> list[Key]:
    """The objects an accepted call names: by name, or ``*`` with ``matchLabels`` within the namespace."""
    keys = []
    for kind, namespace, name, labels in verdict.resources:
        if name != "*":
            keys.append(Key(kind, namespace, name))
            continue
        for body in await objects.list(kind):
            meta = body.get("metadata") or {}
            have = meta.get("labels") or {}
            if meta.get("namespace") == namespace and all(have.get(k) == v for k, v in labels):
                keys.append(Key.of(body))
    return keys
