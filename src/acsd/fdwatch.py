"""Whether the process has run out of file descriptors, said once in a while.

At its open-files limit (``LimitNOFILE``) the event loop takes no new connection: uvloop
accepts and resets it without a word, asyncio logs every failed accept (tens of
thousands of lines a second). SQLite cannot open a file either, and its "unable to open
database file" sent operators to the file's permissions. A probe duplicates a descriptor
every second: failing with EMFILE, the process is at its limit, and one warning a minute
(``fds_exhausted``, with the limit) names the cause; :func:`exhausted` tells the store's
503 the same.
"""

from __future__ import annotations

import asyncio
import errno
import os
import resource
import time

from acsd.eventloop import stop_task
from acsd.log import get_logger

log = get_logger("acsd")

#: seconds between probes, and between two warnings
INTERVAL = 1.0
WARN_EVERY = 60.0


def exhausted() -> bool:
    """True when this process can open no more file descriptors (EMFILE/ENFILE now)."""
    try:
        os.close(os.dup(2))
    except OSError as exc:
        return exc.errno in (errno.EMFILE, errno.ENFILE)
    return False


def _limit() -> int | None:
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft


#: what asyncio's own loop logs for each connection it fails to accept (uvloop logs none)
_ACCEPT_FAILED = "socket.accept() out of system resource"


def _accept_failures_quiet(loop: asyncio.AbstractEventLoop, context: dict) -> None:
    """asyncio's loop logs a failed accept as an error with a traceback, once for each of
    the listener's backlog (4,096) every second: 170 MB of log in 40 s at the limit.
    fds_exhausted says it once a minute; everything else is logged as asyncio does (the
    same message for ENOBUFS or ENOMEM too: only dropped while descriptors are out)."""
    if context.get("message") == _ACCEPT_FAILED and exhausted():
        return
    loop.default_exception_handler(context)


class FdWatch:
    """The probe's task: :meth:`start` on the event loop, :meth:`stop` at the end."""

    def __init__(self, interval: float = INTERVAL, warn_every: float = WARN_EVERY) -> None:
        self.interval, self.warn_every = interval, warn_every
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            loop = asyncio.get_running_loop()
            self._task = loop.create_task(self._probe())
            if loop.get_exception_handler() is None:
                loop.set_exception_handler(_accept_failures_quiet)

    async def stop(self) -> None:
        task, self._task = self._task, None
        await stop_task(task)

    async def _probe(self) -> None:
        told, seen = float("-inf"), 0
        while True:
            await asyncio.sleep(self.interval)
            if not exhausted():
                if seen:
                    log.info("fds_available", seconds_exhausted=seen * self.interval)
                    told, seen = float("-inf"), 0
                continue
            seen += 1
            now = time.monotonic()
            if now - told >= self.warn_every:
                told = now
                log.warning(
                    "fds_exhausted",
                    limit=_limit(),
                    reason="the process's open-files limit is reached: new connections "
                    "are refused and the database opens no file until some close (raise "
                    "LimitNOFILE, or look for clients that hold connections open)",
                )
