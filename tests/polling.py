"""Waiting, in tests, for what another task, thread or process does: one bounded poll, failing with what it
waited for. A bound, not a timing assertion (tests never assert on wall-clock time); code that runs on a Clock
is tested on a ``FakeClock`` instead, without polling."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")
PAUSE = 0.05


async def until(check: Callable[[], T | Awaitable[T]], what: str, *, limit: float = 30.0) -> T:
    """Poll ``check`` (sync or async) until it returns something truthy, and return that; AssertionError naming
    ``what`` when ``limit`` seconds pass first."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while True:
        found = check()
        if inspect.isawaitable(found):
            found = await found
        if found:
            return found  # type: ignore[return-value]
        if loop.time() > deadline:
            raise AssertionError(f"gave up waiting for {what} after {limit:g}s (last answer: {found!r})")
        await asyncio.sleep(PAUSE)


async def wait_for(awaitable: Awaitable[T], what: str, *, limit: float = 30.0) -> T:
    """``await awaitable`` for at most ``limit`` seconds; AssertionError naming ``what`` after that."""
    try:
        async with asyncio.timeout(limit):
            return await awaitable
    except TimeoutError:
        raise AssertionError(f"gave up waiting for {what} after {limit:g}s") from None


def wait_until(check: Callable[[], object], what: str, *, limit: float = 20.0) -> None:
    """``until`` for code without an event loop (a process started by the test, a thread)."""
    deadline = time.monotonic() + limit
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting until {what} after {limit:g}s")
        time.sleep(PAUSE)
