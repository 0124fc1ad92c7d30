"""Validating the resources canaryflow owns with the pydantic models, and saying what is wrong the way a user
reads their YAML:

    apps/canary.yaml:31: Canary/backend: spec.analysis.stepWeigth: unknown field; did you mean stepWeight?

Owned are Flagger's kinds (Canary, MetricTemplate, AlertProvider in ``flagger.app/v1beta1``) and Flux's
(:data:`canaryflow.api.flux.MODELS`: GitRepository, Kustomization, the image and notification kinds, each in the
versions accepted). In those groups an unknown kind or version is an error naming what is accepted; Flux kinds
canaryflow does not model (HelmRepository, anything of ``helm.toolkit.fluxcd.io``) and documents of other groups
(Deployments, HPAs, kustomize's own ``kustomization.yaml``...) are skipped, not judged. Values are checked as the
Kubernetes API server would type them (strictly: ``port: "80"`` is a string, not a number), so what passes here
is also accepted by the CRDs. Pydantic's messages are rephrased in :mod:`canaryflow.api.messages`.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable, Mapping, Sequence

import pydantic

from canaryflow.api import flux, loader, messages, references, suggest
from canaryflow.api.alertprovider import AlertProvider
from canaryflow.api.canary import API_VERSION, Canary
from canaryflow.api.metrictemplate import MetricTemplate

GROUP = API_VERSION.partition("/")[0]
Resource = Canary | MetricTemplate | AlertProvider | flux.FluxResource
OWNED_KINDS: dict[str, type[Resource]] = {
    "Canary": Canary,
    "MetricTemplate": MetricTemplate,
    "AlertProvider": AlertProvider,
}
#: Every model canaryflow validates, by (group, version), then kind.
REGISTRY: dict[tuple[str, str], dict[str, type[Resource]]] = {
    (GROUP, API_VERSION.partition("/")[2]): OWNED_KINDS,
    **{(group, version): dict(kinds) for group, versions in flux.MODELS.items() for version, kinds in versions.items()},
}
_GROUPS: dict[str, dict[str, Mapping[str, type[Resource]]]] = {}  # group -> version -> kind -> model
for (_group, _version), _models in REGISTRY.items():
    _GROUPS.setdefault(_group, {})[_version] = _models
# kustomize reads a kustomization.yaml that has a kind but no apiVersion: it is not a Flux object left unversioned.
_KUSTOMIZE_FILES = ("Kustomization",)
# Flux's API groups end so; a misspelt one is still recognised as meant to be Flux's.
_FLUX_SUFFIX = ".toolkit.fluxcd.io"


@dataclasses.dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in one document, with where it is."""

    source: str
    line: int
    subject: str  # "Canary/backend"; empty for a file that could not be read or parsed
    path: str  # "spec.analysis.metrics[0].thresholdRange"; empty for the document as a whole
    message: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        return ": ".join(part for part in (where, self.subject, self.path, self.message) if part)


@dataclasses.dataclass(frozen=True, slots=True)
class Skipped:
    """A document of a kind canaryflow does not own."""

    source: str
    line: int
    kind: str  # "Deployment"; "YAML list", "YAML scalar" or "no kind" when it is no Kubernetes object


@dataclasses.dataclass(frozen=True, slots=True)
class Checked:
    """The verdict on one document: a valid resource, problems, or skipped (exactly one of the three)."""

    document: loader.Document
    resource: Resource | None = None
    problems: tuple[Problem, ...] = ()
    skipped: Skipped | None = None


@dataclasses.dataclass(slots=True)
class Report:
    """Everything found in a set of files: the valid resources, the problems and what was skipped."""

    resources: list[tuple[loader.Document, Resource]] = dataclasses.field(default_factory=list)
    problems: list[Problem] = dataclasses.field(default_factory=list)
    skipped: list[Skipped] = dataclasses.field(default_factory=list)
    warnings: list[references.Dangling] = dataclasses.field(default_factory=list)  # never make it not ok

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, checked: Checked) -> None:
        if checked.resource is not None:
            self.resources.append((checked.document, checked.resource))
        self.problems.extend(checked.problems)
        if checked.skipped is not None:
            self.skipped.append(checked.skipped)


