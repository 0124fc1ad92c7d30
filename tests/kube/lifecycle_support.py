"""Support for the operator tests: manifests, a stand-in for the Deployment controller, fixed metrics, and an
operator instance run in the test's event loop against the emulated API server (over HTTP, with its own client).

The Deployment controller is the one part of a cluster the operator relies on that the emulator does not run:
``Rollouts`` plays it the way Flagger's own tests do, by writing each Deployment's status as a finished rollout
of its current spec (observedGeneration = generation, every replica updated and available).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime
import functools
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import jsonschema  # type: ignore[import-untyped]
import yaml

from canaryflow.api.canary import Canary, CanaryMetric
from canaryflow.control.scheduler import Timing
from canaryflow.hooks.memory import MemoryHookRunner
from canaryflow.kube.client import (
    CANARY,
    DAEMONSET,
    DEPLOYMENT,
    EVENT,
    NAMESPACE,
    Api,
    ApiError,
    Conflict,
    Kind,
    KubeApi,
    Retry,
)
from canaryflow.kube.runtime import OperatorOptions, OperatorRuntime
from tests.kube import schemas
from tests.polling import until, wait_for

Json = dict[str, Any]
T = TypeVar("T")
FLAGGER_CRD = Path(__file__).resolve().parents[1] / "fixtures" / "flagger-crd" / "crd.yaml"
#: Every analysis interval becomes 0.1 s: a 10 s interval scaled by 0.01.
FAST = Timing(scale=0.01, min_interval=10.0)


# -- manifests ------------------------------------------------------------------------------------------------
def deployment_doc(name: str = "podinfo", namespace: str = "test", image: str = "ghcr.io/stefanprodan/podinfo:6.0.0",
                   replicas: int = 2) -> Json:  # fmt: skip
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(labels)},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {"containers": [{"name": name, "image": image, "ports": [{"containerPort": 9898}]}]},
            },
        },
    }


def canary_doc(name: str = "podinfo", namespace: str = "test", target: str | None = None, **analysis: Any) -> Json:
    analysis = {"interval": "10s", "threshold": 2, "maxWeight": 30, "stepWeight": 10,
                "metrics": [{"name": "request-success-rate", "interval": "1m",
                             "thresholdRange": {"min": 99}}], **analysis}  # fmt: skip
    extra = analysis.pop("spec", {})
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target or name},
            "service": {"port": 9898},
            "analysis": analysis,
            **extra,
        },
    }


async def ensure_namespace(api: Api, name: str) -> None:
    with contextlib.suppress(Conflict):
        await api.create(NAMESPACE, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


# -- validation -------------------------------------------------------------------------------------------------
def validate(obj: Json) -> None:
    schemas.validate(obj)


# jsonschema checks "date-time" only with an optional package installed: check it here, as the API server does.
_DATE_TIME = jsonschema.FormatChecker(formats=())


@_DATE_TIME.checks("date-time", raises=ValueError)
def _rfc3339(value: object) -> bool:
    if isinstance(value, str):
        datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        if "T" not in value:
            raise ValueError(f"{value!r} is no RFC 3339 date-time")
    return True


@functools.cache
def _flagger_status_validator() -> Any:
    for doc in yaml.safe_load_all(FLAGGER_CRD.read_text()):
        if doc and doc.get("kind") == "CustomResourceDefinition" and doc["spec"]["names"]["kind"] == "Canary":
            schema = doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
            return jsonschema.Draft7Validator(schema, format_checker=_DATE_TIME)
    raise AssertionError("Flagger's CRD file holds no Canary")


def validate_canary_status(status: Json) -> None:
    """Raise if Flagger's CRD would refuse the status (wrong types, unknown phase, a malformed timestamp)."""
    _flagger_status_validator().validate(status)


# -- the cluster around the operator ----------------------------------------------------------------------------
class Rollouts:
    """Plays the Deployment controller: every Deployment's status soon reports its spec fully rolled out."""

    def __init__(self, api: Api, namespace: str) -> None:
        self.api = api
        self.namespace = namespace
        self.held: set[str] = set()  # Deployments left unready (a canary that never becomes ready)
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Rollouts:
        self._task = asyncio.create_task(self._run(), name="deployment controller")
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(ApiError):
                for item in await self.api.list(DEPLOYMENT, self.namespace):
                    if item["metadata"]["name"] in self.held:
                        continue
                    replicas = int(item["spec"].get("replicas", 1))
                    status = {"observedGeneration": item["metadata"].get("generation", 1), "replicas": replicas,
                              "updatedReplicas": replicas, "readyReplicas": replicas,
                              "availableReplicas": replicas}  # fmt: skip
                    if replicas == 0:
                        status = {"observedGeneration": status["observedGeneration"]}
                    if item.get("status") != status:
                        with contextlib.suppress(ApiError):
                            await self.api.replace_status(DEPLOYMENT, {**item, "status": status})
            await asyncio.sleep(0.05)


