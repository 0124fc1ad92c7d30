"""Leader election for ``canaryflow gitops-controller``: one ``coordination.k8s.io/v1`` Lease, as Flux's
controllers hold one through controller-runtime (client-go's ``leaderelection`` over a ``leases`` lock), so two
replicas never apply at once.

The rules are client-go's: a candidate takes the Lease when it does not exist, has no holder, or has not been
renewed for ``lease_duration`` *as observed on the candidate's own clock* (the time it last saw the record change,
never the writer's timestamps: clocks of two pods need not agree); every write carries the ``resourceVersion``
read, so of two candidates racing only one wins (the other gets a Conflict and stays a follower). The leader
renews every ``retry_period``; if no renewal has succeeded for ``renew_deadline``, it has lost the lease and must
stop reconciling (``hold`` returns). On a clean shutdown it releases the Lease (empty holder, duration 1 s), so a
follower takes over within a retry period instead of a whole lease duration (Flux's
``--leader-election-release-on-cancel``, default true).

Flux's defaults (fluxcd/pkg ``runtime/leaderelection``): lease 35 s, renew deadline 30 s, retry period 5 s.
Every wait and every "now" goes through the Clock seam, so tests run on a FakeClock.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import uuid
from typing import Any

from canaryflow.api.timestamps import rfc3339
from canaryflow.clock import Clock
from canaryflow.kube.client import Api
from canaryflow.kube.errors import ApiError, Conflict
from canaryflow.kube.kinds import LEASE

log = logging.getLogger(__name__)

DEFAULT_LEASE_NAME = "canaryflow-gitops-leader-election"


def default_identity() -> str:
    """client-go's: the host name (the pod's name) and a unique suffix, so a restarted pod is a new candidate."""
    return f"{os.environ.get('HOSTNAME') or socket.gethostname()}_{uuid.uuid4()}"


@dataclasses.dataclass(frozen=True, slots=True)
class LeaseConfig:
    namespace: str
    name: str = DEFAULT_LEASE_NAME
    identity: str = dataclasses.field(default_factory=default_identity)
    lease_duration: float = 35.0
    renew_deadline: float = 30.0
    retry_period: float = 5.0

    def __post_init__(self) -> None:
        if not self.lease_duration > self.renew_deadline > self.retry_period > 0:
            raise ValueError("leader election needs lease duration > renew deadline > retry period > 0")


class LeaderElector:
    def __init__(self, api: Api, config: LeaseConfig, clock: Clock) -> None:
        self.api, self.config, self.clock = api, config, clock
        self._observed: tuple[str, str] | None = None  # (holder, renewTime) last seen
        self._observed_at = 0.0  # when, on our clock
        self.leading = False
        self.attempts = 0  # finished attempts (to acquire or renew)

    async def acquire(self) -> None:
        """Return once this candidate holds the Lease (a follower retries every ``retry_period``)."""
        while not await self.try_acquire_or_renew():
            await self.clock.sleep(self.config.retry_period)
        log.info(
            "became leader (lease %s/%s, identity %s)", self.config.namespace, self.config.name, self.config.identity
        )

    async def hold(self) -> None:
        """Renew every ``retry_period`` while leading; return when the lease is lost (no renewal succeeded within
        ``renew_deadline``, or another holder took it): the caller must stop reconciling at once."""
        renewed = self.clock.now()
        while True:
            await self.clock.sleep(self.config.retry_period)
            if await self.try_acquire_or_renew():
                renewed = self.clock.now()
                continue
            if not self.leading or self.clock.now() - renewed >= self.config.renew_deadline:
                self.leading = False
                log.error("leader election lost (lease %s/%s)", self.config.namespace, self.config.name)
                return

    async def release(self) -> None:
        """Give the Lease up if held (a clean shutdown), so a follower takes over at its next retry."""
        if not self.leading:
            return
        self.leading = False
        try:
            lease = await self.api.get(LEASE, self.config.namespace, self.config.name)
            if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.config.identity:
                return
            spec = {**lease["spec"], "holderIdentity": "", "leaseDurationSeconds": 1, "renewTime": self._now()}
            await self.api.replace(LEASE, {**lease, "spec": spec})
        except ApiError as exc:  # it will expire anyway
            log.warning("lease not released: %s", exc)

    async def try_acquire_or_renew(self) -> bool:
        """One attempt (client-go's ``tryAcquireOrRenew``); False when another holds a live lease or the write lost
        a race. API errors count as a failed attempt."""
        try:
            return await self._attempt()
        except Conflict:
            return False
        except ApiError as exc:
            log.warning("leader election: %s", exc)
            return False
        finally:
            self.attempts += 1

    async def _attempt(self) -> bool:
        config, now = self.config, self.clock.now()
        lease = await self.api.get(LEASE, config.namespace, config.name)
        if lease is None:
            await self.api.create(LEASE, self._lease({}, transitions=0))
            return self._won()
        spec: dict[str, Any] = lease.get("spec") or {}
        holder = str(spec.get("holderIdentity") or "")
        record = (holder, str(spec.get("renewTime") or ""))
        if record != self._observed:
            self._observed, self._observed_at = record, now
        duration = float(spec.get("leaseDurationSeconds") or config.lease_duration)
        ours = holder == config.identity
        if holder and not ours and self._observed_at + duration > now:
            self.leading = False
            return False
        transitions = int(spec.get("leaseTransitions") or 0) + (0 if ours else 1)
        body = {**lease, "spec": self._lease(spec if ours else {}, transitions)["spec"]}
        await self.api.replace(LEASE, body)
        return self._won()

    def _won(self) -> bool:
        self.leading = True
        return True

    def _lease(self, previous: dict[str, Any], transitions: int) -> dict[str, Any]:
        now = self._now()
        return {
            "apiVersion": LEASE.api_version,
            "kind": LEASE.kind,
            "metadata": {"name": self.config.name, "namespace": self.config.namespace},
            "spec": {
                "holderIdentity": self.config.identity,
                "leaseDurationSeconds": int(self.config.lease_duration),
                "acquireTime": previous.get("acquireTime") or now,
                "renewTime": now,
                "leaseTransitions": transitions,
            },
        }

    def _now(self) -> str:
        return rfc3339(self.clock.now(), digits=6)  # a MicroTime


__all__ = ["DEFAULT_LEASE_NAME", "LeaderElector", "LeaseConfig", "default_identity"]
