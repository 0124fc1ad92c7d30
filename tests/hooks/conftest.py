"""Fixtures for hook tests: a webhook receiver on 127.0.0.1, plain and with TLS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hooks.receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.stop()


@pytest.fixture
def tls_receiver(tmp_path: Path) -> Iterator[Receiver]:
    server = Receiver(certs_dir=tmp_path)
    yield server
    server.stop()
