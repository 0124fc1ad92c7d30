"""``wait`` and ``healthChecks``: pass when everything is current, fail at once on a failed object, and give up
at the timeout otherwise. Time is fake: nothing here waits for real."""

from __future__ import annotations

from canaryflow.gitops.kustomize.dependencies import DependencyStatus, dependencies_ready
from canaryflow.gitops.kustomize.health import duration
from canaryflow.gitops.kustomize.reconcile import reconcile
from canaryflow.gitops.target.base import Health, ObjRef
from canaryflow.gitops.target.memory import MemoryTarget
from tests.clocks import InstantClock
from tests.gitops.kustomizations import kustomization
from tests.gitops.kustomize.conftest import Repo, configmap

BACKEND = ObjRef("v1", "ConfigMap", "prod", "backend")
FRONTEND = ObjRef("v1", "ConfigMap", "prod", "frontend")
WAIT = kustomization("apps", path="./deploy", wait=True, timeout="2m")


def two(repo: Repo) -> None:
    repo.write("deploy/backend.yaml", configmap("backend"))
    repo.write("deploy/frontend.yaml", configmap("frontend"))


def conditions(outcome: object) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in outcome.conditions}


async def test_a_failed_object_fails_the_health_check_at_once(repo: Repo, clock: InstantClock) -> None:
    two(repo)
    target = MemoryTarget()
    target.set_health(BACKEND, Health("failed", "Progress deadline exceeded"))
    target.set_health(FRONTEND, Health("in-progress"))
    outcome = await reconcile(WAIT, repo.artifact(), [], target, clock=clock)
    assert (outcome.ready, outcome.reason) == (False, "HealthCheckFailed")
    assert "failed early due to stalled resources: [ConfigMap/prod/backend status: 'Failed'" in outcome.message
    assert "Progress deadline exceeded" in outcome.message
    assert clock.slept == 0  # did not wait out the two-minute timeout
    assert outcome.applied and len(outcome.inventory) == 2
    assert conditions(outcome)["Healthy"] == ("False", "HealthCheckFailed")


async def test_an_object_that_never_becomes_ready_times_out(repo: Repo, clock: InstantClock) -> None:
    two(repo)
    target = MemoryTarget()
    target.set_health(FRONTEND, Health("in-progress", "Deployment has 0 of 2 replicas ready"))
    outcome = await reconcile(WAIT, repo.artifact(), [], target, clock=clock)
    assert outcome.reason == "HealthCheckFailed"
    assert outcome.message == (
        "Health check failed after 2m0s: timeout waiting for: "
        "[ConfigMap/prod/frontend status: 'InProgress': Deployment has 0 of 2 replicas ready]"
    )
    assert clock.slept == 120


async def test_health_checks_pass_once_objects_become_current(repo: Repo, clock: InstantClock) -> None:
    two(repo)
    target = MemoryTarget()
    target.set_health(BACKEND, Health("in-progress"))
    original = target.health

    async def becoming_ready(ref: ObjRef) -> Health:
        if clock.slept >= 6:
            target.healths.pop(BACKEND.id, None)
        return await original(ref)

    target.health = becoming_ready  # type: ignore[method-assign]
    spec = kustomization(
        "apps",
        path="./deploy",
        healthChecks=[{"apiVersion": "v1", "kind": "ConfigMap", "namespace": "prod", "name": "backend"}],
    )
    outcome = await reconcile(spec, repo.artifact(), [], target, clock=clock)
    assert outcome.ready, outcome.message
    assert conditions(outcome) == {
        "Ready": ("True", "ReconciliationSucceeded"),
        "Healthy": ("True", "HealthCheckSucceeded"),
    }
    assert clock.slept == 6  # three polls, two seconds apart


async def test_without_wait_or_health_checks_health_is_not_consulted(repo: Repo, clock: InstantClock) -> None:
    two(repo)
    target = MemoryTarget()
    target.set_health(BACKEND, Health("failed"))
    spec = kustomization("apps", path="./deploy")
    outcome = await reconcile(spec, repo.artifact(), [], target, clock=clock)
    assert outcome.ready and target.health_calls == 0


def test_durations_read_as_flux_writes_them() -> None:
    assert [duration(s) for s in (0, 2.5, 60, 90, 3725)] == ["0s", "2.5s", "1m0s", "1m30s", "1h2m5s"]


def status(
    ready: bool = True,
    revision: str | None = "main@sha1:a",
    source: str = "GitRepository/flux-system/flux-system",
    observed: int = 2,
) -> DependencyStatus:
    return DependencyStatus(generation=2, observed_generation=observed, ready=ready, source=source,
                            last_applied_revision=revision)  # fmt: skip


def test_dependencies_follow_flux_s_rule() -> None:
    deps = [("flux-system", "istio-system")]
    source, revision = "GitRepository/flux-system/flux-system", "main@sha1:a"

    def check(statuses: dict[tuple[str, str], DependencyStatus]) -> tuple[bool, str]:
        return dependencies_ready(deps, statuses, source=source, revision=revision)

    key = ("flux-system", "istio-system")
    assert check({key: status()}) == (True, "all dependencies are ready")
    assert check({}) == (
        False,
        "unable to get 'flux-system/istio-system' dependency: Kustomization 'flux-system/istio-system' not found",
    )
    assert check({key: status(ready=False)}) == (False, "dependency 'flux-system/istio-system' is not ready")
    assert check({key: status(observed=1)}) == (False, "dependency 'flux-system/istio-system' is not ready")
    ok, message = check({key: status(revision="main@sha1:old")})
    assert not ok and "revision is not up to date" in message
    # from another source, its revision is its own business
    assert check({key: status(revision="v1@sha1:x", source="GitRepository/flux-system/other")})[0]
