"""The writer task on SQLite: the shared write queue (acsd.store.batching) committed in
BEGIN IMMEDIATE transactions, a batch of session saves in one hop to the writer thread."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiosqlite

from acsd.log import get_logger
from acsd.store.batching import BatchWriter, CallOp, Op, log_failed
from acsd.store.sqlite.saves import BeginFailed, apply_saves_sync, commit_saves
from acsd.store.writes import Failed, SaveOp

log = get_logger("acsd.store")


#: name of the savepoint that isolates one call in a batch (it is never nested)
_SAVEPOINT = "acsd_call"


def on_thread(conn: aiosqlite.Connection, fn: Callable[..., Any], *args: Any) -> Awaitable[Any]:
    """``fn(sqlite3_connection, *args)`` on the connection's own thread, in one hop. aiosqlite
    has no public call for this; ``_execute`` and ``_conn`` have been its (stable) internals
    since 0.11, and the tests exercise this path on every session save."""
    return conn._execute(lambda: fn(conn._conn, *args))


class SqliteWriter(BatchWriter):
    """The shared write queue, committed on SQLite (see the package's docstring)."""

    _writer_conn: aiosqlite.Connection | None

    async def _run_batch(self, batch: list[Op]) -> None:
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
        self._committed(batch, results, started)

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
        self._committed(saves, ids, started)  # type: ignore[arg-type]

    @staticmethod
    async def _rollback(conn: aiosqlite.Connection) -> None:
        try:
            if conn.in_transaction:
                await conn.execute("ROLLBACK")
        except Exception as exc:
            log.error("store_rollback_failed", error=str(exc))

    async def _apply_isolated(self, conn: aiosqlite.Connection, op: CallOp) -> Any:
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
            log_failed(exc, op.kind)
            return Failed(exc)
        await conn.execute(f"RELEASE {_SAVEPOINT}")
        return value

    async def _apply_saves(
        self, conn: aiosqlite.Connection, saves: list[SaveOp]
    ) -> list[str | Failed]:
        return await on_thread(conn, apply_saves_sync, saves)
