"""Leader election of the Kubernetes GitOps controller: a ``coordination.k8s.io/v1`` Lease in the emulator, two
candidates on one fake clock. One leads; the other waits while the lease is renewed, takes over once it has not
been for a lease duration (35 s by Flux's defaults, measured on the follower's own clock), and the old leader,
unable to renew, knows it has lost within the renew deadline. A released lease is taken at the next retry."""

from __future__ import annotations

import asyncio

from canaryflow.clock import FakeClock
from canaryflow.kube.client import KubeApi
from canaryflow.kube.gitops.leader import LeaderElector, LeaseConfig
from canaryflow.kube.kinds import LEASE
from tests.kube.schemas import validate
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
