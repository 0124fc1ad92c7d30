"""Serve a ``RealisticEmulator`` over real HTTP on 127.0.0.1, in its own thread with its own event loop.

A separate loop keeps the emulator independent of the code under test: stopping an operator in the test's loop
does not wait for the emulator's tasks (kopf waits ~5 s on them otherwise), and a test that blocks its loop
cannot starve the API server. kmock's own ``Server`` is not used: it patches aiohttp's resolver process-wide,
which a second thread must not do.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import aiohttp.web

from tests.kube.emulator.core import RealisticEmulator, RecordedRequest


class RunningEmulator:
    """What the ``kube_emulator`` fixture yields: the URL, the emulator, its request log and fault controls."""

    def __init__(self, emulator: RealisticEmulator | None = None) -> None:
        self.emulator = RealisticEmulator() if emulator is None else emulator  # (an emulator is falsy: no requests yet)
        self.url = ""
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="kube-emulator", daemon=True)

    def start(self) -> RunningEmulator:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the Kubernetes emulator did not start within 10 s")
        if self._error is not None:
            raise RuntimeError(f"the Kubernetes emulator failed to start: {self._error!r}") from self._error
        return self

    def stop(self) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)
        self._thread.join(10)

    def __enter__(self) -> RunningEmulator:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # --- what tests use ---------------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        return list(self.emulator.recorded)

    def fail_next(self, method: str, path_prefix: str, status: int, times: int = 1) -> None:
        self.emulator.fail_next(method, path_prefix, status, times)

    def break_watches(self) -> None:
        self.emulator.break_watches()

    def compact(self) -> None:
        self.emulator.compact()

    # --- the thread -------------------------------------------------------------------------------------------

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to start(); the thread must not die silently
            self._error = exc
            self._ready.set()
        finally:
            loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with self.emulator:
            runner = aiohttp.web.ServerRunner(aiohttp.web.Server(self.emulator), shutdown_timeout=1.0)
            await runner.setup()
            try:
                site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
                await site.start()
                host, port = runner.addresses[0][:2]
                self.url = f"http://{host}:{port}"
                self._ready.set()
                await self._stop.wait()
                self.emulator.break_watches()
            finally:
                await runner.cleanup()
