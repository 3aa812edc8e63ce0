"""The PostgreSQL store's connections, its writer task and the read helpers.

Why this shape (the SQLite backend's, for the same reasons, where they still hold):

- Every write is queued and one writer task commits what is queued in ONE transaction:
  sessions' results go in with one ``executemany`` in a savepoint (when one fails, they
  are written again one at a time, each in a savepoint of its own, its row locks too),
  other writes as calls ``fn(conn)``, each in a savepoint of its own when it shares its
  batch, so a conflict, a bad save or a row another client holds undoes only itself.
- A batch waits for another client's lock once (lock_timeout): the writes queued behind
  it wait too, so once one of its writes has waited that out, a lock still held fails the
  others at once (PgCore._savepoint_failed). The row is then known to be held: its later
  writes (its router's session result sent again, a PATCH tried again) are written apart
  from the others' and wait for it no more (PgCore._run_batch), so that the others' do
  not wait lock_timeout again with each batch, for as long as the row is held.
- Several acsd instances may write to one database. A session's result is checked against
  the record (``SessionResult.since``) under a row lock (``SELECT ... FOR UPDATE``), so
  "first session wins" holds across instances too; rows are locked in serial-key order,
  so two instances' batches never wait for each other in a cycle. A batch that fails all
  the same (a deadlock with some other client) is retried one write at a time, and a write
  the server rolled back to break a deadlock is run again alone (LOST_RACE_RETRIES).
- Reads use a small pool and see what has committed, whichever instance wrote it.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from typing import Any

import asyncpg

from acsd.log import get_logger
from acsd.store.base import (
    PG_CUT_SHORT,
    DeviceRecord,
    StoreClosedError,
    StoreError,
    StoreUnavailableError,
    store_unavailable,
)
from acsd.store.batching import BatchWriter, CallOp, Op, log_failed, op_rows, op_written
from acsd.store.outages import (
    CLOSED,
    OTHER,
    READ_ONLY,
    SCHEMA_VERSION,
    WRITER_STOPPED,
    Outage,
    outage,
)
from acsd.store.postgres.rows import Args
from acsd.store.postgres.saves import apply_saves
from acsd.store.postgres.schema import migrate
from acsd.store.records import Table, device_record
from acsd.store.schema import latest_version
from acsd.store.writes import STOP, Failed, SaveOp, WriterStats

log = get_logger("acsd.store")

MAX_BATCH = 500
#: readers: a session reads one row at a time, the API a page; a few connections suffice
#: (``store.pool_size``: more for many API clients, fewer for a small max_connections)
READ_POOL = 4
#: now in POSIX seconds on the database server's clock, the one clock instances sharing
#: the database agree on: clock_timestamp(), not now(), which is when the transaction
#: began (a batch's, or before a wait for another's row)
NOW = "extract(epoch FROM clock_timestamp())::float8"
CONNECT_TIMEOUT = 10.0
PING_EVERY = 1.0
#: seconds a statement (a read, a write batch's) may take before acsd gives up on the
#: server: one that has frozen or gone behind a partition that drops packets answers
#: nothing, and TCP takes many minutes to notice. The request is answered 503 instead of
#: hanging with every router's session and API request behind it. Migrations, which may
#: take long on a large database, have no limit.
STATEMENT_WAIT = 10.0
#: seconds a write waits for a lock another client holds (a row an open transaction in
#: someone's psql updated, another instance's batch) before it fails with 503: the writer
#: runs one batch at a time, so a longer wait stalls every write queued behind it. Longer
#: than another instance's batch holds its row locks (milliseconds), shorter than
#: STATEMENT_WAIT (``store.lock_timeout``). A batch waits it out once: see
#: PgCore._savepoint_failed
LOCK_WAIT = 2.0
#: what the rest of a batch runs with once one of its writes has waited LOCK_WAIT out
#: for another client's lock: a lock still held fails its write at once (1 ms, as 0
#: would be no limit)
_NO_MORE_LOCK_WAIT = "SET LOCAL lock_timeout = 1"
#: lock_not_available: a wait for a lock that lock_timeout ended
_LOCK_TIMEOUT = "55P03"
#: seconds a write of a row known to be held (one whose write waited lock_timeout out,
#: see PgCore._run_batch) waits for its lock: enough for another instance's batch, which
#: holds its rows for milliseconds, to commit, so that a row let go of again is written,
#: not refused; too short for the writes queued behind it to notice
HELD_ROW_WAIT = 0.05
#: seconds a row stays known to be held after a write of it met the lock (each write
#: that meets it again renews that), unless a write of it commits first: longer than a
#: router takes to send its result again after a 503 (its retry, Retry-After), so that
#: the row's writes keep out of the others' batches for as long as it stays held. A row
#: still held after it was forgotten costs one batch one lock_timeout.
HELD_ROW_MEMORY = 600.0
#: rows known to be held at most (a client that locked many rows, each written by its
#: router): past it, a row's writes join the others' batches, as before it was held
HELD_ROWS = 10_000


def _ms(seconds: float) -> int:
    """``seconds`` as the whole milliseconds of a PostgreSQL time setting (at least 1: 0
    would be no limit)."""
    return max(1, round(seconds * 1000))


async def _keep_session(conn: asyncpg.Connection) -> None:
    """The pool's reset under transaction pooling: none (see PgCore._pool_options)."""


