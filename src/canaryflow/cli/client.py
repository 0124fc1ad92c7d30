"""The CLI's side of the local runtime: find it, start it, send it manifests, read from it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from canaryflow.local import state as state_mod


class CliError(Exception):
    """A message for the user; the command exits 1."""


class Runtime:
    """A local runtime, running or not, identified by its state directory."""

    def __init__(self, state_dir: str | None) -> None:
        self.dirs = state_mod.StateDir(state_mod.resolve(state_dir))

    @property
    def running(self) -> bool:
        return self.dirs.running_pid() is not None

    def url(self) -> str:
        record = self.dirs.record() or {}
        if not self.running:
            raise CliError(f"no runtime is running with state directory {self.dirs.root}: run `canaryflow up`")
        return str(record["endpoints"]["api"])

    def start(
        self, time_scale: float, min_interval: float, timeout: float = 90.0, judge: bool = False,
        dashboard: tuple[str, str | None] = ("", None),
    ) -> int:  # fmt: skip
        """Start the runtime in the background; returns its PID once its API answers. ``dashboard`` is the
        dashboard's HOST:PORT ("": loopback) and token (None: read-only), passed in the environment, not argv."""
        self.dirs.create()
        log = (self.dirs.logs / "runtime.log").open("ab")
        argv = [sys.executable, "-m", "canaryflow.local", "--state-dir", str(self.dirs.root),
                "--time-scale", str(time_scale), "--min-interval", str(min_interval)]  # fmt: skip
        if judge:
            argv.append("--judge")
        listen, token = dashboard
        argv += ["--dashboard-listen", listen] if listen else []
        env = {**os.environ, **({"CANARYFLOW_DASHBOARD_TOKEN": token} if token else {})}
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, env=env
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise CliError(f"the runtime exited with {process.returncode}: {self.log_tail()}")
            record = self.dirs.record() or {}
            if record.get("pid") == process.pid:
                try:
                    if httpx.get(f"{record['endpoints']['api']}/healthz", timeout=1.0, trust_env=False).is_success:
                        return process.pid
                except httpx.HTTPError:
                    pass
            time.sleep(0.1)
        process.terminate()
        raise CliError(f"the runtime did not answer within {timeout:.0f}s: {self.log_tail()}")

    def stop(self, timeout: float = 30.0) -> bool:
        pid = self.dirs.running_pid()
        if pid is None:
            self.dirs.reap_orphans()
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.dirs.running_pid() == pid:
            time.sleep(0.1)
        if self.dirs.running_pid() == pid:
            os.kill(pid, signal.SIGKILL)
        self.dirs.reap_orphans()
        return True

    def log_tail(self, lines: int = 10) -> str:
        try:
            return "\n".join((self.dirs.logs / "runtime.log").read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def request(self, method: str, path: str, *, timeout: float = 60.0, **kwargs: Any) -> httpx.Response:
        try:
            return httpx.request(method, f"{self.url()}{path}", timeout=timeout, trust_env=False, **kwargs)
        except httpx.HTTPError as exc:
            raise CliError(f"the runtime at {self.url()} did not answer: {exc}") from exc

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        data = response.json()
        if response.status_code >= 400 and isinstance(data, dict) and "error" in data:
            raise CliError(str(data["error"]))
        return data


def sources(paths: list[str]) -> list[dict[str, str]]:
    """The YAML texts behind ``-f`` arguments: files, stdin, directories (built with ``kubectl kustomize`` when they
    hold a kustomization.yaml, else every YAML file in them)."""
    out: list[dict[str, str]] = []
    for path in paths:
        if path == "-":
            out.append({"source": "<stdin>", "text": sys.stdin.read()})
            continue
        p = Path(path)
        if p.is_dir() and any((p / k).exists() for k in ("kustomization.yaml", "kustomization.yml", "Kustomization")):
            out.append({"source": str(p), "text": kustomize(p)})
        elif p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.suffix in (".yaml", ".yml") and f.is_file())
            out.extend({"source": str(f), "text": f.read_text()} for f in files)
        elif p.is_file():
            out.append({"source": str(p), "text": p.read_text()})
        else:
            raise CliError(f"{path}: no such file or directory")
    return out


def kustomize(directory: Path) -> str:
    try:
        built = subprocess.run(["kubectl", "kustomize", str(directory)], capture_output=True, text=True, timeout=60)
    except FileNotFoundError as exc:
        raise CliError("kubectl is needed to build kustomizations (kubectl kustomize)") from exc
    if built.returncode != 0:
        raise CliError(f"kubectl kustomize {directory} failed: {built.stderr.strip()}")
    return built.stdout
