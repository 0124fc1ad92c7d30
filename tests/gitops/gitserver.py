"""Real git servers on 127.0.0.1 for tests: ``git daemon`` and smart HTTP through ``git http-backend``.

The API (small on purpose; reused by the GitOps end-to-end and image automation tests)::

    repos = RepoDir(tmp_path / "repos")
    repo = repos.create("app", {"deploy.yaml": "..."})          # bare repo app.git, one commit on master
    sha = repo.commit({"deploy.yaml": "...", "old.yaml": None})   # None deletes a file; returns the new sha
    repo.tag("v1.0.0")                                            # lightweight; annotated=True for an annotated tag
    repo.force_push("master", old_sha)                            # rewrite the branch
    repo.head("master"), repo.read("deploy.yaml", "master"), repo.log("master")

    with GitDaemon(repos.root) as daemon:          # git://127.0.0.1:<port>/app.git (fetch and push)
        daemon.url("app")
    with GitHttpServer(repos.root, username="u", password="p") as http:   # or token="t" for Bearer
        http.url("app")                             # http://127.0.0.1:<port>/app.git (fetch and push)
        http.requests                               # [(method, path, auth scheme or "")]
        http.hold()/http.release()                  # park incoming requests (to inspect running git processes)

All git commands here run with an isolated HOME and no system config, so the machine's git setup never leaks in.
"""

from __future__ import annotations

import base64
import hmac
import http.server
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

from tests.processes import free_port, stop

ENV = {
    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    "HOME": "/nonexistent",  # no user configuration; git silently skips missing config files
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.test",
    "GIT_COMMITTER_NAME": "Test Author",
    "GIT_COMMITTER_EMAIL": "author@example.test",
    "LC_ALL": "C",
}


def git(*args: str, cwd: Path | None = None) -> str:
    """Run git with the isolated environment; raise with git's stderr on failure."""
    done = subprocess.run(["git", *args], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


class Repo:
    """A bare repository ``<root>/<name>.git`` and a private work clone used to make commits."""

    def __init__(self, bare: Path, work: Path) -> None:
        self.bare = bare
        self.work = work

    def commit(self, files: Mapping[str, str | bytes | None], *, branch: str = "master", message: str = "") -> str:
        """Write ``files`` (None deletes) on top of ``branch`` (created from the current tip if new), push it."""
        git("fetch", "--quiet", "origin", "+refs/heads/*:refs/remotes/origin/*", cwd=self.work)
        if self._remote_has(branch):
            git("checkout", "--quiet", "--force", "-B", branch, f"origin/{branch}", cwd=self.work)
        elif self._remote_has_any():  # a new branch starts from the current one; an empty repo has nothing
            git("checkout", "--quiet", "--force", "-B", branch, cwd=self.work)
        for name, content in files.items():
            path = self.work / name
            if content is None:
                path.unlink()
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content.encode() if isinstance(content, str) else content)
        git("add", "--all", cwd=self.work)
        git("commit", "--quiet", "--allow-empty", "-m", message or f"change {', '.join(files)}", cwd=self.work)
        git("push", "--quiet", "origin", f"HEAD:refs/heads/{branch}", cwd=self.work)
        return self.head(branch)

    def tag(self, name: str, ref: str = "master", *, annotated: bool = False) -> str:
        """Tag the tip of branch ``ref`` (or a sha); returns the tagged commit's sha."""
        sha = self.head(ref) if self._remote_has(ref) else ref
        git("tag", "--force", *(["-a", "-m", name] if annotated else []), name, sha, cwd=self.work)
        git("push", "--quiet", "--force", "origin", f"refs/tags/{name}", cwd=self.work)
        return sha

    def force_push(self, branch: str, sha: str) -> None:
        git("push", "--quiet", "--force", "origin", f"{sha}:refs/heads/{branch}", cwd=self.work)

    def head(self, ref: str = "master") -> str:
        return git("rev-parse", f"refs/heads/{ref}^{{commit}}", cwd=self.bare).strip()

    def read(self, path: str, ref: str = "master") -> str:
        return git("show", f"refs/heads/{ref}:{path}", cwd=self.bare)

    def log(self, ref: str = "master") -> list[tuple[str, str, str]]:
        """(sha, author "name <email>", subject) newest first."""
        out = git("log", "--format=%H%x00%an <%ae>%x00%s", f"refs/heads/{ref}", cwd=self.bare)
        return [tuple(line.split("\0")) for line in out.splitlines()]  # type: ignore[misc]

    def _remote_has_any(self) -> bool:
        return bool(git("for-each-ref", "refs/heads/", cwd=self.bare).strip())

    def _remote_has(self, branch: str) -> bool:
        return bool(git("for-each-ref", f"refs/heads/{branch}", cwd=self.bare).strip())


