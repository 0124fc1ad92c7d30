"""MetricTemplates, AlertProviders and the Secrets they name, kept current from the Kubernetes API.

The engine's adapters look objects up synchronously (``api.catalog.Catalog``) in the middle of a tick, so the
catalog answers from memory: ``start`` lists each kind once (the catalog is complete when it returns; a list
failing for a passing reason is tried again until it succeeds, as an informer waits for its sync) and then
follows a watch per kind, which resumes and relists by itself; a watch that fails outright is started again
after a pause that grows while it keeps failing (the cache's ``WATCH_RESTART``), so a long API outage leaves
the last known objects in place rather than none.

Secrets are not watched: that would hold every Secret of the cluster in memory and need list/watch on all of
them. Only the Secrets a template or provider names are read (``get``), when the referring object arrives and
again every ``secret_refresh`` seconds, so a rotated credential is picked up without a restart.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Iterable, Sequence
from typing import Any

import pydantic

from canaryflow.api.alertprovider import AlertProvider
from canaryflow.api.catalog import MemoryCatalog
from canaryflow.api.metrictemplate import MetricTemplate
from canaryflow.clock.backoff import Backoff
from canaryflow.kube import informer
from canaryflow.kube.api import WatchEvent
from canaryflow.kube.cache import WATCH_RESTART
from canaryflow.kube.client import ALERT_PROVIDER, METRIC_TEMPLATE, SECRET, Api, ApiError, Kind
from canaryflow.kube.errors import retryable

log = logging.getLogger(__name__)

Json = dict[str, Any]
Key = tuple[str, str]


class KubeCatalog(MemoryCatalog):
    """The in-memory catalog's tables, kept current from the API (lookups are ``MemoryCatalog``'s)."""

    def __init__(
        self,
        api: Api,
        namespaces: Sequence[str] = (),
        *,
        secret_refresh: float = 60.0,
        restart: Backoff = WATCH_RESTART,
    ) -> None:
        self.api = api
        #: Namespaces to watch; empty means all of them.
        self.namespaces: tuple[str | None, ...] = tuple(namespaces) or (None,)
        self.secret_refresh = secret_refresh
        self.restart = restart
        super().__init__()
        #: Why an object could not be used, by kind/namespace/name (shown in the canary's error).
        self.invalid: dict[str, str] = {}
        self._tasks: list[asyncio.Task[None]] = []

    # -- keeping current ----------------------------------------------------------------------------------------
    async def start(self) -> None:
        """List every kind once (the catalog is complete afterwards), then follow the changes.

        As an informer waits for its cache to sync, a list that fails for a passing reason (429, 5xx, no
        connection: still failing after the client's own retries) is tried again after a pause that grows; a
        refusal (403, 404: RBAC, a CRD not installed) is raised. A canary must not be analysed against a catalog
        missing its templates, and an operator must not exit because the API server was briefly unwell."""
        try:
            for kind in (METRIC_TEMPLATE, ALERT_PROVIDER):
                for namespace in self.namespaces:
                    for obj in await self._list(kind, namespace):
                        self.observe(kind, "ADDED", obj)
                    name = f"catalog watch {kind} {namespace}"
                    self._tasks.append(asyncio.create_task(self._follow(kind, namespace), name=name))
            await self.refresh_secrets()
            self._tasks.append(asyncio.create_task(self._refresh_forever(), name="catalog secrets"))
        except BaseException:
            await self.close()
            raise

    async def _list(self, kind: Kind, namespace: str | None) -> list[Json]:
        failures = 0
        while True:
            try:
                return await self.api.list(kind, namespace)
            except ApiError as exc:
                if exc.status and not retryable(exc.status):  # status 0: no connection, a passing reason too
                    raise
                failures += 1
                delay = self.restart.delay(failures)
                where = namespace or "all namespaces"
                log.warning("listing %s in %s failed, trying again in %.0fs: %s", kind, where, delay, exc)
                await asyncio.sleep(delay)

    async def close(self) -> None:
        tasks, self._tasks = self._tasks, []
        await informer.stop(tasks)

    def observe(self, kind: Kind, event_type: str, obj: Json) -> Key | None:
        """Apply one watch event to the cache; returns the key of a Secret the object needs, if any."""
        meta = obj.get("metadata") or {}
        key = (str(meta.get("namespace", "")), str(meta.get("name", "")))
        where = f"{kind.kind}/{key[0]}/{key[1]}"
        table: dict[Key, Any] = self.templates if kind == METRIC_TEMPLATE else self.providers
        if event_type == "DELETED":
            table.pop(key, None)
            self.invalid.pop(where, None)
            return None
        model: type[MetricTemplate] | type[AlertProvider] = MetricTemplate if kind == METRIC_TEMPLATE else AlertProvider
        try:
            parsed = model.model_validate(_without_status(obj), by_alias=True)
        except pydantic.ValidationError as exc:
            # An invalid object is not used at all: a canary naming it fails with "not found" plus this reason.
            table.pop(key, None)
            self.invalid[where] = str(exc)
            log.warning("%s is invalid and ignored: %s", where, exc)
            return None
        self.invalid.pop(where, None)
        table[key] = parsed
        return self._secret_ref(parsed)

    async def refresh_secrets(self, keys: Iterable[Key] | None = None) -> None:
        """Read the Secrets the known templates and providers name (or just ``keys``); forget unnamed ones."""
        wanted = set(self._referenced()) if keys is None else set(keys)
        for namespace, name in sorted(wanted):
            try:
                found = await self.api.get(SECRET, namespace, name)
            except ApiError as exc:
                log.warning("secret %s/%s not read (the last known data stays in use): %s", namespace, name, exc)
                continue
            if found is None:
                self.secrets.pop((namespace, name), None)
            else:
                self.secrets[(namespace, name)] = decode_secret(found)
        if keys is None:
            for stale in set(self.secrets) - wanted:
                del self.secrets[stale]

    def _referenced(self) -> list[Key]:
        refs = [self._secret_ref(t) for t in self.templates.values()]
        refs += [self._secret_ref(p) for p in self.providers.values()]
        return [r for r in refs if r is not None]

    @staticmethod
    def _secret_ref(obj: MetricTemplate | AlertProvider) -> Key | None:
        ref = obj.spec.provider.secret_ref if isinstance(obj, MetricTemplate) else obj.spec.secret_ref
        return (obj.metadata.namespace, ref.name) if ref is not None else None

    async def _follow(self, kind: Kind, namespace: str | None) -> None:
        async def handle(event: WatchEvent) -> None:
            if event.type not in ("ADDED", "MODIFIED", "DELETED"):
                return
            needed = self.observe(kind, event.type, event.object)
            if needed is not None and needed not in self.secrets:
                await self.refresh_secrets([needed])

        def lost(exc: Exception | None, delay: float, failures: int) -> None:
            # The watch gave up: keep the cache, start over after a pause.
            if exc is not None:
                log.warning("watch of %s in %s failed, restarting: %s", kind, namespace or "all namespaces", exc)

        await informer.follow(self.api, kind, namespace, handle, lost, self.restart)

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.secret_refresh)
            try:
                await self.refresh_secrets()
            except Exception:  # a refresh that fails keeps the old data; the next one tries again
                log.exception("refreshing secrets failed")


def decode_secret(secret: Json) -> dict[str, str]:
    """A Secret's ``data`` (base64) and ``stringData`` as text, as the Catalog protocol hands them out."""
    out = {key: base64.b64decode(value).decode() for key, value in (secret.get("data") or {}).items()}
    out.update({key: str(value) for key, value in (secret.get("stringData") or {}).items()})
    return out


def _without_status(obj: Json) -> Json:
    return {key: value for key, value in obj.items() if key != "status"}
