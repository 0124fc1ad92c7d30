"""What Flux's kinds share: API groups, durations as Flux writes them, object references, and the status
conditions every Flux controller reports.

Flux's CRDs constrain durations tighter than Go does: ``^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$`` (no ``0``, no ``us``;
git and registry timeouts even without ``h``). The models check the same pattern so a manifest that passes here
is accepted by a cluster running Flux, and say so in words.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Final, Literal, Protocol

from pydantic import AfterValidator, Field

from canaryflow.api.base import Model, ObjectMeta
from canaryflow.api.duration import Duration, parse_duration
from canaryflow.api.timestamps import rfc3339

SOURCE_GROUP: Final = "source.toolkit.fluxcd.io"
KUSTOMIZE_GROUP: Final = "kustomize.toolkit.fluxcd.io"
IMAGE_GROUP: Final = "image.toolkit.fluxcd.io"
NOTIFICATION_GROUP: Final = "notification.toolkit.fluxcd.io"

#: The annotation ``flux reconcile`` sets to ask for a reconcile now; echoed in ``status.lastHandledReconcileAt``.
REQUESTED_AT_ANNOTATION: Final = "reconcile.fluxcd.io/requestedAt"

_INTERVAL = re.compile(r"([0-9]+(\.[0-9]+)?(ms|s|m|h))+")
_TIMEOUT = re.compile(r"([0-9]+(\.[0-9]+)?(ms|s|m))+")
# Marks a field as a duration for canaryflow.api.messages ("expected a duration such as 30s", not "a string").
_GO_DURATION = typing.get_args(Duration)[1]


def _interval(text: str) -> str:
    if not _INTERVAL.fullmatch(text):
        raise ValueError(f"invalid duration {text!r}: use numbers with a unit ms, s, m or h, e.g. 10m or 1m30s")
    return text


def _timeout(text: str) -> str:
    if not _TIMEOUT.fullmatch(text):
        raise ValueError(f"invalid duration {text!r}: use numbers with a unit ms, s or m (no h here), e.g. 60s or 5m")
    return text


Interval = Annotated[str, AfterValidator(_interval), _GO_DURATION]
"""A Flux duration (``10m0s``, ``1h``), kept as written; read it with :func:`seconds`."""
Timeout = Annotated[str, AfterValidator(_timeout), _GO_DURATION]
"""A Flux duration without hours (git and registry timeouts)."""


def seconds(duration: str) -> float:
    """Seconds in a duration the models accepted."""
    return parse_duration(duration)


class SecretKeyReference(Model):
    name: str = Field(min_length=1)
    key: str | None = None


class NamespacedObjectKindReference(Model):
    api_version: str | None = None
    kind: str = Field(min_length=1)
    name: str = Field(min_length=1)
    namespace: str | None = None


class LabelSelectorRequirement(Model):
    key: str = Field(min_length=1)
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[str] | None = None


class LabelSelector(Model):
    match_labels: dict[str, str] | None = None
    match_expressions: list[LabelSelectorRequirement] | None = None


class NamespaceSelector(Model):
    match_labels: dict[str, str] | None = None


class AccessFrom(Model):
    """Which namespaces may refer to this object (Flux's ACL; provisional in Flux itself)."""

    namespace_selectors: list[NamespaceSelector]


# --- Status -----------------------------------------------------------------------------------------------------
# What Flux's controllers write in status.conditions (metav1.Condition). Inputs never validate status (it is the
# controllers' to write); these types shape what canaryflow writes, so `flux get` and `kubectl wait` read it.

READY: Final = "Ready"
RECONCILING: Final = "Reconciling"
STALLED: Final = "Stalled"
HEALTHY: Final = "Healthy"
FETCH_FAILED: Final = "FetchFailed"

# Reasons (of conditions and events), as Flux's controllers spell them: the GitOps controller writes no other.
SUCCEEDED: Final = "Succeeded"
RECONCILIATION_SUCCEEDED: Final = "ReconciliationSucceeded"
RECONCILIATION_FAILED: Final = "ReconciliationFailed"
PROGRESSING: Final = "Progressing"
DEPENDENCY_NOT_READY: Final = "DependencyNotReady"
ARTIFACT_FAILED: Final = "ArtifactFailed"
BUILD_FAILED: Final = "BuildFailed"
HEALTH_CHECK_FAILED: Final = "HealthCheckFailed"
PRUNE_FAILED: Final = "PruneFailed"
GIT_OPERATION_FAILED: Final = "GitOperationFailed"
SUSPENDED: Final = "Suspended"
HEALTH_CHECK_SUCCEEDED: Final = "HealthCheckSucceeded"
GARBAGE_COLLECTION_SUCCEEDED: Final = "GarbageCollectionSucceeded"
TOKEN_NOT_FOUND: Final = "TokenNotFound"
INVALID_POLICY: Final = "InvalidPolicy"
IMAGE_URL_INVALID: Final = "ImageURLInvalid"
PROGRESSING_WITH_RETRY: Final = "ProgressingWithRetry"
NEW_ARTIFACT: Final = "NewArtifact"
#: A stored object canaryflow's models refuse (Flux's admission would have refused it): Stalled until it changes.
INVALID_SPEC: Final = "InvalidSpec"

ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(Model):
    """One ``metav1.Condition``; ``lastTransitionTime`` is RFC 3339 (see :func:`timestamp`)."""

    type: str = Field(min_length=1)
    status: ConditionStatus
    reason: str = Field(min_length=1)
    message: str = ""
    last_transition_time: str
    observed_generation: int | None = None


def condition(
    type_: str, ok: bool | None, reason: str, message: str, now: float, generation: int | None = None
) -> Condition:
    """A condition that is True, False or (``ok`` None) Unknown since ``now``; ``generation`` None leaves
    ``observedGeneration`` out (the writer does not know it)."""
    status: ConditionStatus = "Unknown" if ok is None else ("True" if ok else "False")
    return Condition(type=type_, status=status, reason=reason, message=message, last_transition_time=rfc3339(now),
                     observed_generation=generation)  # fmt: skip


def set_condition(conditions: Sequence[Condition], new: Condition) -> list[Condition]:
    """``conditions`` with ``new`` in place of the one of its type. As Kubernetes' SetStatusCondition does,
    ``lastTransitionTime`` only moves when the status changes: it says since when, not when last checked."""
    out: list[Condition] = []
    for existing in conditions:
        if existing.type != new.type:
            out.append(existing)
        elif existing.status == new.status:
            out.append(new.model_copy(update={"last_transition_time": existing.last_transition_time}))
        else:
            out.append(new)
    if not any(c.type == new.type for c in conditions):
        out.append(new)
    return out


def set_conditions(previous: Sequence[Condition], current: Sequence[Condition]) -> list[Condition]:
    """The conditions of a finished reconcile: ``current``, in its order, each set over ``previous`` by
    :func:`set_condition` (so keeping its transition time while its status holds). A type ``current`` lacks
    goes: a success writes ``Ready`` alone, and ``Stalled`` or ``Reconciling`` leave with it, as in Flux."""
    return [set_condition([old for old in previous if old.type == new.type], new)[0] for new in current]


def find_condition(status: Mapping[str, Any] | None, type_: str) -> Condition | None:
    """The well-formed condition of ``type_`` in a status read back from storage."""
    return next((c for c in conditions_of(status) if c.type == type_), None)


def is_ready(status: Mapping[str, Any] | None) -> bool:
    """Whether a status read back says ``Ready=True`` (of whichever generation)."""
    found = find_condition(status, READY)
    return found is not None and found.status == "True"


def conditions_of(status: Mapping[str, Any] | None) -> list[Condition]:
    """The well-formed conditions of a status read back from storage; others (written by hand) are left out."""
    found: list[Condition] = []
    raw = status.get("conditions") if status else None
    for item in raw if isinstance(raw, list) else ():
        if isinstance(item, dict):
            try:
                found.append(Condition.model_validate(item, strict=True, by_alias=True, by_name=False))
            except ValueError:
                continue
    return found


class Reference(Protocol):
    """Any reference to an object by name, in the referrer's namespace unless it names one."""

    @property
    def name(self) -> str: ...

    @property
    def namespace(self) -> str | None: ...


class FluxObject(Model):
    """What every Flux object has besides its ``spec``: metadata, a free-form status, and the accessors the
    controllers use on any kind. Each kind declares ``apiVersion``, ``kind`` and ``spec``."""

    metadata: ObjectMeta
    status: dict[str, Any] | None = None

    @property
    def key(self) -> str:
        """``namespace/name``."""
        return f"{self.metadata.namespace}/{self.metadata.name}"

    def ref_key(self, ref: Reference) -> str:
        """``namespace/name`` of the object ``ref`` names (in this object's namespace unless it names one)."""
        return f"{ref.namespace or self.metadata.namespace}/{ref.name}"

    @property
    def requested_at(self) -> str | None:
        """The ``reconcile.fluxcd.io/requestedAt`` value: a changed one asks for a reconcile now."""
        return self.metadata.annotations.get(REQUESTED_AT_ANNOTATION)

    @property
    def conditions(self) -> list[Condition]:
        return conditions_of(self.status)

    def condition(self, type_: str) -> Condition | None:
        return find_condition(self.status, type_)

    @property
    def ready(self) -> bool:
        """Whether status says ``Ready=True`` for the current generation (what ``dependsOn`` waits for)."""
        if not is_ready(self.status):
            return False
        observed = (self.status or {}).get("observedGeneration")
        return self.metadata.generation is None or observed == self.metadata.generation
