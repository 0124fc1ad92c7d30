"""The load tester as a service: its command line, namespace authorisation, time limits, the mesh proxy,
and tasks that never outlive the service or the caller that waits for them."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator

import httpx
import pytest

from tests.demoapp.services import LISTEN_PORT, Service, free_port, group_members, process_alive
from tests.loadtester.conftest import StartTester, hook, tasks
from tests.polling import wait_until


def post(tester: Service, metadata: dict[str, str], namespace: str = "prod", timeout: float = 15) -> httpx.Response:
    return httpx.post(f"{tester.url}/", json=hook(metadata, namespace=namespace), timeout=timeout)


def running_pid(tester: Service, command: str) -> int:
    [task] = [task for task in tasks(tester)["running"] if task["command"] == command]
    pid = task["pid"]
    assert isinstance(pid, int)
    return pid


def test_the_seeds_command_line_runs_on_the_port_the_runtime_picks(start_tester: StartTester) -> None:
    """The seed's container runs ``./loadtester -port=8080 -log-level=info -timeout=1h``."""
    port = free_port()
    tester = start_tester(["-port=8080", "-log-level=info", "-timeout=1h"], env={LISTEN_PORT: str(port)})

    assert tester.port == port

    assert httpx.get(f"{tester.url}/healthz").text == "OK"


def test_namespace_outside_the_regexp_is_forbidden(start_tester: StartTester) -> None:
    tester = start_tester(["-namespace-regexp=^prod"])

    forbidden = post(tester, {"type": "bash", "cmd": "true"}, namespace="dev")
    allowed = post(tester, {"type": "bash", "cmd": "true"}, namespace="prod")

    assert (forbidden.status_code, allowed.status_code) == (403, 200)
    assert "dev" in forbidden.text


def test_task_over_the_time_limit_is_killed(start_tester: StartTester) -> None:
    tester = start_tester(["--timeout", "300ms"])

    blocking = post(tester, {"type": "bash", "cmd": "sleep 30"})
    post(tester, {"cmd": "sleep 31"})

    assert blocking.status_code == 500
    assert "timed out" in blocking.text
    wait_until(lambda: not tasks(tester)["running"], "the background task is killed")
    assert all(task["timed_out"] for task in tasks(tester)["finished"])


def test_tasks_stop_with_the_service(start_tester: StartTester) -> None:
    tester = start_tester()
    post(tester, {"cmd": "sleep 30 | cat"})
    pid = running_pid(tester, "sleep 30 | cat")

    tester.stop()

    wait_until(lambda: not group_members(pid), "every process of the task is gone")


def test_tasks_stop_when_the_service_is_killed(start_tester: StartTester) -> None:
    tester = start_tester()
    post(tester, {"cmd": "sleep 30"})
    pid = running_pid(tester, "sleep 30")

    tester.process.kill()
    tester.process.wait()

    wait_until(lambda: not process_alive(pid), "the task is gone")


def test_bash_task_stops_when_its_caller_gives_up(tester_for_disconnects: Service) -> None:
    """Flagger's webhook timeout closes the connection; the command must not run on unobserved."""
    tester = tester_for_disconnects
    with pytest.raises(httpx.ReadTimeout):
        post(tester, {"type": "bash", "cmd": "sleep 30"}, timeout=0.5)

    wait_until(lambda: not tasks(tester)["running"], "the task is stopped")
    [task] = tasks(tester)["finished"]
    assert task["stopped"] is True


@pytest.fixture
def tester_for_disconnects(start_tester: StartTester) -> Service:
    return start_tester()


class RecordingProxy(socketserver.ThreadingTCPServer):
    """An HTTP proxy stand-in for the mesh: records each request line and answers ``ok``."""

    daemon_threads = True

    def __init__(self) -> None:
        self.request_lines: list[str] = []
        super().__init__(("127.0.0.1", 0), _ProxyHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ProxyHandler(socketserver.StreamRequestHandler):
    server: RecordingProxy

    def handle(self) -> None:
        while line := self.rfile.readline():
            self.server.request_lines.append(line.decode().strip())
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # headers
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok")


@pytest.fixture
def proxy() -> Iterator[RecordingProxy]:
    server = RecordingProxy()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_hey_reaches_services_through_the_mesh(start_tester: StartTester, proxy: RecordingProxy) -> None:
    tester = start_tester(["--proxy", proxy.url])

    reply = post(tester, {"type": "bash", "cmd": "hey -n 3 -c 1 http://backend-canary.prod:9898/"})

    assert reply.status_code == 200
    assert proxy.request_lines == ["GET http://backend-canary.prod:9898/ HTTP/1.1"] * 3
    [task] = tasks(tester)["finished"]
    assert task["executed"] == f"hey -x {proxy.url} -n 3 -c 1 http://backend-canary.prod:9898/"


def test_curl_reaches_services_through_the_mesh_and_loopback_directly(
    start_tester: StartTester, proxy: RecordingProxy
) -> None:
    tester = start_tester(["--proxy", proxy.url])
    direct = f"curl -s {tester.url}/healthz"

    through_mesh = post(
        tester, {"type": "bash", "cmd": "curl -s http://backend.prod:9898/version", "returnCmdOutput": "true"}
    )
    loopback = post(tester, {"type": "bash", "cmd": direct, "returnCmdOutput": "true"})

    assert through_mesh.text == "ok"
    assert proxy.request_lines == ["GET http://backend.prod:9898/version HTTP/1.1"]
    assert loopback.text == "OK"
