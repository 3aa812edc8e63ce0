"""How late this process's event loop runs what is ready: the measure of overload.

A count of open sessions says little about load: a thousand CPEs on slow WAN links mostly
wait, while two hundred on a LAN keep the CPU busy. When the CPU is the limit every request
waits behind all the others, each session slows down by the same factor, and a boot storm
ends in CPEs timing out half way through. What shows this first is the loop running late: a
probe sleeps a short interval and measures how much longer it took. Past a threshold the
listener answers new Informs with 503 + Retry-After, so the sessions already open finish
quickly and the CPEs turned away come back later (the approach of Node's toobusy).
"""

from __future__ import annotations

import asyncio
import time

from acsd.eventloop import stop_task

#: seconds between probes
INTERVAL = 0.05
#: weight of the newest probe: a single stall (a GC pass, a slow write) is damped, two
#: seconds of overload are not
SMOOTHING = 0.3
#: the most one probe counts for: a single long stall (the process stopped, a VM paused)
#: says nothing of the load once it is over, yet 30 s of it kept every Inform queued
#: meanwhile answered 503 for half a second after, on an idle CPU
MOST = 1.0


class LoopLag:
    """The smoothed lateness of the running event loop (:attr:`seconds`)."""

    def __init__(
        self, interval: float = INTERVAL, smoothing: float = SMOOTHING, most: float = MOST
    ) -> None:
        self.interval = interval
        self.smoothing = smoothing
        self.most = most
        #: smoothed lateness, seconds
        self.seconds = 0.0
        #: the largest single lateness seen
        self.peak = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._probe())

    async def stop(self) -> None:
        task, self._task = self._task, None
        await stop_task(task)

    def above(self, threshold: float) -> bool:
        """True while the loop runs more than ``threshold`` seconds late (0 = never)."""
        return 0 < threshold < self.seconds

    def record(self, late: float) -> None:
        late = max(0.0, late)
        self.peak = max(self.peak, late)
        self.seconds += self.smoothing * (min(late, self.most) - self.seconds)

    async def _probe(self) -> None:
        clock = time.monotonic
        while True:
            started = clock()
            await asyncio.sleep(self.interval)
            self.record(clock() - started - self.interval)
