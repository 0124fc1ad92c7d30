"""Every object the operator creates or patches for the Canaries of a manifest set, at a given weight and phase.

For each Canary, in the order Flagger's controller writes them: the ``-canary`` and ``-primary`` Services, the
``-primary`` copies of tracked ConfigMaps and Secrets, the primary workload, the primary HPA, the apex Service,
then (provider ``istio``, the default) the ``-canary`` and ``-primary`` DestinationRules and the VirtualService.
Canaries are taken in namespace/name order. The target's own scaling (to zero at rest, up during a run) is a
patch of its ``replicas`` and is not listed.

``weight`` is the canary's share of the traffic the operator has routed (``flagger_canary_weight``); the phase
says what Flagger's routing is at that point of a run:

=====================================  =================================================================
phase                                  routes (primary/canary)
=====================================  =================================================================
not in a run (Initialized, Succeeded,  100/0; ``weight`` must be 0
Failed, Waiting, ...)
Progressing, WaitingPromotion          canary: 100-w/w, mirrored when ``mirror`` and w = 0 (the mirror step);
                                       A/B: the match route at 0/100 for the whole test (w 0 or 100);
                                       blue/green: 100/0 (mirrored with ``mirror``) at w 0, 0/100 at w 100
Promoting, Finalising                  100-w/w: traffic coming back to the primary, stepWeightPromotion at a time
=====================================  =================================================================

Pure: no cluster is read. What a cluster would add is said in :attr:`Rendering.notes` (a config the pods read
that the manifests do not hold) and by placeholders (the Canary's uid in owner references).
"""

from __future__ import annotations

import dataclasses
import hashlib
import string
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from canaryflow.api import loader, validate
from canaryflow.api.canary import Canary, Strategy
from canaryflow.api.status import RUNNING_PHASES, Phase
from canaryflow.engine.effects import Routes
from canaryflow.kube.render import configs, istio, meta, services, workload

Json = meta.Json
TOTAL = 100
PROVIDERS = ("istio", "kubernetes")
_IN_ANALYSIS = frozenset({Phase.PROGRESSING, Phase.WAITING_PROMOTION})


@dataclasses.dataclass(frozen=True, slots=True)
class Rendering:
    """The objects, in the order the operator writes them, and what the manifests alone could not settle."""

    objects: list[Json]
    notes: list[str]


def parse_phase(text: str) -> Phase:
    """A phase by its name, in any case (``progressing``, ``Progressing``)."""
    for phase in Phase:
        if phase.value.lower() == text.strip().lower():
            return phase
    raise meta.RenderError(f"unknown phase {text!r}; phases are {', '.join(p.value for p in Phase)}")


def default_phase(weight: int) -> Phase:
    """Initialized at weight 0 (what a user sees once the operator has set a canary up), else Progressing."""
    return Phase.INITIALIZED if weight == 0 else Phase.PROGRESSING


def render(documents: Iterable[Any], weight: int, phase: Phase | None = None) -> Rendering:
    """The objects for every Canary in ``documents`` (parsed manifests: Canaries, their targets, HPAs,
    ConfigMaps and Secrets; a ``kind: List`` is read item by item)."""
    if not 0 <= weight <= TOTAL:
        raise meta.RenderError(f"weight must be 0..{TOTAL} (got {weight})")
    index = _Index(documents)
    if not index.canaries:
        raise meta.RenderError("no Canary (flagger.app/v1beta1) in the manifests: nothing to render")
    objects: list[Json] = []
    notes: list[str] = []
    for canary in sorted(index.canaries, key=lambda c: (c.metadata.namespace, c.metadata.name)):
        objects.extend(_render_canary(canary, index, weight, phase or default_phase(weight), notes))
    return Rendering(objects, notes)


def routes_for(canary: Canary, weight: int, phase: Phase) -> Routes:
    """The routes the operator has set for ``canary`` at ``weight`` in ``phase`` (the table above)."""
    if phase not in RUNNING_PHASES:
        if weight:
            raise meta.RenderError(
                f"Canary {canary.key}: in phase {phase} all traffic goes to the primary: "
                f"weight must be 0 (got {weight})"
            )
        return Routes(TOTAL, 0)
    analysis = canary.spec.effective_analysis
    if phase not in _IN_ANALYSIS:
        return Routes(TOTAL - weight, weight)
    if analysis.strategy is Strategy.AB_TESTING:
        if weight not in (0, TOTAL):
            raise meta.RenderError(
                f"Canary {canary.key} is an A/B test: in phase {phase} the requests it matches all go to the "
                f"canary (0/100), weight {weight} never happens; leave the weight out"
            )
        return Routes(0, TOTAL)
    if analysis.strategy is Strategy.BLUE_GREEN and weight not in (0, TOTAL):
        raise meta.RenderError(
            f"Canary {canary.key} is a blue/green test: in phase {phase} the canary has 0 or 100 (got {weight})"
        )
    mirrored = analysis.mirror and weight == 0
    return Routes(TOTAL - weight, weight, mirrored=mirrored)


