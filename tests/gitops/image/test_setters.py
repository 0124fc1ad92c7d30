"""``$imagepolicy`` setters: only the marked value changes, byte for byte everything else stays."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from canaryflow.gitops.image.setters import SetterError, update_text, update_tree, update_tree_result

SEED = Path(__file__).parents[3] / "examples" / "gitops-istio" / "apps" / "backend"
IMAGES = {"flux-system:podinfo": "ghcr.io/stefanprodan/podinfo:6.2.0"}


@pytest.fixture
def backend(tmp_path: Path) -> Path:
    """A copy of the seed's apps/backend with setters on the kustomization's images entry."""
    root = tmp_path / "repo"
    shutil.copytree(SEED, root / "apps" / "backend")
    k = root / "apps" / "backend" / "kustomization.yaml"
    text = k.read_text()
    assert "    newTag: 6.1.0\n" in text
    k.write_text(
        text.replace("    newTag: 6.1.0\n", '    newTag: 6.1.0 # {"$imagepolicy": "flux-system:podinfo:tag"}\n')
    )
    return root


def test_seed_kustomization_tag_is_rewritten_and_nothing_else(backend: Path) -> None:
    k = backend / "apps" / "backend" / "kustomization.yaml"
    before = k.read_bytes()
    others = {p: p.read_bytes() for p in (backend / "apps" / "backend").iterdir() if p != k}

    assert update_tree(backend, "./apps", IMAGES) == ["apps/backend/kustomization.yaml"]

    after = k.read_bytes()
    assert after == before.replace(b"newTag: 6.1.0 #", b"newTag: 6.2.0 #")
    assert {p: p.read_bytes() for p in others} == others


def test_kustomize_renders_the_new_image(backend: Path) -> None:
    update_tree(backend, "./", IMAGES)
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(backend / "apps" / "backend")], capture_output=True, text=True, check=True
    ).stdout
    images = [
        c["image"]
        for doc in yaml.safe_load_all(rendered)
        if doc and doc["kind"] == "Deployment"
        for c in doc["spec"]["template"]["spec"]["containers"]
    ]
    assert [i for i in images if "podinfo" in i] == ["ghcr.io/stefanprodan/podinfo:6.2.0"]


def test_whole_name_and_tag_setters_in_deployment_and_helmrelease() -> None:
    text = (
        "apiVersion: apps/v1\n"
        "kind: Deployment\n"
        "spec:\n"
        "  template:\n"
        "    spec:\n"
        "      containers:\n"
        "        - name: app\n"
        '          image: "ghcr.io/org/app:1.0.0"   # {"$imagepolicy": "apps:app"}\n'
        "        - image: 'ghcr.io/org/side:1' # keep me\n"
        "---\n"
        "kind: HelmRelease\n"
        "spec:\n"
        "  values:\n"
        "    image:\n"
        '      repository: ghcr.io/org/old # {"$imagepolicy": "apps:app:name"}\n'
        '      tag: \'1.0.0\'\t# {"$imagepolicy": "apps:app:tag"}\r\n'
    )
    new, setters = update_text(text, {"apps:app": "registry.local:5000/org/app:1.10"})
    assert setters == ["apps:app", "apps:app:name", "apps:app:tag"]
    assert new == (
        text.replace('"ghcr.io/org/app:1.0.0"', '"registry.local:5000/org/app:1.10"')
        .replace("ghcr.io/org/old", "registry.local:5000/org/app")
        .replace("tag: '1.0.0'", "tag: '1.10'")
    )


def test_plain_tag_that_would_stop_being_a_string_is_quoted() -> None:
    new, _ = update_text('newTag: 6.1.0 # {"$imagepolicy": "ns:p:tag"}\n', {"ns:p": "repo:6.10"})
    assert new == 'newTag: "6.10" # {"$imagepolicy": "ns:p:tag"}\n'
    assert yaml.safe_load(new) == {"newTag": "6.10"}


def test_sequence_items_and_digests() -> None:
    text = '- ghcr.io/org/app:1.0 # {"$imagepolicy": "ns:p"}\ndigest: sha256:old # {"$imagepolicy": "ns:p:digest"}\n'
    new, setters = update_text(text, {"ns:p": "ghcr.io/org/app:2.0@sha256:feed"})
    assert setters == ["ns:p", "ns:p:digest"]
    assert new == (
        '- ghcr.io/org/app:2.0@sha256:feed # {"$imagepolicy": "ns:p"}\n'
        'digest: sha256:feed # {"$imagepolicy": "ns:p:digest"}\n'
    )


@pytest.mark.parametrize(
    "line",
    [
        'image: ghcr.io/org/app:1 # {"$imagepolicy": "other:policy"}\n',  # a policy we were not given
        'image: ghcr.io/org/app:1 # {"$imagepolicy": "ns:p:unknownfield"}\n',
        'image: ghcr.io/org/app:1 # {"$imagepolicy": "ns"}\n',
        'image: # {"$imagepolicy": "ns:p"}\n',  # no value to set
        'image: [a, b] # {"$imagepolicy": "ns:p"}\n',  # not a scalar
        '# image: ghcr.io/org/app:1 # {"$imagepolicy": "ns:p"}\n',  # commented out
        'image: ghcr.io/org/app:1 # {"$imagepolicy": "ns:p"} trailing words\n',
    ],
)
def test_lines_that_are_not_ours_are_left_alone(line: str) -> None:
    assert update_text(line, {"ns:p": "ghcr.io/org/app:2"}) == (line, [])


def test_update_path_must_stay_inside_the_repository(tmp_path: Path) -> None:
    with pytest.raises(SetterError, match="outside the repository"):
        update_tree(tmp_path, "../elsewhere", IMAGES)
    with pytest.raises(SetterError, match="no such directory"):
        update_tree(tmp_path, "./clusters/missing", IMAGES)


def test_result_names_files_relative_to_the_update_path_and_objects(backend: Path) -> None:
    deploy = backend / "apps" / "backend" / "deployment.yaml"
    deploy.write_text(
        deploy.read_text().replace(
            "image: ghcr.io/stefanprodan/podinfo:5.0.0",
            'image: ghcr.io/stefanprodan/podinfo:5.0.0 # {"$imagepolicy": "flux-system:podinfo"}',
        )
    )
    changed, result = update_tree_result(backend, "apps", IMAGES)
    assert changed == ["apps/backend/deployment.yaml", "apps/backend/kustomization.yaml"]
    assert sorted(result.file_changes) == ["backend/deployment.yaml", "backend/kustomization.yaml"]
    kinds = {(o.kind, o.name): [(c.old_value, c.new_value) for c in cs] for o, cs in result.objects().items()}
    assert kinds == {
        ("Deployment", "backend"): [("ghcr.io/stefanprodan/podinfo:5.0.0", "ghcr.io/stefanprodan/podinfo:6.2.0")],
        ("Kustomization", ""): [("6.1.0", "6.2.0")],
    }


yaml_lines = st.lists(
    st.one_of(
        st.text(alphabet="abc:- #'\"\t{}$", max_size=30),
        st.sampled_from(["image: a/b:1", "  newTag: 1.0.0", "- x", "# {imagepolicy}", ""]),
    ),
    max_size=12,
)
marked = st.sampled_from(
    [
        'image: ghcr.io/o/a:1.0.0 # {"$imagepolicy": "ns:p"}',
        '  newTag: "1.0.0"  # {"$imagepolicy": "ns:p:tag"}',
        '  newName: \'ghcr.io/o/a\' # {"$imagepolicy": "ns:p:name"}',
        '- ghcr.io/o/a:0.1 # {"$imagepolicy": "ns:q"}',
    ]
)
images_st = st.fixed_dictionaries(
    {"ns:p": st.sampled_from(["ghcr.io/o/a:2.0.0", "ghcr.io/o/b:1.10", "localhost:5000/a:yes"])}
)


@given(yaml_lines, images_st)
def test_files_without_markers_are_untouched(lines: list[str], images: dict[str, str]) -> None:
    text = "\n".join(line.replace("$imagepolicy", "imagepolicy") for line in lines)
    assert update_text(text, images) == (text, [])


@given(st.lists(st.one_of(yaml_lines.map("\n".join), marked), max_size=8), images_st, st.sampled_from(["\n", "\r\n"]))
def test_rewriting_is_idempotent_and_only_touches_marked_lines(
    chunks: list[str], images: dict[str, str], newline: str
) -> None:
    text = newline.join(chunks) + newline
    once, _ = update_text(text, images)
    twice, setters = update_text(once, images)
    assert twice == once and setters == []
    before, after = text.splitlines(keepends=True), once.splitlines(keepends=True)
    assert len(before) == len(after)
    for old, new in zip(before, after, strict=True):
        if old != new:
            assert '{"$imagepolicy": "ns:p' in old
            assert old.split("#", 1)[-1] == new.split("#", 1)[-1]  # the marker comment and line ending are kept
