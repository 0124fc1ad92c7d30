"""The local mesh's Envoy: one supervised process serving the xDS files the EnvoyRouter writes.

Start it after ``EnvoyRouter.write()`` has put a configuration on disk. Once Envoy serves every file, the set
becomes the "last good" one; after a crash Envoy is restarted at once from the last good files, so a rejected
update on disk can never be what a restarted Envoy loads.
"""

from __future__ import annotations

import logging
from pathlib import Path

from canaryflow.local.procs import Command, ProcessError, Supervised
from canaryflow.routing.envoy import admin as envoy_admin
from canaryflow.routing.envoy import xds
from canaryflow.routing.envoy.files import XdsFiles

logger = logging.getLogger(__name__)


class EnvoyError(ProcessError):
    """Envoy did not start, or did not accept the configuration it started with."""


class PortInUse(EnvoyError):
    """A listener's port is taken: choose other ports for the mesh and start again."""


class EnvoyProcess:
    """Envoy with its admin API on ``127.0.0.1:admin_port``, reading listeners and clusters from ``files``."""

    def __init__(
        self, files: XdsFiles, *, admin_port: int, log_path: Path, binary: str | None = None, concurrency: int = 2
    ) -> None:
        self.files = files
        self.admin_port = admin_port
        self._binary = binary
        self._log_path = log_path
        self._concurrency = concurrency
        self._admin = envoy_admin.EnvoyAdmin(self.admin_url)
        self._process: Supervised | None = None

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def restarts(self) -> int:
        return self._process.restarts if self._process else 0

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.running

    async def ready(self) -> bool:
        return await self._admin.ready()

    async def start(self, timeout: float = 10.0) -> None:
        missing = [name for name in (xds.LDS, xds.CDS) if self.files.read(name) is None]
        if missing:
            raise EnvoyError(f"no {' and '.join(missing)} file in {self.files.directory}: call EnvoyRouter.write()")
        binary = self._binary or envoy_admin.envoy_binary()
        bootstrap = self.files.write_bootstrap(xds.bootstrap(self.files.directory, self.admin_port))
        argv = [binary, "-c", str(bootstrap), "--disable-hot-restart", "--concurrency", str(self._concurrency)]
        # Warnings keep rejected updates in the log without a line for every reload.
        argv += ["--log-level", "warning", "--drain-time-s", "5"]
        self._process = Supervised(
            Command("envoy", argv, self._log_path), self._admin.ready, before_restart=self._restore_last_good
        )
        try:
            await self._process.start(timeout)
        except ProcessError as exc:
            raise (PortInUse if "Address already in use" in str(exc) else EnvoyError)(str(exc)) from exc
        try:
            await self._confirm_files(binary, timeout)
        except EnvoyError:
            await self.stop()
            raise

    async def stop(self) -> None:
        if self._process is not None:
            await self._process.stop()
        await self._admin.aclose()
        self._admin = envoy_admin.EnvoyAdmin(self.admin_url)

    def _restore_last_good(self) -> None:
        restored = self.files.restore_last_good()
        if restored:
            logger.warning("Envoy restarts from the last good %s", ", ".join(restored))

    async def _confirm_files(self, binary: str, timeout: float) -> None:
        """Wait until Envoy serves every file on disk, then keep them as the last good set."""
        names = self.files.names()
        expected = {name: self.files.version(name) for name in names}
        outcome = await self._admin.await_served(expected, timeout, rejected_before=0, poll=0.02)
        if outcome is envoy_admin.Outcome.SERVED:
            self.files.mark_good(names)
            return
        documents = {name: doc for name in names if (doc := self.files.read(name)) is not None}
        # Validation explains a bad document; only the log tells a port already taken.
        reason = await envoy_admin.explain_rejection(binary, documents) or self._logged_rejection()
        error = PortInUse if "Address already in use" in reason else EnvoyError
        raise error(f"Envoy did not accept {self.files.directory}: {reason}")

    def _logged_rejection(self) -> str:
        assert self._process is not None
        lines = self._process.log_tail(lines=50).split(" | ")
        rejected = [line.split("rejected: ", 1)[-1] for line in lines if "rejected: " in line]
        return rejected[-1] if rejected else " | ".join(lines[-3:])
