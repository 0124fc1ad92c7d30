"""What a reconcile reports: ready or not, Flux's reason and message, what changed, what is applied now, and
the status conditions as kustomize-controller writes them.

On success: ``Ready=True`` (``ReconciliationSucceeded``, "Applied revision: main@sha1:…") and, when health was
checked, ``Healthy=True``. On failure: ``Ready=False`` with the reason (``ArtifactFailed``, ``BuildFailed``,
``ReconciliationFailed``, ``PruneFailed``, ``HealthCheckFailed``) and ``Reconciling=True``
(``ProgressingWithRetry``): Flux retries a failed revision, so ``Stalled`` stays off. The caller keeps
``lastTransitionTime`` when a condition's status did not change (canaryflow.api.flux.common.set_conditions).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from canaryflow.api.flux import common as flux
from canaryflow.api.flux.common import Condition
from canaryflow.clock import Clock
from canaryflow.gitops.target.base import Change, ObjRef


@dataclasses.dataclass(frozen=True)
class Outcome:
    ready: bool
    reason: str
    message: str
    revision: str
    changes: tuple[Change, ...]
    inventory: tuple[ObjRef, ...]  # what is applied now: the new inventory, or the previous one if nothing was
    conditions: tuple[Condition, ...]
    applied: bool = False  # the revision's objects were written (lastAppliedRevision moves even if unhealthy)


@dataclasses.dataclass(frozen=True)
class Report:
    """Writes the Outcome of one reconcile at ``revision``."""

    revision: str
    clock: Clock

    def succeeded(self, changes: Sequence[Change], inventory: Sequence[ObjRef], health: str | None) -> Outcome:
        message = f"Applied revision: {self.revision}"
        conditions = [self._condition(flux.READY, True, flux.RECONCILIATION_SUCCEEDED, message)]
        if health is not None:
            conditions.append(self._condition(flux.HEALTHY, True, flux.HEALTH_CHECK_SUCCEEDED, health))
        return Outcome(True, flux.RECONCILIATION_SUCCEEDED, message, self.revision, tuple(changes), tuple(inventory),
                       tuple(conditions), applied=True)  # fmt: skip

    def failed(
        self,
        reason: str,
        message: str,
        inventory: Sequence[ObjRef],
        changes: Sequence[Change] = (),
        *,
        applied: bool = False,
    ) -> Outcome:
        conditions = [
            self._condition(flux.READY, False, reason, message),
            self._condition(flux.RECONCILING, True, flux.PROGRESSING_WITH_RETRY, message),
        ]
        if reason == flux.HEALTH_CHECK_FAILED:
            conditions.append(self._condition(flux.HEALTHY, False, reason, message))
        return Outcome(False, reason, message, self.revision, tuple(changes), tuple(inventory), tuple(conditions),
                       applied=applied)  # fmt: skip

    def _condition(self, kind: str, status: bool, reason: str, message: str) -> Condition:
        return flux.condition(kind, status, reason, message, self.clock.now())
