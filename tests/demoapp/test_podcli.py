"""``podcli check http``: the seed's exec probes pass on a 2xx answer and fail on anything else."""

from __future__ import annotations

import subprocess
import sys

import pytest

from canaryflow.demoapp import podcli
from tests.demoapp import services
from tests.demoapp.services import Service


@pytest.mark.parametrize(
    ("path", "expected"),
    [("/healthz", 0), ("/readyz", 0), ("/status/201", 0), ("/status/500", 1), ("/status/404", 1)],
)
def test_check_http_passes_only_on_2xx(demo: Service, path: str, expected: int) -> None:
    assert podcli.main(["check", "http", f"localhost:{demo.port}{path}"]) == expected


def test_check_http_accepts_a_full_url_and_podinfo_flags(demo: Service) -> None:
    argv = ["check", "http", f"{demo.url}/healthz", "--retry-count=2", "--retry-delay=1s", "--timeout=5s"]

    assert podcli.main(argv) == 0


def test_check_http_fails_after_its_retries_when_nothing_listens(capsys: pytest.CaptureFixture[str]) -> None:
    address = f"127.0.0.1:{services.free_port()}/healthz"

    code = podcli.main(["check", "http", address, "--retry-count", "2", "--retry-delay", "10ms"])

    assert code == 1
    assert "attempt 3/3 failed" in capsys.readouterr().err


def test_check_tcp(demo: Service) -> None:
    assert podcli.main(["check", "tcp", f"127.0.0.1:{demo.port}"]) == 0
    assert podcli.main(["check", "tcp", f"127.0.0.1:{services.free_port()}", "--retry-delay=0"]) == 1


def test_runs_as_a_command(demo: Service) -> None:
    def run(path: str) -> int:
        argv = [sys.executable, "-m", "canaryflow.demoapp.podcli", "check", "http", f"localhost:{demo.port}{path}"]
        return subprocess.run(argv, capture_output=True, timeout=30, check=False).returncode

    assert (run("/healthz"), run("/status/503")) == (0, 1)
