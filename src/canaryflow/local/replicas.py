"""The replicas of one workload (``backend-primary`` or ``backend``) as supervised host processes.

``ReplicaSet.apply(desired)`` states what should run (a revision and a replica count); a reconciler task gets
there the way a Deployment with ``maxUnavailable: 0`` does: it starts the new revision's processes beside the
old ones, waits until they are ready, takes the old ones out of the endpoints and only then stops them, so the
workload keeps serving throughout. A replica counts as available once it has been ready for the Deployment's
``minReadySeconds`` (``Desired.min_ready``): readiness and the roll count available replicas, as a Deployment's
``availableReplicas`` does, while the mesh sends traffic to every ready one, as Endpoints do. Each replica is
probed continuously (``probes``); whenever the set of ready
ports changes, the ``on_endpoints`` callback hears of it, as Kubernetes' Endpoints would tell the mesh.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from canaryflow.local import procs
from canaryflow.local.pod import ProcessSpec, Replica

log = logging.getLogger(__name__)
EndpointsCallback = Callable[[str, str, list[int]], Awaitable[None]]
# Between taking a replica out of the endpoints and stopping it: the mesh applies new endpoints asynchronously.
_DRAIN = 0.3


@dataclasses.dataclass(frozen=True, slots=True)
class Desired:
    """A revision and how many replicas of it should run; ``make(pod name, host port)`` builds a replica."""

    revision: str
    replicas: int
    make: Callable[[str, int], ProcessSpec]
    min_ready: float = 0.0  # seconds a replica must have been ready to count as available


@dataclasses.dataclass(frozen=True, slots=True)
class Context:
    logs: Path
    client: httpx.AsyncClient
    on_endpoints: EndpointsCallback


class ReplicaSet:
    """The processes of one workload, driven towards ``desired`` by a reconciler task."""

    def __init__(self, namespace: str, name: str, context: Context) -> None:
        self.namespace, self.name, self.context = namespace, name, context
        self.replicas: list[Replica] = []
        self.desired: Desired | None = None
        self.error = ""
        self._wake = asyncio.Event()
        self._converged = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._published: list[int] | None = None
        #: When the mesh last confirmed serving ready endpoints of this workload (a Unix time; 0: never).
        self.served_at = 0.0
        self._publish_lock = asyncio.Lock()
        self._background: set[asyncio.Task[bool]] = set()
        # Every replica started and not yet stopped, in the list or not (one being retired has left the list):
        # ``close`` stops them all, whatever the reconciler was doing.
        self._started: set[Replica] = set()

    def apply(self, desired: Desired) -> None:
        current = self.desired
        if current is not None and (current.revision, current.replicas) == (desired.revision, desired.replicas):
            if current.min_ready != desired.min_ready:  # not part of the template: nothing restarts
                self.desired = dataclasses.replace(current, min_ready=desired.min_ready)
                self._wake.set()
            return  # the same state again (each tick asks): keep the rollout going undisturbed
        if current is not None and current.replicas == desired.replicas == 0:
            return  # nothing runs either way
        self.desired = desired
        self._converged.clear()
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"reconcile {self.namespace}/{self.name}")

    async def converged(self) -> None:
        """Wait until what runs is what was last applied (the rollout finished)."""
        await self._converged.wait()

    def readiness(self, threshold: int) -> tuple[bool, str]:
        """Ready when at least ``ceil(replicas * threshold / 100)`` replicas of the desired revision are."""
        d = self.desired
        if self.error:
            return False, self.error
        if d is None or d.replicas == 0:
            return False, "scaled to zero"
        updated = [r for r in self.replicas if r.revision == d.revision]
        ready = self.available(updated)
        if ready < math.ceil(d.replicas * threshold / 100):
            crashed = next((r for r in updated if not r.ready and r.exits > 0), None)
            if crashed is not None:
                times = "1 time" if crashed.exits == 1 else f"{crashed.exits} times"
                code = f" (exit code {crashed.exit_code})" if crashed.exit_code is not None else ""
                return False, f"process exited {times}{code}: {crashed.log_tail() or '(no output)'}"
            probe = next((r.problem for r in updated if not r.ready and r.problem), "")
            return False, (
                f"waiting for rollout to finish: {ready} of {d.replicas} (readyThreshold {threshold}%) updated "
                f"replicas are available" + (f" ({probe})" if probe else "")
            )
        old = len(self.replicas) - len(updated)
        if old:
            return False, f"waiting for rollout to finish: {old} old replicas are pending termination"
        return True, ""

    def available(self, replicas: list[Replica]) -> int:
        """How many of ``replicas`` have been ready for the desired ``min_ready`` seconds."""
        min_ready = self.desired.min_ready if self.desired is not None else 0.0
        now = asyncio.get_running_loop().time()
        return sum(r.available(min_ready, now) for r in replicas)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*(r.stop() for r in self._started))
        self._started.clear()
        self.replicas.clear()

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            desired = self.desired
            try:
                finished = await self._converge(desired)
            except Exception as exc:  # building or starting a replica failed: readiness says why; retried
                self.error = str(exc)
                log.warning("%s/%s: %s", self.namespace, self.name, exc)
                await self._sleep(1.0)
                continue
            self.error = ""
            if finished and desired is self.desired:
                self._converged.set()
                await self._wake.wait()

    async def _converge(self, d: Desired | None) -> bool:
        """One pass towards ``d``; False when ``d`` was replaced before the pass could finish."""
        if d is None or d.replicas == 0:
            await self._retire(list(self.replicas))
            return True
        current = [r for r in self.replicas if r.revision == d.revision]
        if len(current) > d.replicas:  # scale down, not-ready replicas first
            extra = sorted(current, key=lambda r: (r.ready, -r.index))[: len(current) - d.replicas]
            await self._retire(extra)
            current = [r for r in current if r not in extra]
        while len(current) < d.replicas:
            current.append(await self._start(d))
            if self.desired is not d:
                return False
        await self._publish()  # the first time, the mesh learns the workload exists (with no endpoints yet)
        old = [r for r in self.replicas if r.revision != d.revision]
        while old and self.available(current) < d.replicas:  # surge: old ones serve until new ones are available
            if self.desired is not d:
                return False
            await self._sleep(self._until_available(current))
        await self._retire(old)
        return True

    async def _start(self, d: Desired) -> Replica:
        used = {r.index for r in self.replicas}
        index = next(i for i in range(len(used) + 1) if i not in used)
        port = procs.free_port()
        name = f"{self.name}-{d.revision}-{index}"
        replica = Replica(name, index, port, d.revision, d.make(name, port), self.log_path(index))
        self.replicas.append(replica)
        self._started.add(replica)
        try:
            await replica.start(self.context.client, self._changed)
        except procs.ProcessError:
            self.replicas.remove(replica)
            self._started.discard(replica)
            raise
        return replica

    def log_path(self, index: int) -> Path:
        return self.context.logs / self.namespace / f"{self.name}-{index}.log"

    async def _retire(self, replicas: list[Replica]) -> None:
        if not replicas:
            return
        for replica in replicas:
            self.replicas.remove(replica)
        if await self._publish():
            await asyncio.sleep(_DRAIN)
        await asyncio.gather(*(r.stop() for r in replicas))
        self._started.difference_update(replicas)

    def _changed(self) -> None:
        self._wake.set()
        task = asyncio.create_task(self._publish(), name=f"endpoints {self.namespace}/{self.name}")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _publish(self) -> bool:
        """Tell the mesh the ready ports, if they changed; True when they did."""
        async with self._publish_lock:
            ports = [r.port for r in sorted(self.replicas, key=lambda r: r.index) if r.ready]
            if ports == self._published:
                return False
            self._published = ports
            try:
                await self.context.on_endpoints(self.namespace, self.name, ports)
                self.served_at = time.time() if ports else self.served_at
            except Exception:  # the mesh's trouble must not stop the rollout; the next change retries
                log.exception("updating the endpoints of %s/%s failed", self.namespace, self.name)
                self._published = None
            return True

    def _until_available(self, replicas: list[Replica]) -> float:
        """How long until the next ready replica becomes available (at most a second: readiness changes wake us)."""
        min_ready = self.desired.min_ready if self.desired is not None else 0.0
        now = asyncio.get_running_loop().time()
        waits = [r.ready_at + min_ready - now for r in replicas if r.ready and r.ready_at is not None]
        return max(0.01, min([1.0, *(w for w in waits if w > 0)]))

    async def _sleep(self, seconds: float) -> None:
        """Sleep until woken (a readiness change, a new desired state) or ``seconds`` pass."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()
        self._wake.clear()


def replica_logs(logs: Path, namespace: str, workload: str, lines: int) -> str | None:
    """The last ``lines`` of each replica's log of ``workload`` (``ReplicaSet.log_path``); None if it has none."""
    paths = sorted((logs / namespace).glob(f"{workload}-[0-9]*.log"))
    if not paths:
        return None
    parts = []
    for path in paths:
        text = path.read_text(errors="replace").splitlines()[-lines:]
        parts.append(f"==> {path.stem} <==\n" + "\n".join(text))
    return "\n\n".join(parts)
