"""The local image catalog: which host command stands in for a container, and what it refuses to run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from canaryflow.local import images
from canaryflow.local.images import ImageError, ImageRef


@pytest.mark.parametrize(
    ("reference", "repository", "version"),
    [
        ("ghcr.io/stefanprodan/podinfo:6.1.0", "stefanprodan/podinfo", "6.1.0"),
        ("stefanprodan/podinfo:6.0.3", "stefanprodan/podinfo", "6.0.3"),
        ("docker.io/stefanprodan/podinfo", "stefanprodan/podinfo", "latest"),
        ("127.0.0.1:5000/stefanprodan/podinfo:6.1.1", "stefanprodan/podinfo", "6.1.1"),
        ("ghcr.io/stefanprodan/podinfo:6.1.0@sha256:" + "ab" * 32, "stefanprodan/podinfo", "6.1.0"),
        ("ghcr.io/stefanprodan/podinfo@sha256:" + "cd" * 32, "stefanprodan/podinfo", "cdcdcdcdcdcd"),
        ("localhost/stefanprodan/podinfo:dev", "stefanprodan/podinfo", "dev"),
        ("nginx:1.25", "library/nginx", "1.25"),
    ],
    ids=["ghcr", "docker-hub", "no-tag", "registry-with-port", "tag-and-digest", "digest", "localhost", "official"],
)
def test_image_references_parse_into_repository_and_version(reference: str, repository: str, version: str) -> None:
    ref = ImageRef.parse(reference)
    assert (ref.repository, ref.version) == (repository, version)


def podinfo(**fields: Any) -> dict[str, Any]:
    return {"name": "backend", "image": "ghcr.io/stefanprodan/podinfo:6.1.0", **fields}


@pytest.mark.parametrize(
    ("container", "container_port"),
    [
        (podinfo(command=["./podinfo", "--port=9898", "--level=info"]), 9898),
        (podinfo(command=["podinfo", "--port", "9797"]), 9797),
        (podinfo(args=["--level=debug"], ports=[{"containerPort": 8080}]), 8080),
        (podinfo(), 9898),
    ],
    ids=["seed-command", "port-as-two-words", "port-from-containerPort", "image-defaults"],
)
def test_podinfo_runs_as_the_demo_app_on_the_host_port(container: dict[str, Any], container_port: int) -> None:
    command = images.resolve(container, 41234, {})

    assert command.argv[:3] == (sys.executable, "-m", "canaryflow.demoapp")
    assert [w for w in command.argv if "port" in w] == ["--port=41234"]
    assert command.env == {"PODINFO_VERSION": "6.1.0"}
    assert command.container_port == container_port


def test_the_other_flags_of_podinfo_are_kept() -> None:
    command = images.resolve(podinfo(command=["./podinfo", "--port=9898", "--level=info"]), 41234, {})
    assert "--level=info" in command.argv


def test_a_command_the_image_does_not_have_is_refused() -> None:
    with pytest.raises(ImageError, match="runs 'sleep 1'; locally its image runs only podinfo with flags"):
        images.resolve(podinfo(command=["sleep", "1"]), 41234, {})


def test_the_flagger_loadtester_runs_as_the_built_in_one_behind_the_mesh() -> None:
    container = {
        "name": "loadtester",
        "image": "ghcr.io/fluxcd/flagger-loadtester:0.22.0",
        "command": ["./loadtester", "-port=8080", "-log-level=info", "-timeout=1h"],
        "ports": [{"name": "http", "containerPort": 8080}],
    }
    command = images.resolve(container, 41235, {"http_proxy": "http://127.0.0.1:15001"})

    assert command.argv[:3] == (sys.executable, "-m", "canaryflow.loadtester")
    assert command.argv[3:] == ("-log-level=info", "-timeout=1h", "-port=41235", "--proxy=http://127.0.0.1:15001")
    assert command.container_port == 8080


def test_istio_containers_are_provided_by_the_local_mesh() -> None:
    assert images.is_mesh_provided({"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.18.5"})
    assert images.is_mesh_provided({"name": "istio-init", "image": "docker.io/istio/proxyv2:1.18.5"})
    assert images.is_mesh_provided({"name": "sidecar", "image": "docker.io/istio/proxyv2:1.20.0"})
    assert not images.is_mesh_provided(podinfo())


def test_an_image_nobody_can_run_names_the_image_and_what_can_run() -> None:
    with pytest.raises(ImageError) as err:
        images.resolve({"name": "api", "image": "registry.example.com/team/api:1.2.3"}, 41236, {})
    message = str(err.value)
    assert "image registry.example.com/team/api:1.2.3 cannot run locally" in message
    assert "stefanprodan/podinfo" in message and "fluxcd/flagger-loadtester" in message


def test_podcli_is_installed_for_exec_probes(tmp_path: Path) -> None:
    bin_dir = images.install_tools(tmp_path / "bin")
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}

    version = subprocess.run(["podcli", "version"], env=env, capture_output=True, text=True, timeout=30)
    failed_check = subprocess.run(
        ["podcli", "check", "tcp", "127.0.0.1:1"], env=env, capture_output=True, text=True, timeout=30
    )

    assert (version.returncode, version.stdout.strip()) == (0, "canaryflow-podcli")
    assert failed_check.returncode == 1
