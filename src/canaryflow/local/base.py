"""What the local runtime's HTTP API (``api.py``, ``gitops_api.py``) and its dashboard backend use of the running
runtime: the stores, the few parts they drive, and the views the runtime computes. ``LocalRuntime`` implements it;
the CLI's tests serve the API over a saved state with a stand-in, and ``bench/gitops.py`` serves the GitOps routes
over its own harness.

The API reads and acts only through these members, never through the runtime's wiring (Envoy, Prometheus, the
router, the executor): how the runtime is built can change without touching what it serves.
"""

from __future__ import annotations

from typing import Any, Protocol

from canaryflow.control.ownmetrics import Recorder
from canaryflow.gitops.controller.objects import FluxObjects, Key
from canaryflow.local.objects import Change, ObjectStore
from canaryflow.store.base import EventSink, StatusStore


class Canaries(Protocol):
    """The canaries the control loop drives (the Scheduler)."""

    @property
    def keys(self) -> list[str]:
        """``namespace/name`` of every canary driven, sorted."""
        ...

    def wake(self, key: str) -> None:
        """Tick the canary now (an operation was requested, its target changed)."""
        ...


class Replicas(Protocol):
    """The workloads' processes (ProcessWorkloads)."""

    def processes(self) -> list[dict[str, Any]]: ...

    def logs(self, namespace: str, workload: str, lines: int = 50) -> str: ...


class GitOps(Protocol):
    """The GitOps controller as the API drives it (LocalGitOps)."""

    @property
    def objects(self) -> FluxObjects: ...

    async def reconcile(self, key: Key, timeout: float) -> None:
        """Reconcile ``key`` now and wait until done; KeyError when it is not tracked, TimeoutError."""
        ...

    def request(self, key: Key) -> None:
        """Ask for a reconcile of ``key`` without waiting for it (a Receiver's webhook)."""
        ...

    async def diff(self, key: Key) -> list[dict[str, Any]]:
        """What applying the Kustomization ``key`` now would change; LookupError when it cannot be built."""
        ...

    def provided(self, api_version: str, kind: str) -> bool:
        """Whether objects of this kind are stored only, their job done by the runtime itself (Istio, Flagger)."""
        ...


class GitOpsRuntime(Protocol):
    """What the GitOps routes use: the object store and the GitOps controller."""

    @property
    def objects(self) -> ObjectStore: ...

    @property
    def gitops(self) -> GitOps: ...


class Runtime(GitOpsRuntime, Protocol):
    """What the API and the dashboard use of a running runtime."""

    @property
    def status_store(self) -> StatusStore: ...

    @property
    def events(self) -> EventSink: ...

    @property
    def recorder(self) -> Recorder:
        """The control loop's own metrics, served at ``/metrics``."""
        ...

    @property
    def canaries(self) -> Canaries: ...

    @property
    def replicas(self) -> Replicas: ...

    @property
    def global_notifier(self) -> str:
        """The Slack or Teams notifier from the flagger HelmRelease, described; empty when there is none."""
        ...

    async def changed(self, changes: list[Change]) -> None:
        """React to objects the API applied or deleted (start, update or stop canaries; track Flux objects)."""
        ...

    def endpoints(self) -> dict[str, Any]:
        """The runtime's URLs: api, meshProxy, envoyAdmin, prometheus, loadtester, dashboard, gateways."""
        ...

    def process_health(self) -> list[dict[str, Any]]:
        """Every process the runtime started, with its PID, health and restarts."""
        ...

    def deployments(self, namespace: str | None) -> list[dict[str, Any]]:
        """Stored Deployments with the status of their processes, in Kubernetes' shape."""
        ...

    def services(self, namespace: str | None) -> list[dict[str, Any]]:
        """Stored Services with the endpoints the mesh routes to, in Kubernetes' shape."""
        ...
