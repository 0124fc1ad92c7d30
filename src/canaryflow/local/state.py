"""The state directory of a local runtime, and the record of what it runs (``runtime.json``).

Layout: ``state.db`` (objects, canary status, operations, events), ``envoy/`` (xDS files), ``prometheus/``,
``logs/``, ``bin/`` (shims such as ``podcli``), ``runtime.json`` (pid, ports, endpoints, child processes).
The record lets the CLI find the runtime's API, lets ``up`` reuse the same ports after a crash, and lets it
stop the child processes a killed runtime left behind: by PID, and only when the PID still runs the command
line that was recorded (a PID may have been reused), and those started after the last record, which carry
``OWNER_ENV`` in their environment.
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
#: Set by the runtime to its state directory and inherited by every process it starts (Envoy, Prometheus, the
#: load tester, workloads, their probes): how ``reap_orphans`` finds children started after the last record.
OWNER_ENV = "CANARYFLOW_RUNTIME_STATE"


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
        found = {
            child["pid"]: child["cmdline"]
            for child in record.get("children", [])
            if isinstance(child.get("pid"), int) and isinstance(child.get("cmdline"), list)
        }
        # The record is written once a second: what the runtime started since, it knows by the inherited marker.
        found.update((pid, line) for pid in self.marked() if (line := cmdline(pid)) and pid not in found)
        stopped: dict[int, list[str]] = {}
        for pid, line in found.items():
            if same_process(pid, line):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL) if os.getpgid(pid) == pid else os.kill(pid, signal.SIGKILL)
                    stopped[pid] = line
        deadline = time.monotonic() + timeout
        while not all(map(exited, stopped)) and time.monotonic() < deadline:
            time.sleep(0.01)
        return list(stopped)

    def marked(self) -> list[int]:
        """Live processes whose environment carries this directory's ``OWNER_ENV`` (this process and its
        ancestors excepted)."""
        marker = f"{OWNER_ENV}={self.root}".encode()
        mine = _ancestors(os.getpid())
        out = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and int(entry.name) not in mine:
                try:
                    environ = (entry / "environ").read_bytes()
                except OSError:
                    continue
                if marker in environ.split(b"\0"):
                    out.append(int(entry.name))
        return out


def _ancestors(pid: int) -> set[int]:
    out = set()
    while pid > 1 and pid not in out:
        out.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat[stat.rfind(")") + 2 :].split()[1])
    return out


def exited(pid: int) -> bool:
    """Whether every thread of ``pid`` has exited, so its files and sockets are closed. Its command line empties
    earlier, as soon as the first thread to exit releases the memory: a multi-threaded Envoy then still holds its
    listeners. What is left is a zombie (or nothing, once its new parent has reaped it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        threads = len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return True
    return stat[stat.rfind(")") + 2] in "ZX" and threads <= 1


def cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def same_process(pid: int, expected: list[str]) -> bool:
    return cmdline(pid) == expected