class FixedMetrics:
    """A metrics runner answering each metric by name from a table the test changes at will."""

    def __init__(self, values: Mapping[str, float] | None = None) -> None:
        self.values = dict(values or {"request-success-rate": 99.9, "request-duration": 100.0})
        self.measured: list[str] = []

    async def measure(self, canary: Canary, metric: CanaryMetric) -> float:
        self.measured.append(metric.name)
        return self.values[metric.name]

    async def check_providers(self, canary: Canary) -> list[str]:
        return []


@contextlib.asynccontextmanager
async def operator(
    url: str,
    *,
    metrics: FixedMetrics | None = None,
    hooks: MemoryHookRunner | None = None,
    peering: str | None = None,
    priority: int | None = None,
    namespaces: tuple[str, ...] = (),
    options: Mapping[str, Any] | None = None,
    retry: Retry | None = None,
    **kwargs: Any,
) -> AsyncIterator[OperatorRuntime]:
    """An operator (its own API client, kopf in this loop, real Kube adapters) until the block ends; ``options``
    are more OperatorOptions (the command's flags), ``retry`` its client's retry policy (the client's default
    when None), ``kwargs`` adapters to use instead of the real ones."""
    chosen = OperatorOptions(namespaces=namespaces, peering=peering, listen="127.0.0.1:0", server=url,
                             priority=priority, timing=FAST, **(options or {}))  # fmt: skip
    api = KubeApi.for_url(url, retry=retry)
    runtime = OperatorRuntime(chosen, api=api, metrics=metrics or FixedMetrics(), hooks=hooks or MemoryHookRunner(),
                              **kwargs)  # fmt: skip
    fast(runtime)
    stop, ready = asyncio.Event(), asyncio.Event()
    await runtime.start()
    task = asyncio.create_task(runtime.run_kopf(stop, ready), name="kopf")
    try:
        await wait_for(ready.wait(), "kopf to start")
        yield runtime
    finally:
        stop.set()
        try:
            async with asyncio.timeout(30):
                await task
        finally:
            await runtime.stop()
            await api.close()


class OperatorThread:
    """An operator in its own thread and event loop: another replica. (On exit, kopf cancels every task started
    after it in its loop, so two replicas in one loop would cancel each other's work.)"""

    def __init__(self, url: str, **kwargs: Any) -> None:
        self.url = url
        self.kwargs = kwargs
        self.runtime: OperatorRuntime | None = None
        self.error: BaseException | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), name="operator replica")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        try:
            async with operator(self.url, **self.kwargs) as runtime:
                self.runtime = runtime
                self._ready.set()
                await self._stop.wait()
        except BaseException as exc:
            self.error = exc
        finally:
            self._ready.set()

    async def __aenter__(self) -> OperatorRuntime:
        self._thread.start()
        await asyncio.to_thread(self._ready.wait, 60)
        if self.error is not None or self.runtime is None:
            raise AssertionError(f"the operator replica did not start: {self.error!r}")
        return self.runtime

    async def __aexit__(self, *exc: object) -> None:
        """Stop the replica (again: no-op)."""
        if not self._thread.is_alive():
            return
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        await asyncio.to_thread(self._thread.join, 60)
        if self.error is not None:
            raise self.error


def fast(runtime: OperatorRuntime) -> None:
    """kopf's timings for a test: short idle and exit waits, quick peering keep-alives."""
    s = runtime.kopf_settings
    s.queueing.idle_timeout = 0.5
    s.queueing.exit_timeout = 0.5
    s.watching.reconnect_backoff = 0.05
    s.background.cancellation_polling = 0.2
    s.peering.lifetime = 5


async def phase(api: Api, name: str, namespace: str = "test") -> str | None:
    obj = await api.get(CANARY, namespace, name)
    return ((obj or {}).get("status") or {}).get("phase")


async def reaches(api: Api, wanted: str, name: str = "podinfo", namespace: str = "test", timeout: float = 30) -> Json:
    async def check() -> Json | None:
        obj = await api.get(CANARY, namespace, name)
        return obj if ((obj or {}).get("status") or {}).get("phase") == wanted else None

    return await until(check, f"canary {namespace}/{name} to reach {wanted}", limit=timeout)


async def messages(api: Api, name: str = "podinfo", namespace: str = "test") -> list[str]:
    """The messages of the Events about one Canary, oldest first."""
    items = [e for e in await api.list(EVENT, namespace) if e["involvedObject"].get("name") == name]
    items.sort(key=lambda e: (e.get("firstTimestamp") or "", e["metadata"].get("resourceVersion", "")))
    return [e["message"] for e in items]


async def event_count(api: Api, message: str, namespace: str = "test") -> int:
    return sum(int(e.get("count") or 1) for e in await api.list(EVENT, namespace) if e["message"] == message)


async def bump_image(api: Api, image: str, name: str = "podinfo", namespace: str = "test") -> None:
    """A user's ``kubectl set image``: read, change, replace; a 409 (the operator wrote in between) means read
    again, as kubectl does."""
    for _ in range(10):
        live = await api.get(DEPLOYMENT, namespace, name)
        assert live is not None
        body = copy.deepcopy(live)
        body["spec"]["template"]["spec"]["containers"][0]["image"] = image
        try:
            await api.replace(DEPLOYMENT, body)
            return
        except Conflict:
            continue
    raise AssertionError(f"deployment {namespace}/{name}: 10 conflicts in a row")


