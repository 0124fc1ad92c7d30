"""The Workload seam on Kubernetes: a Canary's target Deployment or DaemonSet and its ``<target>-primary`` copy.

The objects are built by :mod:`canaryflow.kube.render` (what ``canaryflow kube render`` prints), so the
operator writes exactly what a user reviewed. What this module adds is the cluster: reading the live target,
its ConfigMaps, Secrets and HPA; writing only what differs (:mod:`canaryflow.kube.converge`); and reading
readiness from the workloads' status (:mod:`canaryflow.kube.readiness`).

As in Flagger, the primary is created once, from the target as it is at initialization, and changes only on
promotion: updating it from the target on every tick would ship an unanalysed revision. The primary HPA and
the ``-primary`` config copies follow the same rule, except that the HPA's bounds, metrics and behaviour are
kept in step with the target HPA's at every initialization (a change there is not a release).

Scaling a DaemonSet "to zero" is Flagger's trick: a node selector no node carries
(``flagger.app/scale-to-zero: "true"``); it is ignored when hashing the template and never copied to the primary.
The first scale to zero of the target is the engine's (``ScaleCanaryToZero`` once the primary is ready), not
``initialize``'s: a primary that never becomes ready must not leave the service without pods.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from canaryflow.api.canary import Canary
from canaryflow.clock import Clock, SystemClock
from canaryflow.engine.effects import Readiness, Revision
from canaryflow.kube import readiness
from canaryflow.kube.cache import KubeCache
from canaryflow.kube.client import Api
from canaryflow.kube.converge import Json, contains, converge, patch_until
from canaryflow.kube.kinds import CONFIGMAP, DAEMONSET, DEPLOYMENT, HPA, SECRET, Kind
from canaryflow.kube.render import configs, meta, workload
from canaryflow.workloads import revision
from canaryflow.workloads.base import WorkloadError

SCALE_TO_ZERO_KEY = "flagger.app/scale-to-zero"
#: Annotations the cluster's tools keep on the live target; not part of what the user wrote, never copied.
_SERVER_ANNOTATIONS = ("deployment.kubernetes.io/revision", "kubectl.kubernetes.io/last-applied-configuration")
_KINDS = {"Deployment": DEPLOYMENT, "DaemonSet": DAEMONSET}
_T = TypeVar("_T")
_CONFIG_KINDS: dict[configs.ConfigKind, Kind] = {"configmap": CONFIGMAP, "secret": SECRET}


class KubeWorkload:
    """``Workload`` for Deployment and DaemonSet targets, through the Kubernetes API. Objects are read through
    ``cache`` (the operator's watch-backed one); without one, from the API server."""

    def __init__(self, api: Api, *, clock: Clock | None = None, cache: KubeCache | None = None) -> None:
        self.api = api
        self.cache = cache if cache is not None else KubeCache(api)
        self._now = (clock or SystemClock()).now

    # -- the Workload Protocol ----------------------------------------------------------------------------------
    async def initialize(self, canary: Canary) -> None:
        kind, target = await self._target(canary)
        primary = await self.cache.lookup(kind, canary.metadata.namespace, _primary(canary))
        if primary is None:
            tracking, sources = await self._tracking(canary, target)
            await self._write_configs(canary, tracking, sources)
            desired = _render(lambda: workload.primary_workload(canary, target, tracking))
            ns = canary.metadata.namespace
            await converge(self.api, kind, ns, _primary(canary), lambda live: _create(live, desired), cache=self.cache)
        if canary.spec.autoscaler_ref is not None:
            await self._reconcile_hpa(canary)

    async def revision(self, canary: Canary) -> Revision:
        _, target = await self._target(canary)
        template = (target.get("spec") or {}).get("template") or {}
        tracking, _ = await self._tracking(canary, target)
        return revision.revision(template, tracking)

    async def primary_readiness(self, canary: Canary) -> Readiness:
        kind, ns, name = _kind(canary), canary.metadata.namespace, _primary(canary)
        obj = await self.cache.lookup(kind, ns, name)
        if obj is None:
            return Readiness(False, f"{name}.{ns} not ready: {kind.kind.lower()} {ns}/{name} not found")
        threshold = _threshold(canary.spec.effective_analysis.primary_ready_threshold)
        ready = self._readiness(canary, obj, threshold)
        if not ready.ready:
            return Readiness(False, f"{name}.{ns} not ready: {ready.message}", ready.retriable)
        if kind is DEPLOYMENT and (obj.get("spec") or {}).get("replicas") == 0:
            message = f"halt {canary.metadata.name}.{ns} advancement: primary deployment is scaled to zero"
            return Readiness(False, message, retriable=False)
        return ready

    async def canary_readiness(self, canary: Canary) -> Readiness:
        kind, obj = await self._target(canary, raw=True)
        threshold = _threshold(canary.spec.effective_analysis.canary_ready_threshold)
        ready = self._readiness(canary, obj, threshold)
        if ready.ready:
            return ready
        ref, ns = canary.spec.target_ref, canary.metadata.namespace
        return Readiness(
            False, f"canary {kind.kind.lower()} {ref.name}.{ns} not ready: {ready.message}", ready.retriable
        )

    async def scale_canary_up(self, canary: Canary) -> None:
        kind, target = await self._target(canary, raw=True)
        if kind is DAEMONSET:
            await self._patch_target(canary, _daemonset_scale(on=True))
            return
        replicas = await self._scale_from_zero(canary, target)
        await self._patch_target(canary, _replicas_patch(replicas))

    async def scale_canary_to_zero(self, canary: Canary) -> None:
        kind, _ = await self._target(canary, raw=True)
        await self._patch_target(canary, _daemonset_scale(on=False) if kind is DAEMONSET else _replicas_patch(0))

    async def promote(self, canary: Canary) -> None:
        """Copy the target's template, rollout settings and configs to the primary (its pods roll: the
        ``flagger-id`` annotation changes with the template and the configs)."""
        kind, target = await self._target(canary)
        tracking, sources = await self._tracking(canary, target)
        await self._write_configs(canary, tracking, sources)
        desired = _render(lambda: workload.primary_workload(canary, target, tracking))
        target_replicas = (target.get("spec") or {}).get("replicas")
        keep_scale = canary.spec.autoscaler_ref is not None or not (
            isinstance(target_replicas, int) and target_replicas > 0
        )

        def decide(live: Json | None) -> Json | None:
            if live is None:
                return desired
            body = copy.deepcopy(live)
            spec = copy.deepcopy(desired["spec"])
            if kind is DEPLOYMENT and keep_scale:
                # An autoscaler owns the primary's scale; a target at zero has none to give.
                spec["replicas"] = (live.get("spec") or {}).get("replicas", spec["replicas"])
            body["spec"] = {**(live.get("spec") or {}), **spec}
            body["metadata"]["labels"] = desired["metadata"].get("labels") or {}
            # The primary's own rollout revision is its controller's, not ours to overwrite.
            owned = {k: v for k, v in (live["metadata"].get("annotations") or {}).items() if k in _SERVER_ANNOTATIONS}
            body["metadata"]["annotations"] = {**(desired["metadata"].get("annotations") or {}), **owned}
            live_spec = live.get("spec") or {}
            rest = {k: v for k, v in spec.items() if k != "template"}
            if spec["template"] == live_spec.get("template") and contains(live_spec, rest) and _same_meta(live, body):
                return None
            return body

        await converge(self.api, kind, canary.metadata.namespace, _primary(canary), decide, cache=self.cache)

    async def finalize(self, canary: Canary) -> None:
        """Revert on deletion (Flagger's Finalize): the target gets the primary's replicas back (a DaemonSet its
        nodes back), so it serves again once the Canary and what it owns are gone."""
        kind, _ = await self._target(canary, raw=True)
        if kind is DAEMONSET:
            await self._patch_target(canary, _daemonset_scale(on=True))
            return
        primary = await self.cache.lookup(kind, canary.metadata.namespace, _primary(canary))
        if primary is None:
            await self.scale_canary_up(canary)
            return
        replicas = (primary.get("spec") or {}).get("replicas")
        await self._patch_target(canary, _replicas_patch(replicas if isinstance(replicas, int) else 1))

    # -- internals ----------------------------------------------------------------------------------------------
    async def _target(self, canary: Canary, *, raw: bool = False) -> tuple[Kind, Json]:
        """The target as it is (``raw``), or as the primary copies it (:func:`as_written`)."""
        ref, ns, kind = canary.spec.target_ref, canary.metadata.namespace, _kind(canary)
        obj = await self.cache.lookup(kind, ns, ref.name)
        if obj is None:
            raise WorkloadError(f"{ref.kind.lower()} {ns}/{ref.name} not found")
        _render(lambda: meta.selector_label(obj))
        return kind, obj if raw else as_written(obj)

    async def _tracking(self, canary: Canary, target: Mapping[str, Any]) -> tuple[configs.Tracking, dict[str, Json]]:
        """The tracked configs of the target's pods and their live objects by ``configmap/<name>`` key; a config
        the pods need (not ``optional``) that does not exist is an error, as the pods could not start."""
        ns, ref = canary.metadata.namespace, canary.spec.target_ref
        pod_spec = ((target.get("spec") or {}).get("template") or {}).get("spec") or {}
        found: dict[str, Json] = {}
        for (kind, name), required in sorted(configs.references(pod_spec).items()):
            obj = await self.cache.lookup(_CONFIG_KINDS[kind], ns, name)
            if obj is not None:
                found[f"{kind}/{name}"] = obj
            elif required:
                raise WorkloadError(f"{configs.KINDS[kind]} {ns}/{name} not found: {ref.kind} {ns}/{ref.name} reads it")
        tracking = _render(lambda: configs.track(pod_spec, lambda k, n: found.get(f"{k.lower()}/{n}")))
        return tracking, found

    async def _write_configs(self, canary: Canary, tracking: configs.Tracking, sources: Mapping[str, Json]) -> None:
        for ref in tracking.refs:
            desired = configs.primary_config(canary, sources[ref.key])
            kind = _CONFIG_KINDS[ref.kind]
            name, decide = desired["metadata"]["name"], _config_decider(desired)
            await converge(self.api, kind, canary.metadata.namespace, name, decide, cache=self.cache)

    async def _reconcile_hpa(self, canary: Canary) -> None:
        ref, ns = canary.spec.autoscaler_ref, canary.metadata.namespace
        assert ref is not None
        if ref.kind != "HorizontalPodAutoscaler":
            raise WorkloadError(
                f"Canary {canary.key}: {ref.kind} autoscalers are not supported; use a HorizontalPodAutoscaler"
            )
        hpa = await self.cache.lookup(HPA, ns, ref.name)  # served as autoscaling/v2 whatever version it was written in
        if hpa is None:
            raise WorkloadError(f"horizontalpodautoscaler {ns}/{ref.name} not found")
        desired = _render(lambda: workload.primary_hpa(canary, hpa))

        def decide(live: Json | None) -> Json | None:
            if live is None:
                return desired
            fields = ("scaleTargetRef", "minReplicas", "maxReplicas", "metrics", "behavior")
            wanted = {k: desired["spec"][k] for k in fields if k in desired["spec"]}
            if contains(live.get("spec"), wanted) and _labels_of(live) == _labels_of(desired):
                return None
            body = copy.deepcopy(live)
            body["spec"] = {**(live.get("spec") or {}), **wanted}
            body["metadata"]["labels"] = desired["metadata"].get("labels") or {}
            return body

        await converge(self.api, HPA, ns, desired["metadata"]["name"], decide, cache=self.cache)

    async def _scale_from_zero(self, canary: Canary, target: Mapping[str, Any]) -> int:
        """Flagger's ScaleFromZero: the target's replicas if > 0; else, without an autoscaler, the primary's;
        with one, the HPA's minimum if > 1; else 1."""
        ns = canary.metadata.namespace
        replicas = (target.get("spec") or {}).get("replicas")
        if isinstance(replicas, int) and replicas > 0:
            return replicas
        ref = canary.spec.autoscaler_ref
        if ref is None:
            primary = await self.cache.lookup(DEPLOYMENT, ns, _primary(canary)) or {}
            primary_replicas = (primary.get("spec") or {}).get("replicas")
            return primary_replicas if isinstance(primary_replicas, int) and primary_replicas > 0 else 1
        if ref.kind == "HorizontalPodAutoscaler":
            hpa = await self.cache.lookup(HPA, ns, ref.name) or {}
            low = (hpa.get("spec") or {}).get("minReplicas")
            if isinstance(low, int) and low > 1:
                return low
        return 1

    async def _patch_target(self, canary: Canary, decide: Callable[[Json], Any | None]) -> None:
        ref, ns = canary.spec.target_ref, canary.metadata.namespace
        if await patch_until(self.api, _kind(canary), ns, ref.name, decide, cache=self.cache) is None:
            raise WorkloadError(f"{ref.kind.lower()} {ns}/{ref.name} not found")

    def _readiness(self, canary: Canary, obj: Mapping[str, Any], threshold: int) -> Readiness:
        deadline, now = canary.spec.progress_deadline_seconds, self._now()
        if obj.get("kind") == "DaemonSet":
            since = readiness.parse_time((canary.status or {}).get("lastTransitionTime"))
            return readiness.daemonset(obj, threshold, deadline, since, now)
        return readiness.deployment(obj, threshold, deadline, now)


def as_written(obj: Mapping[str, Any]) -> Json:
    """The live target as its manifest reads (what ``kube render`` is given): without the scale-to-zero node
    selector (an empty node selector left out) and the annotations the cluster's tools added."""
    out: Json = copy.deepcopy(dict(obj))
    annotations = (out.get("metadata") or {}).get("annotations")
    if isinstance(annotations, dict):
        for key in _SERVER_ANNOTATIONS:
            annotations.pop(key, None)
    pod_spec = ((out.get("spec") or {}).get("template") or {}).get("spec")
    if isinstance(pod_spec, dict) and isinstance(pod_spec.get("nodeSelector"), dict):
        pod_spec["nodeSelector"].pop(SCALE_TO_ZERO_KEY, None)
        if not pod_spec["nodeSelector"]:
            del pod_spec["nodeSelector"]
    return out


def _kind(canary: Canary) -> Kind:
    kind = _KINDS.get(canary.spec.target_ref.kind)
    if kind is None:
        raise WorkloadError(
            f"Canary {canary.key}: a {canary.spec.target_ref.kind} target is not supported on Kubernetes; "
            f"targets: {', '.join(_KINDS)}"
        )
    return kind


def _primary(canary: Canary) -> str:
    return f"{canary.spec.target_ref.name}-primary"


def _threshold(value: int | None) -> int:
    return 100 if value is None else value


def _create(live: Json | None, desired: Json) -> Json | None:
    return copy.deepcopy(desired) if live is None else None


def _labels_of(obj: Mapping[str, Any]) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("labels") or {})


