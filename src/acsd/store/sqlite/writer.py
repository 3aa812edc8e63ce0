"""The one writer task: every write is queued, and what is queued commits together."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiosqlite

from acsd.log import get_logger
from acsd.store.base import (
    ChangedError,
    ConflictError,
    StaleResultError,
    StateError,
    StoreClosedError,
    StoreError,
    store_unavailable,
)
from acsd.store.sqlite.saves import BeginFailed, apply_saves_sync, commit_saves
from acsd.store.writes import STOP, Failed, SaveOp, WriterStats

log = get_logger("acsd.store")


@dataclass(slots=True)
class _CallOp:
    """Any other write: ``fn(conn)`` runs inside the batch transaction and its return value
    goes to the caller. ``fn`` may run more than once (a batch that fails is retried one
    write at a time), so it must build everything it writes from its inputs, never from
    state left behind by an earlier attempt."""

    kind: str
    fn: Callable[[aiosqlite.Connection], Awaitable[Any]]
    future: asyncio.Future[Any]


_Op = SaveOp | _CallOp
#: name of the savepoint that isolates one call in a batch (it is never nested)
_SAVEPOINT = "acsd_call"


def _kind(op: _Op) -> str:
    return op.kind if isinstance(op, _CallOp) else "save_session"


def on_thread(conn: aiosqlite.Connection, fn: Callable[..., Any], *args: Any) -> Awaitable[Any]:
    """``fn(sqlite3_connection, *args)`` on the connection's own thread, in one hop. aiosqlite
    has no public call for this; ``_execute`` and ``_conn`` have been its (stable) internals
    since 0.11, and the tests exercise this path on every session save."""
    return conn._execute(lambda: fn(conn._conn, *args))


#: what a write may rightly be refused for: the caller answers it (409, 422, a stale
#: session result), and the warning log is for the database's trouble, not the data's
_REFUSALS = (ConflictError, StateError, ChangedError, StaleResultError)


def _log_failed(exc: Exception, kind: str) -> None:
    if isinstance(exc, _REFUSALS):
        log.debug("store_write_refused", error=repr(exc), kind=kind)
    else:
        log.warning("store_write_failed", error=repr(exc), kind=kind)


class BatchWriter:
    """The write queue and the task that drains it (see the package's docstring)."""

    _queue: asyncio.Queue[Any]
    _writer_conn: aiosqlite.Connection | None
    _accepting: bool
    _closing: asyncio.Task[None] | None
    stats: WriterStats
    max_batch: int

    def _fail_queued(self, exc: BaseException) -> None:
        while True:
            try:
                op = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            if op is not STOP and not op.future.done():
                op.future.set_exception(exc)
                self.stats.failed += 1

    def _submit(self, op: _Op) -> None:
        if not self._accepting:
            state = "closed" if self._closing is not None else "not open"
            raise StoreClosedError(f"{self!r} is {state}; write refused")
        self._queue.put_nowait(op)

    async def _call(self, kind: str, fn: Callable[[aiosqlite.Connection], Awaitable[Any]]) -> Any:
        """Queue ``fn`` behind the writes before it; its result once its transaction commits."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._submit(_CallOp(kind, fn, future))
        return await future

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()

    # -- the writer task ------------------------------------------------------------------

    async def _writer(self) -> None:
        stopping = False
        batch: list[_Op] = []
        try:
            while not stopping:
                first = await self._queue.get()
                if first is STOP:
                    break
                batch = [first]
                while len(batch) < self.max_batch:
                    try:
                        op = self._queue.get_nowait()
                    except asyncio.QueueEmpty:
                        break
                    if op is STOP:
                        stopping = True
                        break
                    batch.append(op)
                self.stats.queue_depth = self._queue.qsize()
                await self._run_batch(batch)
                batch = []
        except BaseException as exc:
            # Never leave a caller waiting forever on a dead writer.
            self._accepting = False
            error = StoreError(f"store writer stopped: {exc!r}")
            for op in batch:
                if not op.future.done():
                    op.future.set_exception(error)
            self._fail_queued(error)
            if not isinstance(exc, asyncio.CancelledError):
                log.error("store_writer_crashed", error=repr(exc))
            raise

    async def _run_batch(self, batch: list[_Op]) -> None:
        if all(type(op) is SaveOp for op in batch):
            await self._run_saves(batch)  # type: ignore[arg-type]
            return
        conn = self._writer_conn
        assert conn is not None
        started = time.perf_counter()
        try:
            # IMMEDIATE: take the write lock now (waiting up to busy_timeout for another
            # process) instead of failing with SQLITE_BUSY halfway through the batch.
            await conn.execute("BEGIN IMMEDIATE")
        except Exception as exc:
            log.error("store_begin_failed", error=str(exc), writes=len(batch))
            self._fail(batch, exc)
            return
        try:
            results = await self._apply(conn, batch)
            await conn.execute("COMMIT")
        except Exception as exc:
            await self._rollback(conn)
            await self._batch_failed(batch, exc, self._run_batch)
            return
        failed = sum(isinstance(value, Failed) for value in results)
        if failed < len(batch):
            self.stats._record_batch(len(batch) - failed, time.perf_counter() - started)
        for op, value in zip(batch, results, strict=True):
            self._resolve(op, value)

    async def _run_saves(self, saves: list[SaveOp]) -> None:
        """A batch of session saves alone, BEGIN to COMMIT in one hop to the writer thread.
        Each hop waits for a turn of the event loop, which under load is tens of ms: four
        hops per batch made every session wait for four turns before its commit."""
        conn = self._writer_conn
        assert conn is not None
        started = time.perf_counter()
        try:
            ids = await on_thread(conn, commit_saves, saves)
        except BeginFailed as exc:
            log.error("store_begin_failed", error=str(exc.__cause__), writes=len(saves))
            self._fail(saves, exc.__cause__ or exc)
            return
        except Exception as exc:  # rolled back on the writer thread already
            await self._batch_failed(saves, exc, self._run_saves)
            return
        failed = sum(isinstance(value, Failed) for value in ids)
        if failed < len(saves):
            self.stats._record_batch(len(saves) - failed, time.perf_counter() - started)
        for op, value in zip(saves, ids, strict=True):
            self._resolve(op, value)

    def _resolve(self, op: _Op, value: Any) -> None:
        if isinstance(value, Failed):
            if isinstance(value.error, StaleResultError):  # not the store's failure
                self.stats.stale += 1
                if not op.future.done():
                    op.future.set_exception(value.error)
            else:
                self._fail([op], value.error)
        elif not op.future.done():  # the caller may have been cancelled
            op.future.set_result(value)

    async def _batch_failed(
        self, batch: list[Any], exc: Exception, retry: Callable[[list[Any]], Awaitable[None]]
    ) -> None:
        """After a rolled-back batch (what a savepoint could not undo: the database rolled
        the transaction back itself): fail its one write, or retry each of its writes in a
        transaction of its own (which one broke the batch is unknown), so that one bad
        write fails only its own caller."""
        if len(batch) == 1:
            _log_failed(exc, _kind(batch[0]))
            self._fail(batch, exc)
            return
        self.stats.fallbacks += 1
        log.warning("store_batch_failed", error=repr(exc), writes=len(batch))
        for op in batch:
            await retry([op])

    def _fail(self, batch: list[_Op], exc: BaseException) -> None:
        if (why := store_unavailable(exc)) is not None:  # the database's trouble, not the data's
            self.stats.write_error = why
        for op in batch:
            self.stats.failed += 1
            if not op.future.done():
                op.future.set_exception(exc)

    @staticmethod
    async def _rollback(conn: aiosqlite.Connection) -> None:
        try:
            if conn.in_transaction:
                await conn.execute("ROLLBACK")
        except Exception as exc:
            log.error("store_rollback_failed", error=str(exc))

    async def _apply(self, conn: aiosqlite.Connection, batch: list[_Op]) -> list[Any]:
        """Apply the batch in order inside the open transaction; one result per op (a
        :class:`Failed` for a call that failed alone)."""
        results: list[Any] = []
        start = 0
        while start < len(batch):
            op = batch[start]
            if isinstance(op, _CallOp):
                if len(batch) == 1:
                    results.append(await op.fn(conn))
                else:
                    results.append(await self._apply_isolated(conn, op))
                start += 1
                continue
            end = start + 1
            while end < len(batch) and isinstance(batch[end], SaveOp):
                end += 1
            saves: list[SaveOp] = batch[start:end]  # type: ignore[assignment]
            results.extend(await self._apply_saves(conn, saves))
            start = end
        return results

    async def _apply_isolated(self, conn: aiosqlite.Connection, op: _CallOp) -> Any:
        """Run a call of a larger batch in a savepoint: when it fails (a conflict, say), only
        its own writes are undone and the rest of the batch still commits, instead of the
        whole batch being retried one write at a time."""
        await conn.execute(f"SAVEPOINT {_SAVEPOINT}")
        try:
            value = await op.fn(conn)
        except Exception as exc:
            # Some errors (disk full, I/O) make SQLite roll back the whole transaction:
            # then there is no savepoint left and the batch falls back as before.
            if not conn.in_transaction:
                raise
            try:
                await conn.execute(f"ROLLBACK TO {_SAVEPOINT}")
                await conn.execute(f"RELEASE {_SAVEPOINT}")
            except Exception as undo:
                log.error("store_savepoint_rollback_failed", error=repr(undo))
                raise exc from None
            _log_failed(exc, op.kind)
            return Failed(exc)
        await conn.execute(f"RELEASE {_SAVEPOINT}")
        return value

    async def _apply_saves(
        self, conn: aiosqlite.Connection, saves: list[SaveOp]
    ) -> list[str | Failed]:
        return await on_thread(conn, apply_saves_sync, saves)
