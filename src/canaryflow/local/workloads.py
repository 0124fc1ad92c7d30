"""Workloads of the local runtime: a Deployment target as supervised host processes (the ``Workload`` seam).

For a Canary targeting Deployment ``backend`` there are two workloads, as in Kubernetes: ``backend-primary``
runs a copy of the target's pod template taken at initialization and at each promotion (with copies of the
tracked ConfigMaps and Secrets), and ``backend`` (the canary) runs the target's current template at the
replicas the engine asked for. Each replica is a process on its own loopback port (``replicas``); containers
become host commands through the image catalog (``images``). The primary's copy and the canary's scale are kept
in ``workloads/<namespace>/<target>.json`` under the state directory (``targetstate``), so a restarted runtime
brings back the same primary: in Kubernetes they would be objects in the cluster.

A Deployment no Canary targets runs as itself (``run_deployment``, driven by ``local/deployments.py``): the same
replica set a Canary later takes over as its target, so a Deployment that gains a Canary keeps its processes
(the canary's initialization adds the primary, and the engine scales the target to zero) and nothing runs twice.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

from canaryflow.api.canary import Canary
from canaryflow.engine.effects import Readiness, Revision
from canaryflow.local import images, pod, podspec, targetstate, volumes
from canaryflow.local.pod import ProcessSpec
from canaryflow.local.replicas import Context, Desired, EndpointsCallback, ReplicaSet, replica_logs
from canaryflow.workloads import revision
from canaryflow.workloads.base import WorkloadError

__all__ = ["Lookup", "ProcessWorkloads", "WorkloadsConfig"]

#: ``(kind, namespace, name)`` → the stored object (``Deployment``, ``ConfigMap``, ``Secret``,
#: ``HorizontalPodAutoscaler``), or None.
Lookup = targetstate.Lookup
_KINDS = {"configmap": "ConfigMap", "secret": "Secret"}


@dataclasses.dataclass(frozen=True, slots=True)
class WorkloadsConfig:
    state_dir: Path
    lookup: Lookup
    on_endpoints: EndpointsCallback  # (namespace, workload, ready host ports): the mesh follows it
    extra_env: Mapping[str, str] = dataclasses.field(default_factory=dict)  # e.g. the mesh's http_proxy
    time_scale: float = 1.0  # multiplies probe delays and periods (the demo's shortened time)
    #: Why a canary whose replicas are ready must still not be analysed ("" when it may be), by canary key and the
    #: moment the mesh last confirmed serving them: the data plane warming up after a (re)start (``local/warmup.py``).
    hold: Callable[[str, float], Awaitable[str]] | None = None


@dataclasses.dataclass(slots=True)
class _Target:
    namespace: str
    name: str
    primary: ReplicaSet
    canary: ReplicaSet
    state: dict[str, Any]  # {"primary": {"template", "configs", "replicas"} | None, "canaryReplicas": int | None}
    canary_problem: tuple[str, bool] | None = None  # why the canary's template cannot run, and if retriable


class ProcessWorkloads:
    """The ``Workload`` Protocol for Deployment targets, on host processes."""

    def __init__(self, config: WorkloadsConfig) -> None:
        self.config = config
        self._bin = images.install_tools(config.state_dir / "bin")
        # Probes talk to loopback directly, never through the mesh's proxy from the environment.
        self._client = httpx.AsyncClient(trust_env=False)
        self._context = Context(config.state_dir / "logs", self._client, config.on_endpoints)
        self._targets: dict[str, _Target] = {}
        self._sets: dict[str, ReplicaSet] = {}  # every workload by namespace/name, a target's or a plain one's

    # -- the Workload Protocol ----------------------------------------------------------------------------------
    async def initialize(self, canary: Canary) -> None:
        target, deployment = self._target(canary), self._deployment(canary)
        if target.state["primary"] is None:
            target.state["primary"] = self._copy(canary, deployment)
            self._save(target)
        self._run_primary(target)
        self._follow(canary, target, deployment)

    async def revision(self, canary: Canary) -> Revision:
        target, deployment = self._target(canary), self._deployment(canary)
        self._follow(canary, target, deployment)
        tracking = podspec.tracking(deployment, self._live(target.namespace))
        return revision.revision(podspec.template_of(deployment), tracking)

    async def primary_readiness(self, canary: Canary) -> Readiness:
        target = self._target(canary)
        name = target.primary.name
        if target.state["primary"] is None:
            return Readiness(False, f"{name} not ready: not initialized")
        self._run_primary(target)
        ready, why = target.primary.readiness(_threshold(canary.spec.effective_analysis.primary_ready_threshold))
        return Readiness(ready, "" if ready else f"{name} not ready: {why}")

    async def canary_readiness(self, canary: Canary) -> Readiness:
        target = self._target(canary)
        self._follow(canary, target, self._deployment(canary))
        if target.canary_problem is not None:
            problem, retriable = target.canary_problem
            return Readiness(False, f"{target.name} not ready: {problem}", retriable)
        ready, why = target.canary.readiness(_threshold(canary.spec.effective_analysis.canary_ready_threshold))
        if not ready:
            return Readiness(False, f"{target.name} not ready: {why}")
        held = await self.config.hold(canary.key, target.canary.served_at) if self.config.hold is not None else ""
        return Readiness(not held, held)

    async def scale_canary_up(self, canary: Canary) -> None:
        target, deployment = self._target(canary), self._deployment(canary)
        target.state["canaryReplicas"] = self._from_zero(canary, deployment, target)
        self._save(target)
        self._follow(canary, target, deployment)

    async def scale_canary_to_zero(self, canary: Canary) -> None:
        target = self._target(canary)
        target.state["canaryReplicas"] = 0
        self._save(target)
        target.canary_problem = None
        target.canary.apply(Desired("", 0, _nothing))
        await target.canary.converged()

    async def promote(self, canary: Canary) -> None:
        """Copy the target's template and configs to the primary; the primary rolls to it in the background
        (new processes first, old ones stopped once the new are ready) and reports ready when done."""
        target, deployment = self._target(canary), self._deployment(canary)
        previous = target.state["primary"]
        replicas = podspec.replicas(deployment)
        if canary.spec.autoscaler_ref is not None or replicas is None:  # an autoscaler owns the primary's scale
            replicas = previous["replicas"] if previous else None
        target.state["primary"] = self._copy(canary, deployment, replicas)
        self._save(target)
        self._run_primary(target)

    async def finalize(self, canary: Canary) -> None:
        """Revert on deletion: the target runs at its own replicas again."""
        target, deployment = self._target(canary), self._deployment(canary)
        target.state["canaryReplicas"] = self._from_zero(canary, deployment, target)
        self._save(target)
        self._follow(canary, target, deployment)

    # -- for the runtime ----------------------------------------------------------------------------------------
    async def remove(self, canary: Canary) -> None:
        """The Canary is gone: stop its primary and forget the copy (the target's processes stay as they are)."""
        target = self._target(canary)
        target.state["primary"] = None
        self._save(target)
        target.primary.apply(Desired("", 0, _nothing))
        await target.primary.converged()

    def run_deployment(self, namespace: str, name: str) -> None:
        """Run a Deployment no Canary targets as itself, as a Deployment controller would (at ``spec.replicas``,
        or the scale a deleted Canary left it at); ``WorkloadError`` when its template cannot run here."""
        workload = self._set(namespace, name)
        deployment = self.config.lookup("Deployment", namespace, name)
        if deployment is None:
            self._forget_scale(namespace, name)
            workload.apply(Desired("", 0, _nothing))
            return
        target = self._targets.get(f"{namespace}/{name}")
        state = target.state if target is not None else targetstate.load(self.config.state_dir, namespace, name)
        replicas = state["canaryReplicas"] if state["canaryReplicas"] is not None else podspec.replicas(deployment)
        live = self._live(namespace)
        try:
            template, configs = podspec.template_of(deployment), podspec.tracked(deployment, live)
            count, min_ready = 1 if replicas is None else replicas, podspec.min_ready_seconds(deployment)
            desired = self._desired(namespace, name, template, configs, count, live, min_ready)
        except (images.ImageError, podspec.PodError, ValueError) as exc:
            raise WorkloadError(f"deployment {namespace}/{name}: {exc}") from exc
        workload.apply(desired)

    def _forget_scale(self, namespace: str, name: str) -> None:
        """A deleted Deployment: what a Canary left of it goes too (unless a Canary still has its primary)."""
        target = self._targets.get(f"{namespace}/{name}")
        if target is not None and target.state["primary"] is not None:
            return
        self._targets.pop(f"{namespace}/{name}", None)
        targetstate.forget(self.config.state_dir, namespace, name)

    def processes(self) -> list[dict[str, Any]]:
        """Every replica process, for ``canaryflow status``."""
        out = []
        for workload in self._sets.values():
            for r in sorted(workload.replicas, key=lambda r: r.index):
                out.append({
                        "name": r.name, "namespace": workload.namespace, "workload": workload.name,
                        "replica": r.index, "pid": r.process.pid, "port": r.port, "ready": r.ready,
                        "restarts": r.process.restarts, "version": r.spec.version, "revision": r.revision,
                        "available": workload.available([r]) == 1,
                    })  # fmt: skip
        return out

    def logs(self, namespace: str, workload: str, lines: int = 50) -> str:
        """The last ``lines`` of each replica's log of ``workload`` (``backend`` or ``backend-primary``)."""
        text = replica_logs(self._context.logs, namespace, workload, lines)
        if text is None:
            raise WorkloadError(f"deployment {namespace}/{workload} has no logs")
        return text

    async def close(self) -> None:
        """Stop every process (by PID, through its supervisor) and the probes' client."""
        for workload in self._sets.values():
            await workload.close()
        await self._client.aclose()

    # -- internals ----------------------------------------------------------------------------------------------
    def _target(self, canary: Canary) -> _Target:
        namespace, name = canary.metadata.namespace, canary.spec.target_ref.name
        if canary.spec.target_ref.kind != "Deployment":
            raise WorkloadError(f"{canary.spec.target_ref.kind} targets do not run locally; use a Deployment")
        key = f"{namespace}/{name}"
        target = self._targets.get(key)
        if target is None:
            state = targetstate.load(self.config.state_dir, namespace, name)
            target = self._targets[key] = _Target(
                namespace, name, self._set(namespace, f"{name}-primary"), self._set(namespace, name), state
            )
        return target

    def _set(self, namespace: str, name: str) -> ReplicaSet:
        key = f"{namespace}/{name}"
        if key not in self._sets:
            self._sets[key] = ReplicaSet(namespace, name, self._context)
        return self._sets[key]

    def _deployment(self, canary: Canary) -> Mapping[str, Any]:
        namespace, name = canary.metadata.namespace, canary.spec.target_ref.name
        deployment = self.config.lookup("Deployment", namespace, name)
        if deployment is None:
            raise WorkloadError(f"Deployment {namespace}/{name} not found")
        return deployment

    def _live(self, namespace: str) -> podspec.ConfigSource:
        return lambda kind, name: self.config.lookup(_KINDS[kind], namespace, name)

    def _copy(self, canary: Canary, deployment: Mapping[str, Any], replicas: int | None = None) -> dict[str, Any]:
        if replicas is None:
            replicas = targetstate.own_replicas(self.config.lookup, canary, deployment)
        return targetstate.primary_copy(deployment, self._live(canary.metadata.namespace), replicas)

    def _run_primary(self, target: _Target) -> None:
        copy = target.state["primary"]
        copies: dict[str, Any] = copy["configs"]
        live = self._live(target.namespace)

        def source(kind: str, name: str) -> Mapping[str, Any] | None:
            key = f"{kind}/{name}"
            return copies[key] if key in copies else live(kind, name)  # untracked configs are shared, as in Flagger

        try:
            template, replicas, min_ready = copy["template"], copy["replicas"], copy.get("minReadySeconds", 0)
            desired = self._desired(
                target.namespace, target.primary.name, template, copies, replicas, source, min_ready
            )
            target.primary.apply(desired)
        except (images.ImageError, podspec.PodError, ValueError) as exc:
            raise WorkloadError(f"{target.primary.name}: {exc}") from exc

    def _follow(self, canary: Canary, target: _Target, deployment: Mapping[str, Any]) -> None:
        """Keep the canary's processes on the target's current template and configs (a Deployment's rollout)."""
        replicas = target.state["canaryReplicas"]
        if replicas is None:  # not scaled by the engine yet: the target's own scale
            replicas = targetstate.own_replicas(self.config.lookup, canary, deployment)
        live = self._live(target.namespace)
        template = podspec.template_of(deployment)
        try:
            configs = podspec.tracked(deployment, live)
            desired = self._desired(
                target.namespace, target.name, template, configs, replicas, live, podspec.min_ready_seconds(deployment)
            )
        except (images.ImageError, ValueError) as exc:
            target.canary_problem = (str(exc), False)  # the same template will never run: no use waiting
            return
        except podspec.PodError as exc:
            target.canary_problem = (str(exc), True)  # e.g. a ConfigMap not applied yet
            return
        target.canary_problem = None
        target.canary.apply(desired)

    def _desired(
        self, namespace: str, name: str, template: Mapping[str, Any], configs: Mapping[str, Any], replicas: int,
        source: podspec.ConfigSource, min_ready_seconds: int,
    ) -> Desired:  # fmt: skip
        rollout = targetstate.rollout_hash(template, configs)
        c = self.config
        volumes_dir = c.state_dir / "volumes" / namespace
        make = pod.builder(
            pod.Blueprint(namespace, template, source, c.extra_env, self._bin, c.time_scale, volumes_dir)
        )
        if replicas > 0:
            check = make(f"{name}-{rollout}-check", 0)  # fail here, with the reason, rather than in a replica
            if check.volume_dir is not None:
                volumes.remove(check.volume_dir)
        return Desired(rollout, replicas, make, min_ready_seconds * self.config.time_scale)

    def _from_zero(self, canary: Canary, deployment: Mapping[str, Any], target: _Target) -> int:
        return targetstate.scale_from_zero(self.config.lookup, canary, deployment, target.state)

    def _save(self, target: _Target) -> None:
        targetstate.save(self.config.state_dir, target.namespace, target.name, target.state)


def _threshold(value: int | None) -> int:
    return 100 if value is None else value


def _nothing(pod_name: str, port: int) -> ProcessSpec:
    raise AssertionError("no replica is built for zero replicas")
