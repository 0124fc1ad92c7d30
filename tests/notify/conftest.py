"""Fixtures for notifier tests: a chat webhook receiver on 127.0.0.1 and a sample alert."""

from __future__ import annotations

import pytest

from canaryflow.notify.base import Alert, Severity
from tests.hooks.conftest import receiver as receiver


@pytest.fixture
def alert() -> Alert:
    return Alert(
        name="podinfo",
        namespace="test",
        message="Halt advancement podinfo.test: success rate 80% < 99%",
        severity=Severity.WARN,
        fields=(("Target", "Deployment/podinfo.test"), ("Failed checks threshold", "5")),
    )
