"""``python -m canaryflow.local``: the runtime process that ``canaryflow up`` starts in the background."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

import uvicorn

from canaryflow.api.judge import CanaryJudge
from canaryflow.control.scheduler import Timing
from canaryflow.control.web import Server
from canaryflow.engine.checks import NoValuesPolicy, Settings
from canaryflow.local import api, state
from canaryflow.local.runtime import LocalRuntime, Options


async def serve(options: Options) -> None:
    runtime = LocalRuntime(options)
    await runtime.start()
    config = uvicorn.Config(
        api.build(runtime), host="127.0.0.1", port=runtime.ports["api"], log_level="warning", lifespan="off"
    )
    server = Server(config)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
    try:
        await server.serve()
    finally:
        await runtime.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m canaryflow.local")
    parser.add_argument("--state-dir", default=None)
    parser.add_argument("--time-scale", type=float, default=1.0, help="shorten every analysis interval")
    parser.add_argument("--min-interval", type=float, default=10.0)
    parser.add_argument("--no-values", choices=[p.value for p in NoValuesPolicy], default="fail")
    parser.add_argument("--judge", action="store_true", help="the sequential judge for every canary")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request would drown the runtime's log
    options = Options(
        state.StateDir(state.resolve(args.state_dir)),
        Timing(scale=args.time_scale, min_interval=args.min_interval),
        Settings(no_values=NoValuesPolicy(args.no_values), judge=CanaryJudge() if args.judge else None),
    )
    asyncio.run(serve(options))


if __name__ == "__main__":
    main()
