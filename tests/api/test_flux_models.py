"""The Flux models' accessors: the defaults and precedence rules Flux's controllers apply, so canaryflow's
controllers read them from one place."""

from __future__ import annotations

import datetime
import hashlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from canaryflow.api.flux import common, image, kustomize, notification, source, status
from canaryflow.api.timestamps import rfc3339

META = {"name": "apps", "namespace": "flux-system"}


def parse(model: Any, spec: dict[str, Any], **extra: Any) -> Any:
    body = {"apiVersion": model.model_fields["api_version"].default, "kind": model.model_fields["kind"].default}
    return model.model_validate({**body, "metadata": META, "spec": spec, **extra}, strict=True, by_alias=True)


def kustomization(**spec: Any) -> kustomize.KustomizationV1:
    base = {"interval": "10m", "prune": True, "sourceRef": {"kind": "GitRepository", "name": "flux-system"}}
    result: kustomize.KustomizationV1 = parse(kustomize.KustomizationV1, {**base, **spec})
    return result


@pytest.mark.parametrize(
    ("ref", "kind", "value"),
    [
        pytest.param(None, "branch", "master", id="default-master"),
        pytest.param({"branch": "main"}, "branch", "main", id="branch"),
        pytest.param({"branch": "main", "tag": "v1.0.0"}, "tag", "v1.0.0", id="tag-over-branch"),
        pytest.param({"tag": "v1.0.0", "semver": ">=1.0.0"}, "semver", ">=1.0.0", id="semver-over-tag"),
        pytest.param({"semver": "1.x", "name": "refs/pull/1/head"}, "name", "refs/pull/1/head", id="name-over-semver"),
        pytest.param({"name": "refs/heads/x", "commit": "abc123"}, "commit", "abc123", id="commit-over-all"),
    ],
)
def test_the_git_reference_followed_is_the_most_precise_one_given(
    ref: dict[str, str] | None, kind: str, value: str
) -> None:
    spec: dict[str, Any] = {"interval": "1m", "url": "https://example.com/repo.git"}
    if ref is not None:
        spec["ref"] = ref
    repository = parse(source.GitRepositoryV1, spec)
    assert (repository.spec.reference.kind, repository.spec.reference.value) == (kind, value)


def test_a_commit_is_fetched_from_its_branch_and_git_operations_time_out_after_60_s_by_default() -> None:
    spec = {"interval": "1m", "url": "ssh://git@example.com/repo.git", "ref": {"branch": "main", "commit": "abc"}}
    repository = parse(source.GitRepositoryV1beta2, spec)
    assert repository.spec.reference.effective_branch == "main"
    assert (repository.spec.timeout_seconds, repository.spec.interval_seconds) == (60.0, 60.0)
    assert repository.key == "flux-system/apps"


@pytest.mark.parametrize(
    ("interval", "timeout", "expected"),
    [
        pytest.param("10m", None, 570.0, id="interval-minus-30s"),
        pytest.param("45s", None, 30.0, id="floor-30s"),
        pytest.param("30m0s", "2m0s", 120.0, id="explicit"),
        pytest.param("10m", "10s", 30.0, id="explicit-floored"),
    ],
)
def test_kustomization_timeout_defaults_as_flux(interval: str, timeout: str | None, expected: float) -> None:
    spec = {"interval": interval} | ({"timeout": timeout} if timeout else {})
    assert kustomization(**spec).spec.timeout_seconds == expected


def test_retries_come_at_the_interval_unless_retry_interval_is_set() -> None:
    assert kustomization().spec.retry_interval_seconds == 600.0
    assert kustomization(retryInterval="1m30s").spec.retry_interval_seconds == 90.0
    assert kustomization().spec.build_path == "./"


def test_references_default_to_the_referrers_namespace() -> None:
    ks = kustomization(
        sourceRef={"kind": "GitRepository", "name": "podinfo", "namespace": "apps"},
        dependsOn=[{"name": "istio-system"}, {"name": "infra", "namespace": "ops"}],
    )
    assert kustomize.source_key(ks) == "apps/podinfo"
    assert kustomize.dependency_keys(ks) == ["flux-system/istio-system", "ops/infra"]


def test_a_seed_kustomization_is_written_back_as_it_was_read(seed_dir: Path) -> None:
    text = (seed_dir / "clusters/my-cluster/istio.yaml").read_text()
    for body in yaml.safe_load_all(text):
        model = kustomize.KustomizationV1beta2.model_validate(body, strict=True, by_alias=True)
        assert model.model_dump(by_alias=True, exclude_unset=True, mode="json") == body


