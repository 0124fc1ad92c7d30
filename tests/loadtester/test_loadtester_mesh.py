"""``with_hey_proxy``: hey ignores the proxy environment, so each hey invocation gets ``-x`` (and only hey)."""

from __future__ import annotations

import pytest

from canaryflow.loadtester import mesh

PROXY = "http://127.0.0.1:15001"


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (
            "hey -z 1m -q 10 -c 2 http://backend-canary.prod:9898/",
            f"hey -x {PROXY} -z 1m -q 10 -c 2 http://backend-canary.prod:9898/",
        ),
        (
            "hey -z 1m -q 10 -c 2 -H 'Cookie: type=insider' http://istio-gateway.istio-system/",
            f"hey -x {PROXY} -z 1m -q 10 -c 2 -H 'Cookie: type=insider' http://istio-gateway.istio-system/",
        ),
        (
            "/usr/bin/hey -n 5 http://backend/ | tee out.txt",
            f"/usr/bin/hey -x {PROXY} -n 5 http://backend/ | tee out.txt",
        ),
        (
            "sleep 1 && hey -n 1 http://a/; hey -n 2 http://b/",
            f"sleep 1 && hey -x {PROXY} -n 1 http://a/; hey -x {PROXY} -n 2 http://b/",
        ),
        ("GOMAXPROCS=1 exec hey -n 1 http://a/", f"GOMAXPROCS=1 exec hey -x {PROXY} -n 1 http://a/"),
    ],
    ids=["seed-backend-load-test", "seed-frontend-load-test", "path-and-pipe", "two-invocations", "env-and-exec"],
)
def test_proxy_is_inserted_after_hey(command: str, expected: str) -> None:
    assert mesh.with_hey_proxy(command, PROXY) == expected


@pytest.mark.parametrize(
    "command",
    [
        "hey -x http://127.0.0.1:3128 -n 1 http://backend/",
        "hey -x=http://127.0.0.1:3128 -n 1 http://backend/",
        "hey -n 1 http://127.0.0.1:9898/",
        "hey -n 1 http://localhost:9898/",
        "curl -s http://backend:9898/",
        "echo 'hey -n 1 http://backend/'",
        'echo "run hey" # hey -n 1 http://backend/',
        "they -n 1 http://backend/",
        "curl -sH 'X: 1' http://backend/ | grep hey",
    ],
    ids=[
        "own-proxy",
        "own-proxy-equals",
        "loopback-ip",
        "localhost",
        "not-hey",
        "hey-in-quotes",
        "hey-in-comment",
        "other-program",
        "hey-as-argument",
    ],
)
def test_command_is_left_as_written(command: str) -> None:
    assert mesh.with_hey_proxy(command, PROXY) == command


def test_proxy_environment_spares_loopback() -> None:
    env = mesh.proxy_environment(PROXY)

    assert env["http_proxy"] == env["HTTP_PROXY"] == PROXY
    assert set(env["no_proxy"].split(",")) == {"127.0.0.1", "localhost"}