def validate_paths(paths: Iterable[str]) -> Report:
    """Load ``paths`` (files, directories, ``-`` for stdin) and check every document in them."""
    loaded = loader.load_paths(paths)
    report = validate_documents(loaded.documents)
    report.problems[:0] = [Problem(p.source, p.line, "", "", p.message) for p in loaded.problems]
    return report


def validate_documents(documents: Iterable[loader.Document]) -> Report:
    """Check each document, then each Canary's references against every object of the input (warnings)."""
    report = Report()
    every = [each for document in documents for each in _unlisted(document)]
    for each in every:
        report.add(check(each))
    report.warnings = references.check(canaries(report.resources), references.keys_of(every))
    return report


def canaries(resources: Iterable[tuple[loader.Document, Resource]]) -> list[tuple[loader.Document, Canary]]:
    return [(document, r) for document, r in resources if isinstance(r, Canary)]


def _unlisted(document: loader.Document) -> list[loader.Document]:
    """The items of a ``kind: List`` (what ``kubectl get canaries -o yaml`` prints), else the document."""
    body = document.body
    if (
        isinstance(body, dict)
        and body.get("apiVersion") == "v1"
        and body.get("kind") == "List"
        and isinstance(body.get("items"), list)
    ):
        return [document.part(("items", i)) for i in range(len(body["items"]))]
    return [document]


def check(document: loader.Document) -> Checked:
    """Judge one document: skip what canaryflow does not own, validate what it does."""
    body = document.body
    if not isinstance(body, dict):
        what = "YAML list" if isinstance(body, list) else "YAML scalar"  # a JSON patch, say: not an object
        return Checked(document, skipped=Skipped(document.source, document.line, what))
    kind, api_version = body.get("kind"), body.get("apiVersion")
    group, _, version = api_version.rpartition("/") if isinstance(api_version, str) else ("", "", "")
    home = _our_group(group)
    if home is None:
        homes = [g for g in _GROUPS if isinstance(kind, str) and kind in _kinds(g)]
        if not homes or group or kind in _KUSTOMIZE_FILES:
            # Not ours; or another project's resource that happens to share the name (e.g. some.io/v1 Canary).
            label = kind if isinstance(kind, str) and kind else "no kind"
            label += f" ({api_version or 'no apiVersion'})" if homes else ""
            return Checked(document, skipped=Skipped(document.source, document.line, label))
        return _api_version_problem(document, str(kind), api_version, homes[0])
    if not isinstance(kind, str) or kind not in _kinds(home) + _unmodelled(home):
        return _kind_problem(document, kind, home)
    if kind in _unmodelled(home):
        return Checked(document, skipped=Skipped(document.source, document.line, kind))
    model = REGISTRY.get((group, version), {}).get(kind)
    if model is None:
        return _api_version_problem(document, kind, api_version, home)
    try:
        resource = model.model_validate(body, strict=True, by_alias=True, by_name=False)
    except pydantic.ValidationError as exc:
        problems = _problems(document, model, exc)
        return Checked(document, problems=tuple(_moved_fields(problems, exc, home, version, kind)))
    return Checked(document, resource=resource)


def _kinds(group: str) -> list[str]:
    """The kinds ``group`` has models for, in any version, in the order first declared."""
    return list(dict.fromkeys(kind for kinds in _GROUPS[group].values() for kind in kinds))


def _unmodelled(group: str) -> list[str]:
    return list(flux.UNMODELLED.get(group, ()))


def _our_group(group: str) -> str | None:
    """The owned group ``group`` is, or was meant to be (``flager.app``); None for any other group."""
    if group in _GROUPS:
        return group
    if group in flux.OTHER_GROUPS:
        return None
    if group.endswith(_FLUX_SUFFIX):
        return suggest.closest(group, [g for g in _GROUPS if g.endswith(_FLUX_SUFFIX)])
    return GROUP if suggest.closest(group, [GROUP]) == GROUP else None


