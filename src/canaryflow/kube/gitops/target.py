"""A Kubernetes cluster as a GitOps Target: server-side apply with the field manager ``canaryflow``.

An apply is as close to all-or-nothing as the API server allows. Every object is first applied as a dry run
(``dryRun=All``): the server runs its defaulting, validation and admission on it and answers with the object
it would store, without storing it. Any refusal fails the whole revision before a single write. Then only the
objects whose dry-run result differs from the live object are applied for real, in the order given, so a
reconcile of an unchanged revision writes nothing and one after a ``kubectl edit`` writes just the edited
object back. ``force`` takes over fields another manager changed: git is the source of truth.

The one thing a dry run cannot check is an object that needs something the same revision creates: a custom
resource whose CustomResourceDefinition, or an object whose Namespace, is only now being applied. As Flux does,
those are applied in two stages: CRDs and Namespaces first, then (once the new kinds are served) the rest is
dry-run and applied. A refusal in the second stage leaves the first stage applied; the error says so.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from canaryflow.clock import Clock, SystemClock
from canaryflow.gitops.target.base import ApplyError, Change, Health, ObjRef, Support, group_of
from canaryflow.kube.client import Api, ApiError, Kind, NotFound
from canaryflow.kube.gitops.health import health_of

#: Metadata the API server owns: never sent in an apply (a ``resourceVersion`` would make it conditional, a
#: ``creationTimestamp: null`` from a generator is noise) and never a difference between desired and live.
SERVER_METADATA = frozenset(
    {"creationTimestamp", "generation", "managedFields", "resourceVersion", "selfLink", "uid", "deletionTimestamp",
     "deletionGracePeriodSeconds"}
)  # fmt: skip
SSA_ANNOTATION = "kustomize.toolkit.fluxcd.io/ssa"
CRD = ("apiextensions.k8s.io", "CustomResourceDefinition")
FIRST_STAGE = frozenset({CRD, ("", "Namespace")})
#: Dry runs are independent requests; this many run at once (a revision of 1,000 objects is not 1,000 round trips
#: in a row, nor 1,000 requests at once against the API server's priority and fairness limits).
CONCURRENCY = 16


@dataclasses.dataclass(slots=True, eq=False)
class _Plan:
    obj: Mapping[str, Any]
    ref: ObjRef
    kind: Kind | None = None  # None: served only once a CRD of this revision is applied
    body: dict[str, Any] = dataclasses.field(default_factory=dict)
    live: dict[str, Any] | None = None
    dry: dict[str, Any] | None = None  # the dry run's answer: the object as the apply would store it
    skip: bool = False  # the ssa policy says leave it alone
    action: str = "unchanged"

    @property
    def first_stage(self) -> bool:
        return (self.ref.group, self.ref.kind) in FIRST_STAGE

    @property
    def namespace(self) -> str | None:
        """Where the object lives: None for a cluster-scoped kind, whatever the manifest says."""
        return self.ref.namespace if self.kind is None or self.kind.namespaced else None


class KubeTarget:
    """canaryflow.gitops.target.base.Target over ``Api``."""

    def __init__(
        self,
        api: Api,
        *,
        crd_timeout: float = 30.0,
        unserved_ttl: float = 60.0,
        clock: Clock | None = None,
    ) -> None:
        """``crd_timeout``: how long to wait for the kinds of a newly applied CRD to be served;
        ``unserved_ttl``: how long support() remembers that a kind is not served (the next apply asks again)."""
        self.api = api
        self.crd_timeout = crd_timeout
        self.unserved_ttl = unserved_ttl
        self._clock = clock or SystemClock()
        self._now = self._clock.now
        self._served: dict[tuple[str, str], Kind] = {}
        self._unserved: dict[tuple[str, str], tuple[float, str]] = {}

    # --- kinds ------------------------------------------------------------------------------------------------

    def support(self, api_version: str, kind: str) -> tuple[Support, str]:
        """RUN for what the API server serves. support() cannot ask the server (it is synchronous), so a kind it
        has not looked up yet is RUN here and checked by apply() with API discovery before anything is written;
        a kind discovery found unserved is UNSUPPORTED for ``unserved_ttl`` seconds."""
        if not api_version or not kind:
            return Support.UNSUPPORTED, "apiVersion and kind are required"
        missing = self._unserved.get((api_version, kind))
        if missing is not None and self._now() - missing[0] < self.unserved_ttl:
            return Support.UNSUPPORTED, missing[1]
        return Support.RUN, ""

    async def resolve(self, api_version: str, kind: str) -> Kind | None:
        """The served resource of a kind, from API discovery; None (and remembered) when it is not served."""
        key = (api_version, kind)
        if key in self._served:
            return self._served[key]
        try:
            found = await self.api.discover(api_version, kind)
        except NotFound as exc:
            message = f"{exc.message} (is its CustomResourceDefinition installed?)"
            self._unserved[key] = (self._now(), f"the API server does not serve kind {kind}: {message}")
            return None
        self._unserved.pop(key, None)
        self._served[key] = found
        return found

    # --- apply ------------------------------------------------------------------------------------------------

    async def apply(self, objects: Sequence[Mapping[str, Any]], *, manager: str = "canaryflow") -> list[Change]:
        plans = [_Plan(obj, ObjRef.of(obj)) for obj in objects]
        await self._resolve_all(plans)
        await _gather(self._read_live(plan) for plan in plans if plan.kind is not None)
        now = [plan for plan in plans if plan.kind is not None and not plan.skip]
        namespaces = {plan.ref.name for plan in plans if (plan.ref.group, plan.ref.kind) == ("", "Namespace")}
        deferred = await self._dry_run(now, manager, namespaces)
        deferred += [plan for plan in plans if plan.kind is None]
        written: list[ObjRef] = []
        for plan in plans:
            if plan.first_stage and plan not in deferred:
                await self._write(plan, manager, written)
        if deferred:
            await self._second_stage(deferred, manager, written)
        for plan in plans:
            if not plan.first_stage:
                await self._write(plan, manager, written)
        return [Change(plan.ref, plan.action) for plan in plans]

    async def _resolve_all(self, plans: list[_Plan]) -> None:
        """Every object's kind is served, or defined by a CRD of this revision; names and scope are right."""
        defined = _defined_by_crds(plan.obj for plan in plans)
        problems = []
        for plan in plans:
            ref = plan.ref
            if not ref.name:
                problems.append(f"{ref.kind} (apiVersion {ref.api_version}): metadata.name: Required value")
                continue
            plan.kind = await self.resolve(ref.api_version, ref.kind)
            crd = (ref.group, ref.kind, ref.api_version.rpartition("/")[2])
            if plan.kind is None and crd not in defined:
                problems.append(f"{ref}: {self._unserved[(ref.api_version, ref.kind)][1]}")
                continue
            namespaced = plan.kind.namespaced if plan.kind is not None else defined[crd]
            if namespaced and not ref.namespace:
                problems.append(f"{ref}: metadata.namespace: Required value ({ref.kind} is namespaced)")
            plan.body = _applied(plan.obj, namespaced)
            plan.skip = _policy(plan.obj) == "ignore"
        if problems:
            raise ApplyError(problems)

    async def _read_live(self, plan: _Plan) -> None:
        assert plan.kind is not None
        plan.live = await self.api.get(plan.kind, plan.namespace, plan.ref.name)
        if plan.live is not None and _policy(plan.obj) == "ifnotpresent":
            plan.skip = True

    async def _dry_run(self, plans: Sequence[_Plan], manager: str, new_namespaces: set[str]) -> list[_Plan]:
        """Dry-run every plan; raise ApplyError naming every refusal. Returns the plans that can only be checked
        once the first stage is applied (their Namespace is part of this revision)."""
        problems: list[str] = []
        deferred: list[_Plan] = []

        async def one(plan: _Plan) -> None:
            assert plan.kind is not None
            try:
                plan.dry = await self.api.apply(plan.kind, plan.body, manager=manager, force=True, dry_run=True)
            except NotFound as exc:
                if plan.ref.namespace in new_namespaces and plan.live is None:
                    deferred.append(plan)  # the API server refuses objects in a namespace that does not exist yet
                else:
                    problems.append(f"{plan.ref}: {exc.message or exc}")
            except ApiError as exc:
                problems.append(f"{plan.ref}: {exc.message or exc}")

        await _gather(one(plan) for plan in plans)
        if problems:
            order = {str(plan.ref): i for i, plan in enumerate(plans)}
            raise ApplyError(sorted(problems, key=lambda p: order.get(p.partition(": ")[0], len(order))))
        return sorted(deferred, key=plans.index)

    async def _second_stage(self, plans: list[_Plan], manager: str, written: list[ObjRef]) -> None:
        """The objects that needed the first stage: resolve the new kinds, then dry-run them all."""
        deadline = self._now() + self.crd_timeout
        problems = []
        for plan in plans:
            while plan.kind is None:
                self._unserved.pop((plan.ref.api_version, plan.ref.kind), None)
                plan.kind = await self.resolve(plan.ref.api_version, plan.ref.kind)
                if plan.kind is not None:
                    await self._read_live(plan)
                elif self._now() >= deadline:
                    problems.append(f"{plan.ref}: kind {plan.ref.kind} is not served {self.crd_timeout:g}s after "
                                    "its CustomResourceDefinition was applied")  # fmt: skip
                    break
                else:
                    await self._clock.sleep(0.5)
        if problems:
            raise ApplyError([*problems, _already(written)])
        try:
            still = await self._dry_run([plan for plan in plans if not plan.skip], manager, set())
        except ApplyError as exc:
            raise ApplyError([*exc.problems, _already(written)]) from None
        assert not still

    async def _write(self, plan: _Plan, manager: str, written: list[ObjRef]) -> None:
        if plan.skip or plan.kind is None or plan.dry is None:
            return
        if plan.live is not None and _comparable(plan.dry) == _comparable(plan.live):
            return
        try:
            await self.api.apply(plan.kind, plan.body, manager=manager, force=True)
        except ApiError as exc:
            raise ApplyError([f"{plan.ref}: {exc.message or exc}", _already(written)]) from None
        written.append(plan.ref)
        plan.action = "configured" if plan.live is not None else "created"

    # --- the rest of Target -----------------------------------------------------------------------------------

    async def get(self, ref: ObjRef) -> dict[str, Any] | None:
        kind = await self.resolve(ref.api_version, ref.kind)
        if kind is None:
            return None
        return await self.api.get(kind, ref.namespace if kind.namespaced else None, ref.name)

    async def delete(self, ref: ObjRef) -> bool:
        kind = await self.resolve(ref.api_version, ref.kind)
        if kind is None:
            return False
        return await self.api.delete(kind, ref.namespace if kind.namespaced else None, ref.name)

    async def health(self, ref: ObjRef) -> Health:
        live = await self.get(ref)
        if live is None:
            return Health("in-progress", "not found")
        return health_of(live)


