"""Building a Kustomization's path: kustomize where there is a kustomization.yaml, Flux's generated one where
there is not, and precise errors for what cannot be built."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from canaryflow.gitops.kustomize.build import ArtifactError, BuildError, build
from canaryflow.gitops.target.base import ObjRef
from tests.gitops.kustomize.conftest import SEED, Repo, configmap


def refs(objects: list[dict[str, Any]]) -> set[str]:
    return {str(ObjRef.of(obj)) for obj in objects}


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


def test_seed_backend_is_built_by_kustomize_with_its_images_and_json6902_patch() -> None:
    objects = build(SEED, "./apps/backend")
    assert refs(objects) == {"Canary/prod/backend", "Deployment/prod/backend", "HorizontalPodAutoscaler/prod/backend"}
    pod = find(objects, "Deployment", "backend")["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == "ghcr.io/stefanprodan/podinfo:6.1.0"  # images: newTag
    assert [c["name"] for c in pod["containers"]] == ["backend", "istio-proxy"]  # the patch added the sidecar
    assert pod["containers"][0]["resources"]["limits"]["cpu"] == "2"  # ...and replaced the CPU limit
    assert [c["name"] for c in pod["initContainers"]] == ["istio-init"]


def test_seed_cluster_directory_without_kustomization_yaml_takes_every_manifest() -> None:
    objects = build(SEED, "./clusters/my-cluster")
    assert refs(objects) == {
        "Kustomization/flux-system/apps",
        "Kustomization/flux-system/istio-system",
        "Kustomization/flux-system/istio-gateway",
        "ConfigMap/flux-system/istio-version",
    }


def test_seed_apps_tree_builds_kustomize_subdirectories_whole_and_reads_plain_files() -> None:
    objects = build(SEED, "apps")
    names = refs(objects)
    assert {"Namespace/prod", "Sidecar/prod/default"} <= names  # plain files, one in a plain subdirectory
    assert {"Deployment/prod/backend", "Deployment/prod/frontend", "Deployment/prod/flagger-loadtester"} <= names
    # the subdirectories were built by kustomize (their patches applied), not read file by file
    assert "deployment.patch.yaml" not in str(objects)
    assert find(objects, "Deployment", "frontend")["spec"]["template"]["spec"]["containers"][1]["name"] == "istio-proxy"


def test_plain_files_are_read_recursively_in_name_order(repo: Repo) -> None:
    repo.write("deploy/b.yaml", configmap("b"))
    repo.write("deploy/a/z.yaml", configmap("z") + "---\n" + configmap("y"))
    repo.write("deploy/notes.txt", "not yaml at all: [")
    repo.write("deploy/.hidden/x.yaml", "this: is not read")
    objects = build(repo.root, "deploy")
    assert [o["metadata"]["name"] for o in objects] == ["z", "y", "b"]


def test_invalid_yaml_names_the_file_and_line(repo: Repo) -> None:
    repo.write("deploy/ok.yaml", configmap("ok"))
    broken = "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a: b\n"  # line 12 of the file
    repo.write("deploy/bad.yaml", configmap("first") + broken)
    with pytest.raises(BuildError, match=r"deploy/bad\.yaml:12: malformed YAML: mapping values are not allowed"):
        build(repo.root, "deploy")


def test_a_document_that_is_not_a_kubernetes_object_names_file_and_line(repo: Repo) -> None:
    repo.write("deploy/values.yaml", configmap("ok") + "---\nreplicas: 3\nimage: podinfo\n")
    with pytest.raises(BuildError, match=r"deploy/values\.yaml:9: missing apiVersion and kind"):
        build(repo.root, "deploy")


@pytest.mark.parametrize("path", ["../", "deploy/../../elsewhere", "/../.."], ids=["parent", "nested", "absolute"])
def test_a_path_outside_the_artifact_is_refused(repo: Repo, path: str) -> None:
    repo.write("deploy/a.yaml", configmap("a"))
    (repo.root.parent / "elsewhere").mkdir()
    with pytest.raises(ArtifactError, match="outside the source artifact"):
        build(repo.root, path)


def test_a_symlink_leaving_the_artifact_is_refused(repo: Repo, tmp_path: Path) -> None:
    outside = tmp_path / "secrets"
    outside.mkdir()
    (outside / "s.yaml").write_text(configmap("s"))
    repo.root.mkdir(parents=True)
    (repo.root / "link").symlink_to(outside)
    with pytest.raises(ArtifactError, match="outside the source artifact"):
        build(repo.root, "link")


def test_a_missing_path_is_an_artifact_error(repo: Repo) -> None:
    repo.write("deploy/a.yaml", configmap("a"))
    with pytest.raises(ArtifactError, match=r"kustomization path not found: '\./apps'"):
        build(repo.root, "./apps")


def test_a_failing_kustomize_build_carries_kustomize_s_error(repo: Repo) -> None:
    repo.write("app/kustomization.yaml", "resources:\n  - missing.yaml\n")
    with pytest.raises(BuildError) as raised:
        build(repo.root, "app")
    message = str(raised.value)
    assert message.startswith("app: kustomize build failed:")
    assert "missing.yaml" in message
    assert str(repo.root) not in message  # paths relative to the source root, as a user sees them in git


def test_the_same_object_twice_is_refused_naming_both_places(repo: Repo) -> None:
    repo.write("deploy/a.yaml", configmap("same"))
    repo.write("deploy/b.yaml", "# a comment\n" + configmap("same"))
    with pytest.raises(BuildError, match=r"deploy/b\.yaml:2: ConfigMap/prod/same is also defined in deploy/a\.yaml:1"):
        build(repo.root, "deploy")


def test_a_v1_list_contributes_its_items(repo: Repo) -> None:
    repo.write(
        "deploy/list.yaml",
        """
        apiVersion: v1
        kind: List
        items:
          - apiVersion: v1
            kind: ConfigMap
            metadata: {name: one, namespace: prod}
          - apiVersion: v1
            kind: ConfigMap
            metadata: {name: two, namespace: prod}
        """,
    )
    assert refs(build(repo.root, "deploy")) == {"ConfigMap/prod/one", "ConfigMap/prod/two"}


def test_plain_files_are_read_as_the_api_server_reads_yaml(repo: Repo) -> None:
    """Dates stay text, ``yes`` is true, ``0755`` is octal, ``1e3`` a number, whether or not the file also
    holds something only the careful (line-keeping) reader handles, such as a custom tag."""
    values = "  date: 2024-01-01\n  flag: yes\n  mode: 0755\n  big: 1e3\n  quoted: '1'\n"
    fast = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: fast, namespace: prod}\ndata:\n" + values
    careful = fast.replace("fast", "careful") + "  tagged: !Ref thing\n"
    repo.write("deploy/fast.yaml", fast)
    repo.write("deploy/careful.yaml", careful)
    by_name = {o["metadata"]["name"]: o["data"] for o in build(repo.root, "deploy")}
    expected = {"date": "2024-01-01", "flag": True, "mode": 0o755, "big": 1000.0, "quoted": "1"}
    assert by_name["fast"] == expected
    assert by_name["careful"] == {**expected, "tagged": "thing"}
