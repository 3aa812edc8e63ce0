"""At most one log line per key a while, for warnings that a client (a port scanner, a router
looping on a bad request) or an outage can repeat at will; and the closing line that says
how many were held back once they stop.

A throttled line carries ``since_last``: the lines of its key held back since the one
before. That count rode only on the next line, so the lines held back after the last one
of an outage or a scan were never told: the operator saw where it began, never how it
ended. :meth:`Throttle.tell` therefore keeps the fields of the last line it held back, and
once a whole window has passed without another (nothing came to carry the count) writes
that line once more, with ``since_last`` the count and ``held_back: true``: the same event
name, so a search for the event finds it. Its key is then forgotten: the next line of the
key is written at once, with ``since_last: 0``, as the first one ever was.

One timer per throttle on the running event loop, set when a key first holds a line back
and only while some key holds one: nothing is scheduled, and nothing runs, when nothing
is held back. The stop writes every closing line due (:func:`close_held`), before the
daemon's last line; nothing is written after it."""

from __future__ import annotations

import asyncio
import heapq
import time
from typing import Any

#: the longest window of a Throttle made from now on, in seconds; None: each its own. Only
#: a test sets it (in the daemon's process, before acsd is imported), to see closing lines
#: without waiting out the 10 s windows.
WINDOW_LIMIT: float | None = None

#: a line held back: the logger, its level's method name, the event and its fields
_Line = tuple[Any, str, str, dict[str, Any]]


class Throttle:
    """At most one line per key per ``interval`` seconds: :meth:`tell` writes it or holds
    it back; :meth:`due` only says whether one is due, for a caller that writes its own
    (and gets no closing line). Bounded: past ``most`` keys it starts over."""

    __slots__ = ("_interval", "_last", "_loop", "_most", "_queue", "_queued", "_timer")

    def __init__(self, interval: float, most: int = 10_000) -> None:
        self._interval = interval if WINDOW_LIMIT is None else min(interval, WINDOW_LIMIT)
        self._most = most
        #: key: when its last line was written, the lines held back since, when the last
        #: of those came, and that one (for the closing line; None: due()'s, no closing)
        self._last: dict[Any, tuple[float, int, float, _Line | None]] = {}
        #: (when a key's closing line may be due, key): each key with a held line once
        self._queue: list[tuple[float, int, Any]] = []
        self._queued: set[Any] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def due(self, key: Any, now: float) -> int | None:
        """The lines held back since the last one of ``key`` when one is due now (0 the
        first time), else None (and this one is counted)."""
        return self._count(key, now, None)

    def tell(self, key: Any, logger: Any, level: str, event: str, **fields: Any) -> bool:
        """Write ``event`` with ``fields`` and ``since_last`` at ``level`` (a method name
        of ``logger``: "warning") if a line of ``key`` is due; else hold it back, to be
        counted by the next line or told by a closing line. True if it was written."""
        held = self._count(key, time.monotonic(), (logger, level, event, fields))
        if held is None:
            return False
        getattr(logger, level)(event, since_last=held, **fields)
        return True

    def _count(self, key: Any, now: float, line: _Line | None) -> int | None:
        last, held, _, _ = self._last.get(key) or (float("-inf"), 0, 0.0, None)
        if now - last < self._interval:
            self._last[key] = (last, held + 1, now, line)
            if line is not None and key not in self._queued:
                self._hold(key, now + self._interval)
            return None
        if len(self._last) >= self._most:
            self._drop_all()
        self._last[key] = (now, 0, now, None)
        return held

    def _hold(self, key: Any, at: float) -> None:
        """Queue ``key``'s closing line for ``at`` (or later, if more lines come)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # (no loop in this thread: nothing could write it)
            return
        if loop is _quiet_loop:  # the daemon stopped: its last line is written
            return
        self._queued.add(key)
        heapq.heappush(self._queue, (at, id(key), key))
        if self._timer is None or self._loop is not loop:
            # (a throttle of the module outlives a loop where tests serve several times)
            self._arm(loop, at)

    def _arm(self, loop: asyncio.AbstractEventLoop, at: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._loop = loop
        self._timer = loop.call_later(max(0.0, at - time.monotonic()), self._close_due)
        _ARMED.add(self)

    def _close_due(self, *, everything: bool = False) -> None:
        """Write the closing lines due (all of them: ``everything``); rearm for the next."""
        self._timer = None
        now = time.monotonic()
        queue = self._queue
        while queue and (everything or queue[0][0] <= now):
            _, _, key = heapq.heappop(queue)
            self._queued.discard(key)
            state = self._last.get(key)
            if state is None:  # (forgotten since: _drop_all)
                continue
            _, held, held_at, line = state
            if not held or line is None:  # a line carried them
                continue
            if not everything and held_at + self._interval > now:
                # more came since it was queued: a window after the last of them
                self._queued.add(key)
                heapq.heappush(queue, (held_at + self._interval, id(key), key))
                continue
            del self._last[key]
            logger, level, event, fields = line
            getattr(logger, level)(event, **fields, since_last=held, held_back=True)
        if queue and self._loop is not None and not everything:
            self._arm(self._loop, queue[0][0])
        else:
            _ARMED.discard(self)

    def _drop_all(self) -> None:
        """Forget every key (past ``most`` of them). What they held back is told first,
        in one line: a closing line each would be ``most`` lines at once, and nothing
        would let a client that invents keys (a serial per request) wipe the counts of
        the others' refusals unsaid."""
        held = [(count, line) for _, count, _, line in self._last.values() if count and line]
        if held:
            logger, level, _, _ = held[-1][1]
            getattr(logger, level)(
                "log.held_back_forgotten",
                events=sorted({line[2] for _, line in held})[:10],
                keys=len(held),
                since_last=sum(count for count, _ in held),
                reason=f"more than {self._most} kinds of line held back at once: their "
                "closing lines are this one",
            )
        self._last.clear()
        self._queue.clear()
        self._queued.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        _ARMED.discard(self)

    def close(self) -> None:
        """Write every closing line now (their windows need not have passed) and stop."""
        if self._timer is not None:
            self._timer.cancel()
        self._close_due(everything=True)


#: the throttles whose timer is set
_ARMED: set[Throttle] = set()
#: the loop of a daemon that stopped: no closing line is queued on it any more
_quiet_loop: asyncio.AbstractEventLoop | None = None


def close_held() -> None:
    """At the stop, before the daemon's last line: every line held back is told now, and
    none is queued from now on in this event loop (a line after "stopped" would read as a
    daemon still running)."""
    global _quiet_loop
    _quiet_loop = asyncio.get_running_loop()
    for throttle in list(_ARMED):
        throttle.close()
