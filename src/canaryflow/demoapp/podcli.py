"""``podcli check http HOST:PORT/PATH``: podinfo's health checker, as the seed's exec probes call it.

Exit status 0 when the endpoint answers 2xx (``check http``) or accepts a connection (``check tcp``), 1
otherwise, after ``--retry-count`` further attempts ``--retry-delay`` apart, each bounded by ``--timeout``.
A probe checks the process next to it, so proxy settings from the environment (the local mesh) are
ignored. Uses urllib rather than httpx: a probe runs every few seconds, and its start-up time counts.
"""

from __future__ import annotations

import argparse
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence

from canaryflow.demoapp import faults


def _check_http(address: str, timeout: float, method: str) -> str | None:
    """None when the endpoint answers 2xx, else why not."""
    url = address if "://" in address else f"http://{address}"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(urllib.request.Request(url, method=method), timeout=timeout) as reply:
            status = int(reply.status)
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return f"{url}: {getattr(exc, 'reason', exc)}"
    return None if 200 <= status < 300 else f"{url}: answered {status}"


def _check_tcp(address: str, timeout: float, method: str) -> str | None:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        return f"{address}: expected HOST:PORT"
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
            return None
    except OSError as exc:
        return f"{address}: {exc}"


_CHECKS: dict[str, Callable[[str, float, str], str | None]] = {"http": _check_http, "tcp": _check_tcp}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="podcli", allow_abbrev=False)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("version", help="print the version")
    check = commands.add_parser("check", help="check that an endpoint is up").add_subparsers(dest="kind", required=True)
    for kind in _CHECKS:
        sub = check.add_parser(kind, help=f"{kind} check")
        sub.add_argument("address", help="HOST:PORT[/PATH] or a full URL")
        sub.add_argument("--retry-count", type=int, default=0, help="further attempts after a failure")
        sub.add_argument("--retry-delay", type=faults.parse_seconds, default=1.0, help="pause between tries")
        sub.add_argument("--timeout", type=faults.parse_seconds, default=5.0, help="limit of one attempt")
        sub.add_argument("--method", default="GET", help="HTTP method (http only)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "version":
        print("canaryflow-podcli")
        return 0
    check = _CHECKS[args.kind]
    attempts = 1 + max(0, args.retry_count)
    for attempt in range(1, attempts + 1):
        problem = check(args.address, args.timeout, args.method.upper())
        if problem is None:
            print(f"check {args.kind} {args.address}: OK", file=sys.stderr)
            return 0
        print(f"check {args.kind} attempt {attempt}/{attempts} failed: {problem}", file=sys.stderr)
        if attempt < attempts:
            time.sleep(args.retry_delay)
    return 1


if __name__ == "__main__":
    sys.exit(main())
