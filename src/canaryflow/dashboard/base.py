"""What the dashboard reads and does, whatever runs the canaries (the local runtime, the operator, a test)."""

from __future__ import annotations

from typing import Any, Protocol

from canaryflow.engine.machine import Operation
from canaryflow.store.base import Event

Json = dict[str, Any]


class NotFound(LookupError):
    """The canary (or webhook) an action names does not exist."""


class Refused(Exception):
    """The runtime cannot do what was asked (a gate that no load tester answers, say); the message says why."""


class Backend(Protocol):
    #: The Prometheus the seed's Grafana view queries, or None when there is none to reach.
    prometheus: str | None

    async def canaries(self) -> list[Json]:
        """Every Canary in Kubernetes' shape (metadata, spec) with ``status`` in Flagger's shape."""
        ...

    async def events(self, canary: str | None, limit: int) -> list[Event]:
        """The most recent events, oldest first, of one canary (``namespace/name``) or of all."""
        ...

    async def gitops(self) -> dict[str, list[Json]]:
        """Flux objects with their status, by kind (GitRepository, Kustomization, ImagePolicy, …)."""
        ...

    async def operate(self, canary: str, operation: Operation) -> None:
        """Ask for promote, abort or retry; the canary's next tick acts on it. ``NotFound`` if there is none."""
        ...

    async def gate(self, canary: str, webhook: str, open_: bool) -> str:
        """Open or close the load tester's gate behind a confirm or rollback webhook; returns what it said."""
        ...
