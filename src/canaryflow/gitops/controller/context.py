"""What every reconciler shares: the seams it acts through and what the controller remembers between runs."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from canaryflow.api.flux import STATUS
from canaryflow.api.flux import common as flux
from canaryflow.api.flux.common import Condition
from canaryflow.api.flux.status import FluxStatus, S, read
from canaryflow.api.refs import LocalObjectReference
from canaryflow.clock import Clock, SystemClock
from canaryflow.clock.backoff import Backoff
from canaryflow.gitops.controller import parse
from canaryflow.gitops.controller.objects import FluxObjects, Key
from canaryflow.gitops.image.base import Registry
from canaryflow.gitops.image.registry import OciRegistry
from canaryflow.gitops.source.base import Artifact, Source
from canaryflow.gitops.target.base import Target

#: After a failed fetch or scan Flux retries at the object's interval; canaryflow retries sooner, 5 s doubling,
#: never later than the interval.
RETRY = Backoff(first=5.0, cap=5.0 * 2**10)

#: Flux re-checks unready dependencies (and a missing artifact) every 30 s.
DEPENDENCY_RETRY = 30.0

#: A stalled object is not retried (Flux returns a terminal error): a change of its spec wakes it, and it is
#: looked at again this rarely besides (what it refers to may have been fixed, e.g. an ImageRepository).
STALLED_RECHECK = 3600.0

T = TypeVar("T")

#: Records an event about an object: (object "Kind/namespace/name", warning?, reason, message).
Emitter = Callable[[str, bool, str, str], Awaitable[None]]


#: Reconciles one stored object: (context, key, body, failures in a row so far) -> when to run again, what to wake.
Reconciler = Callable[["Context", Key, dict[str, Any], int], Awaitable["Result"]]


@dataclasses.dataclass(frozen=True, slots=True)
class Result:
    """What a reconcile decided: when to run again, and which other objects to wake now."""

    requeue: float
    wake: tuple[Key, ...] = ()
    #: The reconcile failed: the next failure waits longer (backoff).
    failed: bool = False

    @classmethod
    def retry(cls, failures: int, interval: float) -> Result:
        """A failed reconcile after ``failures`` failures in a row: run again by ``RETRY``, within ``interval``."""
        return cls(min(interval, RETRY.delay(failures + 1)), failed=True)


@dataclasses.dataclass(slots=True)
class Context:
    objects: FluxObjects
    source: Source
    target: Target
    workdir: Path
    #: Every time the reconcilers write and every wait of the controller (tests pass a FakeClock).
    clock: Clock = dataclasses.field(default_factory=SystemClock)
    events: Emitter | None = None
    registry: Registry = dataclasses.field(default_factory=OciRegistry)
    #: The last artifact of each GitRepository (rebuilt by a fetch after a restart).
    artifacts: dict[Key, Artifact] = dataclasses.field(default_factory=dict)
    #: The tags of each ImageRepository's last scan.
    tags: dict[Key, list[str]] = dataclasses.field(default_factory=dict)

    def now(self) -> float:
        return self.clock.now()

    def condition(self, type_: str, ok: bool, reason: str, message: str, generation: int) -> Condition:
        """A condition of a reconcile of ``generation`` happening now."""
        return flux.condition(type_, ok, reason, message, self.now(), generation)

    async def secret(self, namespace: str, ref: LocalObjectReference | None) -> dict[str, str] | None:
        """The data of a ``secretRef``; raises LookupError when it is named but missing."""
        if ref is None:
            return None
        data = await self.objects.data("Secret", namespace, ref.name)
        if data is None:
            raise LookupError(f"secret '{namespace}/{ref.name}' not found")
        return data

    async def emit(self, key: Key, warning: bool, reason: str, message: str) -> None:
        if self.events is None:
            return
        await self.events(str(key), warning, reason, message)

    async def status(self, key: Key, model: type[S]) -> S:
        """The stored status of ``key`` as ``model`` (what :func:`~canaryflow.api.flux.status.read` keeps of it)."""
        return read(model, await self.objects.status(key))

    async def write(self, key: Key, previous: FluxStatus, status: FluxStatus) -> bool:
        """Store ``status`` when it differs from ``previous``; whether it did."""
        if status == previous:
            return False
        await self.objects.set_status(key, status)
        return True

    async def not_ready(self, key: Key, generation: int, reason: str, message: str) -> None:
        """Record a failed reconcile: ``Ready=False`` with the reason (the rest of the status is kept, so a
        Kustomization keeps its inventory); an event only when the status changed, not at every retry."""
        await self._failed(key, generation, reason, message, stalled=False)

    async def stalled(self, key: Key, generation: int, reason: str, message: str) -> Result:
        """Record a spec that retrying cannot fix (``Stalled=True``, ``Ready=False``; the rest of the status is
        kept); one Warning event, when the status changed. The Result waits for a change rather than retrying."""
        await self._failed(key, generation, reason, message, stalled=True)
        return Result(STALLED_RECHECK)

    async def _failed(self, key: Key, generation: int, reason: str, message: str, *, stalled: bool) -> None:
        previous = await self.status(key, STATUS[key.kind])
        found = [self.condition(flux.READY, False, reason, message, generation)]
        if stalled:
            found.append(self.condition(flux.STALLED, True, reason, message, generation))
        status = previous.model_copy(
            update={"observed_generation": generation, "conditions": conditions(previous, *found)}
        )
        if await self.write(key, previous, status):
            await self.emit(key, True, reason, message)

    async def dependents(self, kind: str, source: Key) -> list[Key]:
        """Objects of ``kind`` that build on ``source`` (see :func:`parse.builds_on`); an object that does not
        parse builds on nothing until fixed (its own reconcile says it is Stalled)."""
        found = []
        for body in await self.objects.list(kind):
            try:
                resource = parse.parse(body)
            except parse.InvalidObject:
                continue
            if parse.builds_on(resource) == source:
                found.append(Key.of(body))
        return found


def conditions(previous: FluxStatus, *current: Condition) -> list[Condition]:
    """``status.conditions`` after a reconcile that found ``current`` (see :func:`flux.set_conditions`)."""
    return flux.set_conditions(previous.conditions or (), current)


def typed(
    read: Callable[[dict[str, Any]], T], reconcile: Callable[[Context, Key, T, int], Awaitable[Result]]
) -> Reconciler:
    """A reconciler of stored bodies from one of typed objects: ``read`` parses the body once (the model of its
    apiVersion and kind); a body the models refuse is Stalled, with the path of what is wrong, until it changes."""

    async def run(ctx: Context, key: Key, body: dict[str, Any], failures: int) -> Result:
        try:
            resource = read(body)
        except parse.InvalidObject as exc:
            return await ctx.stalled(key, parse.generation(body), exc.reason, str(exc))
        return await reconcile(ctx, key, resource, failures)

    return run
