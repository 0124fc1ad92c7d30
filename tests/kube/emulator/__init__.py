"""A realistic Kubernetes API server for tests: kmock's emulator plus the semantics operators depend on.

``RealisticEmulator`` (core) is the kmock handler; ``RunningEmulator`` (running) serves it over HTTP on
127.0.0.1 in its own thread. The ``kube_emulator`` fixture in tests/kube/conftest.py yields a started one.
"""

from tests.kube.emulator.core import RealisticEmulator, RecordedRequest
from tests.kube.emulator.running import RunningEmulator

__all__ = ["RealisticEmulator", "RecordedRequest", "RunningEmulator"]
