"""``python -m canaryflow.loadtester --port 8080 [--namespace-regexp REGEX] [--proxy http://127.0.0.1:P]``.

Flags are flagger-loadtester's and may be written its way, with one dash (``-port=8080 -log-level=info
-timeout=1h``, as the seed's Deployment does), so the runtime can pass a container's command line on.
``--proxy`` is the local mesh's HTTP proxy: tasks then reach services by their Kubernetes names.
Listens on 127.0.0.1 unless ``--host`` says otherwise; ``CANARYFLOW_LISTEN_PORT`` overrides the port.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from collections.abc import Sequence

from canaryflow.api.duration import parse_duration
from canaryflow.loadtester import app, tasks
from canaryflow.web import standalone

# Set by the local runtime, which picks the port while the container's ``-port=8080`` stays as written.
LISTEN_PORT = "CANARYFLOW_LISTEN_PORT"
_LEVELS = {"debug": "debug", "info": "info", "warn": "warning", "warning": "warning", "error": "error"}


def _regexp(text: str) -> re.Pattern[str]:
    try:
        return re.compile(text)
    except re.error as exc:
        raise argparse.ArgumentTypeError(f"invalid regular expression {text!r}: {exc}") from None


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _proxy(text: str) -> str:
    if not text.startswith("http://"):
        raise argparse.ArgumentTypeError(f"the proxy must be an http:// URL (hey needs the scheme), not {text!r}")
    return text


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m canaryflow.loadtester", allow_abbrev=False)
    parser.add_argument("-port", "--port", type=int, default=8080, help="port to listen on (8080)")
    parser.add_argument("-host", "--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("-log-level", "--log-level", "--level", dest="level", default="info", choices=_LEVELS)
    parser.add_argument("-timeout", "--timeout", type=_duration, default=3600.0, help="task time limit (1h)")
    parser.add_argument(
        "-namespace-regexp", "--namespace-regexp", type=_regexp, help="only canaries in matching namespaces"
    )
    parser.add_argument("--proxy", type=_proxy, help="the mesh's HTTP proxy, e.g. http://127.0.0.1:15001")
    # Accepted for compatibility with the container's command line; logs are plain text here.
    parser.add_argument("-zap-encoder", "--zap-encoder", help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    level = _LEVELS[args.level]
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = app.Settings(
        runner=tasks.RunnerSettings(timeout=args.timeout, proxy=args.proxy),
        namespace_regexp=args.namespace_regexp,
    )
    listen = standalone.Listen(
        host=args.host,
        port=int(os.environ.get(LISTEN_PORT) or args.port),
        level=level,
        # A blocking bash task holds its request open; shutting down must not wait for it.
        graceful_shutdown=2,
    )
    return standalone.run(app.build_app(settings), listen)


if __name__ == "__main__":
    sys.exit(main())
