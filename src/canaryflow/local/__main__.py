"""``python -m canaryflow.local``: the runtime process that ``canaryflow up`` starts in the background."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from pathlib import Path

import uvicorn

from canaryflow.api.judge import CanaryJudge
from canaryflow.control.scheduler import Timing
from canaryflow.control.web import Server
from canaryflow.dashboard.app import Settings as DashboardSettings
from canaryflow.engine.checks import NoValuesPolicy, Settings
from canaryflow.local import api, state, wiring
from canaryflow.local.wiring import Options


async def serve(options: Options) -> None:
    async with wiring.running(options) as runtime:
        port = runtime.parts.ports["api"]
        config = uvicorn.Config(api.build(runtime), host="127.0.0.1", port=port, log_level="warning", lifespan="off")
        server = Server(config)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
        await server.serve()


#: The dashboard token reaches the runtime in its environment or a file, never in its argv (``ps`` shows argv).
TOKEN_ENV = "CANARYFLOW_DASHBOARD_TOKEN"


def _token(path: str | None) -> str | None:
    if path:
        return Path(path).read_text().strip() or None
    return os.environ.pop(TOKEN_ENV, "").strip() or None


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m canaryflow.local")
    parser.add_argument("--state-dir", default=None)
    parser.add_argument("--time-scale", type=float, default=1.0, help="shorten every analysis interval")
    parser.add_argument("--min-interval", type=float, default=10.0)
    parser.add_argument("--no-values", choices=[p.value for p in NoValuesPolicy], default="fail")
    parser.add_argument("--judge", action="store_true", help="the sequential judge for every canary")
    parser.add_argument("--dashboard-listen", default="127.0.0.1:0", help="HOST:PORT of the dashboard")
    parser.add_argument(
        "--dashboard-token-file", default=None, help=f"file holding the token for the dashboard's actions ({TOKEN_ENV})"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request would drown the runtime's log
    options = Options(
        state.StateDir(state.resolve(args.state_dir)),
        Timing(scale=args.time_scale, min_interval=args.min_interval),
        Settings(no_values=NoValuesPolicy(args.no_values), judge=CanaryJudge() if args.judge else None),
        dashboard=DashboardSettings(args.dashboard_listen, _token(args.dashboard_token_file)),
    )
    asyncio.run(serve(options))


if __name__ == "__main__":
    main()
