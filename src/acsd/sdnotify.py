"""sd_notify(3) without libsystemd: one datagram to ``$NOTIFY_SOCKET``.

Under ``Type=notify`` systemd waits for ``READY=1`` before it calls the service started,
so ``systemctl start acsd`` returns once both listeners are bound (and fails if they
cannot be). Outside systemd (no ``NOTIFY_SOCKET``) every call is a no-op.

:func:`keep_alive` sends ``WATCHDOG=1`` from the event loop while ``$WATCHDOG_USEC`` says
someone watches: the supervisor of ``workers = N`` (which takes a worker silent for longer
than ``worker_hang_timeout`` for hung), or systemd under the unit's ``WatchdogSec=``.

One wait of the loop is no hang of its own: a log line to a stderr whose reader has
stopped (journald stalled, a container's log driver, a pager) blocks the loop until the
reader goes on, and a restart would block the same way, at the cost of every open session.
So while the loop is silent *and* a write to stderr would block, a thread says
``WATCHDOG=1`` for it (the supervisor of ``workers = N`` makes the same exception itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import socket
import sys
import threading
import time

from acsd.log import get_logger

log = get_logger("acsd.sdnotify")

#: the longest pause between two ``WATCHDOG=1`` (however long the bound: 1 s for 30 s).
#: Sent often, a process stopped and continued within the bound (SIGSTOP/SIGCONT, a
#: debugger, the whole host paused) is alive again before its watcher's bound is over.
MAX_KEEP_ALIVE_INTERVAL = 1.0


def _address() -> str | None:
    """Where ``$NOTIFY_SOCKET`` points, as ``socket.connect`` takes it; None: nowhere."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address:
        return None
    if address.startswith("@"):
        return "\0" + address[1:]  # abstract namespace
    if not address.startswith("/"):
        log.warning("sdnotify_unsupported_socket", socket=address)
        return None
    return address


def notify(*states: str) -> bool:
    """Send ``states`` (``READY=1``, ``STATUS=...``, ``STOPPING=1``) to the service
    manager. True when sent; False when not under systemd or the send failed (logged)."""
    address = _address()
    if address is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall("\n".join(states).encode())
    except OSError as exc:
        log.warning("sdnotify_failed", error=str(exc))
        return False
    return True


def keep_alive_interval() -> float | None:
    """Seconds between two ``WATCHDOG=1``, from ``$WATCHDOG_USEC`` (the bound the watcher
    allows, in µs) as sd_watchdog_enabled(3) reads it: None when nobody watches, or
    ``$WATCHDOG_PID`` names another process (the one systemd started, not this one)."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0 or (pid and pid != str(os.getpid())):
        return None
    # a quarter of the bound: a ping lost or late (a busy loop) is not yet a hang
    return min(int(usec) / 1e6 / 4, MAX_KEEP_ALIVE_INTERVAL)


def log_stalled(fd: int | None = None) -> bool:
    """Whether a write to stderr (``fd``: its descriptor, None: ``sys.stderr``'s) would
    block now: a pipe or socket its reader stopped emptying; a file never does."""
    try:
        fd = sys.stderr.fileno() if fd is None else fd
        _readable, writable, _errors = select.select([], [fd], [], 0)
    except (AttributeError, OSError, ValueError):  # (no stderr, or none with a descriptor)
        return False
    return not writable


async def keep_alive() -> None:
    """Send ``WATCHDOG=1`` every :func:`keep_alive_interval` until cancelled; returns at
    once when nobody watches. From a task of the event loop on purpose: a loop that is
    blocked sends nothing (the hang the watcher is for), one that is only busy sends late
    by its lag (a fraction of a second: ``max_loop_lag`` refuses new sessions before).
    The one exception, a loop blocked at a log line nobody reads, is :class:`_LogStallCover`'s."""
    interval = keep_alive_interval()
    if interval is None:
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        # Never blocks the loop it speaks for: a watcher that does not read (stopped
        # itself) fills its queue, and the ping is dropped rather than waited on.
        sock.setblocking(False)
        cover = _LogStallCover(interval)
        try:
            while True:
                address = _address()  # each time: a worker whose supervisor is gone drops it
                if address is None:
                    return
                # (refused or full: the watcher is gone or not reading; the next one may
                # pass, and a line each second about it would flood the log)
                with contextlib.suppress(OSError):
                    sock.sendto(b"WATCHDOG=1", address)
                cover.spoke(address)
                await asyncio.sleep(interval)
        finally:
            cover.stop()


class _LogStallCover:
    """A thread that sends ``WATCHDOG=1`` for the loop while the loop has been silent for
    two intervals and a write to stderr would block: the loop is (most likely) waiting at
    a log line, which is the log reader's stall, not the loop's hang, and goes on once the
    reader does. A loop hung otherwise, with stderr writable, stays silent.

    The thread never logs (its line would block it too) and never blocks on the watcher
    (a non-blocking socket, as the loop's)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.last = time.monotonic()
        self.address: str | None = None
        self.stopped = threading.Event()
        try:
            self.fd: int | None = sys.stderr.fileno()  # (read here: the loop's thread)
        except (AttributeError, OSError, ValueError):
            self.fd = None
        self.thread: threading.Thread | None = None
        if self.fd is not None:
            self.thread = threading.Thread(
                target=self._run, name="acsd-watchdog-log-stall", daemon=True
            )
            self.thread.start()

    def spoke(self, address: str) -> None:
        """The loop sent its own ``WATCHDOG=1`` (to ``address``) just now."""
        self.address = address
        self.last = time.monotonic()

    def stop(self) -> None:
        self.stopped.set()

    def _run(self) -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.setblocking(False)
            while not self.stopped.wait(self.interval):
                address = self.address
                if address is None or time.monotonic() - self.last < 2 * self.interval:
                    continue  # the loop speaks for itself
                if not os.environ.get("NOTIFY_SOCKET") or not log_stalled(self.fd):
                    continue  # silent with the log flowing: a hang, for the watcher to see
                with contextlib.suppress(OSError):
                    sock.sendto(b"WATCHDOG=1", address)
