"""The store's connections: open (migrations, WAL, niced threads), checkpoints, close,
readiness, and the read helpers every resource uses."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from acsd.log import get_logger
from acsd.store.base import (
    DeviceRecord,
    StoreClosedError,
    StoreError,
)
from acsd.store.outages import (
    CLOSED,
    CORRUPT,
    DISK,
    OTHER,
    RESTART_NEEDED,
    SCHEMA_VERSION,
    WRITER_STOPPED,
    Outage,
    outage,
)
from acsd.store.records import Table, device_record
from acsd.store.schema import latest_version, migrate, pending
from acsd.store.sqlite.files import DatabaseUse, OpenedFiles
from acsd.store.sqlite.filters import fold
from acsd.store.sqlite.writer import SqliteWriter, on_thread
from acsd.store.writes import STOP, WriterStats

log = get_logger("acsd.store")


BUSY_TIMEOUT = 5.0
#: seconds a readiness probe's answer stands (/readyz needs no token: a flood of probes
#: must not become a flood of writes)
PING_EVERY = 1.0
MAX_BATCH = 500
JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024
#: seconds between checkpoints of the WAL into the database (see _checkpoints)
CHECKPOINT_INTERVAL = 1.0
#: how long a checkpoint that restarts the WAL may hold the writer back
RESTART_WAIT_MS = 200
#: ms a closing store's PRAGMA optimize waits for the write lock before it is skipped
OPTIMIZE_WAIT_MS = 500
#: how much nicer than the event loop the writer's and the checkpointer's threads run
BACKGROUND_NICE = 10


def _be_nicer(_conn: sqlite3.Connection, by: int) -> None:
    """Lower the priority of the calling thread (Linux: the nice value is per thread)."""
    tid = threading.get_native_id()
    os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + by))


async def _thread_ended(conn: aiosqlite.Connection) -> None:
    """Wait until the thread of a connection that failed to open has ended.

    aiosqlite stops that thread but does not wait for it, and the thread's last act is to
    hand a result to the event loop: when the caller gives up at once (the daemon exits 1),
    the loop was often closed by then and the thread printed "Event loop is closed"
    tracebacks after the clean error line."""
    # 0.22 keeps the thread in ``_thread``; before 0.21 the connection was the thread.
    thread = conn if isinstance(conn, threading.Thread) else getattr(conn, "_thread", None)
    if isinstance(thread, threading.Thread) and thread.is_alive():
        # Bounded: a thread that never ends must not turn a failed start into a hang.
        await asyncio.to_thread(thread.join, 10.0)


def _rewrite_header(conn: sqlite3.Connection) -> None:
    """Write the database header as it is (a real, idempotent write): raises if the file
    cannot be written. ``conn`` is in autocommit mode (isolation_level=None)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        conn.execute(f"PRAGMA user_version = {int(version)}")
        conn.execute("COMMIT")
    except BaseException:
        # A COMMIT that failed (the disk full) may have ended the transaction already: a
        # ROLLBACK then raises "no transaction is active", which hid SQLITE_FULL's cause.
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _wal_left(path: Path) -> bool:
    try:
        return os.path.getsize(f"{path}-wal") > 0
    except OSError:
        return False