def connection_lost(exc: BaseException) -> StoreUnavailableError | None:
    """The server cannot be reached, or the connection to it was lost, in asyncpg's or the
    OS's words that carry no SQLSTATE (a socket file gone with the stopped server, a
    connect timeout, an unknown host name, "connection is closed"): as the error the API
    and the CWMP server answer 503 for. None for anything else, and for errors that say so
    already (their SQLSTATE, a refused connection)."""
    if store_unavailable(exc) is not None:
        return None
    if isinstance(exc, TimeoutError):
        return StoreUnavailableError("the PostgreSQL server did not answer in time")
    if isinstance(exc, OSError) or (
        isinstance(exc, asyncpg.InterfaceError) and "connection is closed" in str(exc)
    ):
        return StoreUnavailableError(f"the PostgreSQL server cannot be reached: {exc}")
    return None


def _server_gone(exc: BaseException) -> bool:
    """The batch failed for its connection's or server's sake, not one write's: every
    write of it would fail alike on this connection (a lock or statement timeout, which
    one write alone may hit, is not this)."""
    state = getattr(exc, "sqlstate", None)
    if isinstance(state, str) and state.startswith(("08", "57P")):
        return True
    return connection_lost(exc) is not None or isinstance(exc, ConnectionError)


def _read_only(exc: BaseException | None) -> bool:
    """A write refused because the connection is read-only (25006)."""
    while exc is not None:
        if getattr(exc, "sqlstate", None) == "25006":
            return True
        exc = exc.__cause__
    return False


def _connection_ended(exc: BaseException) -> bool:
    """The server ended this connection (a restart, a failover, an administrator's
    pg_terminate_backend, idle_session_timeout) or it broke: the statement never ran, or
    its transaction was rolled back, and a new connection may well work. asyncpg that
    reads the server's farewell only when the next statement is sent says so in several
    ways: the SQLSTATE (08, 57P01, 57P02), "connection is closed", or an internal error
    about its protocol state."""
    state = getattr(exc, "sqlstate", None)
    if isinstance(state, str):
        return state.startswith("08") or state in ("57P01", "57P02")
    if isinstance(exc, asyncpg.InterfaceError):
        return "connection is closed" in str(exc)
    return isinstance(exc, asyncpg.InternalClientError)


async def _read_again(pool: asyncpg.Pool, wait: float, method: str, sql: str, *args: Any) -> Any:
    """``conn.method(sql, *args)`` on a connection of ``pool``, once more on another one when
    the server ended the first (see _connection_ended), all of it within ``wait`` seconds: a
    lost, unreachable or silent server raised as StoreUnavailableError."""
    deadline = asyncio.get_running_loop().time() + wait
    for last in (False, True):
        try:
            return await _read_once(pool, deadline, method, sql, args)
        except Exception as exc:
            if not last and _connection_ended(exc):
                # The server that ended this one has most likely ended the pool's other
                # idle ones too (a restart, a failover): the retry gets a new connection.
                await pool.expire_connections()
                continue
            if getattr(exc, "sqlstate", None) in PG_CUT_SHORT:
                # A limit set on the role or database: the pool's connections keep the
                # one they started with, so that an operator's change of it (RESET after
                # a too low statement_timeout) applies from the next read, not from
                # whenever the pool happens to make new ones.
                await pool.expire_connections()
            if (unavailable := _as_unavailable(exc)) is not exc:
                raise unavailable from exc
            raise
    raise AssertionError("unreachable")


