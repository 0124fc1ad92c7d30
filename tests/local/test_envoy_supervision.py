"""The supervised Envoy: it comes back after a crash with the last configuration it accepted."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from pathlib import Path

import pytest

from canaryflow.local.envoy import EnvoyError, EnvoyProcess, PortInUse
from canaryflow.local.procs import free_port
from canaryflow.routing.base import Routes
from canaryflow.routing.envoy import CanaryRouting, EnvoyAdmin, EnvoyRouter, Mesh, XdsFiles, xds
from tests.local.conftest import DataPlane, canary


async def restarted(dataplane: DataPlane, old_pid: int) -> None:
    """Wait (bounded) until the supervisor has a new Envoy ready."""
    for _ in range(500):
        if dataplane.envoy.pid not in (None, old_pid) and await dataplane.envoy.ready():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("Envoy was not restarted")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_killed_envoy_comes_back_with_the_last_routes(dataplane: DataPlane) -> None:
    backend = canary("backend")
    await dataplane.router.reconcile(backend)
    await dataplane.router.set_routes(backend, Routes(0, 100))
    old_pid = dataplane.envoy.pid
    assert old_pid is not None

    os.kill(old_pid, signal.SIGKILL)
    await restarted(dataplane, old_pid)

    answers = await dataplane.send("http://backend.prod:9898/", 10)
    assert {a.text for a in answers} == {"backend"}
    assert dataplane.envoy.restarts == 1
    assert await dataplane.router.verify(backend, Routes(0, 100))


async def test_a_restart_never_loads_a_file_envoy_rejected(dataplane: DataPlane) -> None:
    backend = canary("backend")
    await dataplane.router.reconcile(backend)
    await dataplane.router.set_routes(backend, Routes(0, 100))
    # As if canaryflow died between writing a bad update and restoring the good one.
    dataplane.files.write("rds_mesh", {"version_info": "broken", "resources": [{"@type": xds.ROUTE_CONFIG, "name": 1}]})
    old_pid = dataplane.envoy.pid
    assert old_pid is not None

    os.kill(old_pid, signal.SIGKILL)
    await restarted(dataplane, old_pid)

    answers = await dataplane.send("http://backend.prod:9898/", 10)
    assert {a.text for a in answers} == {"backend"}


async def test_the_router_keeps_working_after_a_restart(dataplane: DataPlane) -> None:
    backend = canary("backend")
    await dataplane.router.reconcile(backend)
    old_pid = dataplane.envoy.pid
    assert old_pid is not None
    os.kill(old_pid, signal.SIGKILL)
    await restarted(dataplane, old_pid)

    await dataplane.router.set_routes(backend, Routes(20, 80))

    assert await dataplane.router.verify(backend, Routes(20, 80))


async def test_stop_leaves_no_process_behind(dataplane: DataPlane) -> None:
    pid = dataplane.envoy.pid
    assert pid is not None and alive(pid)

    await dataplane.envoy.stop()

    assert not alive(pid)
    assert not dataplane.envoy.running


async def test_start_refuses_a_configuration_envoy_rejects(tmp_path: Path) -> None:
    broken = canary("backend", analysis='iterations: 5\nmatch: [{headers: {x-user: {regex: "(?=a)"}}}]')
    files = XdsFiles(tmp_path / "envoy")
    rendered = xds.render(Mesh(proxy_port=free_port()), [CanaryRouting(broken)], files.directory)
    for name, document in rendered.documents.items():
        files.write(name, document)
    envoy = EnvoyProcess(files, admin_port=free_port(), log_path=tmp_path / "envoy.log")

    with pytest.raises(EnvoyError, match=r"\(\?="):
        await envoy.start()

    assert not envoy.running


async def test_a_taken_port_is_reported_as_such(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        files = XdsFiles(tmp_path / "envoy")
        envoy = EnvoyProcess(files, admin_port=free_port(), log_path=tmp_path / "envoy.log")
        router = EnvoyRouter(files, EnvoyAdmin(envoy.admin_url), Mesh(proxy_port=taken.getsockname()[1]))
        router.write()
        try:
            with pytest.raises(PortInUse):
                await envoy.start()
        finally:
            await envoy.stop()
            await router.aclose()