def subject(document: loader.Document) -> str:
    """``KIND/NAME`` of a document, as problems name it."""
    body = document.body if isinstance(document.body, dict) else {}
    meta = body.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    kind = body.get("kind")
    kind = kind if isinstance(kind, str) and kind else "<no kind>"
    return f"{kind}/{name if isinstance(name, str) and name else '<unnamed>'}"


def format_path(path: Sequence[str | int]) -> str:
    """``spec.analysis.metrics[0].thresholdRange``; keys that are not plain names are quoted
    (``metadata.labels["app.kubernetes.io/name"]``)."""
    out = ""
    for segment in path:
        if isinstance(segment, int):
            out += f"[{segment}]"
        elif segment and all(c.isalnum() or c in "_-" for c in segment):
            out += f".{segment}" if out else segment
        else:
            out += f'["{segment}"]'
    return out


def _kind_problem(document: loader.Document, kind: object, group: str) -> Checked:
    known = _kinds(group) + _unmodelled(group)
    listed = ", ".join(known)
    if not isinstance(kind, str) or not kind:
        message = f"kind is missing: {group} resources are {listed}"
    else:
        guess = suggest.closest(kind, known)
        hint = f"did you mean {guess}?" if guess else f"{group} resources are {listed}"
        message = f"unknown kind {kind!r}; {hint}"
    problem = Problem(document.source, document.line_of(("kind",)), subject(document), "kind", message)
    return Checked(document, problems=(problem,))


def _api_version_problem(document: loader.Document, kind: str, api_version: object, group: str) -> Checked:
    accepted = " or ".join(f"{group}/{version}" for version, kinds in _GROUPS[group].items() if kind in kinds)
    if api_version is None:
        message = f"apiVersion is missing; a {kind} is {accepted}"
    else:
        reader = "canaryflow, like Flagger 1.x," if group == GROUP else "canaryflow"
        message = f"apiVersion {api_version} is not supported: {reader} reads {kind} as {accepted}"
    line = document.line_of(("apiVersion",))
    return Checked(document, problems=(Problem(document.source, line, subject(document), "apiVersion", message),))


def _problems(
    document: loader.Document, model: type[pydantic.BaseModel], exc: pydantic.ValidationError
) -> list[Problem]:
    """One problem per thing wrong: pydantic reports a value that fits no member of ``int | str`` once per
    member, and those reports are merged into one."""
    name = subject(document)
    located = [(suggest.walk(model, error["loc"]), error) for error in exc.errors(include_url=False)]
    problems: list[Problem] = []
    for (path, union), group in itertools.groupby(located, key=lambda pair: (pair[0].path, pair[0].union)):
        errors = list(group)
        if union is not None:
            message = messages.union(union, [e for _, e in errors])
            problems.append(_problem(document, name, path, message))
            continue
        for where, error in errors:
            problems.append(_problem(document, name, path, messages.describe(model, where, error)))
    # Pydantic lists unknown fields after the other errors of their object: the order of the file reads better.
    return sorted(problems, key=lambda problem: problem.line)


def _moved_fields(
    problems: list[Problem], exc: pydantic.ValidationError, group: str, version: str, kind: str
) -> list[Problem]:
    """Say so when an unknown field is one of another version of the kind (``gitImplementation`` in
    ``source.toolkit.fluxcd.io/v1``): the fix is then the apiVersion or the field, not a spelling."""
    elsewhere: dict[str, str] = {}
    for error in exc.errors(include_url=False):
        loc = error["loc"]
        if error["type"] != "extra_forbidden" or not loc:
            continue
        for other, kinds in _GROUPS[group].items():
            model = kinds.get(kind)
            if (
                other != version
                and model is not None
                and str(loc[-1]) in suggest.field_names(suggest.walk(model, loc[:-1]).expected)
            ):
                path = format_path(suggest.walk(model, loc).path)
                elsewhere[path] = f"unknown field in {group}/{version}; it is a field of {group}/{other}"
                break
    return [
        dataclasses.replace(p, message=elsewhere[p.path])
        if p.path in elsewhere and p.message.startswith("unknown field")
        else p
        for p in problems
    ]


def _problem(document: loader.Document, name: str, path: tuple[str | int, ...], message: str) -> Problem:
    return Problem(document.source, document.line_of(path), name, format_path(path), message)
