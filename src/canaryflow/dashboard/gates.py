"""Opening and closing a load tester's gate, as ``curl -d '{"name": …, "namespace": …}' …/gate/open`` does.

A confirm or rollback webhook points at ``…/gate/check`` or ``…/rollback/check``; its gate is the same URL
ending in ``open`` or ``close``. Both runtimes call this with their own HTTP transport (the local one reaches
in-cluster names through the mesh proxy).
"""

from __future__ import annotations

import httpx

from canaryflow.dashboard import model
from canaryflow.dashboard.base import Json, NotFound, Refused


def gate_url(webhook_url: str, open_: bool) -> str | None:
    base = webhook_url.rstrip("/")
    for check in ("/gate/check", "/rollback/check"):
        if base.endswith(check):
            return base[: -len("check")] + ("open" if open_ else "close")
    return None


async def toggle(transport: httpx.AsyncBaseTransport | None, canary: Json, webhook: str, open_: bool) -> str:
    hook = next((h for h in model.hooks(canary, []) if h.name == webhook), None)
    if hook is None:
        raise NotFound(f"canary {model.key_of(canary)} has no webhook {webhook!r}")
    url = gate_url(hook.url, open_) if hook.gate else None
    if url is None:
        raise Refused(f"webhook {webhook!r} is not a load tester gate (a confirm or rollback hook on …/gate/check)")
    meta = canary.get("metadata") or {}
    body = {"name": meta.get("name"), "namespace": meta.get("namespace")}
    try:
        async with httpx.AsyncClient(transport=transport, timeout=10.0, trust_env=False) as client:
            response = await client.post(url, json=body)
    except httpx.HTTPError as exc:
        raise Refused(f"the load tester at {url} did not answer: {exc}") from exc
    if response.status_code >= 400:
        raise Refused(f"the load tester at {url} answered {response.status_code}: {response.text.strip()[:200]}")
    return response.text.strip() or f"gate {'opened' if open_ else 'closed'}"