# -- more of the cluster: history, DaemonSets, HPAs (appended for test_lifecycle_more) --------------------------
PODINFO = "ghcr.io/stefanprodan/podinfo:6.0.0"


class History:
    """Every version of the objects of one kind in a namespace, in the order a watch delivers them: what a user
    running ``kubectl get -w`` would have seen, step by step, however fast the steps were. Enter it before the
    objects it follows are written."""

    def __init__(self, api: Api, kind: Kind, namespace: str) -> None:
        self.api = api
        self.kind = kind
        self.namespace = namespace
        self.versions: list[Json] = []
        self._task: asyncio.Task[None] | None = None
        self._listed = asyncio.Event()

    async def __aenter__(self) -> History:
        self._task = asyncio.create_task(self._run(), name=f"watch {self.kind.plural}")
        await wait_for(self._listed.wait(), f"the watch on {self.kind.plural} to start")
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        # Reachable before the test goes on; the watch lists again and streams from that list's resourceVersion,
        # so only changes made in the moment between the two lists could be folded into one version.
        await self.api.list(self.kind, self.namespace)
        self._listed.set()
        async for event in self.api.watch(self.kind, self.namespace):
            if event.type in ("ADDED", "MODIFIED"):
                version = event.object["metadata"].get("resourceVersion")
                if not any(v["metadata"].get("resourceVersion") == version for v in self.versions):
                    self.versions.append(copy.deepcopy(event.object))

    def changes(self, name: str, project: Callable[[Json], Any]) -> list[Any]:
        """What ``project`` reads from object ``name``'s versions, each value once per run of equal values."""
        out: list[Any] = []
        for version in self.versions:
            if version["metadata"]["name"] == name:
                value = project(version)
                if not out or out[-1] != value:
                    out.append(value)
        return out

    def of(self, name: str) -> list[Json]:
        """The versions of object ``name``, oldest first, each spec once (a metadata-only write is no step)."""
        out: list[Json] = []
        for version in self.versions:
            if version["metadata"]["name"] == name and (not out or out[-1].get("spec") != version.get("spec")):
                out.append(version)
        return out


class DaemonSetRollouts:
    """Plays the DaemonSet controller on ``nodes`` nodes: every DaemonSet's status soon reports its pods
    updated and available on each node its node selector allows (none carry ``flagger.app/scale-to-zero``)."""

    def __init__(self, api: Api, namespace: str, nodes: int = 3) -> None:
        self.api = api
        self.namespace = namespace
        self.nodes = nodes
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> DaemonSetRollouts:
        self._task = asyncio.create_task(self._run(), name="daemonset controller")
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(ApiError):
                for item in await self.api.list(DAEMONSET, self.namespace):
                    selector = item["spec"]["template"]["spec"].get("nodeSelector") or {}
                    scheduled = 0 if selector else self.nodes
                    status = {"observedGeneration": item["metadata"].get("generation", 1),
                              "currentNumberScheduled": scheduled, "desiredNumberScheduled": scheduled,
                              "numberMisscheduled": 0, "numberReady": scheduled, "numberAvailable": scheduled,
                              "updatedNumberScheduled": scheduled}  # fmt: skip
                    if item.get("status") != status:
                        with contextlib.suppress(ApiError):
                            await self.api.replace_status(DAEMONSET, {**item, "status": status})
            await asyncio.sleep(0.05)


def daemonset_doc(name: str = "podinfo", namespace: str = "test", image: str = PODINFO) -> Json:
    doc = deployment_doc(name, namespace, image)
    doc["kind"] = "DaemonSet"
    del doc["spec"]["replicas"]
    return doc


def hpa_doc(name: str = "podinfo", namespace: str = "test", minimum: int = 2, maximum: int = 4) -> Json:
    """An ``autoscaling/v2`` HPA on Deployment ``name`` at 80 % CPU (the API server stores a v2beta2 manifest
    so since Kubernetes 1.26 serves autoscaling/v2 only)."""
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": minimum,
            "maxReplicas": maximum,
            "metrics": [{"type": "Resource",
                         "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}],
        },
    }  # fmt: skip


async def set_image(api: Api, kind: Kind, image: str, name: str = "podinfo", namespace: str = "test") -> None:
    """``bump_image`` for any workload kind (a DaemonSet target): read, change, replace, again on a 409."""
    for _ in range(10):
        live = await api.get(kind, namespace, name)
        assert live is not None, f"{kind.kind} {namespace}/{name} not found"
        body = copy.deepcopy(live)
        body["spec"]["template"]["spec"]["containers"][0]["image"] = image
        try:
            await api.replace(kind, body)
            return
        except Conflict:
            continue
    raise AssertionError(f"{kind.kind.lower()} {namespace}/{name}: 10 conflicts in a row")
