"""``RealisticEmulator``: kmock's Kubernetes emulator with the API server semantics operators rely on.

kmock supplies the request handling protocol and the resource registry (``.resources``); this class serves every
``/api`` and ``/apis`` path itself (routing, CRUD, patches, server-side apply, watches, discovery) and hands all
other paths to kmock (``/version``, ``/``, and reactions a test adds with kmock's DSL — which therefore do not
apply to API paths: inject failures there with ``fail_next``). It records every API request (``.recorded``) and
can cut watch streams (``break_watches``) and compact its change log (``compact``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
from typing import Any

import aiohttp.web
import attrs
import kmock
import yaml

from tests.kube.emulator import discovery, watching
from tests.kube.emulator.crud import Target
from tests.kube.emulator.failure import Failure
from tests.kube.emulator.operations import Operations
from tests.kube.emulator.resources import register_all, resolve
from tests.kube.emulator.store import Store

Json = dict[str, Any]
REASONS = {
    400: "BadRequest",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Gone",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


@dataclasses.dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    content_type: str | None
    body: Any
    headers: dict[str, str] = dataclasses.field(default_factory=dict, repr=False)


@dataclasses.dataclass
class _Fault:
    method: str
    prefix: str
    status: int
    times: int


def status_response(status: int, reason: str, message: str, details: Json | None = None) -> aiohttp.web.Response:
    doc = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": status,
    }
    if details:
        doc["details"] = details
    headers = {"Retry-After": "1"} if status == 429 else None
    return aiohttp.web.json_response(doc, status=status, headers=headers)


def _parse_body(raw: bytes, content_type: str) -> Any:
    if not raw:
        return None
    try:
        if content_type == "application/apply-patch+yaml":
            return yaml.safe_load(raw)
        return json.loads(raw)
    except (ValueError, yaml.YAMLError) as exc:
        raise Failure(400, "BadRequest", f"the body of the request could not be decoded: {exc}") from exc


@attrs.define(kw_only=True)
class RealisticEmulator(kmock.KubernetesEmulator):
    strict_namespaces: bool = False  # True: creating in a namespace that does not exist is 404, as on a cluster
    store: Store = attrs.field(factory=Store, init=False)
    recorded: list[RecordedRequest] = attrs.field(factory=list, init=False)
    _faults: list[_Fault] = attrs.field(factory=list, init=False)
    _faults_lock: threading.Lock = attrs.field(factory=threading.Lock, init=False)
    _watches: set[watching.OpenWatch] = attrs.field(factory=set, init=False)
    _loop: asyncio.AbstractEventLoop | None = attrs.field(default=None, init=False)
    _wakeup: asyncio.Future[None] | None = attrs.field(default=None, init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        register_all(self.resources)

    async def __aenter__(self) -> RealisticEmulator:
        self._loop = asyncio.get_running_loop()
        await super().__aenter__()
        return self

    # --- test controls (callable from any thread) ---------------------------------------------------------------

    def fail_next(self, method: str, path_prefix: str, status: int, times: int = 1) -> None:
        """The next ``times`` requests with this method ("*": any) under ``path_prefix`` get ``status``
        (0: the connection is dropped without an answer).

        The prefix is matched against the path with its query string, so ``"/api/v1/pods?watch"`` fails only
        watch requests while lists of the same path still succeed.
        """
        with self._faults_lock:
            self._faults.append(_Fault(method.upper(), path_prefix, status, times))

    def break_watches(self) -> None:
        """Cut every open watch connection mid-stream, as a network failure or an API server restart would."""

        def abort() -> None:
            for handle in list(self._watches):
                handle.abort()
            self._wakeup = asyncio.ensure_future(self.store.wake())  # the streams notice at once, not at their tick

        self._call_in_loop(abort)

    def compact(self) -> None:
        """Forget the change log (etcd compaction): resuming a watch from an older version gets 410 Gone."""
        self._call_in_loop(self.store.compact)

    @property
    def objects(self) -> Any:
        raise AttributeError(
            "RealisticEmulator keeps objects in .store (by group, plural, namespace, name); read them over the API"
        )

    @property
    def open_watches(self) -> int:
        return len(self._watches)

    def _call_in_loop(self, fn: Any) -> None:
        loop = self._loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None or running is loop or loop.is_closed():
            fn()
            return
        done = threading.Event()

        def call() -> None:
            try:
                fn()
            finally:
                done.set()

        loop.call_soon_threadsafe(call)
        done.wait(5)

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        with self._faults_lock:
            for fault in self._faults:
                if fault.method in ("*", method) and path.startswith(fault.prefix):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    # --- serving ------------------------------------------------------------------------------------------------

    async def __call__(self, raw: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        """Serve ``/api`` and ``/apis`` here; everything else goes to kmock (its parser mis-reads some API paths)."""
        parts = [part for part in raw.path.split("/") if part]
        if not parts or parts[0] not in ("api", "apis"):
            return await super().__call__(raw)
        method, params = raw.method.upper(), dict(raw.query)
        content_type = (raw.headers.get("Content-Type") or "").split(";")[0].strip() or None
        data = await raw.read()
        try:
            body = _parse_body(data, content_type or "")
        except Failure as failure:
            self.recorded.append(RecordedRequest(method, raw.path, params, content_type, data, dict(raw.headers)))
            return status_response(failure.status, failure.reason, failure.message)
        self.recorded.append(RecordedRequest(method, raw.path, params, content_type, body, dict(raw.headers)))
        fault = self._take_fault(method, f"{raw.path}?{raw.query_string}" if raw.query_string else raw.path)
        if fault is not None and fault.status == 0 and raw.transport is not None:
            raw.transport.close()  # a dropped connection: the client sees no response at all
            return aiohttp.web.Response(status=503)
        if fault is not None:
            message = f"injected failure for {method} {raw.path}"
            return status_response(fault.status, REASONS.get(fault.status, "Failure"), message)
        try:
            return await self._serve(method, parts, params, content_type, body, raw)
        except Failure as failure:
            return status_response(failure.status, failure.reason, failure.message, failure.details)

    def _discovery(self, parts: list[str], host: str) -> Json | None:
        """/api, /api/v1, /apis, /apis/<group>: the documents clients read before anything else."""
        if parts == ["api"]:
            return discovery.api_versions(host)
        if parts[0] == "api":
            return discovery.resource_list(self.resources, "", parts[1])
        if parts == ["apis"]:
            return discovery.group_list(self.resources)
        return discovery.group(self.resources, parts[1])

    async def _serve(
        self,
        method: str,
        parts: list[str],
        params: dict[str, str],
        content_type: str | None,
        body: Any,
        raw: aiohttp.web.BaseRequest,
    ) -> aiohttp.web.StreamResponse:
        not_found = Failure(404, "NotFound", "the server could not find the requested resource")
        if len(parts) < (2 if parts[0] == "api" else 3) or (parts[0] == "api" and len(parts) == 2):
            if method != "GET":
                raise Failure(
                    405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
                )
            doc = self._discovery(parts, raw.host)
            if doc is None:
                raise not_found
            return aiohttp.web.json_response(doc)
        group, version, rest = ("", parts[1], parts[2:]) if parts[0] == "api" else (parts[1], parts[2], parts[3:])
        if not rest:
            doc = discovery.resource_list(self.resources, group, version)
            if doc is None:
                raise not_found
            return aiohttp.web.json_response(doc)
        namespace: str | None = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            candidate = resolve(self.resources, group, version, rest[2])
            if candidate is not None and candidate.namespaced:
                namespace, rest = rest[1], rest[2:]
        if len(rest) > 3:
            raise not_found
        resource = resolve(self.resources, group, version, rest[0])
        if resource is None or (namespace is not None and not resource.namespaced):
            raise not_found
        name = rest[1] if len(rest) > 1 else None
        subresource = rest[2] if len(rest) > 2 else None
        if subresource is not None and subresource not in resource.subresources:
            raise not_found
        if subresource not in (None, "status"):
            raise Failure(404, "NotFound", f"subresource {subresource!r} is not emulated")
        target = Target(resource, namespace, name, subresource)
        operations = Operations(self.store, target, params, raw.headers.get("User-Agent") or "unknown")
        if method == "GET" and params.get("watch") in ("true", "1"):
            return await watching.serve(self.store, target, params, raw, operations.watch_filter(), self._watches)
        if operations.namespace_missing(method, self.strict_namespaces):
            raise Failure(404, "NotFound", f'namespaces "{namespace}" not found')
        status, doc = await operations.dispatch(method, content_type, body)
        return aiohttp.web.json_response(doc, status=status)