def cookies_for(canary: Canary, routes: Routes) -> istio.Cookies:
    """Session-affinity cookies as Flagger's router leaves them in the status: a cookie is drawn when the canary
    gets traffic (here derived from the canary's name, so output is stable) and becomes the previous one at 0."""
    affinity = canary.spec.effective_analysis.session_affinity
    status = canary.status or {}
    if affinity is None:
        return istio.Cookies()
    current = str(status.get("sessionAffinityCookie") or "")
    if routes.canary == 0:
        return istio.Cookies(previous=current or str(status.get("previousSessionAffinityCookie") or ""))
    primary = str(status.get("primarySessionAffinityCookie") or "")
    if affinity.primary_cookie_name and not primary:
        primary = f"{affinity.primary_cookie_name}={_token(canary, affinity.primary_cookie_name)}"
    return istio.Cookies(
        canary=current or f"{affinity.cookie_name}={_token(canary, affinity.cookie_name)}", primary=primary
    )


def _render_canary(canary: Canary, index: _Index, weight: int, phase: Phase, notes: list[str]) -> list[Json]:
    provider = canary.spec.provider or "istio"
    if provider not in PROVIDERS:
        raise meta.RenderError(
            f"Canary {canary.key}: provider {provider} is not rendered; providers: {', '.join(PROVIDERS)}"
        )
    ref, ns = canary.spec.target_ref, canary.metadata.namespace
    if ref.kind not in workload.WORKLOAD_KINDS:
        raise meta.RenderError(
            f"Canary {canary.key}: a {ref.kind} target is not rendered; targets: {', '.join(workload.WORKLOAD_KINDS)}"
        )
    target = index.find(ref.kind, ns, ref.name)
    if target is None:
        raise meta.RenderError(f"Canary {canary.key}: its target {ref.kind} {ns}/{ref.name} is not in the manifests")
    pod_spec = ((target.get("spec") or {}).get("template") or {}).get("spec") or {}
    tracking = configs.track(pod_spec, lambda kind, name: index.find(kind, ns, name))
    for kind, name in tracking.missing:
        notes.append(
            f"Canary {canary.key}: {configs.KINDS[kind]} {ns}/{name}, read by {ref.kind} {ref.name}, is not in the "
            f"manifests: not tracked here; in a cluster where it exists the operator copies it to {name}-primary "
            f"and points {ref.name}-primary at the copy"
        )
    objects = [
        services.service(canary, target, services.Role.CANARY),
        services.service(canary, target, services.Role.PRIMARY),
    ]
    for config in tracking.refs:
        source = index.find(configs.KINDS[config.kind], ns, config.name)
        assert source is not None  # track() found it
        objects.append(configs.primary_config(canary, source))
    objects.append(workload.primary_workload(canary, target, tracking))
    if canary.spec.autoscaler_ref is not None:
        objects.append(workload.primary_hpa(canary, _autoscaler(canary, index)))
    objects.append(services.service(canary, target, services.Role.APEX))
    if provider == "istio":
        routes = routes_for(canary, weight, phase)
        objects.extend(istio.destination_rules(canary))
        objects.append(istio.virtual_service(canary, routes, cookies_for(canary, routes)))
    for obj in objects:
        kind, name = obj["kind"], obj["metadata"]["name"]
        if index.find(kind, ns, name) is not None:
            notes.append(
                f"Canary {canary.key}: {kind} {ns}/{name} is in the manifests too: the operator takes it over "
                "(shown here as the operator would create it), and re-applying the manifest, as Flux does, "
                "undoes the operator's changes; leave it out of the manifests"
            )
    return objects


def _autoscaler(canary: Canary, index: _Index) -> Mapping[str, Any]:
    ref, ns = canary.spec.autoscaler_ref, canary.metadata.namespace
    assert ref is not None
    if ref.kind != "HorizontalPodAutoscaler":
        raise meta.RenderError(f"Canary {canary.key}: a {ref.kind} autoscaler is not rendered (HPAs are)")
    hpa = index.find(ref.kind, ns, ref.name)
    if hpa is None:
        raise meta.RenderError(
            f"Canary {canary.key}: its autoscaler HorizontalPodAutoscaler {ns}/{ref.name} is not in the manifests"
        )
    return hpa


def _token(canary: Canary, cookie_name: str) -> str:
    # Flagger draws 10 random letters; a digest of the canary and the cookie name keeps renders reproducible.
    digest = hashlib.sha256(f"{canary.key}/{cookie_name}".encode()).digest()
    return "".join(string.ascii_letters[b % len(string.ascii_letters)] for b in digest[:10])


class _Index:
    """The manifests by kind, namespace and name (the first of duplicates), and the Canaries among them."""

    def __init__(self, documents: Iterable[Any]) -> None:
        self.objects: dict[tuple[str, str, str], Mapping[str, Any]] = {}
        self.canaries: list[Canary] = []
        for body in _items(documents):
            kind, name = body.get("kind"), (body.get("metadata") or {}).get("name")
            if not isinstance(kind, str) or not isinstance(name, str):
                continue
            self.objects.setdefault((kind, meta.name_of(body).partition("/")[0], name), body)
            if kind == "Canary":
                self._add_canary(body)

    def find(self, kind: str, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self.objects.get((kind, namespace, name))

    def _add_canary(self, body: Mapping[str, Any]) -> None:
        checked = validate.check(loader.Document("<manifests>", 0, body))
        if checked.problems:
            raise meta.RenderError("; ".join(str(p) for p in checked.problems))
        if isinstance(checked.resource, Canary):
            self.canaries.append(checked.resource)


def _items(documents: Iterable[Any]) -> Iterator[Mapping[str, Any]]:
    for body in documents:
        if not isinstance(body, Mapping):
            continue
        if body.get("apiVersion") == "v1" and body.get("kind") == "List" and isinstance(body.get("items"), list):
            yield from _items(body["items"])
        else:
            yield body
