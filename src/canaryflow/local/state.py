"""The state directory of a local runtime, and the record of what it runs (``runtime.json``).

Layout: ``state.db`` (objects, canary status, operations, events), ``envoy/`` (xDS files), ``prometheus/``,
``logs/``, ``bin/`` (shims such as ``podcli``), ``runtime.json`` (pid, ports, endpoints, child processes).
The record lets the CLI find the runtime's API, lets ``up`` reuse the same ports after a crash, and lets it
stop the child processes a killed runtime left behind: by PID, and only when the PID still runs the command
line that was recorded (a PID may have been reused).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

DEFAULT = Path(".canaryflow")
ENV = "CANARYFLOW_STATE_DIR"


def resolve(state_dir: str | Path | None) -> Path:
    return Path(state_dir or os.environ.get(ENV) or DEFAULT).resolve()


class StateDir:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.db = root / "state.db"
        self.envoy = root / "envoy"
        self.prometheus = root / "prometheus"
        self.logs = root / "logs"
        self.bin = root / "bin"
        self.record_path = root / "runtime.json"

    def create(self) -> None:
        for path in (self.root, self.envoy, self.prometheus, self.logs, self.bin):
            path.mkdir(parents=True, exist_ok=True)

    def record(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.record_path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return data if isinstance(data, dict) else None

    def write_record(self, record: dict[str, Any]) -> None:
        tmp = self.record_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=2, sort_keys=True))
        os.replace(tmp, self.record_path)

    def running_pid(self) -> int | None:
        """The PID of a live runtime using this state directory, if any."""
        record = self.record()
        if not record:
            return None
        pid, cmdline = record.get("pid"), record.get("cmdline")
        return pid if isinstance(pid, int) and isinstance(cmdline, list) and same_process(pid, cmdline) else None

    def reap_orphans(self, timeout: float = 5.0) -> list[int]:
        """Stop the children a dead runtime left running; returns their PIDs once they are gone.

        SIGKILL is delivered asynchronously: until a process has exited it still holds its listening ports, and
        ``up`` would then find the recorded ports taken and move the mesh to new ones (``timeout`` bounds the
        wait)."""
        record = self.record() or {}
        stopped: dict[int, list[str]] = {}
        for child in record.get("children", []):
            pid, cmdline = child.get("pid"), child.get("cmdline")
            if isinstance(pid, int) and isinstance(cmdline, list) and same_process(pid, cmdline):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL) if os.getpgid(pid) == pid else os.kill(pid, signal.SIGKILL)
                    stopped[pid] = cmdline
        deadline = time.monotonic() + timeout
        while any(same_process(pid, line) for pid, line in stopped.items()) and time.monotonic() < deadline:
            time.sleep(0.01)
        return list(stopped)


def cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def same_process(pid: int, expected: list[str]) -> bool:
    return cmdline(pid) == expected
