"""Fixtures: load tester and demo app processes on free loopback ports, stopped by PID at the end."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.demoapp import services

StartTester = Callable[..., services.Service]


@pytest.fixture
def start_tester(tmp_path: Path) -> Iterator[StartTester]:
    """Start load testers with the given flags; all are stopped when the test ends."""
    with services.starter("canaryflow.loadtester", tmp_path) as start:
        yield start


@pytest.fixture(scope="module")
def tester(tmp_path_factory: pytest.TempPathFactory) -> Iterator[services.Service]:
    log = tmp_path_factory.mktemp("tester") / "loadtester.log"
    with services.running("canaryflow.loadtester", log) as service:
        yield service


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[services.Service]:
    log = tmp_path_factory.mktemp("demo") / "demoapp.log"
    with services.running("canaryflow.demoapp", log, env={"PODINFO_VERSION": "6.1.0"}) as service:
        yield service


def hook(metadata: dict[str, str], name: str = "backend", namespace: str = "prod") -> dict[str, object]:
    """Flagger's webhook payload for a canary."""
    return {"name": name, "namespace": namespace, "phase": "Progressing", "checksum": "6c7f", "metadata": metadata}


def tasks(tester: services.Service) -> dict[str, list[dict[str, object]]]:
    listing: dict[str, list[dict[str, object]]] = httpx.get(f"{tester.url}/tasks").json()
    return listing
