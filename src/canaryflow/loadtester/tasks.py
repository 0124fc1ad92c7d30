"""Running the load tester's commands: ``cmd`` tasks in the background and deduplicated, ``bash`` tasks
blocking the request that asked for them.

Each command runs as ``bash -c`` in a process group of its own, so stopping a task stops all it started
(a pipeline, a ``hey`` under a shell). Tasks live no longer than the service: its shutdown kills every
group, and on Linux each task's shell also gets SIGTERM when the service dies without shutting down.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import dataclasses
import enum
import logging
import os
import signal
import sys
import time

from canaryflow.api.timestamps import rfc3339
from canaryflow.loadtester import mesh

log = logging.getLogger("canaryflow.loadtester")

OUTPUT_LIMIT = 64 * 1024  # bytes of a task's output kept (its tail): enough for hey's report
_FINISHED_KEPT = 50
_PR_SET_PDEATHSIG = 1


class TaskError(RuntimeError):
    """A task could not be started at all (answered with 500)."""


class TaskKind(enum.StrEnum):
    CMD = "cmd"
    BASH = "bash"


@dataclasses.dataclass(frozen=True, slots=True)
class TaskSpec:
    canary: str  # name.namespace
    kind: TaskKind
    command: str
    phase: str = ""
    checksum: str = ""
    log_output: bool = False


@dataclasses.dataclass(slots=True)
class TaskRecord:
    spec: TaskSpec
    executed: str  # the command line given to bash, after routing through the mesh
    started_at: float = dataclasses.field(default_factory=time.time)
    pid: int | None = None
    finished_at: float | None = None
    exit_code: int | None = None
    timed_out: bool = False
    stopped: bool = False  # by the service shutting down or the caller going away
    output: str = ""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {
            "canary": self.spec.canary,
            "type": str(self.spec.kind),
            "command": self.spec.command,
            "executed": self.executed,
            "phase": self.spec.phase,
            "checksum": self.spec.checksum,
            "pid": self.pid,
            "started_at": rfc3339(self.started_at, digits=3),
        }
        if self.finished_at is not None:
            data |= {"finished_at": rfc3339(self.finished_at, digits=3), "exit_code": self.exit_code}
            data |= {"timed_out": self.timed_out, "stopped": self.stopped, "output": self.output[-4096:]}
        return data


@dataclasses.dataclass(frozen=True, slots=True)
class RunnerSettings:
    timeout: float = 3600.0  # a task running longer is killed (Flagger's -timeout)
    proxy: str | None = None  # the mesh's HTTP proxy, when tasks reach services through it
    grace: float = 2.0  # between SIGTERM and SIGKILL when a task is stopped


class TaskRunner:
    """The registry of tasks: runs them, deduplicates ``cmd`` tasks, and lists running and recent ones."""

    def __init__(self, settings: RunnerSettings) -> None:
        self.settings = settings
        self._env = dict(os.environ)
        if settings.proxy:
            self._env |= mesh.proxy_environment(settings.proxy)
        self._background: dict[tuple[str, str], TaskRecord] = {}
        self._blocking: dict[int, TaskRecord] = {}  # by pid
        self._finished: collections.deque[TaskRecord] = collections.deque(maxlen=_FINISHED_KEPT)
        self._watchers: set[asyncio.Task[None]] = set()

    async def start(self, spec: TaskSpec) -> tuple[TaskRecord, bool]:
        """Start a background task unless the same command already runs for the same canary.

        Returns the task's record and whether it was started now; Flagger calls a rollout hook on every
        tick, and a ``hey -z 1m`` must keep running rather than restart.
        """
        key = (spec.canary, spec.command)
        if key in self._background:
            return self._background[key], False
        record = self._record(spec)
        self._background[key] = record  # before awaiting, so a concurrent twin sees it
        try:
            process = await self._spawn(record)
        except TaskError:
            del self._background[key]
            raise
        watcher = asyncio.create_task(self._watch(record, process, key))
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)
        return record, True

    async def run(self, spec: TaskSpec) -> TaskRecord:
        """Run a task to its end; cancelling the caller stops the task's whole process group."""
        record = self._record(spec)
        process = await self._spawn(record)
        await self._watch(record, process, None)
        return record

    def snapshot(self) -> dict[str, list[dict[str, object]]]:
        running = [*self._background.values(), *self._blocking.values()]
        return {
            "running": [record.to_json() for record in running],
            "finished": [record.to_json() for record in reversed(self._finished)],
        }

    async def stop(self) -> None:
        """Stop every task: the service is going away and its tasks must not outlive it."""
        for watcher in list(self._watchers):
            watcher.cancel()
        await asyncio.gather(*self._watchers, return_exceptions=True)
        for pid in list(self._blocking):  # their requests were cancelled; make sure nothing is left
            _signal_group(pid, signal.SIGKILL)

    def _record(self, spec: TaskSpec) -> TaskRecord:
        proxy = self.settings.proxy
        return TaskRecord(spec=spec, executed=mesh.with_hey_proxy(spec.command, proxy) if proxy else spec.command)

    async def _spawn(self, record: TaskRecord) -> asyncio.subprocess.Process:
        try:
            process = await asyncio.create_subprocess_exec(
                "bash",
                "-c",
                record.executed,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=self._env,
                start_new_session=True,  # its own process group, killed as one
                preexec_fn=_die_with_parent,
            )
        except OSError as exc:
            raise TaskError(f"cannot start bash for {record.spec.command!r}: {exc}") from exc
        record.pid = process.pid
        if record.spec.kind is TaskKind.BASH:
            self._blocking[process.pid] = record
        log.info("%s %s task started (pid %d): %s", record.spec.canary, record.spec.kind, process.pid, record.executed)
        return process

    async def _watch(
        self, record: TaskRecord, process: asyncio.subprocess.Process, key: tuple[str, str] | None
    ) -> None:
        tail = bytearray()
        try:
            async with asyncio.timeout(self.settings.timeout):
                assert process.stdout is not None
                while chunk := await process.stdout.read(65536):
                    tail += chunk
                    del tail[:-OUTPUT_LIMIT]
                record.exit_code = await process.wait()
        except TimeoutError:
            record.timed_out = True
            record.exit_code = await self._stop(process)
        except asyncio.CancelledError:
            record.stopped = True
            record.exit_code = await self._stop(process)
            raise
        finally:
            record.finished_at = time.time()
            record.output = tail.decode("utf-8", "replace")
            self._finish(record, key)

    async def _stop(self, process: asyncio.subprocess.Process) -> int:
        _signal_group(process.pid, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.settings.grace):
                await process.wait()
        _signal_group(process.pid, signal.SIGKILL)  # the shell, or whatever it left behind in its group
        return await process.wait()

    def _finish(self, record: TaskRecord, key: tuple[str, str] | None) -> None:
        if key is not None:
            self._background.pop(key, None)
        if record.pid is not None:
            self._blocking.pop(record.pid, None)
        self._finished.append(record)
        spec = record.spec
        outcome = f"exited with {record.exit_code}"
        if record.timed_out or record.stopped:
            outcome = "timed out" if record.timed_out else "stopped"
        log.log(
            logging.INFO if record.ok else logging.WARNING,
            "%s %s task %s: %s",
            spec.canary,
            spec.kind,
            outcome,
            spec.command,
        )
        # Flagger logs a failed command's output, and a bash task's always.
        if spec.log_output or spec.kind is TaskKind.BASH or not (record.ok or record.stopped):
            for line in record.output.splitlines():
                log.info("%s | %s", spec.canary, line)


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def _load_libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


_LIBC = _load_libc()


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the service dies, even by ``kill -9`` (Linux only)."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