def test_v1beta2_keeps_its_deprecated_patch_fields() -> None:
    spec = {
        "interval": "5m",
        "prune": False,
        "sourceRef": {"kind": "GitRepository", "name": "flux-system"},
        "patchesStrategicMerge": [{"kind": "Deployment", "metadata": {"name": "x"}}],
        "patchesJson6902": [
            {"target": {"kind": "Deployment", "name": "x"}, "patch": [{"op": "move", "from": "/a", "path": "/b"}]}
        ],
        "validation": "client",
    }
    ks = parse(kustomize.KustomizationV1beta2, spec)
    assert ks.spec.patches_json6902[0].patch[0].from_ == "/a"
    assert ks.to_dict()["spec"]["patchesJson6902"][0]["patch"][0] == {"op": "move", "from": "/a", "path": "/b"}


def test_image_policy_names_its_repository_and_its_setter_marker() -> None:
    policy = parse(image.ImagePolicy, {"imageRepositoryRef": {"name": "podinfo"}, "policy": {"numerical": {}}})
    assert (policy.repository_key, policy.marker) == ("flux-system/podinfo", "flux-system:apps")
    assert policy.spec.policy.chosen == ("numerical", "asc")
    ranged = parse(image.ImagePolicy, {"imageRepositoryRef": {"name": "x"}, "policy": {"semver": {"range": "^1.x"}}})
    assert ranged.spec.policy.chosen == ("semver", "^1.x")


def test_image_repository_excludes_signature_tags_unless_told_otherwise() -> None:
    scanned = parse(image.ImageRepository, {"image": "ghcr.io/stefanprodan/podinfo", "interval": "5m"})
    assert scanned.spec.exclusions == (r"^.*\.sig$",)
    assert scanned.spec.timeout_seconds == 300.0
    everything = parse(image.ImageRepository, {"image": "localhost:5000/app", "interval": "5m", "exclusionList": []})
    assert everything.spec.exclusions == ()


def test_image_update_automation_branches() -> None:
    spec = {
        "interval": "1m",
        "sourceRef": {"kind": "GitRepository", "name": "flux-system"},
        "git": {
            "checkout": {"ref": {"branch": "main"}},
            "commit": {"author": {"email": "bot@example.com", "name": "bot"}, "messageTemplate": "update"},
            "push": {"branch": "auto"},
        },
        "update": {"path": "./apps", "strategy": "Setters"},
    }
    automation = parse(image.ImageUpdateAutomation, spec)
    assert (automation.checkout_branch, automation.push_branch, automation.spec.update_path) == (
        "main",
        "auto",
        "./apps",
    )
    assert automation.source_key == "flux-system/flux-system"


def test_a_receivers_path_is_derived_from_its_token_name_and_namespace() -> None:
    spec = {"type": "github", "secretRef": {"name": "token"}, "resources": [{"kind": "GitRepository", "name": "x"}]}
    receiver = parse(notification.ReceiverV1beta2, spec)
    digest = hashlib.sha256(b"s3cretappsflux-system").hexdigest()
    assert receiver.webhook_path("s3cret") == f"/hook/{digest}"


@pytest.mark.parametrize(
    ("text", "seconds"), [("1m0s", 60.0), ("10m0s", 600.0), ("1h0m0s", 3600.0), ("1.5h", 5400.0), ("500ms", 0.5)]
)
def test_flux_durations_read_as_seconds(text: str, seconds: float) -> None:
    assert kustomization(interval=text).spec.interval_seconds == seconds


def condition(type_: str, status: common.ConditionStatus, reason: str, at: str) -> common.Condition:
    return common.Condition(type=type_, status=status, reason=reason, message="", last_transition_time=at)


def test_a_condition_keeps_its_transition_time_until_its_status_changes() -> None:
    first = [condition(common.READY, "False", common.PROGRESSING, "2026-01-01T00:00:00Z")]
    same = common.set_condition(first, condition(common.READY, "False", common.BUILD_FAILED, "2026-01-01T00:05:00Z"))
    assert [(c.reason, c.last_transition_time) for c in same] == [(common.BUILD_FAILED, "2026-01-01T00:00:00Z")]
    flipped = common.set_condition(same, condition(common.READY, "True", common.SUCCEEDED, "2026-01-01T00:10:00Z"))
    assert [(c.status, c.last_transition_time) for c in flipped] == [("True", "2026-01-01T00:10:00Z")]
    added = common.set_condition(flipped, condition(common.HEALTHY, "True", common.SUCCEEDED, "2026-01-01T00:11:00Z"))
    assert [c.type for c in added] == [common.READY, common.HEALTHY]