class RepoDir:
    """A directory of bare repositories, the base path both servers serve."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def create(self, name: str, files: Mapping[str, str | bytes], *, branch: str = "master") -> Repo:
        bare = self.root / f"{name}.git"
        work = self.root.parent / f".{self.root.name}-work" / name
        git("init", "--quiet", "--bare", f"--initial-branch={branch}", str(bare))
        git("init", "--quiet", f"--initial-branch={branch}", str(work))
        git("remote", "add", "origin", str(bare), cwd=work)
        repo = Repo(bare, work)
        repo.commit(files, branch=branch, message="initial")
        return repo


def _wait_listening(port: int, process: subprocess.Popen[bytes] | None = None) -> None:
    for _ in range(200):
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


class GitDaemon:
    """``git daemon`` on 127.0.0.1 exporting every repository under ``base``, push enabled."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    def url(self, name: str) -> str:
        return f"git://127.0.0.1:{self.port}/{name}.git"

    def __enter__(self) -> Self:
        self.port = free_port()
        argv = ["git", "daemon", "--reuseaddr", "--export-all", "--enable=receive-pack", "--informative-errors"]
        argv += [f"--base-path={self.base}", "--listen=127.0.0.1", f"--port={self.port}", str(self.base)]
        self._process = subprocess.Popen(argv, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_listening(self.port, self._process)
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        stop(self._process)


class GitHttpServer:
    """Smart HTTP (``git http-backend`` as CGI) on 127.0.0.1, with optional Basic or Bearer authentication."""

    def __init__(
        self, base: Path, *, username: str | None = None, password: str | None = None, token: str | None = None
    ) -> None:
        self.base = base
        self.username, self.password, self.token = username, password, token
        self.requests: list[tuple[str, str, str]] = []
        self.waiting = threading.Event()  # set while a request is parked by hold()
        self._gate = threading.Event()
        self._gate.set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}.git"

    def hold(self) -> None:
        """Park every following request until :meth:`release`."""
        self.waiting.clear()
        self._gate.clear()

    def release(self) -> None:
        self._gate.set()

    def authorized(self, header: str) -> bool:
        if self.token is not None:
            return hmac.compare_digest(header, f"Bearer {self.token}")
        if self.username is not None:
            expected = base64.b64encode(f"{self.username}:{self.password or ''}".encode()).decode()
            return hmac.compare_digest(header, f"Basic {expected}")
        return True

    def __enter__(self) -> Self:
        self._server = _Server(("127.0.0.1", 0), _CgiHandler)
        self._server.owner = self
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="git-http", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.release()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)


class _Server(http.server.ThreadingHTTPServer):
    owner: GitHttpServer

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that went away (a killed or timed-out git) is expected in these tests; anything else shows."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class _CgiHandler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        owner = self.server.owner
        header = self.headers.get("Authorization", "")
        owner.requests.append((self.command, self.path, header.partition(" ")[0]))
        if not owner._gate.is_set():
            owner.waiting.set()
            owner._gate.wait(timeout=60)
        if not owner.authorized(header):
            scheme = "Bearer" if owner.token is not None else "Basic"
            self.send_response(401)
            self.send_header("WWW-Authenticate", f'{scheme} realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path, _, query = self.path.partition("?")
        env = ENV | {
            "GIT_PROJECT_ROOT": str(owner.base),
            "GIT_HTTP_EXPORT_ALL": "1",
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "http.receivepack",
            "GIT_CONFIG_VALUE_0": "true",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "REMOTE_ADDR": "127.0.0.1",
            "REMOTE_USER": owner.username or "anonymous",
        }
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        if self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        body = self._body()
        env["CONTENT_LENGTH"] = str(len(body))
        done = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True, timeout=60)
        head, _, payload = done.stdout.partition(b"\r\n\r\n")
        status, headers = 200, []
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))
