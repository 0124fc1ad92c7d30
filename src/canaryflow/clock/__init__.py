"""Time for every layer above the engine: the Clock every read of "now" and every wait goes through, and the
one backoff policy every retry uses.

It sits below the adapters so that gitops/, kube/, hooks/ and control/ share one notion of time (tests drive
them all on a ``FakeClock``). It must not import any other canaryflow package; the engine, which reads no
clock, must not import it (import-linter enforces both).
"""

from canaryflow.clock.base import Clock
from canaryflow.clock.fake import FakeClock
from canaryflow.clock.system import SystemClock

__all__ = ["Clock", "FakeClock", "SystemClock"]
