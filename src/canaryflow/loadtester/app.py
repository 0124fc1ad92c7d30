"""The load tester's HTTP API, compatible with flagger-loadtester: ``POST /`` runs a webhook's command,
``/gate/*`` and ``/rollback/*`` are manual gates, ``GET /tasks`` shows what runs, ``/healthz``.

``POST /`` answers as Flagger's load tester does: 202 once a ``cmd`` task runs (or already ran for this
canary and command), 200 or 500 after a ``bash`` task, 400 for a payload it cannot act on, 403 for a
namespace outside ``--namespace-regexp``. Types that need a cluster (``helm``, ``kubectl``…) are refused
with a 400 that says so, never run as something else.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from canaryflow.loadtester import gates, payload, tasks

# Task types Flagger's load tester knows that need Kubernetes or outside services.
UNSUPPORTED_TYPES = ("helm", "helmv3", "kubectl", "concord", "ngrinder")
_DISCONNECT_POLL = 0.5  # seconds between checks that a bash task's caller is still waiting


_KINDS = frozenset(kind.value for kind in tasks.TaskKind)


class Forbidden(Exception):
    """The canary's namespace may not use this load tester (answered with 403)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    runner: tasks.RunnerSettings = dataclasses.field(default_factory=tasks.RunnerSettings)
    namespace_regexp: re.Pattern[str] | None = None  # None: every namespace may run tasks


class LoadTester:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.runner = tasks.TaskRunner(settings.runner)
        self.gates = gates.GateStore("gate")
        self.rollbacks = gates.GateStore("rollback")

    async def new_task(self, request: Request) -> Response:
        try:
            hook = payload.parse(await request.body())
            spec = self._spec(hook)
            return_output = hook.flag("returnCmdOutput")
        except payload.PayloadError as exc:
            return PlainTextResponse(str(exc), status_code=400)
        except Forbidden as exc:
            return PlainTextResponse(str(exc), status_code=403)
        try:
            if spec.kind is tasks.TaskKind.CMD:
                record, started = await self.runner.start(spec)
                state = "started" if started else "already running"
                return PlainTextResponse(f"task {state} for {spec.canary} (pid {record.pid})", status_code=202)
            finished = await self._run_while_connected(request, spec)
        except tasks.TaskError as exc:
            return PlainTextResponse(str(exc), status_code=500)
        if finished is None:
            return PlainTextResponse("the caller went away; task stopped", status_code=499)
        if not finished.ok:
            reason = "timed out" if finished.timed_out else f"exit code {finished.exit_code}"
            return PlainTextResponse(f"command {spec.command} failed ({reason}): {finished.output}", status_code=500)
        return PlainTextResponse(finished.output if return_output else "")

    def _spec(self, hook: payload.Payload) -> tasks.TaskSpec:
        pattern = self.settings.namespace_regexp
        # Unanchored, as Go's regexp.MatchString is.
        if pattern is not None and not pattern.search(hook.namespace):
            raise Forbidden(f"namespace {hook.namespace!r} is not allowed to run load tester tasks")
        if not hook.metadata:
            raise payload.PayloadError("metadata not found in payload")
        kind = hook.metadata.get("type") or "cmd"
        if kind in UNSUPPORTED_TYPES:
            raise payload.PayloadError(
                f"task type {kind} is not supported by the local load tester"
                " (it needs Kubernetes or an outside service); use type cmd or bash"
            )
        if kind not in _KINDS:
            raise payload.PayloadError(f"unknown task type {kind}; valid types: {', '.join(tasks.TaskKind)}")
        command = hook.metadata.get("cmd", "").strip()
        if not command:
            raise payload.PayloadError("cmd not found in metadata")
        return tasks.TaskSpec(
            canary=hook.canary,
            kind=tasks.TaskKind(kind),
            command=command,
            phase=hook.phase,
            checksum=hook.checksum,
            log_output=hook.flag("logCmdOutput"),
        )

    async def _run_while_connected(self, request: Request, spec: tasks.TaskSpec) -> tasks.TaskRecord | None:
        """Run a blocking task; stop it if the caller gives up (a webhook timeout), as Flagger's does."""
        running = asyncio.create_task(self.runner.run(spec))
        try:
            while True:
                done, _ = await asyncio.wait({running}, timeout=_DISCONNECT_POLL)
                if done:
                    return running.result()
                if await request.is_disconnected():
                    return None
        finally:
            if not running.done():
                running.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await running

    async def list_tasks(self, request: Request) -> Response:
        return JSONResponse(self.runner.snapshot())

    async def healthz(self, request: Request) -> Response:
        return PlainTextResponse("OK")


def build_app(settings: Settings) -> Starlette:
    tester = LoadTester(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await tester.runner.stop()

    routes = [
        Route("/", tester.new_task, methods=["POST"]),
        Route("/tasks", tester.list_tasks),
        Route("/healthz", tester.healthz),
        *gates.routes(tester.gates, tester.rollbacks),
    ]
    return Starlette(routes=routes, lifespan=lifespan)
