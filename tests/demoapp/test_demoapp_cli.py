"""Started the way a Deployment starts podinfo: its flags, its environment variables, its frontend mode."""

from __future__ import annotations

import subprocess
import sys

import httpx

from tests.demoapp import services
from tests.demoapp.conftest import StartDemo


def test_the_seeds_command_line_runs_on_the_port_the_runtime_picks(start_demo: StartDemo) -> None:
    """The seed's container runs ``./podinfo --port=9898 --level=info``; the runtime picks the real port."""
    port = services.free_port()
    demo = start_demo(["--port=9898", "--level=info"], env={services.LISTEN_PORT: str(port)})

    assert demo.port == port
    assert httpx.get(f"{demo.url}/").status_code == 200


def test_podinfo_flags_without_a_local_meaning_are_ignored_with_a_warning(start_demo: StartDemo) -> None:
    demo = start_demo(["--random-delay=false", "--port-metrics=9797", "--h2c"])

    assert httpx.get(f"{demo.url}/").status_code == 200
    assert "--port-metrics has no effect" in demo.logs()


def test_version_flag_wins_over_the_environment(start_demo: StartDemo) -> None:
    demo = start_demo(["--version", "7.0.1"], env={"PODINFO_VERSION": "6.1.0"})

    assert httpx.get(f"{demo.url}/").json()["message"] == "greetings from podinfo v7.0.1"


def test_flags_set_color_and_message(start_demo: StartDemo) -> None:
    demo = start_demo(["--ui-color=#ff0000", "--ui-message=canary"])

    info = httpx.get(f"{demo.url}/").json()

    assert (info["color"], info["message"]) == ("#ff0000", "canary")


def test_unknown_flag_is_refused_as_podinfo_refuses_it() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "canaryflow.demoapp", "--no-such-flag"],
        env=services.clean_env(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert result.returncode == 2
    assert "--no-such-flag" in result.stderr


def test_unhealthy_flag_fails_the_liveness_probe(start_demo: StartDemo) -> None:
    demo = start_demo(["--unhealthy"])

    assert httpx.get(f"{demo.url}/healthz").status_code == 503


def test_frontend_echo_goes_through_its_backends(start_demo: StartDemo) -> None:
    """The seed's frontend sets PODINFO_BACKEND_URL: its /echo passes the body on and lists the answers."""
    backend = start_demo(env={"PODINFO_VERSION": "6.1.0"})
    frontend = start_demo(env={"PODINFO_BACKEND_URL": f"{backend.url}/echo"})

    reply = httpx.post(f"{frontend.url}/echo", content=b"ping")

    assert (reply.status_code, reply.json()) == (202, ["ping"])


def test_frontend_reports_an_unreachable_backend(start_demo: StartDemo) -> None:
    frontend = start_demo(env={"PODINFO_BACKEND_URL": f"http://127.0.0.1:{services.free_port()}/echo"})

    reply = httpx.post(f"{frontend.url}/echo", content=b"ping")

    assert reply.status_code == 503
    assert "unreachable" in reply.json()["error"]


def test_port_in_use_is_an_error(start_demo: StartDemo) -> None:
    demo = start_demo()

    result = subprocess.run(
        [sys.executable, "-m", "canaryflow.demoapp", "--port", str(demo.port)],
        env=services.clean_env(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert result.returncode != 0
