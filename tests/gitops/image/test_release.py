"""Setting one Deployment's image in a checkout (``canaryflow release``): where it is set, and only that value."""

from __future__ import annotations

from pathlib import Path

import pytest

from canaryflow.gitops.image.release import Edit, NameMismatch, ReleaseError, canonical, set_in_object, set_in_tree

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web   # the shop's front
spec:
  template:
    spec:
      containers:
        - name: web
          image: "registry.local:5000/shop/web:1.0.0"  # pinned by the release train
        - name: proxy
          image: envoyproxy/envoy:v1.30.0
      initContainers:
        - name: migrate
          image: 'registry.local:5000/shop/web:1.0.0'
"""


def tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(text.encode())
    return tmp_path


def test_the_containers_of_that_image_name_change_and_nothing_else(tmp_path: Path) -> None:
    root = tree(tmp_path, {"apps/web/deployment.yaml": DEPLOYMENT})
    edits = set_in_tree(root, "./apps", "shop", "web", "registry.local:5000/shop/web:1.1.0")
    assert edits == [
        Edit("apps/web/deployment.yaml", "containers[web].image", "registry.local:5000/shop/web:1.0.0",
             "registry.local:5000/shop/web:1.1.0"),
        Edit("apps/web/deployment.yaml", "containers[migrate].image", "registry.local:5000/shop/web:1.0.0",
             "registry.local:5000/shop/web:1.1.0"),
    ]  # fmt: skip
    assert (root / "apps/web/deployment.yaml").read_text() == DEPLOYMENT.replace("1.0.0", "1.1.0")
    assert set_in_tree(root, "./apps", "shop", "web", "registry.local:5000/shop/web:1.1.0") == []


def test_an_images_entry_of_a_kustomization_above_is_preferred_and_a_missing_new_tag_added(tmp_path: Path) -> None:
    kustomization = "resources:\r\n  - web\r\nimages:\r\n- name: envoyproxy/envoy # the mesh\r\n  newName: envoy\r\n"
    root = tree(tmp_path, {"apps/web/deployment.yaml": DEPLOYMENT, "apps/kustomization.yaml": kustomization})
    edits = set_in_tree(root, "apps", "shop", "web", "envoy:v1.31.0")
    assert edits == [
        Edit("apps/kustomization.yaml", "images[envoyproxy/envoy].newTag", "envoy:v1.30.0", "envoy:v1.31.0")
    ]
    written = (root / "apps/kustomization.yaml").read_bytes().decode()
    assert written == kustomization.replace("# the mesh\r\n", "# the mesh\r\n  newTag: v1.31.0\r\n")
    assert (root / "apps/web/deployment.yaml").read_text() == DEPLOYMENT


def test_image_names_are_compared_as_registries_resolve_them() -> None:
    assert canonical("nginx") == canonical("docker.io/library/nginx") == "docker.io/library/nginx"
    assert canonical("stefanprodan/podinfo") == "docker.io/stefanprodan/podinfo"
    assert canonical("ghcr.io/stefanprodan/podinfo") == "ghcr.io/stefanprodan/podinfo"
    deployment = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "nginx:1.26"}]}}}}
    assert set_in_object(deployment, "docker.io/library/nginx:1.27") == [
        Edit("", "containers[app].image", "nginx:1.26", "docker.io/library/nginx:1.27")
    ]
    with pytest.raises(NameMismatch, match="no container runs an image named caddy"):
        set_in_object(deployment, "caddy:2")
    assert set_in_object(deployment, "caddy:2", force=True)[0].new == "caddy:2"


def test_what_cannot_be_released(tmp_path: Path) -> None:
    pinned = "images:\n  - name: envoyproxy/envoy\n    digest: sha256:" + "a" * 64 + "\n"
    root = tree(tmp_path, {"a/deployment.yaml": DEPLOYMENT, "a/kustomization.yaml": pinned})
    with pytest.raises(ReleaseError, match=r"images\[envoyproxy/envoy\] pins a digest; change it by hand"):
        set_in_tree(root, "a", "shop", "web", "envoyproxy/envoy:v1.31.0")
    with pytest.raises(ReleaseError, match="no manifest of Deployment shop/api under a"):
        set_in_tree(root, "a", "shop", "api", "envoyproxy/envoy:v1.31.0")
    with pytest.raises(ReleaseError, match="expected IMAGE:TAG"):
        set_in_tree(root, "a", "shop", "web", "envoyproxy/envoy")
    with pytest.raises(ReleaseError, match="several containers"):
        set_in_tree(root, "a", "shop", "web", "caddy:2", force=True)
    with pytest.raises(ReleaseError, match="no such directory"):
        set_in_tree(root, "../elsewhere", "shop", "web", "caddy:2")
    tree(tmp_path, {"a/copy.yaml": DEPLOYMENT})
    with pytest.raises(ReleaseError, match=r"Deployment shop/web is in a/copy\.yaml, a/deployment\.yaml"):
        set_in_tree(root, "a", "shop", "web", "envoyproxy/envoy:v1.31.0")
