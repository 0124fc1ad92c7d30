"""Fixtures: demo app processes on free loopback ports, stopped by PID when the test ends."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.demoapp import services

StartDemo = Callable[..., services.Service]


@pytest.fixture
def start_demo(tmp_path: Path) -> Iterator[StartDemo]:
    """Start demo apps with the given flags and environment; all are stopped when the test ends."""
    with services.starter("canaryflow.demoapp", tmp_path) as start:
        yield start


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[services.Service]:
    """One demo app, as the runtime starts the seed's backend at podinfo 6.1.0."""
    env = {
        "PODINFO_VERSION": "6.1.0",
        "PODINFO_UI_COLOR": "#34577c",
        "PODINFO_UI_MESSAGE": "hello from the backend",
        "HOSTNAME": "backend-primary-0",
    }
    log = tmp_path_factory.mktemp("demo") / "demoapp.log"
    with services.running("canaryflow.demoapp", log, ["--level=info"], env) as service:
        yield service
