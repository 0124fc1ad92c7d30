"""Leader election of the Kubernetes GitOps controller: a ``coordination.k8s.io/v1`` Lease in the emulator, two
candidates on one fake clock. One leads; the other waits while the lease is renewed, takes over once it has not
been for a lease duration (35 s by Flux's defaults, measured on the follower's own clock), and the old leader,
unable to renew, knows it has lost within the renew deadline. A released lease is taken at the next retry."""

from __future__ import annotations

import asyncio
from pathlib import Path

from canaryflow.clock import FakeClock
from canaryflow.kube.client import KubeApi
from canaryflow.kube.gitops.leader import LeaderElector, LeaseConfig
from canaryflow.kube.gitops.run import GitOpsOptions, run
from canaryflow.kube.kinds import LEASE
from tests.gitops.gitserver import GitDaemon, RepoDir
from tests.kube.emulator import RunningEmulator
from tests.kube.schemas import validate
from tests.kube.test_gitops_controller import (
    GITREPOSITORY,
    KUSTOMIZATION,
    applied_revision,
    git_repository,
    kustomization,
    manifests,
)
from tests.polling import until, wait_for

NAMESPACE = "canaryflow-system"


def candidate(api: KubeApi, clock: FakeClock, identity: str) -> LeaderElector:
    return LeaderElector(api, LeaseConfig(namespace=NAMESPACE, identity=identity), clock)


async def holder(api: KubeApi) -> str | None:
    lease = await api.get(LEASE, NAMESPACE, "canaryflow-gitops-leader-election")
    return None if lease is None else str(lease["spec"].get("holderIdentity"))


async def test_a_follower_waits_for_the_lease_to_expire_then_takes_over(kube_api: KubeApi) -> None:
    clock = FakeClock()
    a, b = candidate(kube_api, clock, "a"), candidate(kube_api, clock, "b")
    assert await a.try_acquire_or_renew() and a.leading
    lease = await kube_api.get(LEASE, NAMESPACE, "canaryflow-gitops-leader-election")
    assert lease is not None
    validate(lease)
    assert lease["spec"]["leaseDurationSeconds"] == 35 and lease["spec"]["leaseTransitions"] == 0

    assert not await b.try_acquire_or_renew() and not b.leading  # held, and just renewed
    await clock.advance(30)
    assert await a.try_acquire_or_renew()  # the leader renews...
    await clock.advance(30)
    assert not await b.try_acquire_or_renew()  # ...so 60 s after b first looked, it is still a's
    await clock.advance(34)
    assert not await b.try_acquire_or_renew()  # a stopped renewing 64 s ago by the clock, 34 s since b saw it
    await clock.advance(1)
    assert await b.try_acquire_or_renew() and b.leading  # 35 s without a change: expired
    assert await holder(kube_api) == "b"
    taken = await kube_api.get(LEASE, NAMESPACE, "canaryflow-gitops-leader-election")
    assert taken is not None and taken["spec"]["leaseTransitions"] == 1

    # a, back, cannot renew: it is no longer leading, and hold() says so at its next retry
    assert not await a.try_acquire_or_renew() and not a.leading
    holding = asyncio.create_task(a.hold())
    await clock.advance(5)
    await wait_for(holding, "the old leader noticing it lost the lease")


async def test_a_leader_that_cannot_renew_gives_up_after_the_renew_deadline(kube_api: KubeApi) -> None:
    clock = FakeClock()
    a = candidate(kube_api, clock, "a")
    await a.acquire()

    async def refused(*args: object, **kwargs: object) -> bool:
        return False

    a.try_acquire_or_renew = refused  # type: ignore[method-assign]  # from now on the API server is unreachable
    holding = asyncio.create_task(a.hold())
    await clock.advance(25)
    assert not holding.done()  # 25 s without a renewal: still within the 30 s deadline
    await clock.advance(5)
    assert holding.done() and not a.leading


async def test_a_released_lease_is_taken_at_the_next_retry(kube_api: KubeApi) -> None:
    clock = FakeClock()
    a, b = candidate(kube_api, clock, "a"), candidate(kube_api, clock, "b")
    await a.acquire()
    following = asyncio.create_task(b.acquire())
    await until(lambda: b.attempts == 1, "b's first attempt")  # refused: b now waits a retry period
    assert not b.leading
    await a.release()
    assert await holder(kube_api) == ""
    await clock.advance(5)
    await wait_for(following, "b taking the released lease")
    assert b.leading and await holder(kube_api) == "b" and b.attempts == 2


async def test_two_controllers_only_the_leader_applies_and_the_other_takes_over_when_it_stops(
    kube_api: KubeApi, kube_emulator: RunningEmulator, tmp_path: Path
) -> None:
    """Two ``canaryflow gitops-controller`` runs (``run()``, in process, on one fake clock for the Lease): the
    first leads and applies git; the second waits, fetching nothing; when the first stops, it releases the Lease
    and the second takes over and applies the next commit."""
    repo = RepoDir(tmp_path / "repos").create("fleet", manifests())
    clock = FakeClock()
    with GitDaemon(tmp_path / "repos") as daemon:
        await kube_api.create(GITREPOSITORY, git_repository(daemon.url("fleet")))
        await kube_api.create(KUSTOMIZATION, kustomization())

        def options(name: str) -> GitOpsOptions:
            lease = LeaseConfig(namespace=NAMESPACE, identity=name)
            return GitOpsOptions(workdir=tmp_path / name, listen=None, leader_elect=True, server=kube_emulator.url,
                                 lease=lease)  # fmt: skip

        stop_a, stop_b = asyncio.Event(), asyncio.Event()
        a = asyncio.create_task(run(options("a"), stop_a, clock))
        await until(lambda: applied_revision(kube_api), "the first controller applying git")
        assert await holder(kube_api) == "a"
        before = holder_attempts(kube_emulator)  # a renews only when the fake clock moves
        b = asyncio.create_task(run(options("b"), stop_b, clock))
        await until(lambda: holder_attempts(kube_emulator) > before, "the second controller asking for the Lease")
        await clock.advance(30)  # a renews; b retries and is refused: it never fetched or applied anything
        await until(lambda: holder_attempts(kube_emulator) > before + 2, "renewals and retries")
        assert await holder(kube_api) == "a" and not (tmp_path / "b" / "sources").exists()

        stop_a.set()
        await wait_for(a, "the first controller stopping")
        assert await holder(kube_api) == ""  # released
        sha = repo.commit(manifests(colour="green"))
        await clock.advance(5)  # b's next retry takes the Lease, then it reconciles
        await until(lambda: holder_is(kube_api, "b"), "the second controller leading")
        await until(lambda: revision_is(kube_api, f"master@sha1:{sha}"), "the second controller applying git")
        assert (tmp_path / "b" / "sources").exists()
        stop_b.set()
        await wait_for(b, "the second controller stopping")


def holder_attempts(emulator: RunningEmulator) -> int:
    return len([r for r in emulator.requests if "/leases/" in r.path and r.method == "GET"])


async def holder_is(api: KubeApi, name: str) -> bool:
    return await holder(api) == name


async def revision_is(api: KubeApi, revision: str) -> bool:
    return await applied_revision(api) == revision
