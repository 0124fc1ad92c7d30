"""A Workload held in memory: releases, readiness and replicas are set by the test or the simulator."""

from __future__ import annotations

import dataclasses

from canaryflow.api.canary import Canary
from canaryflow.engine.effects import Readiness, Revision
from canaryflow.workloads.base import WorkloadError

_READY = Readiness(True)  # (made once: asked on every tick)


@dataclasses.dataclass(slots=True)
class Target:
    """One target and its primary copy."""

    spec_hash: str
    configs: dict[str, str] = dataclasses.field(default_factory=dict)
    replicas: int = 1
    canary_ready: bool = True
    canary_retriable: bool = True
    primary_ready: bool = True
    primary_hash: str | None = None
    primary_replicas: int = 0
    calls: list[str] = dataclasses.field(default_factory=list)


class MemoryWorkload:
    def __init__(self) -> None:
        self.targets: dict[str, Target] = {}

    def deploy(self, key: str, spec_hash: str, **configs: str) -> Target:
        """Apply a new revision of the target ``namespace/name`` (like ``kubectl apply``)."""
        target = self.targets.get(key)
        if target is None:
            target = self.targets[key] = Target(spec_hash, dict(configs))
        else:
            target.spec_hash = spec_hash
            target.configs = dict(configs) if configs else target.configs
        return target

    def _target(self, canary: Canary) -> Target:
        key = f"{canary.metadata.namespace}/{canary.spec.target_ref.name}"
        target = self.targets.get(key)
        if target is None:
            raise WorkloadError(f"{canary.spec.target_ref.kind.lower()} {key} not found")
        return target

    async def initialize(self, canary: Canary) -> None:
        target = self._target(canary)
        if target.primary_hash is None:
            target.primary_hash = target.spec_hash
            target.primary_replicas = target.replicas
            target.calls.append("initialize")

    async def revision(self, canary: Canary) -> Revision:
        target = self._target(canary)
        return Revision(target.spec_hash, tuple(sorted(target.configs.items())))

    async def primary_readiness(self, canary: Canary) -> Readiness:
        if self._target(canary).primary_ready:
            return _READY
        return Readiness(False, f"{canary.spec.target_ref.name}-primary not ready")

    async def canary_readiness(self, canary: Canary) -> Readiness:
        target = self._target(canary)
        if target.canary_ready and target.replicas > 0:
            return _READY
        message = f"{canary.spec.target_ref.name} not ready: waiting for rollout to finish"
        return Readiness(False, message, target.canary_retriable)

    async def scale_canary_up(self, canary: Canary) -> None:
        target = self._target(canary)
        target.replicas = max(target.replicas, 1)
        target.calls.append("scale-up")

    async def scale_canary_to_zero(self, canary: Canary) -> None:
        target = self._target(canary)
        target.replicas = 0
        target.calls.append("scale-to-zero")

    async def promote(self, canary: Canary) -> None:
        target = self._target(canary)
        target.primary_hash = target.spec_hash
        target.calls.append("promote")

    async def finalize(self, canary: Canary) -> None:
        target = self._target(canary)
        target.replicas = max(target.primary_replicas, 1)
        target.calls.append("finalize")
