"""``POST /`` runs a webhook's command: ``cmd`` in the background and once at a time, ``bash`` blocking."""

from __future__ import annotations

import httpx
import pytest

from tests.demoapp.services import Service
from tests.loadtester.conftest import hook, tasks
from tests.polling import wait_until


def finished(tester: Service, command: str) -> list[dict[str, object]]:
    return [task for task in tasks(tester)["finished"] if task["command"] == command]


def running(tester: Service, command: str) -> list[dict[str, object]]:
    return [task for task in tasks(tester)["running"] if task["command"] == command]


def test_hey_load_test_runs_once_however_often_it_is_posted(tester: Service, demo: Service) -> None:
    """Flagger posts the load-test hook on every tick; a running ``hey`` is not started again."""
    command = f"hey -z 2s -q 5 -c 1 {demo.url}/"
    body = hook({"type": "cmd", "cmd": command, "logCmdOutput": "true"})

    first = httpx.post(f"{tester.url}/", json=body)
    second = httpx.post(f"{tester.url}/", json=body)

    assert (first.status_code, second.status_code) == (202, 202)
    assert "already running" in second.text
    assert len(running(tester, command)) == 1
    wait_until(lambda: bool(finished(tester, command)), "hey has finished")
    [task] = finished(tester, command)
    assert (task["exit_code"], task["canary"], task["phase"]) == (0, "backend.prod", "Progressing")
    assert "Summary" in str(task["output"])
    assert "[200]" in str(task["output"])  # hey's status code distribution: the demo app answered
    assert "hey -z 2s" in tester.logs()  # logCmdOutput: the output is in the load tester's log


def test_same_command_runs_again_once_finished(tester: Service) -> None:
    body = hook({"cmd": "sleep 0.2"}, name="again")

    httpx.post(f"{tester.url}/", json=body)
    wait_until(lambda: bool(finished(tester, "sleep 0.2")), "the first run has finished")
    again = httpx.post(f"{tester.url}/", json=body)

    assert "started" in again.text
    wait_until(lambda: len(finished(tester, "sleep 0.2")) == 2, "the second run has finished")


def test_different_commands_of_one_canary_run_side_by_side(tester: Service) -> None:
    for command in ("sleep 10.0", "sleep 10.1"):
        httpx.post(f"{tester.url}/", json=hook({"cmd": command}, name="both"))

    assert len(running(tester, "sleep 10.0")) == len(running(tester, "sleep 10.1")) == 1


def test_same_command_of_two_canaries_runs_twice(tester: Service) -> None:
    for name in ("one", "two"):
        httpx.post(f"{tester.url}/", json=hook({"cmd": "sleep 10.2"}, name=name))

    assert {task["canary"] for task in running(tester, "sleep 10.2")} == {"one.prod", "two.prod"}


def test_bash_task_blocks_and_succeeds(tester: Service) -> None:
    reply = httpx.post(f"{tester.url}/", json=hook({"type": "bash", "cmd": "echo conformance ok"}))

    assert (reply.status_code, reply.text) == (200, "")


def test_bash_task_returns_its_output_when_asked(tester: Service, demo: Service) -> None:
    """The seed's conformance test: ``curl -sd 'test' …/token | grep token``."""
    command = f"curl -sd 'test' {demo.url}/token | grep token"
    body = hook({"type": "bash", "cmd": command, "returnCmdOutput": "true"})

    reply = httpx.post(f"{tester.url}/", json=body, timeout=15)

    assert reply.status_code == 200
    assert '"token"' in reply.text


def test_bash_failure_is_a_500_with_the_output(tester: Service) -> None:
    reply = httpx.post(f"{tester.url}/", json=hook({"type": "bash", "cmd": "echo broken >&2; exit 3"}))

    assert reply.status_code == 500
    assert "broken" in reply.text
    assert "exit code 3" in reply.text


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not JSON"),
        (b'{"name": "backend", "namespace": "prod"}', "metadata not found"),
        (b'{"name": "backend", "namespace": "prod", "metadata": {"type": "cmd"}}', "cmd not found"),
        (b'{"name": "b", "namespace": "p", "metadata": {"type": "helm", "cmd": "helm test b"}}', "not supported"),
        (b'{"name": "b", "namespace": "p", "metadata": {"type": "kubectl", "cmd": "kubectl get"}}', "not supported"),
        (b'{"name": "b", "namespace": "p", "metadata": {"type": "jmeter", "cmd": "x"}}', "unknown task type"),
        (b'{"name": "b", "namespace": "p", "metadata": {"cmd": "x", "logCmdOutput": true}}', "strings"),
        (b'{"name": "b", "namespace": "p", "metadata": {"cmd": "x", "logCmdOutput": "yes"}}', "logCmdOutput"),
    ],
    ids=[
        "not-json",
        "no-metadata",
        "no-cmd",
        "helm",
        "kubectl",
        "unknown-type",
        "non-string-metadata",
        "bad-boolean",
    ],
)
def test_a_payload_it_cannot_act_on_is_a_400(tester: Service, body: bytes, message: str) -> None:
    reply = httpx.post(f"{tester.url}/", content=body)

    assert reply.status_code == 400
    assert message in reply.text


def test_healthz(tester: Service) -> None:
    reply = httpx.get(f"{tester.url}/healthz")

    assert (reply.status_code, reply.text) == (200, "OK")
