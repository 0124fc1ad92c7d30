"""Fixtures for Kubernetes tests: a realistic API server over HTTP and a client connected to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from canaryflow.clock.backoff import Backoff
from canaryflow.kube.client import KubeApi, Retry
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
