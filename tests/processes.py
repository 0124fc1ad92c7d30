"""Processes a test starts (git daemon, a registry, Prometheus, the demo app…): a free loopback port for each,
and one way to stop one by its handle, so none outlives its test."""

from __future__ import annotations

import subprocess

from canaryflow.local.procs import free_port

__all__ = ["free_port", "stop"]


def stop(process: subprocess.Popen[bytes] | None, grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; reaped either way (nothing is left as a zombie)."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
