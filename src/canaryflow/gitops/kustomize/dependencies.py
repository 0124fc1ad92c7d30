"""``dependsOn``: whether the Kustomizations this one depends on are ready, by Flux's rule. Pure; the
controller gathers the statuses and re-checks every 30 s while a dependency is not ready."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence


@dataclasses.dataclass(frozen=True)
class DependencyStatus:
    """What the rule needs of a dependency: its generation, its status, and the source it builds from."""

    generation: int
    observed_generation: int
    ready: bool
    source: str  # its sourceRef, "Kind/namespace/name"
    last_applied_revision: str | None = None


def dependencies_ready(
    depends_on: Sequence[tuple[str, str]],
    statuses: Mapping[tuple[str, str], DependencyStatus],
    *,
    source: str,
    revision: str,
) -> tuple[bool, str]:
    """A dependency ``(namespace, name)`` is ready when it exists, its status is for its current generation, it
    is Ready, and, when it builds from the same ``source``, it has applied the ``revision`` about to be applied
    here (so an app never runs ahead of the infrastructure from the same commit). The message names the first
    one that is not."""
    for namespace, name in depends_on:
        key = f"{namespace}/{name}"
        status = statuses.get((namespace, name))
        if status is None:
            return False, f"unable to get '{key}' dependency: Kustomization '{key}' not found"
        if status.observed_generation != status.generation or not status.ready:
            return False, f"dependency '{key}' is not ready"
        if status.source == source and status.last_applied_revision != revision:
            return False, f"dependency '{key}' revision is not up to date: {revision} not applied yet"
    return True, "all dependencies are ready" if depends_on else "no dependencies"
