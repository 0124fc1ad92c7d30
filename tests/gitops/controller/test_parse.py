"""Stored bodies as typed models (``gitops/controller/parse.py``): every version in one shape, what each object
builds on, and a body the models refuse told with the path of what is wrong, Stalled until it changes."""

from __future__ import annotations

import re
from typing import Any

import pytest

from canaryflow.api.flux.kustomize import KustomizationV1
from canaryflow.gitops.controller import parse
from canaryflow.gitops.controller.objects import Key
from tests.gitops.controller.test_controller import APPS, World, image_policy, image_repository, kustomization

# the fixture, by name
from tests.gitops.controller.test_controller import world as world


def v1beta2(**spec: Any) -> dict[str, Any]:
    body = kustomization(APPS, "./apps", **spec)
    return {**body, "apiVersion": "kustomize.toolkit.fluxcd.io/v1beta2"}


def test_a_v1beta2_kustomization_reads_as_v1_with_its_deprecated_patches_as_patches() -> None:
    merge = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"v": "2"}}
    json6902 = {"target": {"kind": "ConfigMap", "name": "b"}, "patch": [{"op": "remove", "path": "/data/v"}]}
    found = parse.kustomization(
        v1beta2(
            patchesStrategicMerge=[merge], patchesJson6902=[json6902], validation="client", dependsOn=[{"name": "x"}]
        )
    )
    assert isinstance(found, KustomizationV1)
    assert [p.to_dict() for p in found.spec.patches or ()] == [
        {"patch": '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"v": "2"}}'},
        {"patch": '[{"op": "remove", "path": "/data/v"}]', "target": {"kind": "ConfigMap", "name": "b"}},
    ]
    assert [d.name for d in found.spec.depends_on or ()] == ["x"]
    assert found.spec.build_path == "./apps" and found.spec.prune


def test_what_each_object_builds_on() -> None:
    assert parse.builds_on(parse.kustomization(v1beta2())) == Key("GitRepository", "flux-system", "flux-system")
    policy = parse.image_policy(image_policy("app", "repo", ">=1.0.0"))
    assert parse.builds_on(policy) == Key("ImageRepository", "flux-system", "repo")
    assert parse.builds_on(parse.image_repository(image_repository("repo", "ghcr.io/org/app"))) is None


@pytest.mark.parametrize(
    ("body", "reason", "message"),
    [
        (
            kustomization(APPS, "./apps", interval="10"),
            "InvalidSpec",
            re.escape("spec.interval: invalid duration '10'"),
        ),
        (
            image_repository("app", "https://ghcr.io/org/app"),
            "ImageURLInvalid",
            re.escape("spec.image: invalid image 'https://ghcr.io/org/app'"),
        ),
    ],
)
def test_a_refused_body_says_where_and_why(body: dict[str, Any], reason: str, message: str) -> None:
    with pytest.raises(parse.InvalidObject, match=message) as refused:
        parse.parse(body)
    assert refused.value.reason == reason


def test_a_body_of_another_kind_is_refused_naming_both() -> None:
    with pytest.raises(
        parse.InvalidObject,
        match=re.escape("expected ImagePolicy, got image.toolkit.fluxcd.io/v1beta2 ImageRepository"),
    ):
        parse.image_policy(image_repository("app", "ghcr.io/org/app"))


async def test_an_invalid_stored_kustomization_is_stalled_with_the_path(world: World) -> None:
    key = await world.add(kustomization(APPS, "./apps", prune="yes"))
    await world.settle(key)
    found = {c["type"]: c for c in world.objects.statuses[key]["conditions"]}
    assert (found["Stalled"]["status"], found["Stalled"]["reason"]) == ("True", "InvalidSpec")
    assert found["Ready"]["status"] == "False" and found["Ready"]["message"].startswith("spec.prune: ")