#: connections given back to their pool after their read failed (see _read_once)
_releasing: set[asyncio.Future[Any]] = set()


async def _read_once(
    pool: asyncpg.Pool, deadline: float, method: str, sql: str, args: tuple[Any, ...]
) -> Any:
    """One read, the wait for a free connection and the making of a new one included, ended
    at ``deadline`` (the loop's time). Not Pool.fetch: the pool takes back a connection
    whose statement was cut short only once the server has answered the cancel request it
    sent, which a server that answers nothing never does: the read's caller would wait a
    second command_timeout for it (and a third for a connect timeout)."""
    conn = None
    try:
        async with asyncio.timeout_at(deadline):
            conn = await pool.acquire()
            result = await getattr(conn, method)(sql, *args)
    except BaseException:
        if conn is not None:
            # asyncpg's release is shielded from cancellation; the reply does not wait for it
            releasing = asyncio.ensure_future(pool.release(conn))
            _releasing.add(releasing)
            releasing.add_done_callback(_released)
        raise
    await pool.release(conn)
    return result


def _released(future: asyncio.Future[Any]) -> None:
    _releasing.discard(future)
    if not future.cancelled():
        future.exception()  # a connection the pool failed to reset is terminated: no news


#: times a write the server rolled back to break a deadlock (or a serialization failure)
#: is run again before its caller gets the error
LOST_RACE_RETRIES = 3


def _lost_race(exc: BaseException | None) -> bool:
    """Whether ``exc`` is the server undoing a write that met another client's in a
    cycle: nothing of it is left, and the same write alone will most likely go through."""
    return isinstance(exc, asyncpg.DeadlockDetectedError | asyncpg.SerializationError)


def _as_unavailable(exc: Exception) -> Exception:
    """``exc`` as StoreUnavailableError when it is the server's or the connection's
    trouble in words that store_unavailable does not know; else ``exc`` itself."""
    if (lost := connection_lost(exc)) is not None:
        return lost
    if _connection_ended(exc) and store_unavailable(exc) is None:
        return StoreUnavailableError(f"the connection to PostgreSQL broke: {exc!r}")
    return exc


