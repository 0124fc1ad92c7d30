"""The one Kubernetes client every ``canaryflow.kube`` module uses.

``Api`` is the small protocol the operator, workloads, router and status store are written against; ``KubeApi``
implements it over kubernetes_asyncio's generic ``ApiClient`` (auth, TLS and token refresh from a kubeconfig or the
in-cluster service account) without its per-kind typed APIs, so any group/version/plural works, CRDs included.

Errors keep the API server's ``Status`` reason and message, and name the request that failed. 429, 5xx and
connection errors are retried with capped exponential backoff; 404/409/422 are raised at once because only the
caller knows whether to re-read, give up or report.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any

import aiohttp
from kubernetes_asyncio.client import ApiClient, Configuration
from kubernetes_asyncio.config import ConfigException, load_incluster_config, load_kube_config

from canaryflow.clock import Clock, SystemClock
from canaryflow.clock.backoff import Backoff
from canaryflow.kube.api import Api, Json, JsonList, PatchType, WatchEvent
from canaryflow.kube.errors import (
    CONNECTION_ERRORS,
    ApiError,
    ConfigError,
    Conflict,
    Invalid,
    NotFound,
    error_from_response,
    retryable,
)
from canaryflow.kube.kinds import (
    ALERT_PROVIDER,
    CANARY,
    CONFIGMAP,
    DAEMONSET,
    DEPLOYMENT,
    DESTINATION_RULE,
    EVENT,
    HPA,
    LEASE,
    METRIC_TEMPLATE,
    NAMESPACE,
    SECRET,
    SERVICE,
    VIRTUAL_SERVICE,
    Kind,
)
from canaryflow.kube.watch import list_and_watch

__all__ = [
    "ALERT_PROVIDER",
    "CANARY",
    "CONFIGMAP",
    "DAEMONSET",
    "DEPLOYMENT",
    "DESTINATION_RULE",
    "EVENT",
    "HPA",
    "LEASE",
    "METRIC_TEMPLATE",
    "NAMESPACE",
    "SECRET",
    "SERVICE",
    "VIRTUAL_SERVICE",
    "Api",
    "ApiError",
    "ConfigError",
    "Conflict",
    "Invalid",
    "Kind",
    "KubeApi",
    "NotFound",
    "PatchType",
    "Retry",
    "WatchEvent",
]

Sleep = Callable[[float], Awaitable[None]]

_PATCH_CONTENT_TYPES: dict[str, str] = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
}
APPLY_CONTENT_TYPE = "application/apply-patch+yaml"
USER_AGENT = "canaryflow"
#: Waits between attempts at an API call that met 429, 5xx or a connection error.
API_RETRY = Backoff(first=0.2, cap=5.0)


@dataclasses.dataclass(frozen=True, slots=True)
class Retry:
    """How often and how patiently to retry 429, 5xx and connection errors.

    ``attempts`` counts every try (1 = no retries); the n-th retry waits ``backoff.delay(n)`` seconds, or the
    server's ``Retry-After`` when it sends one (still capped).
    """

    attempts: int = 5
    backoff: Backoff = API_RETRY

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"Retry needs attempts >= 1, got {self}")

    def delay(self, retry: int) -> float:
        return self.backoff.delay(retry)


def _object_address(kind: Kind, body: Mapping[str, Any]) -> tuple[str | None, str]:
    meta = body.get("metadata") or {}
    name = meta.get("name")
    if not name:
        raise ValueError(f"{kind.kind}: metadata.name is required")
    namespace = meta.get("namespace") if kind.namespaced else None
    if kind.namespaced and not namespace:
        raise ValueError(f"{kind.kind} {name}: metadata.namespace is required (the kind is namespaced)")
    return namespace, str(name)


def _reload_every(loader: Any, interval: float) -> Callable[[Configuration], Awaitable[None]]:
    """A ``refresh_api_key_hook`` (called before each request) reloading kubeconfig credentials when due."""
    due = asyncio.get_running_loop().time() + interval

    async def reload(configuration: Configuration) -> None:
        nonlocal due
        now = asyncio.get_running_loop().time()
        if now >= due:
            due = now + interval
            await loader.load_and_set(configuration)

    return reload


class KubeApi:
    """``Api`` over kubernetes_asyncio's ``ApiClient``: one HTTP session, retries, watches with resume."""

    def __init__(
        self,
        configuration: Configuration,
        *,
        retry: Retry | None = None,
        clock: Clock | None = None,
        timeout: float = 30.0,
        watch_timeout: int = 290,
    ) -> None:
        self._configuration = configuration
        self._retry = retry or Retry()
        self._sleep: Sleep = (clock or SystemClock()).sleep
        self._timeout = timeout
        self.watch_timeout = watch_timeout  # seconds a watch stream lasts before the server ends it cleanly
        self._client: ApiClient | None = None  # created on first use: aiohttp wants a running loop
        self._kinds: dict[tuple[str, str], Kind] = {}

    @classmethod
    async def connect(
        cls, *, context: str | None = None, retry: Retry | None = None, credential_refresh: float = 60.0
    ) -> KubeApi:
        """Credentials from ``$KUBECONFIG`` (read now, not at import) or ``~/.kube/config``, else in-cluster.

        Kubeconfig credentials are reloaded at most every ``credential_refresh`` seconds, so tokens from exec
        plugins (EKS, GKE, OIDC helpers) are renewed for a long-running operator; kubernetes_asyncio only
        renews the in-cluster service-account token by itself.
        """
        configuration = Configuration()
        paths = os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
        present = any(os.path.exists(p) for p in paths.split(os.pathsep) if p)
        if present or context is not None:
            try:
                loader = await load_kube_config(config_file=paths, context=context, client_configuration=configuration)
            except ConfigException as exc:
                raise ConfigError(f"kubeconfig {paths}: {exc}") from exc
            configuration.refresh_api_key_hook = _reload_every(loader, credential_refresh)
        else:
            try:
                load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            except ConfigException as exc:
                raise ConfigError(f"no kubeconfig at {paths} and not running in a cluster: {exc}") from exc
        return cls(configuration, retry=retry)

    @classmethod
    def for_url(
        cls, url: str, *, retry: Retry | None = None, clock: Clock | None = None, watch_timeout: int = 290
    ) -> KubeApi:
        """A plain-HTTP API server without auth (tests: the emulator)."""
        return cls(Configuration(host=url.rstrip("/")), retry=retry, clock=clock, watch_timeout=watch_timeout)

    async def __aenter__(self) -> KubeApi:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    # --- requests ---------------------------------------------------------------------------------------------

    def _api_client(self) -> ApiClient:
        if self._client is None:
            self._client = ApiClient(self._configuration)
            self._client.user_agent = USER_AGENT  # the API server names our Update field manager after it
        return self._client

    async def _send(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, str]],
        body: Any,
        content_type: str | None,
        timeout: float | None,
    ) -> aiohttp.ClientResponse:
        headers = {"Accept": "application/json"}
        if content_type is not None:
            headers["Content-Type"] = content_type
        response: aiohttp.ClientResponse = await self._api_client().call_api(
            path,
            method,
            query_params=list(query),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
            _preload_content=False,
            _request_timeout=timeout,
        )
        return response

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: Any = None,
        content_type: str | None = None,
    ) -> Json:
        """One API call with the retry policy; the decoded JSON answer, or the mapped ``ApiError``."""
        what = f"{method} {path}"
        retry = 0
        while True:
            retry += 1
            try:
                response = await self._send(method, path, query, body, content_type, self._timeout)
                async with response:
                    data = await response.read()
                    status = response.status
                    retry_after = response.headers.get("Retry-After")
            except CONNECTION_ERRORS as exc:
                if retry >= self._retry.attempts:
                    raise ApiError(0, "ConnectionError", f"{what}: {exc!r}") from exc
                await self._sleep(self._retry.delay(retry))
                continue
            if status < 400:
                try:
                    decoded = json.loads(data) if data else {}
                except ValueError:
                    raise ApiError(status, "BadResponse", f"{what}: the answer is not JSON: {data[:200]!r}") from None
                return decoded if isinstance(decoded, dict) else {"items": decoded}
            error = error_from_response(status, data, what)
            if not retryable(status) or retry >= self._retry.attempts:
                raise error
            delay = self._retry.delay(retry)
            if retry_after is not None and retry_after.isdigit():
                delay = min(self._retry.backoff.cap, float(retry_after))
            await self._sleep(delay)

    # --- the Api methods --------------------------------------------------------------------------------------

    async def get(self, kind: Kind, namespace: str | None, name: str) -> Json | None:
        try:
            return await self.request("GET", kind.path(namespace, name))
        except NotFound:
            return None

    async def list(self, kind: Kind, namespace: str | None = None, *, labels: str | None = None) -> JsonList:
        items, _ = await self.list_with_version(kind, namespace, labels=labels)
        return items

    async def list_with_version(
        self, kind: Kind, namespace: str | None = None, *, labels: str | None = None, fields: str | None = None
    ) -> tuple[JsonList, str]:
        """The items (with ``apiVersion``/``kind`` filled in, as lists omit them) and the list's resourceVersion."""
        query = [("labelSelector", labels)] if labels else []
        if fields:
            query.append(("fieldSelector", fields))
        doc = await self.request("GET", kind.path(namespace), query=query)
        items = [{"apiVersion": kind.api_version, "kind": kind.kind, **item} for item in doc.get("items") or []]
        return items, str((doc.get("metadata") or {}).get("resourceVersion") or "")

    async def create(self, kind: Kind, body: Mapping[str, Any]) -> Json:
        meta = body.get("metadata") or {}
        namespace = meta.get("namespace") if kind.namespaced else None
        if kind.namespaced and not namespace:
            raise ValueError(f"{kind.kind}: metadata.namespace is required to create (the kind is namespaced)")
        return await self.request("POST", kind.path(namespace), body=self._typed(kind, body))

    async def replace(self, kind: Kind, body: Mapping[str, Any]) -> Json:
        namespace, name = _object_address(kind, body)
        return await self.request("PUT", kind.path(namespace, name), body=self._typed(kind, body))

    async def replace_status(self, kind: Kind, body: Mapping[str, Any]) -> Json:
        namespace, name = _object_address(kind, body)
        return await self.request("PUT", kind.path(namespace, name, "status"), body=self._typed(kind, body))

    async def patch(
        self, kind: Kind, namespace: str | None, name: str, patch: Any, *, type: PatchType = "merge"
    ) -> Json:
        content_type = _PATCH_CONTENT_TYPES[type]
        return await self.request("PATCH", kind.path(namespace, name), body=patch, content_type=content_type)

    async def patch_status(
        self, kind: Kind, namespace: str | None, name: str, patch: Any, *, type: PatchType = "merge"
    ) -> Json:
        content_type = _PATCH_CONTENT_TYPES[type]
        path = kind.path(namespace, name, "status")
        return await self.request("PATCH", path, body=patch, content_type=content_type)

    async def apply(
        self,
        kind: Kind,
        body: Mapping[str, Any],
        *,
        manager: str = "canaryflow",
        force: bool = True,
        dry_run: bool = False,
    ) -> Json:
        """Server-side apply: the server merges the fields ``manager`` owns and records it in managedFields."""
        namespace, name = _object_address(kind, body)
        query = [("fieldManager", manager)]
        if force:
            query.append(("force", "true"))
        if dry_run:
            query.append(("dryRun", "All"))
        return await self.request(
            "PATCH",
            kind.path(namespace, name),
            query=query,
            body=self._typed(kind, body),
            content_type=APPLY_CONTENT_TYPE,
        )

    async def delete(self, kind: Kind, namespace: str | None, name: str) -> bool:
        try:
            await self.request("DELETE", kind.path(namespace, name), query=[("propagationPolicy", "Background")])
        except NotFound:
            return False
        return True

    def watch(
        self, kind: Kind, namespace: str | None = None, *, labels: str | None = None
    ) -> AsyncIterator[WatchEvent]:
        return list_and_watch(self, kind, namespace, labels=labels)

    async def discover(self, api_version: str, kind: str) -> Kind:
        """The served resource for ``apiVersion``/``kind`` from API discovery (cached per client)."""
        key = (api_version, kind)
        if key not in self._kinds:
            path = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
            try:
                doc = await self.request("GET", path)
            except NotFound:
                raise NotFound(404, "NotFound", f"API version {api_version} is not served") from None
            for resource in doc.get("resources") or []:
                if "/" not in resource["name"]:
                    found = Kind(api_version, resource["kind"], resource["name"], bool(resource.get("namespaced")))
                    self._kinds[(api_version, found.kind)] = found
            if key not in self._kinds:
                raise NotFound(404, "NotFound", f"API version {api_version} serves no kind {kind}")
        return self._kinds[key]

    # --- helpers ----------------------------------------------------------------------------------------------

    @staticmethod
    def _typed(kind: Kind, body: Mapping[str, Any]) -> Json:
        """The body with apiVersion/kind set: the server rejects objects without them."""
        return {**body, "apiVersion": body.get("apiVersion") or kind.api_version, "kind": body.get("kind") or kind.kind}

    @property
    def retry(self) -> Retry:
        return self._retry

    @property
    def sleep(self) -> Sleep:
        return self._sleep

    async def open_stream(self, path: str, query: Sequence[tuple[str, str]]) -> aiohttp.ClientResponse:
        """A streaming GET (watch): the caller reads lines and closes the response."""
        return await self._send("GET", path, query, None, None, None)
