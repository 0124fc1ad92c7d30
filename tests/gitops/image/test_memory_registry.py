"""The in-memory Registry answers as a real registry does: normalised names, the registry's order, unknown
repositories refused."""

from __future__ import annotations

import pytest

from canaryflow.gitops.image import MemoryRegistry, RegistryError


async def test_tags_come_back_in_push_order_under_the_normalised_name() -> None:
    registry = MemoryRegistry({"podinfo": ["6.0.0", "6.1.0"]})
    registry.push("docker.io/library/podinfo", "6.0.1")
    registry.push("podinfo", "6.0.0")  # again: nothing changes
    assert await registry.list_tags("index.docker.io/library/podinfo") == ["6.0.0", "6.1.0", "6.0.1"]
    assert registry.scans == ["docker.io/library/podinfo"]


async def test_an_unknown_repository_and_an_invalid_name_are_errors_naming_the_image() -> None:
    registry = MemoryRegistry({"ghcr.io/org/app": ["1.0.0"]})
    with pytest.raises(RegistryError, match=r"ghcr.io/org/other: repository not found"):
        await registry.list_tags("ghcr.io/org/other")
    with pytest.raises(RegistryError, match="may not carry a tag"):
        await registry.list_tags("ghcr.io/org/app:1.0.0")
