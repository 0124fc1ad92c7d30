"""Warnings about a Canary's references to nothing: a ``templateRef``, an alert's ``providerRef`` or the
``targetRef`` that names no object in the same input (nor, for ``apply``, among the objects already applied).

Only warnings, never refusals: with GitOps the MetricTemplate may arrive later from another Kustomization, so a
reference to nothing is legal, but it is usually a typo (``templateRef: latencyy``) that would otherwise show only
at run time. Each warning names the closest existing name:

    canary.yaml:40: Canary/backend: spec.analysis.metrics[1].templateRef: MetricTemplate istio-system/latencyy
    is not in this input; did you mean latency?
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator

from canaryflow.api import loader, suggest
from canaryflow.api.canary import Canary
from canaryflow.api.refs import NamespacedObjectReference

Key = tuple[str, str, str]  # kind, namespace, name


@dataclasses.dataclass(frozen=True, slots=True)
class Dangling:
    """A reference to nothing, with where it is written (printed like a validation problem)."""

    source: str
    line: int
    subject: str
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        return f"{where}: warning: {self.subject}: {self.path}: {self.message}"


def keys_of(documents: Iterable[loader.Document], default_namespace: str = "default") -> set[Key]:
    """(kind, namespace, name) of every object in ``documents``, whatever its kind."""
    keys: set[Key] = set()
    for document in documents:
        body = document.body
        if not isinstance(body, dict) or not isinstance(body.get("kind"), str):
            continue
        meta = body.get("metadata")
        meta = meta if isinstance(meta, dict) else {}
        name = meta.get("name")
        if isinstance(name, str) and name:
            keys.add((body["kind"], str(meta.get("namespace") or default_namespace), name))
    return keys


def check(
    canaries: Iterable[tuple[loader.Document, Canary]],
    known: set[Key],
    default_namespace: str = "default",
    where: str = "this input",
) -> list[Dangling]:
    """A warning for each reference of each canary that names no object in ``known``."""
    warnings: list[Dangling] = []
    for document, canary in canaries:
        namespace = canary.metadata.namespace or default_namespace
        for path, kind, ref_namespace, name in _references(document, canary, namespace):
            if (kind, ref_namespace, name) in known:
                continue
            message = f"{kind} {ref_namespace}/{name} is not in {where}{_hint(kind, ref_namespace, name, known)}"
            subject = f"Canary/{canary.metadata.name}"
            warnings.append(Dangling(document.source, document.line_of(path), subject, _dotted(path), message))
    return warnings


def _references(
    document: loader.Document, canary: Canary, namespace: str
) -> Iterator[tuple[tuple[str | int, ...], str, str, str]]:
    target = canary.spec.target_ref
    yield ("spec", "targetRef", "name"), target.kind, namespace, target.name
    spec = document.body.get("spec") if isinstance(document.body, dict) else None
    key = "canaryAnalysis" if isinstance(spec, dict) and "canaryAnalysis" in spec else "analysis"
    analysis = canary.spec.effective_analysis
    for i, metric in enumerate(analysis.metrics or ()):
        if metric.template_ref is not None:
            ref = _resolved(metric.template_ref, namespace)
            yield ("spec", key, "metrics", i, "templateRef", "name"), "MetricTemplate", *ref
    for i, alert in enumerate(analysis.alerts or ()):
        ref = _resolved(alert.provider_ref, namespace)
        yield ("spec", key, "alerts", i, "providerRef", "name"), "AlertProvider", *ref


def _resolved(ref: NamespacedObjectReference, namespace: str) -> tuple[str, str]:
    return ref.namespace or namespace, ref.name


def _hint(kind: str, namespace: str, name: str, known: set[Key]) -> str:
    """``; did you mean latency?`` (same namespace), ``…istio-system/latency?`` (another), or nothing."""
    here = [n for k, ns, n in known if k == kind and ns == namespace]
    guess = suggest.closest(name, here)
    if guess is None:
        elsewhere = {f"{ns}/{n}": n for k, ns, n in known if k == kind and ns != namespace}
        by_name = suggest.closest(name, list(elsewhere.values()))
        guess = next((full for full, n in sorted(elsewhere.items()) if n == by_name), None)
    return f"; did you mean {guess}?" if guess else ""


def _dotted(path: tuple[str | int, ...]) -> str:
    out = ""
    for part in path[:-1]:  # the reference, not its name field
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out