def _same_meta(live: Mapping[str, Any], body: Mapping[str, Any]) -> bool:
    live_meta, body_meta = live.get("metadata") or {}, body.get("metadata") or {}
    return all((live_meta.get(k) or {}) == (body_meta.get(k) or {}) for k in ("labels", "annotations"))


def _replicas_patch(replicas: int) -> Callable[[Json], Any | None]:
    def decide(live: Json) -> Any | None:
        return None if (live.get("spec") or {}).get("replicas") == replicas else {"spec": {"replicas": replicas}}

    return decide


def _daemonset_scale(*, on: bool) -> Callable[[Json], Any | None]:
    """Remove (``on``) or add the node selector that keeps a DaemonSet's pods off every node."""

    def decide(live: Json) -> Any | None:
        selector = (((live.get("spec") or {}).get("template") or {}).get("spec") or {}).get("nodeSelector") or {}
        if (SCALE_TO_ZERO_KEY in selector) != on:
            return None
        return {"spec": {"template": {"spec": {"nodeSelector": {SCALE_TO_ZERO_KEY: None if on else "true"}}}}}

    return decide


def _config_decider(desired: Json) -> Callable[[Json | None], Json | None]:
    fields = ("type", "data", "binaryData")

    def decide(live: Json | None) -> Json | None:
        if live is None:
            return copy.deepcopy(desired)
        if all((live.get(f) or None) == (desired.get(f) or None) for f in fields):
            return None
        body = copy.deepcopy(live)
        for field in fields:
            body.pop(field, None)
            if desired.get(field):
                body[field] = copy.deepcopy(desired[field])
        return body

    return decide


def _render(build: Callable[[], _T]) -> _T:
    """Run a render function; what it finds wrong with the live objects is the workload's error."""
    try:
        return build()
    except meta.RenderError as exc:
        raise WorkloadError(str(exc)) from exc