def _already(written: Sequence[ObjRef]) -> str:
    if not written:
        return "nothing was written"
    return "already applied before this failure: " + ", ".join(map(str, written))


def _policy(obj: Mapping[str, Any]) -> str:
    return str(((obj.get("metadata") or {}).get("annotations") or {}).get(SSA_ANNOTATION, "")).lower()


def _applied(obj: Mapping[str, Any], namespaced: bool) -> dict[str, Any]:
    """What is sent: the manifest without ``status`` and server-owned metadata; a cluster-scoped object without
    a namespace (kustomize's ``namespace:`` sets it on kinds it does not know are cluster-scoped)."""
    body = {key: copy.deepcopy(value) for key, value in obj.items() if key != "status"}
    metadata = {k: v for k, v in (body.get("metadata") or {}).items() if k not in SERVER_METADATA}
    if not namespaced:
        metadata.pop("namespace", None)
    body["metadata"] = metadata
    return body


def _comparable(obj: Mapping[str, Any]) -> dict[str, Any]:
    """An object as far as an apply decides it: the server's bookkeeping and the status left out."""
    out = {key: value for key, value in obj.items() if key != "status"}
    out["metadata"] = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in SERVER_METADATA}
    return out


def _defined_by_crds(objects: Any) -> dict[tuple[str, str, str], bool]:
    """(group, kind, version) -> namespaced, for every version the revision's CRDs serve."""
    found: dict[tuple[str, str, str], bool] = {}
    for obj in objects:
        if (group_of(str(obj.get("apiVersion"))), obj.get("kind")) != CRD:
            continue
        spec = obj.get("spec") or {}
        kind = (spec.get("names") or {}).get("kind")
        namespaced = spec.get("scope") != "Cluster"
        for version in spec.get("versions") or []:
            if isinstance(version, Mapping) and version.get("served", True) and kind:
                found[(str(spec.get("group", "")), str(kind), str(version.get("name")))] = namespaced
    return found


async def _gather(calls: Any) -> None:
    semaphore = asyncio.Semaphore(CONCURRENCY)

    async def bounded(call: Any) -> None:
        async with semaphore:
            await call

    await asyncio.gather(*(bounded(call) for call in calls))
