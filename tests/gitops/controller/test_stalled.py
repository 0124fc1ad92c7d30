"""``Stalled`` where Flux sets it: a spec no retry can fix (Flux's ``conditions.MarkStalled`` and a terminal
error: image-reflector-controller's ``ImageURLInvalid`` for an unparseable image and ``InvalidPolicy`` for a
policy that cannot be evaluated). ``Ready=False`` carries the same reason, ``Reconciling`` is absent, nothing is
retried (on the fake clock, an hour passes without another run) and one Warning event is told; a fixed spec
reconciles at once and ``Stalled`` goes. Failures a retry may fix (a registry that does not know the image, a
missing path, a build error) are retried and never stalled, as in Flux."""

from __future__ import annotations

from typing import Any

from canaryflow.gitops.controller.context import STALLED_RECHECK
from canaryflow.gitops.controller.objects import Key
from tests.gitops.controller.test_controller import APPS, URL, World, image_policy, image_repository, kustomization
from tests.gitops.controller.test_controller import repository as git_repository

# the fixture, by name
from tests.gitops.controller.test_controller import world as world


def conditions(world: World, key: Key) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in world.objects.statuses[key]["conditions"]}


async def runs_within(world: World, seconds: float) -> int:
    """How many reconciles the controller runs while ``seconds`` pass on the fake clock."""
    before = world.controller.runs
    await world.clock.advance(seconds)
    return world.controller.runs - before


class Events:
    def __init__(self, world: World) -> None:
        self.told: list[tuple[str, bool, str, str]] = []

        async def record(subject: str, warning: bool, reason: str, message: str) -> None:
            self.told.append((subject, warning, reason, message))

        world.ctx.events = record


async def test_an_unparseable_image_stalls_the_repository_until_its_spec_changes(world: World) -> None:
    events = Events(world)
    world.registry.push("ghcr.io/org/app", "1.0.0")
    repo = await world.add(image_repository("app", "https://ghcr.io/org/app"))
    await world.settle(repo)
    found = conditions(world, repo)
    assert set(found) == {"Ready", "Stalled"}
    assert (found["Stalled"]["status"], found["Stalled"]["reason"]) == ("True", "ImageURLInvalid")
    assert (found["Ready"]["status"], found["Ready"]["reason"]) == ("False", "ImageURLInvalid")
    assert "invalid image 'https://ghcr.io/org/app'" in found["Stalled"]["message"]
    assert world.objects.statuses[repo]["observedGeneration"] == 1
    assert await runs_within(world, STALLED_RECHECK - 1) == 0  # not retried
    await world.settle(repo)  # `flux reconcile` gets the same answer, told once
    assert [e[2] for e in events.told] == ["ImageURLInvalid"] and events.told[0][1] is True

    await world.add(image_repository("app", "ghcr.io/org/app"))  # the fix: a new generation, reconciled now
    await world.clock.advance(0)
    found = conditions(world, repo)
    assert set(found) == {"Ready"} and found["Ready"]["status"] == "True"
    assert world.objects.statuses[repo]["observedGeneration"] == 2


async def test_an_invalid_policy_stalls_the_policy(world: World) -> None:
    world.registry.push("ghcr.io/org/app", "1.0.0")
    repo = await world.add(image_repository("app", "ghcr.io/org/app"))
    policy = await world.add(image_policy("app", "app", "not a range"))
    await world.settle(repo, policy)
    found = conditions(world, policy)
    assert (found["Stalled"]["status"], found["Stalled"]["reason"]) == ("True", "InvalidPolicy")
    assert found["Ready"]["status"] == "False" and "spec.policy.semver.range" in found["Ready"]["message"]
    assert await runs_within(world, STALLED_RECHECK - 1) > 0  # the repository rescans at its interval...
    assert conditions(world, policy)["Stalled"]["status"] == "True"  # ...the policy stays stalled

    await world.add(image_policy("app", "app", ">=1.0.0"))
    await world.clock.advance(0)
    assert set(conditions(world, policy)) == {"Ready"}
    assert world.objects.statuses[policy]["latestRef"] == {"name": "ghcr.io/org/app", "tag": "1.0.0"}


async def test_a_registry_that_does_not_know_the_image_is_retried_not_stalled(world: World) -> None:
    repo = await world.add(image_repository("app", "ghcr.io/org/missing"))
    await world.settle(repo)
    assert "Stalled" not in conditions(world, repo)
    assert await runs_within(world, 60) > 0  # retried with backoff
    world.registry.push("ghcr.io/org/missing", "1.0.0")
    await world.clock.advance(600)
    assert conditions(world, repo)["Ready"]["status"] == "True"


async def test_a_missing_path_is_retried_not_stalled_as_in_flux(world: World) -> None:
    """kustomize-controller: "kustomization path not found" is ArtifactFailed, retried (the next commit may add
    the path), never Stalled."""
    world.source.commit(URL, branch="main", files={"other/a.yaml": "{}\n"})
    await world.add(git_repository())
    await world.add(kustomization(APPS, "./apps"))
    await world.settle(Key("GitRepository", "flux-system", "flux-system"), APPS)
    found = conditions(world, APPS)
    assert found["Ready"]["status"] == "False" and "Stalled" not in found
    assert await runs_within(world, 600) > 0
