"""kopf handlers for Canary objects: which canaries this operator drives, and what happens when one goes.

Each Canary gets a kopf *daemon*, and the daemon's lifetime is the time this operator drives that canary: it
hands the canary to the scheduler when it starts and takes it back when it stops. kopf stops daemons when the
Canary is deleted and when peering pauses the operator (another replica leads), and starts them again on the
first watch event after a resume or a restart, so "only the leader ticks" needs no bookkeeping here. A restarted
operator continues from the status subresource: the engine starts every tick from the stored status.

Changes reach a running canary through a silent ``on.event`` handler: a new spec or a new
``canaryflow.dev/operation`` annotation re-applies the canary (the scheduler ticks it at once). Events caused
by the operator's own status writes change neither, so they never cause an extra tick, and no kopf state is
written per event.

Deletion: the daemon needs kopf's finalizer, which is named ``canaryflow.dev/finalizer``. With
``spec.revertOnDeletion`` an on-delete handler gives the target its replicas back and restores the routing
before the finalizer is removed (the phase goes Terminating, then Terminated, as in Flagger).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import kopf

from canaryflow.api import loader, validate
from canaryflow.api.canary import Canary
from canaryflow.clock import Clock
from canaryflow.control.executor import Executor
from canaryflow.control.scheduler import Scheduler
from canaryflow.engine import machine
from canaryflow.engine.effects import EventType
from canaryflow.engine.machine import Move
from canaryflow.kube.store import KubeEventSink, KubeStatusStore, operation_of
from canaryflow.routing.base import Router
from canaryflow.store.base import Conflict, Event, StatusStore
from canaryflow.workloads.base import Workload, WorkloadError

log = logging.getLogger(__name__)

GROUP, VERSION, PLURAL = "flagger.app", "v1beta1", "canaries"
FINALIZER = "canaryflow.dev/finalizer"
Json = dict[str, Any]


class KubeExecutor(Executor):
    """The executor, plus what Kubernetes users expect when a tick cannot run: the reason in the status.

    The executor abandons a tick whose adapter failed (a missing target, an API error) and records a warning
    event; here that reason also becomes the Canary's status message (the ``Promoted`` condition's message),
    so ``kubectl get canary -o yaml`` shows why nothing happens. The next good tick with news replaces it.
    """

    async def abandoned(self, canary: Canary, message: str) -> None:
        await report(self.a.store, canary.key, message)


async def report(store: StatusStore, key: str, message: str) -> None:
    """Put ``message`` in the canary's status unless it is there already (no write when nothing changes)."""
    try:
        stored = await store.load(key)
        if stored is None or stored.status.message == message:
            return
        status = stored.status
        status.message = message
        await store.save(key, status, stored.version)
    except Exception as exc:  # the warning event is already recorded; a status we cannot write is only logged
        log.warning("%s: status message not written: %s", key, exc)


