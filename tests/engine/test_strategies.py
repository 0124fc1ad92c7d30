"""A/B testing, blue/green and mirroring, tick by tick."""

from __future__ import annotations

from canaryflow.api.status import Phase
from canaryflow.routing.base import Routes

from .harness import Harness, canary

MATCH = [{"headers": {"x-canary": {"exact": "insider"}}}]


async def test_ab_testing_routes_the_match_for_n_iterations_then_promotes() -> None:
    h = Harness(canary(stepWeight=None, maxWeight=None, iterations=3, match=MATCH))
    await h.initialized()
    h.release("rev-2")
    rows = await h.until(Phase.SUCCEEDED)
    assert [r.brief for r in rows] == [
        ("Progressing", 100, 0, 0, 0),
        ("Progressing", 0, 100, 1, 0),
        ("Progressing", 0, 100, 2, 0),
        ("Progressing", 0, 100, 3, 0),
        ("Promoting", 0, 100, 3, 0),
        ("Finalising", 100, 0, 0, 0),
        ("Succeeded", 100, 0, 0, 0),
    ]
    assert rows[1].events == (
        "Starting canary analysis for podinfo.test",
        "Advance podinfo.test canary iteration 1/3",
    )
    assert rows[3].events == ("Advance podinfo.test canary iteration 3/3",)
    assert h.metrics.calls == ["request-success-rate"] * 3


async def test_blue_green_tests_behind_the_primary_then_switches() -> None:
    h = Harness(canary(stepWeight=None, maxWeight=None, iterations=2))
    await h.initialized()
    h.release("rev-2")
    rows = await h.until(Phase.SUCCEEDED)
    assert [r.brief for r in rows] == [
        ("Progressing", 100, 0, 0, 0),
        ("Progressing", 100, 0, 1, 0),
        ("Progressing", 100, 0, 2, 0),
        ("Progressing", 0, 100, 3, 0),
        ("Promoting", 0, 100, 3, 0),
        ("Finalising", 100, 0, 0, 0),
        ("Succeeded", 100, 0, 0, 0),
    ]
    assert rows[3].events == ("Routing all traffic to canary",)


async def test_blue_green_with_mirroring_mirrors_during_the_test() -> None:
    h = Harness(canary(stepWeight=None, maxWeight=None, iterations=2, mirror=True))
    await h.initialized()
    h.release("rev-2")
    await h.ticks(2)
    assert h.router.routes[h.canary.key] == Routes(100, 0, mirrored=True)
    rows = await h.until(Phase.SUCCEEDED)
    assert h.router.routes[h.canary.key] == Routes(100, 0, mirrored=False)
    assert [r.phase for r in rows][-3:] == ["Promoting", "Finalising", "Succeeded"]


async def test_mirrored_canary_mirrors_first_then_shifts() -> None:
    h = Harness(canary(mirror=True, mirrorWeight=50))
    await h.initialized()
    h.release("rev-2")
    await h.tick()
    seen = []
    for _ in range(4):
        await h.tick()
        seen.append(h.router.routes[h.canary.key])
    assert seen == [
        Routes(100, 0, mirrored=True),
        Routes(90, 10, mirrored=False),
        Routes(80, 20, mirrored=False),
        Routes(70, 30, mirrored=False),
    ]
    # the mirrored tick is an analysis tick: metrics are checked while traffic is mirrored
    assert h.metrics.calls == ["request-success-rate"] * 3


async def test_ab_match_without_iterations_is_rejected_at_load_time() -> None:
    import pydantic
    import pytest

    with pytest.raises(pydantic.ValidationError, match="needs iterations"):
        canary(stepWeight=None, match=MATCH)
