"""``python -m canaryflow.demoapp --port 9898 [--level info]``: run the demo app as podinfo would run.

Flags are podinfo's, written as a Deployment writes them (``--port=9898``, ``--random-error``,
``--random-delay=false``); each can also come from ``PODINFO_<FLAG>`` in the environment, flag first, as
podinfo reads its configuration. Flags that only make sense for podinfo's extra servers (gRPC, TLS, data
paths…) are accepted and ignored with a warning; an unknown flag is an error, as it is for podinfo.
Fault knobs come from ``CANARYFLOW_FAULT_*`` (see ``faults``). Listens on 127.0.0.1 unless ``--host`` says;
``CANARYFLOW_LISTEN_PORT`` overrides the port.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import socket
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from canaryflow.demoapp import app, faults
from canaryflow.web import standalone

T = TypeVar("T")
# Set by the local runtime, which gives each process its own port while the container's command line
# (``--port=9898``) stays as the manifest wrote it.
LISTEN_PORT = "CANARYFLOW_LISTEN_PORT"
_LEVELS = {"debug": "debug", "info": "info", "warn": "warning", "warning": "warning", "error": "error"}
_IGNORED_VALUE_FLAGS = (
    "--port-metrics",
    "--grpc-port",
    "--grpc-service-name",
    "--secure-port",
    "--cert-path",
    "--data-path",
    "--config-path",
    "--config",
    "--ui-path",
    "--stress-cpu",
    "--stress-memory",
    "--cache-server",
    "--http-client-timeout",
    "--http-server-timeout",
    "--server-shutdown-timeout",
    "--otel-service-name",
)
_IGNORED_BOOL_FLAGS = ("--h2c",)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m canaryflow.demoapp", allow_abbrev=False)
    parser.add_argument("--port", type=int, help="port to listen on (default 9898)")
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--level", help="log level: debug (logs every request), info, warn, error")
    parser.add_argument("--version", help="version to report (default: $PODINFO_VERSION, else 0.0.0-local)")
    parser.add_argument("--revision", help="revision (commit) to report")
    parser.add_argument("--ui-color", help="color reported by /")
    parser.add_argument("--ui-message", help="message reported by /")
    parser.add_argument("--ui-logo", help="logo URL reported by /")
    parser.add_argument("--backend-url", action="append", help="backend for /echo; repeat for several")
    parser.add_argument("--jwt-secret", help="secret signing /token's tokens")
    parser.add_argument("--keep-alive-timeout", type=float, help="seconds an idle connection is kept (300)")
    for name in ("--unhealthy", "--unready", "--random-error", "--random-delay", *_IGNORED_BOOL_FLAGS):
        parser.add_argument(name, nargs="?", const="true", type=faults.parse_flag, metavar="BOOL")
    parser.add_argument("--random-delay-min", type=float, help="minimum random delay (default 0)")
    parser.add_argument("--random-delay-max", type=float, help="maximum random delay (default 5)")
    parser.add_argument("--random-delay-unit", choices=("s", "ms"), help="unit of the random delay bounds")
    for name in _IGNORED_VALUE_FLAGS:
        parser.add_argument(name, help=argparse.SUPPRESS)
    return parser


def _pick(flag: T | None, env: Mapping[str, str], name: str, parse: Callable[[str], T], default: T) -> T:
    """podinfo's precedence: an explicit flag, else ``PODINFO_<NAME>``, else the default."""
    if flag is not None:
        return flag
    raw = env.get(f"PODINFO_{name}")
    return parse(raw) if raw else default


def settings_from(args: argparse.Namespace, env: Mapping[str, str]) -> app.Settings:
    """Settings from parsed flags and the environment; raises ValueError on a malformed value."""
    knobs = faults.Faults.from_env(env)
    if _pick(args.random_delay, env, "RANDOM_DELAY", faults.parse_flag, False):
        scale = 0.001 if _pick(args.random_delay_unit, env, "RANDOM_DELAY_UNIT", str, "s") == "ms" else 1.0
        low = _pick(args.random_delay_min, env, "RANDOM_DELAY_MIN", float, 0.0) * scale
        high = _pick(args.random_delay_max, env, "RANDOM_DELAY_MAX", float, 5.0) * scale
        if not 0 <= low <= high:
            raise ValueError(f"random delay bounds {low}..{high} s are not an interval")
        knobs = dataclasses.replace(knobs, random_delay=(low, high))
    if _pick(args.random_error, env, "RANDOM_ERROR", faults.parse_flag, False):
        knobs = dataclasses.replace(knobs, random_error=True)
    backends = args.backend_url or env.get("PODINFO_BACKEND_URL", "").replace(",", " ").split()
    return app.Settings(
        version=_pick(args.version, env, "VERSION", str, "0.0.0-local"),
        revision=_pick(args.revision, env, "REVISION", str, "local"),
        # The runtime names each process like a pod; outside it, the machine's name.
        hostname=env.get("HOSTNAME") or socket.gethostname(),
        color=_pick(args.ui_color, env, "UI_COLOR", str, "#34577c"),
        message=_pick(args.ui_message, env, "UI_MESSAGE", str, ""),
        logo=_pick(args.ui_logo, env, "UI_LOGO", str, app.DEFAULT_LOGO),
        backend_urls=tuple(backends),
        jwt_secret=_pick(args.jwt_secret, env, "JWT_SECRET", str, "canaryflow-demo"),
        unhealthy=_pick(args.unhealthy, env, "UNHEALTHY", faults.parse_flag, False),
        unready=_pick(args.unready, env, "UNREADY", faults.parse_flag, False),
        faults=knobs,
    )


def main(argv: Sequence[str] | None = None) -> int:
    env = os.environ
    try:
        crash = faults.parse_flag(env.get(faults.CRASH, ""))
    except ValueError as exc:
        print(f"demoapp: {faults.CRASH}: {exc}", file=sys.stderr)
        return 2
    if crash:
        print(f"demoapp: {faults.CRASH} is set: exiting at start (crash loop)", file=sys.stderr)
        return 1
    args = _parser().parse_args(argv)
    try:
        settings = settings_from(args, env)
        level = _LEVELS[_pick(args.level, env, "LEVEL", str, "info").lower()]
    except (ValueError, KeyError) as exc:
        print(f"demoapp: invalid configuration: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s demoapp %(message)s")
    for name in (*_IGNORED_VALUE_FLAGS, *_IGNORED_BOOL_FLAGS):
        if getattr(args, name[2:].replace("-", "_")) is not None:
            logging.warning("%s has no effect in the local demo app; ignored", name)
    logging.info("demoapp %s starting; faults: %s", settings.version, settings.faults)
    listen = standalone.Listen(
        host=args.host or "127.0.0.1",
        port=int(env.get(LISTEN_PORT) or _pick(args.port, env, "PORT", int, 9898)),
        level=level,
        # Longer than the mesh's upstream idle timeout, so Envoy closes idle connections first and never
        # sends a request on a connection this server is closing (which would surface as a 503).
        keep_alive=int(args.keep_alive_timeout or 300),
        graceful_shutdown=5,
    )
    return standalone.run(app.build_app(settings), listen)


if __name__ == "__main__":
    sys.exit(main())