class CanaryOperator:
    """The handlers, bound to one scheduler; ``register`` puts them in a kopf registry."""

    def __init__(
        self,
        scheduler: Scheduler,
        workload: Workload,
        router: Router,
        store: KubeStatusStore,
        events: KubeEventSink,
        clock: Clock,
    ) -> None:
        self.scheduler = scheduler
        self.workload = workload
        self.router = router
        self.store = store
        self.events = events
        self.clock = clock
        #: Canaries whose daemon runs: the ones this operator drives.
        self.driving: set[str] = set()
        #: What each driven canary was last applied with: its spec and operation annotation.
        self._applied: dict[str, str] = {}

    def register(self, registry: kopf.OperatorRegistry) -> None:
        kopf.daemon(GROUP, VERSION, PLURAL, id="drive", registry=registry)(self.drive)
        kopf.on.event(GROUP, VERSION, PLURAL, id="observe", registry=registry)(self.observe)
        kopf.on.delete(GROUP, VERSION, PLURAL, id="revert", registry=registry, when=_reverts)(self.revert)

    # -- handlers -----------------------------------------------------------------------------------------------
    async def drive(self, *, stopped: kopf.DaemonStopped, body: kopf.Body, **_: Any) -> None:
        key = _key(body)
        self.driving.add(key)
        try:
            await self.sync(key, _plain(body), force=True)
            await stopped.wait()
        finally:
            self.driving.discard(key)
            self._applied.pop(key, None)
            await self.scheduler.remove(key)

    async def observe(self, *, type: str, body: kopf.Body, **_: Any) -> None:
        key = _key(body)
        if type == "DELETED":
            self.events.forget(key)
            self._applied.pop(key, None)
            await self.scheduler.remove(key)
            return
        if key in self.driving:
            await self.sync(key, _plain(body))

    async def revert(self, *, body: kopf.Body, **_: Any) -> None:
        canary, _problems = parse(_plain(body))
        if canary is None:
            return  # nothing valid to revert to; let the Canary go
        # kopf stops the daemon while this runs, not before: end any tick in flight so none undoes the revert.
        await self.scheduler.remove(canary.key)
        await self._move(canary, Move.TERMINATE)
        try:
            await self.workload.finalize(canary)
        except WorkloadError as exc:  # the target is gone: nothing to give replicas back to
            await self._event(canary.key, EventType.WARNING, f"revert on deletion: {exc}")
        try:
            await self.router.finalize(canary)
        except Exception as exc:
            raise kopf.TemporaryError(f"restoring the routing of {canary.key} failed: {exc}", delay=5) from exc
        await self._move(canary, Move.TERMINATED)

    # -- applying -----------------------------------------------------------------------------------------------
    async def sync(self, key: str, body: Json, *, force: bool = False) -> None:
        """Hand the canary to the scheduler if its spec or requested operation changed (or ``force``)."""
        operation, unknown = operation_of(body)
        fingerprint = json.dumps([body.get("spec"), operation, unknown], sort_keys=True, default=str)
        if not force and self._applied.get(key) == fingerprint:
            return
        self._applied[key] = fingerprint
        if unknown is not None:
            await self._event(
                key, EventType.WARNING, f"unknown operation {unknown!r} in annotation canaryflow.dev/operation: "
                "use promote, abort or retry",
            )  # fmt: skip
        canary, problems = parse(body)
        if canary is None:
            message = f"invalid Canary, not driven until fixed: {problems}"
            log.warning("%s: %s", key, message)
            await self.scheduler.remove(key)
            await self._event(key, EventType.WARNING, message)
            await report(self.store, key, message)
            return
        self.scheduler.apply(canary)

    async def _move(self, canary: Canary, what: Move) -> None:
        stored = await self.store.load(canary.key)
        if stored is None or stored.status.phase is machine.TABLE[what][1]:
            return
        machine.move(stored.status, what, self.clock.now())
        stored.status.message = ""
        try:
            await self.store.save(canary.key, stored.status, stored.version)
        except Conflict as exc:
            raise kopf.TemporaryError(f"{canary.key}: {exc}", delay=1) from exc

    async def _event(self, key: str, kind: EventType, message: str) -> None:
        try:
            await self.events.record(Event(self.clock.now(), key, kind, message))
        except Exception as exc:
            log.warning("%s: event %r not recorded: %s", key, message, exc)


def parse(body: Json) -> tuple[Canary | None, str]:
    """The Canary in ``body``, or None and every problem found, each with its path."""
    checked = validate.check(loader.Document(f"canary {_key(body)}", 0, body))
    if isinstance(checked.resource, Canary):
        return checked.resource, ""
    problems = [f"{p.path}: {p.message}" if p.path else p.message for p in checked.problems]
    return None, "; ".join(problems) or "not a flagger.app/v1beta1 Canary"


def _reverts(spec: kopf.Spec, **_: Any) -> bool:
    return bool(spec.get("revertOnDeletion"))


def _key(body: kopf.Body | Json) -> str:
    meta = body.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}"


def _plain(body: kopf.Body) -> Json:
    """A detached copy of kopf's live view (it changes under us as later events arrive)."""
    plain: Json = json.loads(json.dumps(dict(body)))
    return plain


__all__ = ["FINALIZER", "CanaryOperator", "KubeExecutor", "report"]
