"""Which asyncio event loop the daemon runs on.

uvloop (libuv) takes a third or more off the per-request cost of the HTTP stack, which
is most of what a steady CWMP session costs; it is a dependency on Linux but optional,
so a platform without it still runs on asyncio's own loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, Literal

LoopChoice = Literal["auto", "asyncio", "uvloop"]


def loop_factory(choice: LoopChoice = "auto") -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The factory for ``asyncio.Runner`` (None = asyncio's default loop). ``uvloop``
    raises RuntimeError when it is not installed: the operator asked for it by name."""
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise RuntimeError('event_loop = "uvloop" but uvloop is not installed') from None
        return None
    return uvloop.new_event_loop


def loop_name() -> str:
    """The running loop's kind, for the start-up log line."""
    loop = asyncio.get_running_loop()
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


async def stop_task(task: asyncio.Task[Any] | None) -> None:
    """Cancel a background task of the daemon's (a probe, a sweeper) and wait for it to
    end; None is nothing to stop."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
