"""When each API token last authenticated a request (``acsd token list``'s LAST USED).

A request only notes the time in memory: a write per request would queue every API call
behind the sessions' writes, and a busy script's calls would each rewrite one row. Each
process writes a token's last use at most once per :data:`WRITE_INTERVAL`: at once the
first time (a token just handed out shows it was used), then the latest use once the
interval has passed, and what is left at the stop. Processes sharing the database
(workers, PostgreSQL instances) write their own; the store keeps the latest time.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time

from acsd import clock
from acsd.eventloop import stop_task
from acsd.log import get_logger
from acsd.store.base import Store
from acsd.throttle import Throttle

log = get_logger("acsd.api")

#: seconds between two writes of one token's last use by one process
WRITE_INTERVAL = 60.0


class TokenUses:
    def __init__(self, store: Store, interval: float = WRITE_INTERVAL) -> None:
        self._store = store
        self._interval = interval
        #: token id -> the clock time of its latest use not written yet
        self._pending: dict[str, float] = {}
        #: token id -> when (monotonic) this process last wrote it; bounded by the tokens
        #: that authenticated, which operators make one by one
        self._written: dict[str, float] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._failed = Throttle(interval)

    def used(self, token_id: str) -> None:
        """A request authenticated with this token now (no I/O: the writer task writes)."""
        if token_id not in self._pending:
            self._wake.set()  # (the writer works out when it is due)
        self._pending[token_id] = clock.now()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="acsd-token-uses")

    async def stop(self) -> None:
        """Stop the writer and write every use still pending, whatever its interval."""
        await stop_task(self._task)
        self._task = None
        await self._write(self._take(everything=True))

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._next_due())
            self._wake.clear()
            await self._write(self._take())

    def _next_due(self) -> float | None:
        """Seconds until the first pending use may be written; None: nothing pending."""
        if not self._pending:
            return None
        now = time.monotonic()
        last = min(self._written.get(t, -math.inf) for t in self._pending)
        return max(0.0, last + self._interval - now)

    def _take(self, *, everything: bool = False) -> dict[str, float]:
        now = time.monotonic()
        due = {
            token_id: at
            for token_id, at in self._pending.items()
            if everything or now - self._written.get(token_id, -math.inf) >= self._interval
        }
        for token_id in due:
            del self._pending[token_id]
            self._written[token_id] = now
        return due

    async def _write(self, uses: dict[str, float]) -> None:
        if not uses:
            return
        try:
            await self._store.note_token_uses(uses)
        except Exception as exc:  # (the store down or refusing: its own lines say why)
            for token_id, at in uses.items():  # tried again at the next interval
                self._pending[token_id] = max(at, self._pending.get(token_id, at))
            self._failed.tell("write", log, "warning", "api.token_use_not_saved", error=repr(exc))