class PgCore(BatchWriter):
    """Connections, lifecycle, writer and reads; the resources are mixins on top."""

    migrations_applied: list[int]

    def __init__(
        self,
        dsn: str,
        *,
        max_batch: int = MAX_BATCH,
        pool_size: int = READ_POOL,
        transaction_pooling: bool = False,
        statement_wait: float = STATEMENT_WAIT,
        lock_timeout: float = LOCK_WAIT,
    ) -> None:
        if pool_size < 1:
            raise ValueError(f"pool_size must be at least 1, got {pool_size}")
        if lock_timeout <= 0:
            raise ValueError(f"lock_timeout must be more than 0, got {lock_timeout}")
        self.dsn = dsn
        self.max_batch = max_batch
        self.pool_size = pool_size
        self.transaction_pooling = transaction_pooling
        self.statement_wait = statement_wait
        self.lock_timeout = lock_timeout
        # The limits every write transaction runs with, whatever the role or database sets:
        # SET LOCAL, for one transaction, as a pooler in transaction mode needs; the
        # server's statement_timeout ends a slow statement there (and keeps the
        # connection) where statement_wait alone would give up on the connection.
        self._write_limits = (
            f"SET LOCAL lock_timeout = {_ms(min(lock_timeout, statement_wait))};"
            f" SET LOCAL statement_timeout = {_ms(statement_wait)}"
        )
        #: those of a batch of writes of rows known to be held (see _run_batch)
        self._held_limits = (
            f"SET LOCAL lock_timeout = {_ms(min(lock_timeout, HELD_ROW_WAIT))};"
            f" SET LOCAL statement_timeout = {_ms(statement_wait)}"
        )
        #: rows (device ids) known to be held by another client: until when (monotonic)
        self._held: dict[str, float] = {}
        self.migrations_applied = []
        self.stats = WriterStats()
        self.ping_every = PING_EVERY
        self._pool: asyncpg.Pool | None = None
        #: the readiness probe's one connection: a probe queued behind busy API reads for
        #: a free reader would call the database unreachable when it is only busy
        self._probe_pool: asyncpg.Pool | None = None
        self._writer_conn: asyncpg.Connection | None = None
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._writer_task: asyncio.Task[None] | None = None
        self._closing: asyncio.Task[None] | None = None
        self._accepting = False
        self._opened = False
        #: the database is UTF-8 (set at open): the device search folds case in Unicode
        self.utf8 = True
        self._ping_lock = asyncio.Lock()
        #: when the last readiness probe ran, and why it found the store not ready
        self._pinged: tuple[float, Outage | None] = (-1e9, CLOSED)
        #: the writer's connection is to be made again before its next batch
        self._renew_writer = False
        #: a write of the batch being written has waited lock_timeout out already
        self._lock_waited = False

    def __repr__(self) -> str:
        # never the DSN: it may carry the password
        return f"<{type(self).__name__} postgresql>"

    # -- lifecycle ------------------------------------------------------------------------

    async def open(self) -> None:
        if self._opened:
            return
        try:
            # the migrations on a connection of their own, without statement_wait
            self._writer_conn = await self._connect(bounded=False)
            self.migrations_applied = await migrate(self._writer_conn)
            self.utf8 = await _check_text_support(self._writer_conn)
            await self._writer_conn.close()
            self._writer_conn = await self._connect()
            self._pool = await asyncpg.create_pool(
                self.dsn,
                # No floor of connections: asyncpg restores one in a task of its own that,
                # while the server is down, logs a traceback each time it fails (with the
                # log context of whichever request started it). Reads make the connections
                # they need, and the outage is acsd's to report (store_writes_failing,
                # api_store_unavailable, /readyz).
                min_size=0,
                max_size=self.pool_size,
                timeout=CONNECT_TIMEOUT,
                command_timeout=self.statement_wait,
                **self._pool_options(),
            )
            self._probe_pool = await asyncpg.create_pool(
                self.dsn,
                min_size=0,
                max_size=1,
                timeout=CONNECT_TIMEOUT,
                command_timeout=self.statement_wait,
                **self._pool_options(),
            )
        except BaseException as exc:
            await self._close_connections()
            if isinstance(exc, (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)):
                raise StoreError(f"cannot open the PostgreSQL database: {exc}") from exc
            raise
        if self.migrations_applied:
            log.info("store_migrated", backend="postgresql", applied=self.migrations_applied)
        self._opened = True
        self._accepting = True
        self._writer_task = asyncio.create_task(self._writer(), name="acsd-store-writer")

    async def _connect(self, *, bounded: bool = True) -> asyncpg.Connection:
        """A connection; ``bounded``: its statements end at ``statement_wait``."""
        return await asyncpg.connect(
            self.dsn,
            timeout=CONNECT_TIMEOUT,
            command_timeout=self.statement_wait if bounded else None,
            **self._session_options(),
        )

    def _session_options(self) -> dict[str, Any]:
        """asyncpg's connection options for ``transaction_pooling``. A pooler in transaction
        mode lends each transaction whichever server connection is free: a statement that
        asyncpg prepared (and cached by name) on one is missing on the next, or its name is
        taken there by another client's ("prepared statement ... does not exist / already
        exists"). Without the cache asyncpg prepares unnamed statements, again each time."""
        return {"statement_cache_size": 0} if self.transaction_pooling else {}

    def _pool_options(self) -> dict[str, Any]:
        if not self.transaction_pooling:
            return self._session_options()
        # asyncpg resets a connection it takes back into its pool (RESET ALL, UNLISTEN *,
        # pg_advisory_unlock_all(), ...): session state that acsd never sets (its advisory
        # locks are transaction-level), and through the pooler the reset would reach
        # whichever server connection is lent for it, not the one the reads used.
        return {**self._session_options(), "reset": _keep_session}

    async def close(self) -> None:
        if self._closing is None:
            self._accepting = False
            self._closing = asyncio.ensure_future(self._shutdown())
        await asyncio.shield(self._closing)

    async def _shutdown(self) -> None:
        try:
            if self._writer_task is not None:
                self._queue.put_nowait(STOP)
                await asyncio.gather(self._writer_task, return_exceptions=True)
        finally:
            self._fail_queued(StoreClosedError(f"{self!r} closed before this write ran"))
            await self._close_connections()

    async def _close_connections(self) -> None:
        for pool in (self._pool, self._probe_pool):
            if pool is not None:
                try:
                    await pool.close()
                except Exception as exc:
                    log.warning("store_close_failed", error=str(exc))
        self._pool = self._probe_pool = None
        if self._writer_conn is not None:
            try:
                await self._writer_conn.close()
            except Exception as exc:
                log.warning("store_close_failed", error=str(exc))
            self._writer_conn = None

    async def check_writable(self) -> None:
        if self._pool is None:
            raise StoreClosedError(f"{self!r} is not open")
        try:
            async with self._pool.acquire() as conn:
                readonly = await conn.fetchval("SHOW transaction_read_only")
        except (OSError, asyncpg.PostgresError) as exc:
            raise StoreError(f"the PostgreSQL database cannot be written: {exc}") from None
        if readonly == "on":
            # a hot standby: every session's write would fail later
            raise StoreError("the PostgreSQL database is read-only (a standby?)")

    async def ping(self) -> bool:
        return await self.readiness() is None

    async def readiness(self) -> Outage | None:
        if not self._opened or self._pool is None or self._closing is not None:
            return CLOSED
        if self._writer_task is None or self._writer_task.done():
            return WRITER_STOPPED
        async with self._ping_lock:
            if time.monotonic() - self._pinged[0] < self.ping_every:
                return self._pinged[1]
            why = await self._probe()
            self._pinged = (time.monotonic(), why)
            return why

    async def _probe(self) -> Outage | None:
        try:
            # a read as any other, on a connection of its own: once more on a new one when
            # the server ended the first (one ended connection must not take the instance
            # out of its load balancer), and bounded as reads are
            assert self._probe_pool is not None
            version, readonly = await _read_again(
                self._probe_pool,
                self.statement_wait,
                "fetchrow",
                "SELECT (SELECT max(version) FROM schema_migrations),"
                " current_setting('transaction_read_only')",
            )
        except Exception as exc:
            self.stats.write_error = str(exc)
            return outage(exc) or OTHER
        if readonly == "on":
            self.stats.write_error = "the database is read-only"
            await self._renew_connections()
            return READ_ONLY
        self.stats.write_error = None
        return None if version == latest_version() else SCHEMA_VERSION

    # -- the write queue ------------------------------------------------------------------

    async def _writer_connection(self) -> asyncpg.Connection:
        """The writer's connection, made again when the server dropped it (a restart of
        PostgreSQL must not need one of acsd) or it was found read-only."""
        conn = self._writer_conn
        if conn is not None and self._renew_writer:
            self._writer_conn = None
            conn.terminate()
            conn = None
        if conn is None or conn.is_closed():
            self._writer_conn = conn = await self._connect()
            self._renew_writer = False
        return conn

    async def _renew_connections(self) -> None:
        """After a read-only answer: every connection is made again before its next use.
        A connection keeps the default_transaction_read_only it started with, and one to
        a server that has become a standby stays there; a new one sees the database as it
        is now (the setting lifted, the load balancer's or DNS name's new primary), so
        that acsd recovers without a restart. On a standby that stays one, this costs a
        connection per failed write or readiness probe."""
        self._renew_writer = True
        for pool in (self._pool, self._probe_pool):
            if pool is not None:
                await pool.expire_connections()

    async def _run_batch(self, batch: list[Op]) -> None:
        """Commit the batch, the writes of rows known to be held by another client apart,
        after the others, and waiting HELD_ROW_WAIT for their locks, not lock_timeout.

        Why: the writer runs one batch at a time, so a batch that waits for a row waits
        with every write in it and queued behind it. The first write that meets the lock
        cannot be told from any other and waits lock_timeout out (it may be another
        instance's batch, let go of at once); after that, while the client holds the row,
        its router sends its result again after each 503 and with each periodic Inform,
        and each batch that took it waited lock_timeout again. Now only the row's own
        writes are refused (503 busy, as before), in a batch of their own (each in its
        savepoint, as in any batch): nothing of the others' waits for them, and nothing of
        theirs is undone with them.

        Kept simple on purpose: the rows are known from the writes that met them (a
        session result's device, a call's CallOp.rows), not taken first with SKIP LOCKED,
        which would need every write's rows before it runs; and the held ones still run
        on the writer's one connection, briefly, so that a row let go of is written at
        its next write and forgotten then. Other instances and workers learn of the row
        from their own writes: each keeps this to itself, and the row locks, not this,
        keep the writes correct (a write sent apart is the same write, in its own
        transaction: whole or not at all)."""
        held = self._rows_held()
        if not held:
            await self._write(batch)
            return
        # A write of several rows goes apart when one of them is held, and takes its other
        # rows' later writes in this batch with it: each group keeps queue order, and one
        # row's writes stay in the order they came (its earlier ones, among the others,
        # are written first).
        taken: set[str] = set()  # the rows of the writes sent apart so far
        apart: list[Op] = []
        others: list[Op] = []
        for op in batch:
            rows = op_rows(op)
            if any(row in held or row in taken for row in rows):
                apart.append(op)
                taken.update(rows)
            else:
                others.append(op)
        if not apart:
            await self._write(batch)
            return
        if others:
            await self._write(others)
        await self._write(apart, held=True)

    def _rows_held(self) -> dict[str, float]:
        """The rows known to be held by another client, those forgotten by now left out."""
        if self._held:
            now = time.monotonic()
            if any(until <= now for until in self._held.values()):
                self._held = {row: until for row, until in self._held.items() if until > now}
        return self._held

    def _resolve(self, op: Op, value: Any) -> None:
        if not isinstance(value, Failed):
            # written: its rows are free again (not those it may have left alone: a row
            # still held would then cost the next batch with it one lock_timeout)
            for row in op_written(op):
                self._held.pop(row, None)
        super()._resolve(op, value)

    def _fail(self, batch: list[Op], exc: BaseException) -> None:
        # A wait for a lock that lock_timeout ended: lock_timeout's own, or the 1 ms the
        # rest of a batch waits after one write waited it out (_savepoint_failed), which
        # a lock still held ends as well.
        # The error does not tell which row it waited for: each row of the write is taken
        # for held (one of them is); a free one is forgotten again at its next write, which
        # commits, and cost that write a batch of its own meanwhile.
        if getattr(exc, "sqlstate", None) == _LOCK_TIMEOUT:
            until = time.monotonic() + HELD_ROW_MEMORY
            for op in batch:
                for row in op_rows(op):
                    if row in self._held or len(self._held) < HELD_ROWS:
                        self._held[row] = until
        super()._fail(batch, exc)

    async def _write(
        self, batch: list[Op], *, again: bool = True, tries: int = 0, held: bool = False
    ) -> None:
        """Commit the batch; ``again``: when the server ended the writer's connection before
        the COMMIT was sent, run it once more on a new one (rolled back, it left nothing
        behind; a COMMIT cut short may have been applied, and is not run again). A write
        the server rolled back to break a deadlock with another client (another instance
        or worker writing the same rows in another order) is run again alone, up to
        LOST_RACE_RETRIES times (``tries`` so far), rather than failing its caller.
        ``held``: the batch's rows are known to be held (see _run_batch)."""
        started = time.perf_counter()
        try:
            conn = await self._writer_connection()
        except Exception as exc:
            failed = _as_unavailable(exc)
            # (the server down or restarting: a warning, as every batch fails alike; the
            # writes' own line is store_writes_failing)
            say = log.warning if store_unavailable(failed) is not None else log.error
            say("store_begin_failed", error=str(exc), writes=len(batch))
            self._fail(batch, failed)
            return
        committing = False
        try:
            async with conn.transaction():
                await conn.execute(self._held_limits if held else self._write_limits)
                self._lock_waited = False
                results = await self._apply(conn, batch)
                committing = True
        except Exception as exc:
            if _read_only(exc):
                # Each write alone would be refused alike: fail them all, and let the next
                # batch run on a new connection.
                await self._renew_connections()
                log.debug("store_write_failed", error=repr(exc), writes=len(batch))
                self._fail(batch, exc)
                return
            if _server_gone(exc) or _connection_ended(exc):
                # Retried one at a time, each write would wait out the same dead server
                # (statement_wait each, on a frozen one); this connection may still have
                # a statement in flight: the next batch makes a new one.
                self._renew_writer = True
                if again and not committing and _connection_ended(exc):
                    await self._write(batch, again=False, held=held)
                    return
                log.debug("store_write_failed", error=repr(exc), writes=len(batch))
                self._fail(batch, _as_unavailable(exc))
                return
            if len(batch) == 1 and _lost_race(exc) and tries < LOST_RACE_RETRIES:
                await self._again_alone(batch[0], tries, held)
                return

            async def alone(ops: list[Op]) -> None:
                await self._write(ops, held=held)

            await self._batch_failed(batch, exc, alone)
            return
        lost = [isinstance(value, Failed) and _lost_race(value.error) for value in results]
        if any(lost) and tries < LOST_RACE_RETRIES:
            rows = zip(batch, results, lost, strict=True)
            kept = [(op, value) for op, value, gone in rows if not gone]
            self._committed([op for op, _ in kept], [value for _, value in kept], started)
            for op, gone in zip(batch, lost, strict=True):
                if gone:
                    await self._again_alone(op, tries, held)
            return
        self._committed(batch, results, started)

    async def _again_alone(self, op: Op, tries: int, held: bool) -> None:
        # after a random moment: the two writers would otherwise meet again in step
        await asyncio.sleep(random.uniform(0, 0.005 * (tries + 1)))
        await self._write([op], tries=tries + 1, held=held)

    async def _apply_isolated(self, conn: asyncpg.Connection, op: CallOp) -> Any:
        try:
            async with conn.transaction():  # a savepoint inside the batch's transaction
                return await op.fn(conn)
        except (
            asyncpg.PostgresConnectionError,
            asyncpg.InterfaceError,
            asyncpg.InternalClientError,
            OSError,
        ):
            raise  # nothing of the batch is left to commit
        except Exception as exc:
            if not _lost_race(exc):  # (run again alone: logged if that fails too)
                log_failed(exc, op.kind)
            await self._savepoint_failed(conn, exc)
            return Failed(exc)

    async def _apply_saves(self, conn: asyncpg.Connection, saves: list[SaveOp]) -> list[Any]:
        async def failed(exc: Exception) -> None:
            await self._savepoint_failed(conn, exc)

        return await apply_saves(conn, saves, failed)

    async def _savepoint_failed(self, conn: asyncpg.Connection, exc: Exception) -> None:
        """After a write of the batch failed in its savepoint (undone, the batch goes on):
        when it had waited lock_timeout out for another client's lock, the rest of the
        batch waits for locks no more. Every other write of the batch has waited that long
        behind it already, and a batch that met the lock again (the same row's session
        save and PATCH, the run of saves written again one at a time, a table locked)
        waited lock_timeout for each, with every write queued behind it."""
        if self._lock_waited or getattr(exc, "sqlstate", None) != _LOCK_TIMEOUT:
            return
        self._lock_waited = True
        # (in the batch's transaction, now that the savepoint is undone: to its end)
        await conn.execute(_NO_MORE_LOCK_WAIT)

    # -- reads ----------------------------------------------------------------------------

    @property
    def _read(self) -> asyncpg.Pool:
        if self._pool is None:
            raise StoreClosedError(f"{self!r} is not open")
        return self._pool

    async def _reading(self, method: str, sql: str, *args: Any) -> Any:
        return await _read_again(self._read, self.statement_wait, method, sql, *args)

    async def _fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        return await self._reading("fetch", sql, *args)

    async def _scalar(self, sql: str, *args: Any) -> Any:
        return await self._reading("fetchval", sql, *args)

    async def _one(self, sql: str, *args: Any) -> DeviceRecord | None:
        row = await self._reading("fetchrow", sql, *args)
        return device_record(row) if row is not None else None

    async def _get(self, table: Table, where: str, *args: Any) -> Any:
        row = await self._reading("fetchrow", f"{table.select} {where}", *args)
        return table.record(row) if row is not None else None

    async def _page(
        self,
        columns: str,
        table: str,
        where: str,
        order: str,
        args: Args,
        limit: int,
        offset: int,
        *,
        after: str | None = None,
        wide: bool = False,
        scan_once: bool = False,
    ) -> tuple[list[Sequence[Any]], int]:
        """One page and the count of all matching rows, in one statement (one snapshot: the
        total always agrees with the page, an empty one past the end included). ``after``
        (a value of ``order``, a single unique column): the page starts past it, while the
        total still counts every matching row.

        The total is a count of its own (an aggregate that an index-only scan can answer),
        not ``count(*) OVER ()`` over the page's rows: that window reads and holds every
        matching row, wide ones too, before the first is shown (0.2-0.7 s for any list of
        100k devices), and keeps the planner from reading the page in index order and
        stopping at LIMIT.

        With ``order`` a single unique column: ``wide``, the page's keys come first (from
        an index where one serves) and only the page's rows are read from the table, for
        tables whose rows are large; ``scan_once``, for a filter that no index answers (a
        search in every row's text), the keys of the matching rows and their count come
        from one scan (in parallel workers where the server has them), not two."""
        n = len(args.values)
        values = [*args.values, max(0, limit), max(0, offset)]
        past = ""
        if after is not None:
            values.append(after)
            past = f" AND {order} > ${n + 3}"
        window = f"ORDER BY {order} LIMIT ${n + 1} OFFSET ${n + 2}"
        count = f"SELECT count(*) FROM {table} WHERE {where}"
        if scan_once and after is None:
            # The count is a window over the matching keys (narrow rows). An empty page
            # has none: only then is the count made apart (coalesce and CASE run it
            # lazily), and only past the end (a page from the start is empty when
            # nothing matches: 0).
            page = (
                f"SELECT {columns}, true, keys.acsd_total FROM {table} JOIN"
                f" (SELECT {order} AS acsd_key, count(*) OVER () AS acsd_total"
                f" FROM {table} WHERE {where} {window}) AS keys"
                f" ON {table}.{order} = keys.acsd_key"
            )
            sql = (
                f"SELECT page.*, coalesce(page.acsd_total, CASE WHEN ${n + 2} = 0"
                f" AND ${n + 1} > 0 THEN 0 ELSE ({count}) END)"
                f" FROM (SELECT 1) AS one LEFT JOIN LATERAL ({page}) AS page ON true"
                f" ORDER BY {order}"
            )
            rows = await self._reading("fetch", sql, *values)
            return _paged(rows, 3)
        if wide or scan_once:
            page = (
                f"SELECT {columns}, true FROM {table} WHERE {order} IN"
                f" (SELECT {order} FROM {table} WHERE ({where}){past} {window})"
            )
        else:
            page = f"SELECT {columns}, true FROM {table} WHERE ({where}){past} {window}"
        # The page LEFT JOINed to its count: one row (the page's columns NULL, its `true`
        # too) when the page is empty, so that the total is still this snapshot's.
        sql = (
            f"SELECT page.*, total.acsd_total"
            f" FROM ({count}) AS total (acsd_total)"
            f" LEFT JOIN LATERAL ({page}) AS page ON true ORDER BY {order}"
        )
        rows = await self._reading("fetch", sql, *values)
        return _paged(rows, 2)


