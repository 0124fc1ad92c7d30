"""Parts of bench/chaos_operator.py: the emulated API server with chaos, its complete write record, and the
final comparison with ``canaryflow kube render``.

``ChaosEmulator`` is the tests' realistic emulator (tests/kube/emulator) with two changes, both on this side of
the HTTP connection so the operator sees nothing but a misbehaving API server:

- faults (``fail_next``: 409, 429, 500, a dropped connection; 504 answered only after a stall, as an API server
  whose request timed out) hit the operator's requests only: the bench's own clients (the Deployment
  controller it plays, the user bumping images) send ``BENCH_AGENT`` as their User-Agent and are exempt, and
  every fault actually served is counted by status;
- its store (``RecordingStore``) keeps every version of the Canaries, Deployments, VirtualServices and Events
  ever written, with the write's revision, beyond the change log's size and across compactions: the checks
  read this record, not the operator.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import dataclasses
import random
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp.web
import attrs
import yaml

from canaryflow.kube.client import CANARY, DEPLOYMENT, KubeApi

sys.path.append(str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _chaos_operator_checks import Version, spec_differences
from tests.kube.emulator import RealisticEmulator
from tests.kube.emulator.core import RecordedRequest, _Fault
from tests.kube.emulator.store import StorageKey, Store

Json = dict[str, Any]
BENCH_AGENT = "canaryflow-chaos-bench"
#: What the record keeps: (group, plural) of the kinds the checks read.
RECORDED: frozenset[StorageKey] = frozenset(
    {("flagger.app", "canaries"), ("apps", "deployments"), ("networking.istio.io", "virtualservices"), ("", "events")}
)
#: Fault statuses injected, by what they stand for (0: the connection dropped without an answer).
FAULTS = {"conflict": 409, "throttled": 429, "internal": 500, "timeout": 504, "dropped": 0}
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_exempt: contextvars.ContextVar[bool] = contextvars.ContextVar("exempt", default=False)
_stall: contextvars.ContextVar[bool] = contextvars.ContextVar("stall", default=False)


class RecordingStore(Store):
    """The emulator's store, also keeping every version of the RECORDED kinds (thread-safe to read)."""

    def __init__(self) -> None:
        super().__init__()
        self.history: dict[StorageKey, list[Version]] = {key: [] for key in RECORDED}
        self._lock = threading.Lock()

    async def record(self, storage: StorageKey, type: str, obj: Json, previous: Json | None = None) -> None:
        if storage in RECORDED and type != "DELETED":
            with self._lock:
                self.history[storage].append(Version(int(obj["metadata"]["resourceVersion"]), copy.deepcopy(obj)))
        await super().record(storage, type, obj, previous)

    def versions(self, storage: StorageKey, name: str | None = None) -> list[Version]:
        """Every recorded version (of object ``name``), oldest first."""
        return [v for v in self.tail(storage, 0)[0] if name is None or v.obj["metadata"]["name"] == name]

    def tail(self, storage: StorageKey, start: int) -> tuple[list[Version], int]:
        """The versions of a kind recorded from the ``start``-th on, and where the next tail starts."""
        with self._lock:
            found = self.history[storage][start:]
        return found, start + len(found)