def _locked(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite's "busy" or "locked": another connection holds what the
    statement needs (any extended code of them too: SQLITE_BUSY_RECOVERY while a crashed
    worker's WAL index is rebuilt, ...)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(code, int) and (code & 0xFF) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


class SqliteCore(SqliteWriter):
    """Connections, lifecycle and read helpers; the resources are its subclasses."""

    def __init__(
        self,
        path: str | Path,
        *,
        max_batch: int = MAX_BATCH,
        busy_timeout: float = BUSY_TIMEOUT,
        checkpoint_interval: float = CHECKPOINT_INTERVAL,
        wal_limit: int = JOURNAL_SIZE_LIMIT,
        background_nice: int = BACKGROUND_NICE,
        ping_every: float = PING_EVERY,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.path = Path(path)
        self.max_batch = max_batch
        self.busy_timeout = busy_timeout
        self.checkpoint_interval = checkpoint_interval
        #: bytes of WAL kept on disk, and beyond which a checkpoint waits to restart it
        self.wal_limit = wal_limit
        #: added to the nice value of the writer's and checkpointer's threads (0: as the loop)
        self.background_nice = background_nice
        #: seconds a readiness answer (ping) stands before another write probe
        self.ping_every = ping_every
        #: when the last readiness probe ran, and why it found the store not ready
        self._pinged: tuple[float, Outage | None] = (-math.inf, CLOSED)
        self._ping_lock = asyncio.Lock()
        self.stats = WriterStats()
        #: versions that open() applied (empty when the schema was up to date)
        self.migrations_applied: list[int] = []
        self._writer_conn: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        #: the same reads as _reader, for lookups by key, made on the event loop (see _one)
        self._lookup: sqlite3.Connection | None = None
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._writer_task: asyncio.Task[None] | None = None
        self._checkpointer: aiosqlite.Connection | None = None
        self._checkpoint_task: asyncio.Task[None] | None = None
        #: why the last copy of the WAL into the database failed (its disk full or
        #: failing), until one goes through: the store is not ready meanwhile
        self.checkpoint_error: str | None = None
        #: the database's files as opened, and which one was removed or replaced since
        #: (found by the checkpointer): then no more writes, checkpoints or probes
        self._files: OpenedFiles | None = None
        self._use: DatabaseUse | None = None
        self.files_changed: str | None = None
        #: SQLite's word that the file is damaged (a write failed SQLITE_CORRUPT): a write
        #: that happens to touch sound pages does not mend it; not ready until a restart
        self.damaged: str | None = None
        #: why the last readiness probe's write failed (logged once), until one succeeds
        self._probe_failed: str | None = None
        self._accepting = False
        self._opened = False
        self._closing: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r})"

    # -- lifecycle ------------------------------------------------------------------------

    async def open(self) -> None:
        if self._opened:
            return
        if self._closing is not None:
            raise StoreClosedError(f"{self!r} was closed; create a new store to reopen")
        _create_private(self.path)
        # A WAL left at the path: acsd (or a copy) ended without its last checkpoint, or a
        # restore left another database's WAL beside the backup, which SQLite replays
        # onto it. The next start checks the file once before it serves it.
        unclean = _wal_left(self.path)
        self._use = DatabaseUse(self.path)
        try:
            if not self._use.share():
                raise StoreError(
                    f"{self.path} is being upgraded by another acsd (acsd db migrate, or a "
                    "daemon of a newer version starting): start again once it is done"
                )
            self._writer_conn = await self._connect()
            if not callable(getattr(self._writer_conn, "_execute", None)):
                raise StoreError(
                    f"aiosqlite {aiosqlite.__version__} lacks Connection._execute, which acsd "
                    "uses to commit a batch in one hop; install aiosqlite 0.20 to 0.22"
                )
            mode = await self._scalar(self._writer_conn, "PRAGMA journal_mode = WAL")
            if str(mode).lower() != "wal":
                # e.g. a file system without shared memory: readers would block the writer.
                raise StoreError(f"{self.path}: cannot switch to WAL (journal_mode={mode})")
            # A burst can grow the WAL far beyond its checkpoint size; cap what stays on disk.
            await self._writer_conn.execute(f"PRAGMA journal_size_limit = {int(self.wal_limit)}")
            await self._migrate()
            # The writer's own checkpoints (every 1000 pages) copied pages into the database
            # and fsynced it inside a COMMIT that sessions wait for: on a large database
            # that stalled every session for up to 0.6 s. A connection of its own does it.
            await self._writer_conn.execute("PRAGMA wal_autocheckpoint = 0")
            self._checkpointer = await self._connect()
            # A RESTART checkpoint holds the writer back while it waits for readers: with a
            # long one about (a backup), give up soon and try again next round.
            await self._checkpointer.execute(f"PRAGMA busy_timeout = {RESTART_WAIT_MS}")
            self._reader = await self._connect()
            # The reader must never write: all writes go through the one writer task.
            await self._reader.execute("PRAGMA query_only = ON")
            await self._reader.create_function("acsd_fold", 1, fold, deterministic=True)
            # timeout=0: a lookup that would wait for a lock goes to _reader instead of
            # holding up the event loop (see _one)
            self._lookup = sqlite3.connect(
                str(self.path), isolation_level=None, timeout=0, check_same_thread=False
            )
            self._lookup.execute("PRAGMA query_only = ON")
            await self._background(self._writer_conn, self._checkpointer)
            self._files = OpenedFiles(self.path)
            if unclean:
                await self._check_sound()
        except BaseException:
            await self._close_connections()
            raise
        if self.migrations_applied:
            log.info("store_migrated", path=str(self.path), applied=self.migrations_applied)
        self._opened = True
        self._accepting = True
        self._writer_task = asyncio.create_task(self._writer(), name="acsd-store-writer")
        self._checkpoint_task = asyncio.create_task(
            self._checkpoints(), name="acsd-store-checkpoints"
        )

    async def _check_sound(self) -> None:
        """Refuse a file SQLite finds damaged (PRAGMA quick_check: every page read once,
        about a second per few hundred MB), rather than serve it and answer writes 2xx
        until one meets a broken page."""
        assert self._reader is not None
        try:
            rows = await self._reader.execute_fetchall("PRAGMA quick_check(5)")
        except sqlite3.DatabaseError as exc:
            found = [str(exc)]
        else:
            found = [str(row[0]) for row in rows]
        if found != ["ok"]:
            raise StoreError(
                f"{self.path} is damaged ({'; '.join(found)}): restore the last backup "
                "(and remove the -wal and -shm files beside it before the start)"
            )

    async def _migrate(self) -> None:
        """The schema's pending steps, with the database file to this process alone."""
        assert self._writer_conn is not None and self._use is not None
        if not await pending(self._writer_conn):
            return
        if not self._use.alone():
            raise StoreError(
                f"{self.path}: another acsd process has this database open (the daemon "
                "of the version before, still running?): its schema cannot be upgraded "
                "under it; stop it first (systemctl stop acsd)"
            )
        try:
            self.migrations_applied = await migrate(self._writer_conn)
        finally:
            self._use.share()

    async def _background(self, *conns: aiosqlite.Connection) -> None:
        """The threads of ``conns`` give way to the event loop when both want the CPU.

        On a busy core, a batch commit or a checkpoint (C code, without the GIL) took turns
        with the event loop as an equal: the loop stalled for tens of ms, new connections
        queued unaccepted, and that wait was most of the sessions' p99 latency. Niced, they
        run in the loop's idle moments, and commits, which sessions wait for, only batch
        more sessions each: measured at 450 sessions/s, p99 162-229 ms against 244-692 ms
        (three runs each), with the same throughput at saturation."""
        if self.background_nice <= 0 or not hasattr(os, "setpriority"):
            return
        for conn in conns:
            try:
                await on_thread(conn, _be_nicer, self.background_nice)
            except OSError as exc:  # a sandbox that forbids it: run as before
                log.info("store_nice_failed", error=str(exc))
                return

    async def _checkpoints(self) -> None:
        """Copy the WAL into the database every ``checkpoint_interval`` seconds of writing.

        PASSIVE: it neither waits for nor blocks the writer and readers; what it could not
        copy this time (a reader still on old pages) it copies next time. But SQLite writes
        the WAL from its start again only after a checkpoint found it idle, which under
        steady writes never happens: the file grew by gigabytes. So once it is past
        ``wal_limit``, a RESTART checkpoint holds the writer back for the little the
        passive one left (a few ms) and the next commit starts the file over."""
        conn = self._checkpointer
        assert conn is not None
        restart_frames = max(1, self.wal_limit // await self._scalar(conn, "PRAGMA page_size"))
        done = -1 if self.migrations_applied else 0
        while True:
            await asyncio.sleep(self.checkpoint_interval)
            files = self._files
            if self.files_changed is None and files and (why := files.changed()):
                await self._files_lost(why)
            if self.files_changed is not None:
                continue
            # After a failed copy, every round until one goes through, writes or not: the
            # store is not ready meanwhile (see _ping), and must find out by itself that
            # the disk has room again. After a write the disk refused too: a WAL that
            # cannot grow is written from its start again once a copy has emptied it.
            failing = self.checkpoint_error is not None or self.stats.write_error is not None
            if self.stats.writes == done and not failing:
                continue
            done = self.stats.writes
            try:
                # (busy, frames in the WAL, frames copied)
                row = await self._first_row(conn, "PRAGMA wal_checkpoint(PASSIVE)")
                if row is not None and row[1] >= restart_frames:
                    await self._first_row(conn, "PRAGMA wal_checkpoint(RESTART)")
            except Exception as exc:  # the next round tries again
                if str(exc) != self.checkpoint_error:  # once, not every second of it
                    log.warning("store_checkpoint_failed", error=str(exc))
                self.checkpoint_error = str(exc)
                continue
            if self.checkpoint_error is not None:
                log.info("store_checkpoint_resumed")
                self.checkpoint_error = None

    async def _files_lost(self, why: str) -> None:
        """A file of the database was removed or replaced underneath the store (an
        operator's ``rm`` or ``mv``, a restore while acsd runs): what acsd writes from now
        on would go to files nobody reads again, and a new file at the path is not this
        store's to touch. Writes are refused (503) until a restart opens what is there
        now; reads go on from the files acsd holds."""
        self.files_changed = why
        self._refused = f"{why} while acsd ran; writes are refused until acsd restarts"
        log.error(
            "store_files_changed",
            error=why,
            action="restart acsd to use the files now at the path; until then writes get 503",
        )
        files = self._files
        assert files is not None
        if not files.same(""):
            # acsd's -wal and -shm, still at their paths, would be taken by the next opener
            # for the new database's own (its pages read over another database's): they go,
            # as the restore's `rm -f` would do; acsd's connections keep them open.
            for suffix in ("-wal", "-shm"):
                if files.same(suffix):
                    with contextlib.suppress(OSError):
                        os.unlink(f"{self.path}{suffix}")
        # Closing the connections would delete PATH-wal by name: another database's now.
        if not files.keep_wal():
            log.warning("store_keep_wal_failed", path=str(self.path))
        await self._copy_wal()

    async def _copy_wal(self) -> None:
        """After the files changed: copy the last commits into the database file acsd holds
        (once the batch under way, if any, has committed), as its connections will not
        when they close. When that file is still the one at the path, nothing acknowledged
        is lost; when it is not, the file acsd holds (/proc/PID/fd) is whole."""
        conn = self._checkpointer
        assert conn is not None
        for _ in range(1000):
            if not self._busy:
                break
            await asyncio.sleep(0.01)
        try:
            for _ in range(100):  # (a reader's snapshot may hold some frames back a moment)
                row = await self._first_row(conn, "PRAGMA wal_checkpoint(PASSIVE)")
                if row is None or (row[0] == 0 and row[1] == row[2]):
                    break
                await asyncio.sleep(0.02)
        except Exception as exc:
            log.warning("store_checkpoint_failed", error=str(exc))

    async def _connect(self) -> aiosqlite.Connection:
        # isolation_level=None: no implicit BEGIN; the writer issues BEGIN IMMEDIATE
        # itself and the reader runs every query in its own (short) read transaction.
        pending = aiosqlite.connect(str(self.path), isolation_level=None)
        try:
            conn = await pending
        except BaseException as exc:
            await _thread_ended(pending)
            if isinstance(exc, Exception):
                raise StoreError(
                    f"cannot open database {self.path}: {_why(self.path, exc)}"
                ) from exc
            raise
        try:
            # busy_timeout first: the pragmas below may already need a lock.
            await conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            await conn.execute("PRAGMA synchronous = NORMAL")
            await conn.execute("PRAGMA foreign_keys = ON")
        except BaseException:
            await conn.close()
            raise
        return conn

    @staticmethod
    async def _first_row(conn: aiosqlite.Connection, sql: str, args: Sequence[Any] = ()) -> Any:
        rows = list(await conn.execute_fetchall(sql, args))
        return rows[0] if rows else None

    @classmethod
    async def _scalar(cls, conn: aiosqlite.Connection, sql: str, args: Sequence[Any] = ()) -> Any:
        row = await cls._first_row(conn, sql, args)
        return row[0] if row is not None else None

    async def close(self) -> None:
        """Stop accepting writes, commit everything queued, stop the writer, disconnect.
        Idempotent; concurrent callers all wait for the same shutdown."""
        if self._closing is None:
            self._accepting = False
            self._closing = asyncio.ensure_future(self._shutdown())
        await asyncio.shield(self._closing)

    async def _shutdown(self) -> None:
        try:
            if self._checkpoint_task is not None:
                self._checkpoint_task.cancel()
                await asyncio.gather(self._checkpoint_task, return_exceptions=True)
            if self._writer_task is not None:
                # FIFO: everything queued before the sentinel is committed first.
                self._queue.put_nowait(STOP)
                # A crashed or cancelled writer has already failed its callers and logged.
                await asyncio.gather(self._writer_task, return_exceptions=True)
            if self.files_changed is not None and self._checkpointer is not None:
                await self._copy_wal()  # (the checkpointer's copy may have been cut short)
        finally:
            self._fail_queued(StoreClosedError(f"{self!r} closed before this write ran"))
            wrote = self.stats.writes > 0 or bool(self.migrations_applied)
            ours = self.files_changed is None  # (else the files at the path are another's)
            if self._writer_conn is not None and self._opened and wrote and ours:
                try:
                    # Keeps planner statistics fresh. Skipped for read-only users (the CLI):
                    # it may need the write lock and wait behind a busy daemon. Briefly:
                    # the workers of a service stop together, and one that finds another
                    # writing or optimizing leaves the statistics to it (it warned
                    # store_optimize_failed at every stop of a service with workers).
                    await self._writer_conn.execute(f"PRAGMA busy_timeout = {OPTIMIZE_WAIT_MS}")
                    await self._writer_conn.execute("PRAGMA optimize")
                except Exception as exc:  # best effort only
                    if _locked(exc):  # another process writes or optimizes: its statistics
                        log.info("store_optimize_skipped", reason="database busy")
                    else:
                        log.warning("store_optimize_failed", error=str(exc))
            await self._close_connections()

    async def _close_connections(self) -> None:
        if self._lookup is not None:
            try:
                self._lookup.close()
            except Exception as exc:
                log.warning("store_close_failed", error=str(exc))
            self._lookup = None
        # The writer last: closing the last connection checkpoints and removes the WAL.
        for conn in (self._checkpointer, self._reader, self._writer_conn):
            if conn is not None:
                try:
                    await conn.close()
                except Exception as exc:
                    log.warning("store_close_failed", error=str(exc))
        self._reader = None
        self._writer_conn = None
        self._checkpointer = None
        if self._files is not None:
            self._files.close()  # (after the connections: it may hold their WAL)
            self._files = None
        if self._use is not None:
            self._use.close()
            self._use = None

    async def check_writable(self) -> None:
        """Raise StoreError unless the database takes a write. SQLite opens a file it may
        not write read-only without a word, and every session would fail later; the
        daemon asks this once at start (one real, idempotent write of the header)."""
        if self._writer_conn is None:
            raise StoreClosedError(f"{self!r} is not open")
        try:
            await on_thread(self._writer_conn, _rewrite_header)
        except sqlite3.OperationalError as exc:
            raise StoreError(f"{self.path}: the database cannot be written: {exc}") from None

    async def ping(self) -> bool:
        return await self.readiness() is None

    async def readiness(self) -> Outage | None:
        if not self._opened or self._reader is None or self._closing is not None:
            return CLOSED
        if self._writer_task is None or self._writer_task.done():
            return WRITER_STOPPED  # every write would be refused: not ready, whatever reads do
        # /readyz needs no token: however often it is asked, at most one write probe a
        # second, and one at a time (a flood of probes would queue behind, and delay, the
        # sessions' writes)
        async with self._ping_lock:
            if time.monotonic() - self._pinged[0] < self.ping_every:
                return self._pinged[1]
            why = await self._probe()
            self._pinged = (time.monotonic(), why)
            return why

    def _failed_with(self, exc: BaseException) -> None:
        if self.damaged is None and outage(exc) is CORRUPT:
            self.damaged = str(exc)
            log.error(
                "store_damaged",
                error=str(exc),
                path=str(self.path),
                action="stop acsd, check the file (PRAGMA integrity_check), restore the last "
                "backup",
            )

    async def _probe(self) -> Outage | None:
        if self.files_changed is not None:
            return RESTART_NEEDED  # (and no probe: the files at the path are not this store's)
        if self.damaged is not None:
            return CORRUPT
        try:
            version = await self._scalar(self._reader, "SELECT max(version) FROM schema_migrations")
        except Exception as exc:
            return outage(exc) or OTHER
        if self.checkpoint_error is not None:
            # The WAL cannot be copied into the database (on a full disk, the database
            # cannot grow): it cannot start over, and once it cannot grow either every
            # write fails, though a small one (the probe below) may still fit in the room a
            # failed larger commit left.
            return DISK
        # A write probe every time, not only after a write of this process failed: the
        # workers of a service (each its own store) must agree, and another process may
        # hold the write lock before any write here has met it.
        if (refused := await self._writes_again()) is not None:
            return refused
        return None if version == latest_version() else SCHEMA_VERSION

    async def _writes_again(self) -> Outage | None:
        """Why a write does not go through now; None when it does (a connection of its
        own, so that an idle daemon does not stay unready until its next session)."""

        def probe() -> None:
            conn = sqlite3.connect(self.path, timeout=1.0, isolation_level=None)
            try:
                _rewrite_header(conn)
            finally:
                conn.close()

        try:
            await asyncio.to_thread(probe)
        except sqlite3.Error as exc:
            # /readyz names the trouble only (its key and words, which hold no path): the
            # database's message goes to the log, once per cause (it is asked every few
            # seconds), unless the writer named it already. A new connection is refused
            # what acsd's open ones may still do: a database file made read-only (chmod)
            # takes acsd's writes until it restarts, then not.
            if str(exc) not in (self._probe_failed, self._failing):
                log.warning("store_write_probe_failed", error=str(exc), path=str(self.path))
            self._probe_failed = self.stats.write_error = str(exc)
            return outage(exc) or OTHER
        if self._probe_failed is not None:
            log.info("store_write_probe_ok", path=str(self.path))
            self._probe_failed = None
        self.stats.write_error = None
        return None

    # -- reads ----------------------------------------------------------------------------

    @property
    def _read(self) -> aiosqlite.Connection:
        if self._reader is None:
            raise StoreClosedError(f"{self!r} is not open")
        return self._reader

    async def _one(self, sql: str, args: Sequence[Any]) -> DeviceRecord | None:
        rows = await self._indexed_rows(sql, args)
        return device_record(rows[0]) if rows else None

    async def _indexed_rows(self, sql: str, args: Sequence[Any]) -> list[Any]:
        """The rows of a look-up by an indexed key: on the event loop (_rows_now), or
        through the reader's thread while the database is locked."""
        rows = self._rows_now(sql, args)
        if rows is None:
            rows = list(await self._read.execute_fetchall(sql, args))
        return rows

    def _rows_now(self, sql: str, args: Sequence[Any]) -> list[Any] | None:
        """The rows of a lookup by an indexed key, read right here on the event loop; None
        when the database is locked (the caller then reads through _reader's thread).

        Every session starts with such a lookup. Through aiosqlite's thread it costs ~100 us
        of CPU (futures, wake-ups and GIL hand-overs around a 15 us query); here, 15 us. A
        read in WAL mode never waits for the writer, and one that would wait for anything
        else is not made here (timeout=0). It reads a few pages: a database much larger than
        the OS page cache makes them disk reads, which the loop then waits for."""
        if self._lookup is None:
            raise StoreClosedError(f"{self!r} is not open")
        try:
            return self._lookup.execute(sql, args).fetchall()
        except sqlite3.OperationalError as exc:
            if _locked(exc):
                return None
            raise

    async def _page(
        self,
        columns: str,
        table: str,
        where: str,
        order: str,
        params: dict[str, Any],
        limit: int,
        offset: int,
        *,
        index: str | None = None,
        after: str | None = None,
    ) -> tuple[list[Sequence[Any]], int]:
        """One page of rows and the number of all matching rows, read in one statement
        (one snapshot: the total always agrees with the page). With ``index`` (one that
        covers ``where`` and ``order``), the matching keys and their count come from the
        index alone and only the page's rows are read from the table: for tables whose
        rows are large. ``after`` (a value of ``order``, a single unique column): the page
        starts past it, while the total still counts every matching row."""
        source = f"FROM {table} INDEXED BY {index}" if index else f"FROM {table}"
        matching = f"{source} WHERE {where}"
        count_sql = f"SELECT count(*) {matching}"
        paged = matching if after is None else f"{source} WHERE ({where}) AND {order} > :after"
        page = f"ORDER BY {order} LIMIT :limit OFFSET :offset"
        if index:
            sql = (
                f"SELECT {columns}, ({count_sql}) FROM {table}"
                f" WHERE {order} IN (SELECT {order} {paged} {page}) ORDER BY {order}"
            )
        else:
            sql = f"SELECT {columns}, ({count_sql}) {paged} {page}"
        values = {**params, "limit": max(0, limit), "offset": max(0, offset)}
        if after is not None:
            values["after"] = after
        rows = list(await self._read.execute_fetchall(sql, values))
        if rows:
            return [row[:-1] for row in rows], int(rows[0][-1])
        if limit > 0 and offset <= 0 and after is None:
            return [], 0
        # an empty page past the end (or limit 0): count on its own
        return [], int(await self._scalar(self._read, count_sql, params))

    async def _get(self, table: Table, sql: str, args: Sequence[Any]) -> Any:
        """One record of ``table`` by an indexed key (every caller's ``sql`` is one: an
        API token by its hash on every request, a model when a session needs its profile),
        read as :meth:`_indexed_rows` reads."""
        rows = await self._indexed_rows(f"{table.select} {sql}", args)
        return table.record(rows[0]) if rows else None


def _create_private(path: Path) -> None:
    """A new database file made readable by its owner alone, as `acsd db backup` makes its
    copies: it holds the routers' Connection Request passwords, the wifi passwords and the
    token hashes. SQLite gives its -wal and -shm files the database's own mode. (Outside
    systemd, whose unit sets UMask=0077, the default umask made it world-readable.) An
    existing file keeps the mode its owner gave it."""
    with contextlib.suppress(OSError):  # (no directory, no right: opening it says why)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))


def _why(path: Path, exc: Exception) -> str:
    """Why SQLite could not open ``path``: its "unable to open database file" names no
    cause, and the usual one (a directory that does not exist: acsd makes the file, not
    the directories above it) is the operator's to fix."""
    parent = path.absolute().parent
    if not parent.is_dir():
        return f"the directory {parent} does not exist (acsd creates the file, not its directory)"
    if not os.access(parent, os.W_OK | os.X_OK) and not path.exists():
        return f"the directory {parent} is not writable by this user"
    return str(exc)