def test_a_reconcile_sets_exactly_its_conditions_keeping_transition_times() -> None:
    """What the GitOps controller writes after each reconcile: ``Stalled`` leaves with a success, ``Ready`` keeps
    its time while its status holds, and the stored shape is Flux's (observedGeneration when known)."""
    stalled = [
        common.condition(common.READY, False, common.INVALID_POLICY, "bad", 0.0, 1),
        common.condition(common.STALLED, True, common.INVALID_POLICY, "bad", 0.0, 1),
    ]
    still = common.set_conditions(
        stalled, [common.condition(common.READY, False, common.INVALID_POLICY, "bad", 60.0, 1)]
    )
    assert [c.to_dict() for c in still] == [
        {
            "type": "Ready",
            "status": "False",
            "reason": "InvalidPolicy",
            "message": "bad",
            "lastTransitionTime": "1970-01-01T00:00:00Z",
            "observedGeneration": 1,
        }
    ]
    fixed = common.set_conditions(
        stalled,
        [
            common.condition(common.RECONCILING, True, "Progressing", "", 90.0),
            common.condition(common.READY, True, common.SUCCEEDED, "ok", 120.0, 2),
        ],
    )
    assert [(c.type, c.last_transition_time) for c in fixed] == [
        (common.RECONCILING, "1970-01-01T00:01:30Z"),
        (common.READY, "1970-01-01T00:02:00Z"),
    ]
    assert "observedGeneration" not in fixed[0].to_dict()
    assert common.is_ready({"conditions": [c.to_dict() for c in fixed]})
    assert common.find_condition({"conditions": [{"type": "Ready"}]}, common.READY) is None  # malformed: unread


def test_a_status_read_back_keeps_what_its_model_declares_and_can_hold() -> None:
    """What a reconcile carries over from a stored status: as Flux decodes one into its Go type, what the type
    does not declare, what does not fit it and ill-formed conditions are left out; the rest reads typed."""
    ready = common.condition(common.READY, True, common.SUCCEEDED, "ok", 0.0, 2)
    stored = {
        "observedGeneration": 2,
        "latestImage": "ghcr.io/org/app:1.0.0",  # in no version Flux's CRD serves (the API server prunes it)
        "latestRef": {"name": "ghcr.io/org/app", "tag": "1.0.0"},
        "observedPreviousRef": {"tag": "0.9.0"},  # no name: not an ImageRef
        "conditions": [ready.to_dict(), {"type": "Healthy"}],
    }
    found = status.read(status.ImagePolicyStatus, stored)
    assert found == status.ImagePolicyStatus(
        observed_generation=2, latest_ref=status.ImageRef(name="ghcr.io/org/app", tag="1.0.0"), conditions=[ready]
    )
    assert found.ready and found.condition(common.HEALTHY) is None and str(found.latest_ref) == "ghcr.io/org/app:1.0.0"
    assert status.read(status.KustomizationStatus, None) == status.KustomizationStatus()


def test_conditions_are_written_as_kubernetes_does() -> None:
    at = rfc3339(datetime.datetime(2026, 11, 26, 14, 0, 5, 700000, tzinfo=datetime.UTC).timestamp())
    written = common.Condition(
        type="Ready",
        status="True",
        reason="ReconciliationSucceeded",
        message="Applied revision: main@sha1:abc",
        last_transition_time=at,
        observed_generation=2,
    ).to_dict()
    assert written == {
        "type": "Ready",
        "status": "True",
        "reason": "ReconciliationSucceeded",
        "message": "Applied revision: main@sha1:abc",
        "lastTransitionTime": "2026-11-26T14:00:05Z",
        "observedGeneration": 2,
    }


def test_ready_means_ready_for_the_current_generation() -> None:
    ready = {"type": "Ready", "status": "True", "reason": "Succeeded", "lastTransitionTime": "2026-01-01T00:00:00Z"}
    meta = {**META, "generation": 3}
    current = kustomization().model_copy(update={"metadata": kustomization().metadata.model_copy(update=meta)})
    assert not current.model_copy(update={"status": {"observedGeneration": 2, "conditions": [ready]}}).ready
    assert current.model_copy(update={"status": {"observedGeneration": 3, "conditions": [ready]}}).ready
    hand_written = {"observedGeneration": 3, "conditions": [{"type": "Ready"}, ready]}
    assert [c.type for c in current.model_copy(update={"status": hand_written}).conditions] == ["Ready"]


def test_status_is_free_form_on_input_and_requested_reconciles_are_read_from_the_annotation() -> None:
    ks = parse(
        kustomize.KustomizationV1,
        {"interval": "1m", "prune": True, "sourceRef": {"kind": "GitRepository", "name": "x"}},
        status={"anything": ["goes"], "inventory": {"entries": []}},
    )
    assert ks.status == {"anything": ["goes"], "inventory": {"entries": []}}
    annotated = ks.model_copy(
        update={"metadata": ks.metadata.model_copy(update={"annotations": {common.REQUESTED_AT_ANNOTATION: "now"}})}
    )
    assert (ks.requested_at, annotated.requested_at) == (None, "now")