def _paged(rows: list[asyncpg.Record], extra: int) -> tuple[list[Sequence[Any]], int]:
    """The page and total of :meth:`PgCore._page`'s rows. Their last ``extra`` columns
    are not the records': the page's marker (NULL in the one row of an empty page) first,
    the total last."""
    total = int(rows[0][-1])
    if rows[0][-extra] is None:
        return [], total
    return [tuple(row)[:-extra] for row in rows], total


#: capitals of three scripts, and what a database folding Unicode makes of them
_CASE_PROBE = ("\u00c4\u03a3\u0414", "\u00e4\u03c3\u0434")


async def _check_text_support(conn: asyncpg.Connection) -> bool:
    """A database whose LC_CTYPE is C (or POSIX) folds ASCII letters only: a device search
    (q=) for "ДОМ" then misses "Дом", "østergade" "Østergade". Said at each start, as
    only the database's re-creation changes it. A database that is not UTF-8 (LATIN1)
    cannot hold the probe at all: said so instead, and it opens as it did. Whether the
    database is UTF-8 (the device search folds text in Unicode only there)."""
    encoding = await conn.fetchval("SHOW server_encoding")
    if encoding != "UTF8":
        log.warning(
            "store_encoding_not_utf8",
            server_encoding=encoding,
            message="the database is not UTF-8: a write of a name or notes in letters it "
            "cannot hold fails, and device searches compare letters beyond ASCII by their "
            "exact case; create the database with -E UTF8 and restore a dump",
        )
        return False
    if await conn.fetchval("SELECT lower($1)", _CASE_PROBE[0]) == _CASE_PROBE[1]:
        return True
    log.warning(
        "store_case_folding_ascii_only",
        lc_ctype=await conn.fetchval("SHOW lc_ctype"),
        message="the database folds case for ASCII letters only: device searches (q=) in "
        "other letters match their exact case only; create the database with a UTF-8 "
        "locale (LC_CTYPE C.UTF-8 or en_US.UTF-8) and restore a dump into it",
    )
    return True
