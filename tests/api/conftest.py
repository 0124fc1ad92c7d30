"""Shared fixtures of the resource front-end tests: the seed manifests, and a way to write YAML files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

SEED = Path(__file__).resolve().parents[2] / "examples" / "gitops-istio"


@pytest.fixture
def seed_dir() -> Path:
    """The seed GitOps repository (Flagger's gitops-istio example) shipped in examples/."""
    return SEED


@pytest.fixture
def backend_canary() -> dict[str, Any]:
    """A fresh copy of the seed's progressive-canary manifest, to break in a test."""
    data: dict[str, Any] = yaml.safe_load((SEED / "apps" / "backend" / "canary.yaml").read_text())
    return data


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write ``text`` to ``tmp_path/name`` and return the path."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    return _write