@attrs.define(kw_only=True)
class ChaosEmulator(RealisticEmulator):
    """The realistic emulator; faults reach only clients other than the bench's, and are counted when served."""

    store: Store = attrs.field(factory=RecordingStore, init=False)
    served: Counter[int] = attrs.field(factory=Counter, init=False)
    stall: float = 1.0  # seconds a "timeout" fault holds the request before its 504

    async def __call__(self, raw: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        _exempt.set(raw.headers.get("User-Agent") == BENCH_AGENT)  # each request is served in its own task
        _stall.set(False)
        response = await super().__call__(raw)
        if _stall.get():
            await asyncio.sleep(self.stall)
        return response

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        if _exempt.get():
            return None
        fault = super()._take_fault(method, path)
        if fault is not None:
            with self._faults_lock:
                self.served[fault.status] += 1
            _stall.set(fault.status == 504)
        return fault

    def clear_faults(self) -> int:
        """Drop the faults no request has taken yet; how many there were."""
        with self._faults_lock:
            left = sum(f.times for f in self._faults)
            self._faults.clear()
        return left

    @property
    def record(self) -> RecordingStore:
        assert isinstance(self.store, RecordingStore)
        return self.store


class BenchApi(KubeApi):
    """The bench's own API client: exempt from the faults (its User-Agent says who it is)."""

    def _api_client(self) -> Any:
        client = super()._api_client()
        client.user_agent = BENCH_AGENT
        return client


@dataclasses.dataclass(frozen=True)
class Fault:
    what: str
    method: str
    prefix: str
    times: int


def random_fault(rng: random.Random, recent: Sequence[RecordedRequest]) -> Fault:
    """A fault on the operator's next 1-6 requests of one kind it recently sent (method and resource path, any
    object), drawn among the distinct kinds of request so rare writes are hit as often as frequent reads."""
    seen = sorted({(r.method, _resource_path(r.path)) for r in recent if r.headers.get("User-Agent") != BENCH_AGENT})
    method, prefix = rng.choice(seen) if seen else ("*", "/api")
    kinds = sorted(FAULTS) if method in WRITES else sorted(set(FAULTS) - {"conflict"})  # a read never conflicts
    return Fault(rng.choice(kinds), method, prefix, rng.randint(1, 6))


def _resource_path(path: str) -> str:
    """The path up to the resource's plural: ``/apis/g/v/namespaces/ns/canaries/x/status`` -> ``.../canaries``."""
    parts = path.strip("/").split("/")
    base = 2 if parts[0] == "api" else 3
    if len(parts) > base + 1 and parts[base] == "namespaces":
        base += 2
    return "/" + "/".join(parts[: base + 1])


def inject(emulator: ChaosEmulator, fault: Fault) -> None:
    emulator.fail_next(fault.method, fault.prefix, FAULTS[fault.what], fault.times)


# -- the final state against canaryflow kube render -------------------------------------------------------------
async def final_differences(api: KubeApi, canary_doc: Json, target_doc: Json, phase: str) -> tuple[list[str], int]:
    """What differs between the live objects and what ``canaryflow kube render`` prints for ``canary_doc`` (the
    Canary as applied, with its live uid) and ``target_doc`` (the target as the primary should now run it), at
    rest in ``phase``; and how many objects were compared."""
    with tempfile.TemporaryDirectory() as tmp:
        manifests = Path(tmp) / "manifests.yaml"
        manifests.write_text(yaml.safe_dump_all([canary_doc, target_doc]))
        command = [str(Path(sys.executable).with_name("canaryflow")), "kube", "render", "-f", str(manifests)]
        done = await asyncio.to_thread(
            subprocess.run, [*command, "--phase", phase], capture_output=True, text=True, timeout=120, check=False
        )
    if done.returncode != 0:
        return [f"canaryflow kube render failed ({done.returncode}): {done.stderr.strip()}"], 0
    expected = [doc for doc in yaml.safe_load_all(done.stdout) if doc]
    namespace = canary_doc["metadata"]["namespace"]
    problems = []
    for obj in expected:
        kind = _kind(obj)
        live = await api.get(kind, namespace, obj["metadata"]["name"])
        problems.extend(spec_differences(obj, live))
    target = await api.get(DEPLOYMENT, namespace, target_doc["metadata"]["name"])
    if target is None or target["spec"].get("replicas") != 0:
        problems.append(f"Deployment {target_doc['metadata']['name']}: the target is not scaled to zero at rest")
    return problems, len(expected) + 1


def _kind(obj: Json) -> Any:
    from canaryflow.kube import kinds

    for kind in (kinds.SERVICE, kinds.DEPLOYMENT, kinds.VIRTUAL_SERVICE, kinds.DESTINATION_RULE, kinds.HPA):
        if (kind.api_version, kind.kind) == (obj["apiVersion"], obj["kind"]):
            return kind
    raise ValueError(f"render printed a {obj['apiVersion']} {obj['kind']}, which this bench does not compare")


async def live_canary(api: KubeApi, namespace: str, name: str) -> Json:
    found = await api.get(CANARY, namespace, name)
    assert found is not None, f"canary {namespace}/{name} is gone"
    return found
