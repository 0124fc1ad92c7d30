"""Fixtures for Kubernetes tests: a realistic API server over HTTP and a client connected to it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from canaryflow.clock.backoff import Backoff
from canaryflow.gitops.controller.loop import GitOpsController, Timing
from canaryflow.kube.client import KubeApi, Retry
from canaryflow.kube.gitops.wiring import follow, kube_gitops
from tests.clocks import InstantClock
from tests.kube.emulator import RunningEmulator


@pytest.fixture
def kube_emulator() -> Iterator[RunningEmulator]:
    """A running emulator (own thread, own loop) with Flagger, Istio, Flux and kopf peering resources."""
    with RunningEmulator() as running:
        yield running


@pytest.fixture
async def kube_api(kube_emulator: RunningEmulator) -> AsyncIterator[KubeApi]:
    """A ``KubeApi`` on the emulator, closed after the test."""
    api = KubeApi.for_url(kube_emulator.url, retry=Retry(attempts=4, backoff=Backoff(0.01, 0.05)), clock=InstantClock())
    try:
        yield api
    finally:
        await api.close()


@pytest.fixture
async def gitops_controller(kube_api: KubeApi, tmp_path: Path) -> AsyncIterator[GitOpsController]:
    """The GitOps controller over ``kube_api``, following its watches, on a time scale of 1/100."""
    controller = kube_gitops(kube_api, tmp_path / "gitops", timing=Timing(scale=0.01))
    following = asyncio.create_task(follow(kube_api, controller))
    try:
        yield controller
    finally:
        following.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await following
        await controller.close()
