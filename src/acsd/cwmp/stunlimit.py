"""A per-source bound on the STUN server's answers (acsd.cwmp.stun).

UDP sources are not proven: a Binding Request may carry a victim's address as its source,
and its answer (32 bytes for 20) then goes to the victim. Each source address gets a token
bucket (``rate`` answers a second, ``burst`` at once), kept as one float, the time its
bucket would be full again (GCRA, the "theoretical arrival time"). An IPv6 source counts
by its /64: one host holds a whole /64, and a victim's network is that prefix, not one of
its 2**64 addresses.

Memory is bounded: at most ``max_sources`` addresses are tracked. An entry whose bucket
has refilled is the same as none and is forgotten; when every tracked one is still
draining, a new source is refused until the oldest has refilled (a flood from many
spoofed sources cannot push a victim's entry out to give it a fresh bucket).

With ``workers = N`` each worker has buckets of its own: the kernel hands a datagram to a
worker by its source address and port (SO_REUSEPORT hashes the four), so a source that
varies its port reaches every worker. Each worker therefore takes a share of the bound
(:func:`worker_share`), and the workers together answer a source no more than the
configured rate, however its datagrams are spread."""

from __future__ import annotations

import time
from collections.abc import Callable

from acsd.hostaddr import source_key

__all__ = ["MAX_SOURCES", "SourceLimiter", "source_key", "worker_share"]

#: sources tracked at most (~100 bytes each): a flood of more new addresses in a burst's
#: time than this is refused rather than remembered
MAX_SOURCES = 65536


def worker_share(rate: float, burst: int, workers: int) -> tuple[float, int]:
    """One worker's part of a source's bound, ``workers`` sharing the port: the rate
    divided, the burst too (at least 1: a worker must answer a source at all), so that
    the sum over the workers is the bound (the burst at least one per worker)."""
    workers = max(workers, 1)
    return rate / workers, max(1, burst // workers)


class SourceLimiter:
    """Whether the next answer to a source may go; counts nothing itself (the server's
    stats do)."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        max_sources: int = MAX_SOURCES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_sources < 1:
            raise ValueError("max_sources must be at least 1")
        self.interval = 1.0
        #: how far ahead of now a source's full time may be and still be answered
        self.tolerance = 0.0
        self.retune(rate, burst)
        self.max_sources = max_sources
        self.clock = clock
        #: source -> when its bucket is full again; oldest update first (dicts keep
        #: insertion order, and an update moves the entry to the end)
        self._full_at: dict[str | bytes, float] = {}

    def retune(self, rate: float, burst: int) -> None:
        """New bounds (a reload): the sources tracked keep their buckets, each full again
        when it would have been; a source then drains at the new rate."""
        if rate <= 0 or burst < 1:
            raise ValueError("rate and burst must be positive")
        self.interval = 1.0 / rate
        self.tolerance = (burst - 1) * self.interval

    def __len__(self) -> int:
        return len(self._full_at)

    def allow(self, source: str | bytes) -> bool:
        now = self.clock()
        table = self._full_at
        full_at = table.pop(source, None)
        if full_at is None:
            if len(table) >= self.max_sources and not self._forget_one(now):
                return False
            full_at = now
        start = max(full_at, now)
        if start - now > self.tolerance:
            table[source] = full_at  # (back, as the newest: it is still draining)
            return False
        table[source] = start + self.interval
        return True

    def _forget_one(self, now: float) -> bool:
        """Make room: the least recently answered source goes if its bucket has refilled.
        Its full time is at most a burst past its last answer, so if it has not, it will
        within a burst's time; others may have refilled sooner but are not looked for
        (bounded work per datagram)."""
        oldest = next(iter(self._full_at))
        if self._full_at[oldest] > now:
            return False
        del self._full_at[oldest]
        return True
