"""Validating Flux's kinds: the seed's Flux objects pass, and a mistake is reported as FILE:LINE with its path and
what to write instead, as for Flagger's kinds."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from canaryflow.api import loader, validate
from canaryflow.api.flux import kustomize, source

KUSTOMIZATION = """\
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: apps
  namespace: flux-system
spec:
  interval: 10m0s
  timeout: 2m
  path: ./apps
  prune: true
  wait: true
  sourceRef:
    kind: GitRepository
    name: flux-system
  dependsOn:
    - name: istio-system
  postBuild:
    substitute:
      cluster: local
"""

GIT_REPOSITORY = """\
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: flux-system
  namespace: flux-system
spec:
  interval: 1m0s
  url: https://github.com/fluxcd/flagger
  ref:
    branch: main
  secretRef:
    name: flux-system
"""


def line_of(text: str, fragment: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if fragment in line)


def problems_in(text: str) -> list[str]:
    return [str(p) for p in validate.validate_documents(loader.load_text(text, "flux.yaml").documents).problems]


def test_every_flux_object_of_the_seed_validates_and_helm_objects_are_skipped(seed_dir: Path) -> None:
    report = validate.validate_paths([str(seed_dir)])
    assert report.problems == []
    flux = sorted((r.kind, r.metadata.name) for _, r in report.resources if r.api_version.endswith("fluxcd.io/v1beta2"))
    assert flux == [("Kustomization", "apps"), ("Kustomization", "istio-gateway"), ("Kustomization", "istio-system")]
    apps = next(r for _, r in report.resources if r.metadata.name == "apps")
    assert isinstance(apps, kustomize.KustomizationV1beta2)
    assert (apps.spec.timeout_seconds, kustomize.source_key(apps), kustomize.dependency_keys(apps)) == (
        120.0,
        "flux-system/flux-system",
        ["flux-system/istio-system"],
    )
    skipped = {s.kind for s in report.skipped}
    # HelmReleases and HelmRepositories are provided by the local runtime, not judged; kustomize's own
    # kustomization.yaml files share the kind's name but not its group.
    assert {"HelmRelease", "HelmRepository", "Kustomization (kustomize.config.k8s.io/v1beta1)"} <= skipped


def test_valid_current_versions_are_resources() -> None:
    report = validate.validate_documents(loader.load_text(f"{KUSTOMIZATION}---\n{GIT_REPOSITORY}", "f").documents)
    assert report.problems == []
    [(_, ks), (_, repo)] = report.resources
    assert isinstance(ks, kustomize.KustomizationV1) and isinstance(repo, source.GitRepositoryV1)
    assert isinstance(ks, kustomize.Kustomization) and isinstance(repo, source.GitRepository)
    assert kustomize.substitutions(ks) == {"cluster": "local"}
    assert (repo.spec.reference.kind, repo.spec.reference.value) == ("branch", "main")


@pytest.mark.parametrize(
    ("text", "written", "wrong", "message"),
    [
        pytest.param(
            KUSTOMIZATION,
            "  wait: true",
            "  wiat: true",
            "spec.wiat: unknown field; did you mean wait?",
            id="misspelt-field",
        ),
        pytest.param(
            KUSTOMIZATION,
            "    kind: GitRepository",
            "    kind: GitRepo",
            "spec.sourceRef.kind: must be one of OCIRepository, GitRepository, Bucket, ExternalArtifact "
            '(got "GitRepo"); did you mean GitRepository?',
            id="bad-enum",
        ),
        pytest.param(
            KUSTOMIZATION,
            "  timeout: 2m",
            "  timeout: 2 minutes",
            "spec.timeout: invalid duration '2 minutes': use numbers with a unit ms, s, m or h, e.g. 10m or 1m30s",
            id="bad-duration",
        ),
        pytest.param(
            KUSTOMIZATION,
            "  timeout: 2m",
            "  timeout: 120",
            "spec.timeout: expected a duration such as 30s, 1m or 1m30s, got 120",
            id="number-for-duration",
        ),
        pytest.param(
            KUSTOMIZATION,
            "  wait: true",
            '  wait: "true"',
            'spec.wait: expected true or false, got "true" (remove the quotes)',
            id="quoted-bool",
        ),
        pytest.param(
            GIT_REPOSITORY,
            "    branch: main",
            "    brnach: main",
            "spec.ref.brnach: unknown field; did you mean branch?",
            id="misspelt-ref",
        ),
        pytest.param(
            GIT_REPOSITORY,
            "  url: https://github.com/fluxcd/flagger",
            "  url: github.com/fluxcd/flagger",
            "spec.url: url must start with http://, https://, ssh://, file://, git:// "
            "(got 'github.com/fluxcd/flagger')",
            id="url-without-scheme",
        ),
        pytest.param(
            GIT_REPOSITORY,
            "  interval: 1m0s",
            "  interval: 1m0s\n  timeout: 1h",
            "spec.timeout: invalid duration '1h': use numbers with a unit ms, s or m (no h here), e.g. 60s or 5m",
            id="git-timeout-without-hours",
        ),
    ],
)
def test_a_mistake_is_reported_on_its_line_with_its_path(text: str, written: str, wrong: str, message: str) -> None:
    broken = text.replace(written, wrong, 1)
    [problem] = problems_in(broken)
    subject = "Kustomization/apps" if "Kustomization" in text else "GitRepository/flux-system"
    assert problem == f"flux.yaml:{line_of(broken, wrong.splitlines()[-1])}: {subject}: {message}"


def test_a_missing_interval_is_reported_where_spec_is() -> None:
    broken = KUSTOMIZATION.replace("  interval: 10m0s\n", "")
    assert problems_in(broken) == [
        f"flux.yaml:{line_of(broken, 'spec:')}: Kustomization/apps: spec.interval: required field is missing"
    ]


@pytest.mark.parametrize(
    ("api_version", "message"),
    [
        pytest.param(
            "kustomize.toolkit.fluxcd.io/v1beta1",
            "apiVersion kustomize.toolkit.fluxcd.io/v1beta1 is not supported: canaryflow reads Kustomization as "
            "kustomize.toolkit.fluxcd.io/v1 or kustomize.toolkit.fluxcd.io/v1beta2",
            id="old-version",
        ),
        pytest.param(
            "kustomise.toolkit.fluxcd.io/v1",
            "apiVersion kustomise.toolkit.fluxcd.io/v1 is not supported: canaryflow reads Kustomization as "
            "kustomize.toolkit.fluxcd.io/v1 or kustomize.toolkit.fluxcd.io/v1beta2",
            id="misspelt-group",
        ),
    ],
)
def test_a_version_canaryflow_does_not_read_lists_those_it_does(api_version: str, message: str) -> None:
    broken = KUSTOMIZATION.replace("kustomize.toolkit.fluxcd.io/v1", api_version)
    assert problems_in(broken) == [f"flux.yaml:1: Kustomization/apps: apiVersion: {message}"]


def test_a_kind_in_a_version_that_does_not_serve_it_lists_the_versions_that_do() -> None:
    text = "apiVersion: notification.toolkit.fluxcd.io/v1beta3\nkind: Receiver\nmetadata: {name: hook}\nspec: {}\n"
    assert problems_in(text) == [
        "flux.yaml:1: Receiver/hook: apiVersion: apiVersion notification.toolkit.fluxcd.io/v1beta3 is not supported: "
        "canaryflow reads Receiver as notification.toolkit.fluxcd.io/v1 or notification.toolkit.fluxcd.io/v1beta2"
    ]


def test_a_misspelt_kind_in_a_flux_group_is_an_error_with_a_suggestion() -> None:
    text = GIT_REPOSITORY.replace("kind: GitRepository", "kind: GitRepo")
    assert problems_in(text) == [
        "flux.yaml:2: GitRepo/flux-system: kind: unknown kind 'GitRepo'; did you mean GitRepository?"
    ]


def test_a_field_of_the_other_version_is_unknown_and_said_to_be_of_that_version() -> None:
    text = GIT_REPOSITORY.replace("  interval: 1m0s\n", "  interval: 1m0s\n  gitImplementation: go-git\n")
    assert problems_in(text) == [
        "flux.yaml:8: GitRepository/flux-system: spec.gitImplementation: unknown field in source.toolkit.fluxcd.io/v1; "
        "it is a field of source.toolkit.fluxcd.io/v1beta2"
    ]
    old = text.replace("source.toolkit.fluxcd.io/v1", "source.toolkit.fluxcd.io/v1beta2")
    assert problems_in(old) == []
    newer = KUSTOMIZATION.replace("kustomize.toolkit.fluxcd.io/v1", "kustomize.toolkit.fluxcd.io/v1beta2")
    newer = newer.replace("  path: ./apps\n", "  path: ./apps\n  namePrefix: team-\n")
    assert problems_in(newer) == [
        "flux.yaml:10: Kustomization/apps: spec.namePrefix: unknown field in kustomize.toolkit.fluxcd.io/v1beta2; "
        "it is a field of kustomize.toolkit.fluxcd.io/v1"
    ]


def test_flux_kinds_canaryflow_does_not_model_are_skipped_in_any_version() -> None:
    text = (
        "apiVersion: source.toolkit.fluxcd.io/v1beta1\nkind: HelmRepository\nmetadata: {name: istio}\n---\n"
        "apiVersion: helm.toolkit.fluxcd.io/v2beta1\nkind: HelmRelease\nmetadata: {name: istiod}\n---\n"
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: OCIRepository\nmetadata: {name: podinfo}\n---\n"
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [deployment.yaml]\n---\n"
        "kind: Kustomization\nimages: [{name: podinfo, newTag: 6.0.0}]\n"
    )
    report = validate.validate_documents(loader.load_text(text, "flux.yaml").documents)
    assert report.problems == [] and report.resources == []
    assert [(s.line, s.kind) for s in report.skipped] == [
        (1, "HelmRepository"),
        (5, "HelmRelease"),
        (9, "OCIRepository"),
        (13, "Kustomization (kustomize.config.k8s.io/v1beta1)"),
        (17, "Kustomization (no apiVersion)"),  # kustomize reads such a file; Kubernetes never would
    ]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        pytest.param(
            "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\nmetadata: {name: backend}\nspec:\n"
            "  imageRepositoryRef: {name: backend}\n  policy:\n    numerical: {order: up}\n",
            'flux.yaml:7: ImagePolicy/backend: spec.policy.numerical.order: must be one of asc, desc (got "up")',
            id="image-policy-order",
        ),
        pytest.param(
            "apiVersion: image.toolkit.fluxcd.io/v1beta2\nkind: ImagePolicy\nmetadata: {name: backend}\nspec:\n"
            "  imageRepositoryRef: {name: backend}\n  policy: {}\n",
            "flux.yaml:6: ImagePolicy/backend: spec.policy: set exactly one of semver, alphabetical, numerical "
            "(none is set)",
            id="image-policy-none",
        ),
        pytest.param(
            "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\nmetadata: {name: backend}\nspec:\n"
            "  image: https://ghcr.io/stefanprodan/podinfo\n  interval: 1m\n",
            "flux.yaml:5: ImageRepository/backend: spec.image: invalid image 'https://ghcr.io/stefanprodan/podinfo': "
            "a repository name has no scheme, e.g. ghcr.io/org/app",
            id="image-with-scheme",
        ),
        pytest.param(
            "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageUpdateAutomation\nmetadata: {name: auto}\nspec:\n"
            "  interval: 1m\n  sourceRef: {kind: GitRepository, name: flux-system}\n"
            "  git:\n    commit:\n      author: {name: bot}\n",
            "flux.yaml:9: ImageUpdateAutomation/auto: spec.git.commit.author.email: required field is missing",
            id="author-without-email",
        ),
        pytest.param(
            "apiVersion: notification.toolkit.fluxcd.io/v1\nkind: Receiver\nmetadata: {name: hook}\nspec:\n"
            "  type: github\n  resources: [{kind: GitRepository, name: flux-system}]\n",
            "flux.yaml:4: Receiver/hook: spec: secretRef is required: a Secret whose token key authenticates the calls",
            id="receiver-without-secret",
        ),
        pytest.param(
            "apiVersion: notification.toolkit.fluxcd.io/v1\nkind: Receiver\nmetadata: {name: hook}\nspec:\n"
            "  type: githib\n  secretRef: {name: token}\n  resources: [{kind: GitRepository, name: flux-system}]\n",
            "flux.yaml:5: Receiver/hook: spec.type: must be one of generic, generic-hmac, generic-oidc, github, "
            "gitlab, bitbucket, harbor, dockerhub, quay, gcr, nexus, acr, cdevents "
            '(got "githib"); did you mean github?',
            id="receiver-type",
        ),
    ],
)
def test_image_and_notification_mistakes(document: str, message: str) -> None:
    assert problems_in(document) == [message]


def test_validate_paths_names_the_file_and_line(write: Callable[[str, str], Path]) -> None:
    path = write("clusters/my-cluster/apps.yaml", KUSTOMIZATION.replace("  prune: true\n", ""))
    report = validate.validate_paths([str(path.parent)])
    assert [str(p) for p in report.problems] == [f"{path}:6: Kustomization/apps: spec.prune: required field is missing"]
