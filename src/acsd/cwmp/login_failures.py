"""The failed-login limiter: at most so many failed credential checks per key within a
time window, for the CWMP listener's 429 + Retry-After.

The authenticator keeps two: per source address and username (one router with a wrong
password behind a CGNAT locks out only itself) and per address (a ceiling on guessing with
many usernames). A module of its own: it knows nothing of HTTP or passwords, only keys and
times, and bounds what it holds whatever keys clients send.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable


class FailureLimiter:
    """At most ``max_failures`` failed checks per key (a source address, or an address and
    a username) per ``window`` seconds.

    Keys are what clients send (a username of kilobytes, any number of IPv6 addresses):
    each is kept as a 16-byte digest, and forgotten once its failures have left the
    window, so what the table holds is bounded in bytes and not kept after an attack."""

    def __init__(
        self,
        max_failures: int,
        window: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_tracked: int = 65_536,
    ) -> None:
        self.max_failures = max_failures
        self.window = window
        self._clock = clock
        self._max = max_tracked
        # in the order of each key's latest failure, oldest first
        self._failures: OrderedDict[bytes, deque[float]] = OrderedDict()

    @staticmethod
    def _slot(key: Hashable) -> bytes:
        return hashlib.blake2b(repr(key).encode(), digest_size=16).digest()

    def retry_after(self, key: Hashable) -> int | None:
        """Seconds until ``key`` may try again, or None if it may now."""
        if self.max_failures <= 0 or not self._failures:
            return None
        times = self._failures.get(self._slot(key))
        if times is None or len(times) < self.max_failures:
            return None
        wait = times[0] + self.window - self._clock()
        if wait <= 0:
            return None
        return max(1, math.ceil(wait))

    def record(self, key: Hashable) -> None:
        if self.max_failures <= 0:
            return
        now = self._clock()
        slot = self._slot(key)
        times = self._failures.get(slot)
        if times is None:
            times = self._failures[slot] = deque(maxlen=self.max_failures)
        self._failures.move_to_end(slot)
        times.append(now)
        while len(self._failures) > self._max:
            self._failures.popitem(last=False)
        # Keys whose latest failure has left the window limit nothing any more.
        while self._failures:
            oldest = next(iter(self._failures.values()))
            if now - oldest[-1] < self.window:
                break
            self._failures.popitem(last=False)

    def __len__(self) -> int:
        return len(self._failures)
