"""Starting and stopping the local runtime in this process (``wiring.running``): a part that fails to start leaves
nothing running — every part started before it is closed, its processes stopped by PID — and a runtime that
started stops every process it started when its block ends, then records that it stopped."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from canaryflow.local import state, wiring
from canaryflow.local.envoy import EnvoyProcess
from canaryflow.local.gitops import LocalGitOps
from canaryflow.local.procs import ProcessError
from canaryflow.local.wiring import Options


class Failed(Exception):
    """What the part made to fail raises."""


@pytest.fixture
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> state.StateDir:
    monkeypatch.setenv(state.OWNER_ENV, "")  # the runtime marks its children through this process' environment
    return state.StateDir(tmp_path / "state")


@pytest.fixture
def taken() -> Iterator[int]:
    """A port something listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        yield listener.getsockname()[1]


def named(pids: list[int]) -> dict[int, str]:
    """Each live process by the name of its executable."""
    return {pid: Path(line[0]).name for pid in pids if (line := state.cmdline(pid))}


async def test_gitops_failing_to_start_stops_envoy_prometheus_and_the_load_tester(
    dirs: state.StateDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    running: dict[int, str] = {}

    async def fail(self: LocalGitOps) -> None:
        running.update(named(dirs.marked()))
        raise Failed("GitOps cannot start")

    monkeypatch.setattr(LocalGitOps, "start", fail)
    with pytest.raises(Failed):
        async with wiring.running(Options(dirs)):
            pytest.fail("the runtime started without its GitOps controller")
    assert len(running) >= 3 and {"envoy", "prometheus"} <= set(running.values()), running  # and the load tester
    assert [pid for pid in running if not state.exited(pid)] == []
    assert dirs.marked() == []
    assert dirs.record() is None  # nothing claims a runtime ran


async def test_prometheus_failing_to_start_stops_envoy(
    dirs: state.StateDir, monkeypatch: pytest.MonkeyPatch, taken: int
) -> None:
    envoys: list[int] = []
    start, choose = EnvoyProcess.start, wiring.choose_ports

    async def start_envoy(self: EnvoyProcess, timeout: float = 10.0) -> None:
        await start(self, timeout)
        assert self.pid is not None
        envoys.append(self.pid)

    def ports(previous: dict[str, Any]) -> dict[str, Any]:
        return {**choose(previous), "prometheus": taken}  # Prometheus cannot listen, and exits

    monkeypatch.setattr(EnvoyProcess, "start", start_envoy)
    monkeypatch.setattr(wiring, "choose_ports", ports)
    with pytest.raises(ProcessError, match="prometheus"):
        async with wiring.running(Options(dirs)):
            pytest.fail("the runtime started without Prometheus")
    assert len(envoys) == 1 and state.exited(envoys[0])
    assert dirs.marked() == []


async def test_a_started_runtime_stops_every_process_when_its_block_ends(dirs: state.StateDir) -> None:
    with pytest.raises(Failed):
        async with wiring.running(Options(dirs)) as runtime:
            started = [p["pid"] for p in runtime.process_health()]
            assert len(started) == 3 and all(started)
            for _ in range(200):  # the record keeper writes at once, then every second
                if (dirs.record() or {}).get("pid") is not None:
                    break
                await asyncio.sleep(0.01)
            assert (dirs.record() or {})["children"]
            raise Failed("the API server stopped")
    assert [pid for pid in started if not state.exited(pid)] == []
    assert dirs.marked() == []
    record = dirs.record() or {}
    assert record["pid"] is None and record["children"] == []
    assert record["endpoints"]["dashboard"] == runtime.endpoints()["dashboard"]
