"""``get -w``, ``events -w`` and ``logs -f``/``--tail``, run as a user runs them (the real command, in its own
process, reading the saved state while this test changes it), stopped by the test with SIGINT."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from canaryflow.api.status import Phase
from tests.cli.conftest import STARTED, Saved

CLI = str(Path(sys.executable).parent / "canaryflow")
WAIT = 30.0


class Lines:
    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.queue: queue.Queue[str] = queue.Queue()
        assert process.stdout is not None
        stdout = process.stdout
        threading.Thread(target=lambda: [self.queue.put(line.rstrip("\n")) for line in stdout], daemon=True).start()

    def next(self) -> str:
        return self.queue.get(timeout=WAIT)

    def take(self, n: int) -> list[str]:
        return [self.next() for _ in range(n)]


@contextmanager
def running(saved: Saved, *args: str) -> Iterator[Lines]:
    env = {**os.environ, "COLUMNS": "200"}
    process = subprocess.Popen([CLI, *args, "--state-dir", saved.root], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True, env=env)  # fmt: skip
    try:
        yield Lines(process)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_get_watch_prints_the_table_once_then_only_the_rows_that_changed(saved: Saved) -> None:
    with running(saved, "get", "canaries", "-A", "-w") as lines:
        header, prod, staging = lines.take(3)
        assert header.split()[:3] == ["NAMESPACE", "NAME", "STATUS"]
        assert prod.split()[:4] == ["prod", "backend", "Progressing", "10"]
        assert staging.split()[:3] == ["staging", "backend", "Succeeded"]
        saved.set_status("prod/backend", canary_weight=15)
        changed = lines.next()
        assert changed.split()[:4] == ["prod", "backend", "Progressing", "15"]
        assert changed.index("Progressing") == prod.index("Progressing")  # in the first table's columns
        saved.set_status("staging/backend", phase=Phase.PROGRESSING, canary_weight=5)
        assert lines.next().split()[:4] == ["staging", "backend", "Progressing", "5"]  # prod was not reprinted


def test_events_watch_prints_each_new_event_once(saved: Saved) -> None:
    with running(saved, "events", "-n", "prod", "-w") as lines:
        shown = lines.take(5)
        assert shown[0].split() == ["TIME", "TYPE", "OBJECT", "MESSAGE"]
        assert shown[-1].endswith("Advance backend.prod canary weight 10")
        saved.event("prod/backend", "Advance backend.prod canary weight 15", STARTED + 46)
        saved.event("staging/backend", "not in prod", STARTED + 47)
        saved.event("prod/backend", "Advance backend.prod canary weight 20", STARTED + 61)
        assert lines.next().endswith("Advance backend.prod canary weight 15")
        assert lines.next().endswith("Advance backend.prod canary weight 20")


def test_logs_tail_and_follow(saved: Saved) -> None:
    logs = saved.dirs.logs / "prod"
    logs.mkdir(parents=True)
    log = logs / "backend-0.log"
    log.write_text("".join(f"line {n}\n" for n in range(1, 11)))
    code, out, _ = saved.cli("logs", "deployment/backend", "-n", "prod", "--tail", "2")
    assert (code, out) == (0, "line 9\nline 10\n")
    code, out, _ = saved.cli("logs", "deployment/backend", "-n", "prod", "--tail", "-1")
    assert out.splitlines() == [f"line {n}" for n in range(1, 11)]
    with running(saved, "logs", "deployment/backend", "-n", "prod", "--tail", "1", "-f") as lines:
        assert lines.next() == "line 10"
        with log.open("a") as handle:
            handle.write("line 11\n")
        assert lines.next() == "line 11"
