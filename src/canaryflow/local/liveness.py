"""A replica's liveness probe: a process that stops answering is restarted, as the kubelet restarts a container.

The probe (``httpGet``, ``tcpSocket`` or ``exec``, read by ``probes.Probe.liveness``) first runs
``initialDelaySeconds`` after each (re)start of the process, then every ``periodSeconds``; ``failureThreshold``
failures in a row end the process by PID (SIGTERM, then SIGKILL after a grace period) and its supervisor starts
it again, with the crash-loop back-off a process that keeps failing gets. The restart is counted in the
process's ``restarts`` (shown by ``canaryflow status`` and ``get deployments``), and a line in the replica's log
says why, as the kubelet's ``Killing`` event would. Unlike readiness, nothing is probed faster before the first
success: a liveness probe only ever restarts, so probing early could only restart a process sooner.

One difference from the kubelet: failures count only once the process has started, that is once its readiness
or its liveness probe has passed since its last (re)start, as if the pod had a startup probe. Locally a process's
start time depends on the machine's load far more than on the manifest, and ``initialDelaySeconds`` is scaled by
the runtime's time scale (the demo runs at a fifth of it): a busy machine would otherwise restart processes that
are only slow to start, in a loop. A process that never starts is never ready, and its readiness says why.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

import httpx

from canaryflow.local import procs
from canaryflow.local.probes import Probe

log = logging.getLogger(__name__)
_POLL = 0.05
#: How long a process whose liveness probe failed has to exit on SIGTERM (the kubelet's grace period, shortened).
GRACE = 5.0


class Liveness:
    """Probes one supervised process for as long as it runs, restarting it when the probe keeps failing."""

    def __init__(
        self, name: str, process: procs.Supervised, probe: Probe, env: Mapping[str, str], started: Callable[[], bool]
    ) -> None:
        self.name, self.process, self.probe, self.env = name, process, probe, env
        self._started = started  # whether the current process has been ready since it (re)started
        self.checks = 0  # probes run so far
        self.kills = 0  # restarts this prober caused (the process's ``restarts`` counts crashes too)
        self.last_failure = ""

    async def run(self, client: httpx.AsyncClient) -> None:
        timing, seen, failures, passed = self.probe.timing, -1, 0, False
        while True:
            if not self.process.running:  # exited, or being restarted: wait for the new process
                await asyncio.sleep(_POLL)
                continue
            if self.process.restarts != seen:  # a (re)started process: its initial delay applies again
                seen, failures, passed = self.process.restarts, 0, False
                if not await self.process.nap(timing.initial_delay):
                    continue
            try:
                problem = await self.probe.check(client, self.env)
            except Exception as exc:  # a probe that cannot run fails; the prober itself must keep going
                problem = f"probe failed: {exc!r}"
            self.checks += 1
            passed = passed or problem is None
            failures = 0 if problem is None or not (passed or self._started()) else failures + 1
            if problem is not None and failures >= timing.failure_threshold:
                await self._restart(problem, failures)
                failures = 0
                continue
            await self.process.nap(timing.period)

    async def _restart(self, problem: str, failures: int) -> None:
        self.last_failure = problem
        self.kills += 1
        why = f"liveness probe failed {failures} times in a row ({problem}): restarting"
        log.warning("%s: %s", self.name, why)
        try:
            with self.process.command.log_path.open("a") as out:
                out.write(f"--- {self.name}: {why}\n")
        except OSError:
            pass
        await self.process.kill_child(GRACE)
