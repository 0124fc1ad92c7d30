"""Run the git CLI: one private credential directory per session, a timeout per command, scrubbed errors.

Each command runs in its own process group so a timeout kills git *and* its helpers (``git-remote-http``,
``ssh``); a hung server can never leave processes behind. Failures become :class:`SourceError` whose message is
git's own explanation (its ``fatal:``/``error:`` lines), scrubbed of credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import tempfile
from pathlib import Path
from types import TracebackType

from canaryflow.gitops.source import credentials
from canaryflow.gitops.source.base import GitAuth, SourceError


class GitCommandError(SourceError):
    """A git command exited non-zero; ``stderr`` is scrubbed."""

    def __init__(self, message: str, stderr: str) -> None:
        super().__init__(message)
        self.stderr = stderr


class GitSession:
    """``async with GitSession(auth, timeout) as git: await git.run("fetch", ...)``."""

    def __init__(self, auth: GitAuth | None, timeout: float, *, extra_env: dict[str, str] | None = None) -> None:
        self.auth = auth
        self.timeout = timeout
        self._extra_env = dict(extra_env or {})
        self._private: Path | None = None
        self._env: dict[str, str] = {}

    async def __aenter__(self) -> GitSession:
        self._private = Path(tempfile.mkdtemp(prefix="canaryflow-git-"))
        try:
            self._env = credentials.environment(self.auth, self._private) | self._extra_env
        except BaseException:
            shutil.rmtree(self._private, ignore_errors=True)
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._private is not None:
            shutil.rmtree(self._private, ignore_errors=True)
            self._private = None

    @property
    def env(self) -> dict[str, str]:
        """The environment git runs with: paths to credential files, never the credentials themselves."""
        return dict(self._env)

    def argv(self, *args: str) -> list[str]:
        """The exact argv a command runs with (tests check that no secret is in it)."""
        return ["git", *args]

    async def run(
        self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, check: bool = True
    ) -> str:
        """Run ``git <args>``; return stdout. Raise :class:`GitCommandError` on failure when ``check``.

        ``env`` adds non-secret variables (``GIT_INDEX_FILE``, author identity) for this command only."""
        if self._private is None:
            raise RuntimeError("GitSession used outside 'async with'")
        process = await asyncio.create_subprocess_exec(
            *self.argv(*args),
            cwd=cwd,
            env=self._env | (env or {}),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        try:
            async with asyncio.timeout(self.timeout):  # not wait_for: it can swallow a cancellation on 3.11
                stdout, stderr = await process.communicate()
        except (TimeoutError, asyncio.CancelledError) as error:
            _kill_group(process.pid)
            with contextlib.suppress(ProcessLookupError):
                await process.wait()
            if isinstance(error, asyncio.CancelledError):
                raise
            raise SourceError(f"git {args[0]}: timed out after {self.timeout:g}s") from None
        err = credentials.scrub(stderr.decode(errors="replace"), self.auth)
        if check and process.returncode != 0:
            raise GitCommandError(f"git {args[0]}: {_reason(err) or f'exit status {process.returncode}'}", err)
        return stdout.decode(errors="replace")


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _reason(stderr: str) -> str:
    """git's explanation: its ``fatal:``/``error:`` lines and what ssh or the socket layer said, else the last
    line. The askpass complaint that accompanies a missing credential is noise and is dropped."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip() and "askpass" not in line]
    useful = [line for line in lines if line.startswith(_EXPLAINS) or any(mark in line for mark in _MARKS)]
    return "; ".join(useful or lines[-1:])


_EXPLAINS = ("fatal:", "error:", "remote: error", "ERROR", "!", "ssh:")
_MARKS = ("errno=", "Host key verification failed", "Permission denied", "[rejected]", "No such file")
