"""The state directory's record: orphans a killed runtime left are stopped, and gone, before ports are chosen."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from canaryflow.local import state
from canaryflow.local.procs import port_is_free

# Many threads, as Envoy has: its command line empties when the first thread exits, its sockets close with the last.
LISTEN = (
    "import socket, sys, threading, time\n"
    "for _ in range(64): threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n"
    "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "s.bind(('127.0.0.1', 0)); s.listen(); print(s.getsockname()[1], flush=True); time.sleep(60)\n"
)


def test_reaped_orphans_have_released_their_ports_when_reap_returns(tmp_path: Path) -> None:
    dirs = state.StateDir(tmp_path)
    dirs.create()
    children, ports = [], []
    for _ in range(5):  # several, so the kills are in flight together as after a runtime's SIGKILL
        child = subprocess.Popen([sys.executable, "-c", LISTEN], stdout=subprocess.PIPE, start_new_session=True)
        assert child.stdout is not None
        ports.append(int(child.stdout.readline()))
        children.append(child)
    record = [{"name": f"c{i}", "pid": c.pid, "cmdline": state.cmdline(c.pid)} for i, c in enumerate(children)]
    dirs.write_record({"pid": None, "children": record})
    try:
        assert sorted(dirs.reap_orphans()) == sorted(c.pid for c in children)
        assert all(port_is_free(port) for port in ports)  # `up` keeps the recorded ports
    finally:
        for child in children:
            child.kill()
            child.wait()


def test_a_reused_pid_is_not_stopped(tmp_path: Path) -> None:
    dirs = state.StateDir(tmp_path)
    dirs.create()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        dirs.write_record({"pid": None, "children": [{"name": "x", "pid": child.pid, "cmdline": ["other"]}]})
        assert dirs.reap_orphans() == []
        assert child.poll() is None
    finally:
        child.kill()
        child.wait()


def test_children_started_after_the_last_record_are_found_by_their_marker(tmp_path: Path) -> None:
    dirs, other = state.StateDir(tmp_path / "a"), state.StateDir(tmp_path / "b")
    dirs.create()
    dirs.write_record({"pid": None, "children": []})  # the runtime died before it recorded them
    sleep = [sys.executable, "-c", "import time; time.sleep(60)"]
    mine = subprocess.Popen(sleep, env={**os.environ, state.OWNER_ENV: str(dirs.root)}, start_new_session=True)
    theirs = subprocess.Popen(sleep, env={**os.environ, state.OWNER_ENV: str(other.root)}, start_new_session=True)
    try:
        assert dirs.reap_orphans() == [mine.pid]
        assert mine.wait(5) == -9
        assert theirs.poll() is None  # another state directory's runtime is left alone
    finally:
        for child in (mine, theirs):
            child.kill()
            child.wait()


def test_exited_means_every_thread_is_gone() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "import threading, time; threading.Thread(target=time.sleep, args=(60,)).start()"]
    )
    try:
        time.sleep(0.3)  # the main thread has returned; the other one still runs, and holds the process's files
        assert not state.exited(child.pid)
        child.kill()
        deadline = time.monotonic() + 5
        while not state.exited(child.pid):  # a zombie until we wait for it
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert child.poll() == -9
    finally:
        child.kill()
        child.wait()
    assert state.exited(child.pid)
