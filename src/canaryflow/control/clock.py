"""Time for the control loop: the Clock lives in ``canaryflow.clock`` (below the adapters, so gitops/ and kube/
use the same one); these names stay importable from here."""

from canaryflow.clock import Clock, FakeClock, SystemClock

__all__ = ["Clock", "FakeClock", "SystemClock"]
