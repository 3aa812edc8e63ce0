"""SQLite backend: WAL, one batching writer task, a separate reader connection.

Why this shape:

- aiosqlite runs each connection on its own thread and costs ~100 µs per awaited call, so
  per-session transactions cannot reach the target rate (1,200 sessions/s on one core).
  Every write goes through one queue; one writer task drains it and commits everything
  queued in ONE transaction with a handful of awaits (``executemany`` does the rows).
  Under load the batches grow by themselves: while one commits, the next one queues.
- The merge of a session's values into the stored ``params`` happens inside SQLite
  (``json_patch``), so the event loop never decodes and re-encodes stored parameter trees.
- WAL lets the reader connection (and other processes such as the operator CLI) read while
  the writer commits. Writers in other processes serialise on ``BEGIN IMMEDIATE`` and wait
  up to ``busy_timeout`` for the lock instead of failing at once.
- ``synchronous=NORMAL`` in WAL: a committed transaction survives a crash of the process;
  only a power loss / OS crash may lose the last few commits (never corrupts the file).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import aiosqlite

from acsd import clock
from acsd.ids import is_id, new_id
from acsd.log import get_logger
from acsd.store.base import (
    ConflictError,
    DeviceRecord,
    SessionResult,
    StoreClosedError,
    StoreError,
)
from acsd.store.schema import latest_version, migrate

log = get_logger("acsd.store")

BUSY_TIMEOUT = 5.0
MAX_BATCH = 500
JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024
#: upper bounds of the batch-size histogram in :class:`WriterStats` (the last catches all)
BATCH_BUCKETS: tuple[float, ...] = (1, 2, 5, 10, 20, 50, 100, 200, 500, float("inf"))


def dumps(value: Any) -> str:
    # allow_nan=False: NaN/Infinity are not JSON and would poison json_patch for the row.
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


_MAC_SEPARATORS = re.compile(r"[\s:.\-]")
_MAC_HEX = re.compile(r"^[0-9a-f]{12}$")


def mac_key(mac: str | None) -> str | None:
    """``00:11:22:AA:BB:CC``, ``0011.22aa.bbcc``, ``00-11-22-aa-bb-cc`` -> ``001122aabbcc``;
    None when it is not a MAC address (then it can never match another)."""
    if not mac:
        return None
    digits = _MAC_SEPARATORS.sub("", mac).lower()
    return digits if _MAC_HEX.match(digits) else None


def serial_key(serial_number: str) -> str:
    return serial_number.lower()


# -- rows <-> records ---------------------------------------------------------------------

_FIELDS = [f.name for f in fields(DeviceRecord)]
_SELECT = f"SELECT {', '.join(_FIELDS)} FROM devices"
_JSON_FIELDS = ("wifi", "dhcp", "status", "params", "absent_paths", "provisioning")
_JSON_INDEXES = tuple(_FIELDS.index(name) for name in _JSON_FIELDS)


_BOOL_INDEXES = (_FIELDS.index("drift_check"),)


def _record(row: Sequence[Any]) -> DeviceRecord:
    values = list(row)
    for index in _JSON_INDEXES:
        if values[index] is not None:
            values[index] = json.loads(values[index])
    for index in _BOOL_INDEXES:
        values[index] = bool(values[index])
    return DeviceRecord(*values)


# -- session writes -----------------------------------------------------------------------

# One statement for both "register" and "update": it inserts a new row, or, when the
# serial key exists, updates that row. Bound positionally (see _SaveOp.args):
#  1 id for a new row     2 serial_number   3 serial_key (the conflict target)
#  4 mac_address          5 mac_key         6 oui   7 product_class   8 manufacturer
#  9 model_name          10 software_version  11 hardware_version   12 profile
# 13 status (JSON)       14 public_ip        15 at                   16 periodic_interval
# 17 params (JSON)       18 absent_paths (JSON or NULL)              19 connection_request_url
# 20 reset_params (0/1)
# 21 provisioning (JSON or NULL)  22 state or NULL  23 jobs or NULL  24 revision or NULL
# 25 dhcp (JSON or NULL)
_SAVE_SQL = """
INSERT INTO devices (
    id, serial_number, serial_key, mac_address, mac_key, oui, product_class, manufacturer,
    model_name, software_version, hardware_version, profile, state, revision, jobs, status,
    public_ip, last_inform, periodic_interval, params, absent_paths, connection_request_url,
    created, updated, provisioning)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 'ACTIVE', 0, 0, ?13,
        ?14, ?15, ?16, ?17, coalesce(?18, '[]'), ?19, ?15, ?15, coalesce(?21, '{}'))
ON CONFLICT (serial_key) DO UPDATE SET
    provisioning = coalesce(?21, provisioning),
    -- what the session decided about state/jobs/dhcp holds only for the revision it saw
    state = CASE WHEN ?22 IS NOT NULL AND revision = ?24 THEN ?22 ELSE state END,
    jobs = CASE WHEN ?23 IS NOT NULL AND revision = ?24 THEN ?23 ELSE jobs END,
    dhcp = CASE WHEN ?25 IS NOT NULL AND revision = ?24 THEN ?25 ELSE dhcp END,
    oui = excluded.oui,
    product_class = excluded.product_class,
    manufacturer = excluded.manufacturer,
    model_name = coalesce(excluded.model_name, model_name),
    software_version = coalesce(excluded.software_version, software_version),
    hardware_version = coalesce(excluded.hardware_version, hardware_version),
    mac_address = coalesce(excluded.mac_address, mac_address),
    mac_key = CASE WHEN excluded.mac_address IS NULL THEN mac_key ELSE excluded.mac_key END,
    profile = coalesce(excluded.profile, profile),
    periodic_interval = coalesce(excluded.periodic_interval, periodic_interval),
    connection_request_url = coalesce(excluded.connection_request_url, connection_request_url),
    status = excluded.status,
    public_ip = excluded.public_ip,
    last_inform = excluded.last_inform,
    -- result wins; skipping json_patch for an empty result spares re-serialising the tree
    params = CASE WHEN ?20 THEN excluded.params
                  WHEN excluded.params = '{}' THEN params
                  ELSE json_patch(params, excluded.params) END,
    absent_paths = CASE WHEN ?18 IS NOT NULL THEN ?18
                        WHEN ?20 THEN '[]'
                        ELSE absent_paths END,
    updated = excluded.updated
"""

_IDS_SQL = "SELECT id, serial_key FROM devices WHERE id IN (SELECT value FROM json_each(?))"
_KEYS_SQL = (
    "SELECT id, serial_key FROM devices WHERE serial_key IN (SELECT value FROM json_each(?))"
)


@dataclass(slots=True)
class _SaveOp:
    #: the bound parameters of _SAVE_SQL; [0] and [2] are filled in by the writer
    args: list[Any]
    serial_key: str
    device_id: str | None
    future: asyncio.Future[Any]


@dataclass(slots=True)
class _UpsertOp:
    record: DeviceRecord
    future: asyncio.Future[Any]


_Op = _SaveOp | _UpsertOp
_STOP = object()


def _save_args(result: SessionResult) -> list[Any]:
    ident = result.identity
    return [
        None,
        ident.serial_number,
        None,
        result.mac_address,
        mac_key(result.mac_address),
        ident.oui,
        ident.product_class,
        ident.manufacturer,
        ident.model_name,
        ident.software_version,
        ident.hardware_version,
        result.profile,
        dumps(result.status),
        result.remote_ip,
        result.at,
        result.periodic_interval,
        dumps(result.params),
        None if result.absent_paths is None else dumps(result.absent_paths),
        result.connection_request_url,
        1 if result.reset_params else 0,
        None if result.provisioning is None else dumps(result.provisioning),
        result.state,
        result.jobs,
        result.revision,
        None if result.dhcp is None else dumps(result.dhcp),
    ]


# -- operator writes ----------------------------------------------------------------------

# Fields that the CPE reports (or the session engine derives); an operator update keeps them.
_REPORTED = frozenset(
    {
        "oui",
        "product_class",
        "manufacturer",
        "model_name",
        "software_version",
        "hardware_version",
        "profile",
        "status",
        "public_ip",
        "last_inform",
        "periodic_interval",
        "params",
        "absent_paths",
        "connection_request_url",
        "provisioning",
    }
)
_OPERATOR = [name for name in _FIELDS if name not in _REPORTED | {"id", "created", "updated"}]
_INSERT_COLUMNS = [*_FIELDS, "serial_key", "mac_key"]
_INSERT_SQL = (
    f"INSERT INTO devices ({', '.join(_INSERT_COLUMNS)})"
    f" VALUES ({', '.join('?' for _ in _INSERT_COLUMNS)})"
)
_UPDATE_COLUMNS = [*_OPERATOR, "serial_key", "mac_key", "updated"]
_UPDATE_SQL = f"UPDATE devices SET {', '.join(f'{c} = ?' for c in _UPDATE_COLUMNS)} WHERE id = ?"


def _column_value(record: DeviceRecord, name: str) -> Any:
    if name == "serial_key":
        return serial_key(record.serial_number)
    if name == "mac_key":
        return mac_key(record.mac_address)
    value = getattr(record, name)
    if name in _JSON_FIELDS and value is not None:
        return dumps(value)
    return value


# -- statistics ---------------------------------------------------------------------------


@dataclass(slots=True)
class WriterStats:
    """Counters of the writer task (for /metrics and tests). Monotonic except ``last_batch``
    and ``queue_depth``."""

    #: committed transactions
    batches: int = 0
    #: writes (sessions and operator upserts) committed
    writes: int = 0
    #: writes whose caller got an exception
    failed: int = 0
    #: batches rolled back because one write failed, then retried one write at a time
    fallbacks: int = 0
    largest_batch: int = 0
    last_batch: int = 0
    #: wall time spent inside write transactions (BEGIN .. COMMIT), seconds
    busy_seconds: float = 0.0
    #: batch-size histogram: upper bound (BATCH_BUCKETS) -> number of committed batches
    batch_sizes: dict[float, int] = field(default_factory=lambda: dict.fromkeys(BATCH_BUCKETS, 0))
    queue_depth: int = 0

    def _record_batch(self, size: int, seconds: float) -> None:
        self.batches += 1
        self.writes += size
        self.last_batch = size
        self.largest_batch = max(self.largest_batch, size)
        self.busy_seconds += seconds
        for bound in BATCH_BUCKETS:
            if size <= bound:
                self.batch_sizes[bound] += 1
                break


# -- the store ----------------------------------------------------------------------------


class SqliteStore:
    """The default :class:`~acsd.store.base.Store`. Create, ``await open()``, use, ``await
    close()``. One instance per process and database file."""

    def __init__(
        self,
        path: str | Path,
        *,
        max_batch: int = MAX_BATCH,
        busy_timeout: float = BUSY_TIMEOUT,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.path = Path(path)
        self.max_batch = max_batch
        self.busy_timeout = busy_timeout
        self.stats = WriterStats()
        #: versions that open() applied (empty when the schema was up to date)
        self.migrations_applied: list[int] = []
        self._writer_conn: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._writer_task: asyncio.Task[None] | None = None
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
        try:
            self._writer_conn = await self._connect()
            mode = await self._scalar(self._writer_conn, "PRAGMA journal_mode = WAL")
            if str(mode).lower() != "wal":
                # e.g. a file system without shared memory: readers would block the writer.
                raise StoreError(f"{self.path}: cannot switch to WAL (journal_mode={mode})")
            # A burst can grow the WAL far beyond its checkpoint size; cap what stays on disk.
            await self._writer_conn.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT}")
            self.migrations_applied = await migrate(self._writer_conn)
            self._reader = await self._connect()
            # The reader must never write: all writes go through the one writer task.
            await self._reader.execute("PRAGMA query_only = ON")
        except BaseException:
            await self._close_connections()
            raise
        if self.migrations_applied:
            log.info("store_migrated", path=str(self.path), applied=self.migrations_applied)
        self._opened = True
        self._accepting = True
        self._writer_task = asyncio.create_task(self._writer(), name="acsd-store-writer")

    async def _connect(self) -> aiosqlite.Connection:
        try:
            # isolation_level=None: no implicit BEGIN; the writer issues BEGIN IMMEDIATE
            # itself and the reader runs every query in its own (short) read transaction.
            conn = await aiosqlite.connect(str(self.path), isolation_level=None)
        except Exception as exc:
            raise StoreError(f"cannot open database {self.path}: {exc}") from exc
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
    async def _scalar(conn: aiosqlite.Connection, sql: str, args: Sequence[Any] = ()) -> Any:
        rows = list(await conn.execute_fetchall(sql, args))
        return rows[0][0] if rows else None

    async def close(self) -> None:
        """Stop accepting writes, commit everything queued, stop the writer, disconnect.
        Idempotent; concurrent callers all wait for the same shutdown."""
        if self._closing is None:
            self._accepting = False
            self._closing = asyncio.ensure_future(self._shutdown())
        await asyncio.shield(self._closing)

    async def _shutdown(self) -> None:
        try:
            if self._writer_task is not None:
                # FIFO: everything queued before the sentinel is committed first.
                self._queue.put_nowait(_STOP)
                # A crashed or cancelled writer has already failed its callers and logged.
                await asyncio.gather(self._writer_task, return_exceptions=True)
        finally:
            self._fail_queued(StoreClosedError(f"{self!r} closed before this write ran"))
            wrote = self.stats.writes > 0 or bool(self.migrations_applied)
            if self._writer_conn is not None and self._opened and wrote:
                try:
                    # Keeps planner statistics fresh. Skipped for read-only users (the CLI):
                    # it may need the write lock and wait behind a busy daemon.
                    await self._writer_conn.execute("PRAGMA optimize")
                except Exception as exc:  # best effort only
                    log.warning("store_optimize_failed", error=str(exc))
            await self._close_connections()

    async def _close_connections(self) -> None:
        for conn in (self._reader, self._writer_conn):
            if conn is not None:
                try:
                    await conn.close()
                except Exception as exc:
                    log.warning("store_close_failed", error=str(exc))
        self._reader = None
        self._writer_conn = None

    def _fail_queued(self, exc: BaseException) -> None:
        while True:
            try:
                op = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            if op is not _STOP and not op.future.done():
                op.future.set_exception(exc)
                self.stats.failed += 1

    async def ping(self) -> bool:
        if not self._opened or self._reader is None or self._closing is not None:
            return False
        try:
            version = await self._scalar(self._reader, "SELECT max(version) FROM schema_migrations")
        except Exception:
            return False
        return version == latest_version()

    # -- reads ----------------------------------------------------------------------------

    @property
    def _read(self) -> aiosqlite.Connection:
        if self._reader is None:
            raise StoreClosedError(f"{self!r} is not open")
        return self._reader

    async def _one(self, sql: str, args: Sequence[Any]) -> DeviceRecord | None:
        rows = list(await self._read.execute_fetchall(sql, args))
        return _record(rows[0]) if rows else None

    async def find_device_for_cpe(
        self, serial_number: str, mac_address: str | None = None
    ) -> DeviceRecord | None:
        record = await self._one(f"{_SELECT} WHERE serial_key = ?", (serial_key(serial_number),))
        if record is not None:
            return record
        key = mac_key(mac_address)
        if key is None:
            return None
        # Several records with one MAC is an operator error; bind to the oldest, always
        # the same one, rather than flip between them.
        return await self._one(f"{_SELECT} WHERE mac_key = ? ORDER BY created, id LIMIT 1", (key,))

    async def get_device(self, key: str) -> DeviceRecord | None:
        if is_id(key):
            record = await self._one(f"{_SELECT} WHERE id = ?", (key,))
            if record is not None:
                return record
            # A 24-hex serial number is unlikely but possible: fall through.
        return await self._one(f"{_SELECT} WHERE serial_key = ?", (serial_key(key),))

    async def list_devices(self, *, limit: int = 1000, offset: int = 0) -> list[DeviceRecord]:
        rows = await self._read.execute_fetchall(
            f"{_SELECT} ORDER BY serial_key, id LIMIT ? OFFSET ?",
            (max(0, limit), max(0, offset)),
        )
        return [_record(row) for row in rows]

    async def count_devices(self) -> int:
        return int(await self._scalar(self._read, "SELECT count(*) FROM devices"))

    # -- writes ---------------------------------------------------------------------------

    def _submit(self, op: _Op) -> None:
        if not self._accepting:
            state = "closed" if self._closing is not None else "not open"
            raise StoreClosedError(f"{self!r} is {state}; write refused")
        self._queue.put_nowait(op)

    async def save_session(self, result: SessionResult) -> str:
        serial = result.identity.serial_number
        if not serial:
            # An empty serial key would merge every such CPE into one record.
            raise ValueError("SessionResult.identity.serial_number is empty")
        # Encode now: a value that is not JSON fails this caller alone, at once, and later
        # changes to the caller's dicts cannot leak into the write.
        args = _save_args(result)
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._submit(_SaveOp(args, serial_key(serial), result.device_id, future))
        # Not shielded on purpose: a cancelled caller's write is still committed (the data
        # came from the CPE and is not lost), the caller just stops waiting for it.
        return await future

    async def upsert_device(self, record: DeviceRecord) -> DeviceRecord:
        if not record.serial_number:
            raise ValueError("DeviceRecord.serial_number is empty")
        for name in _JSON_FIELDS:  # fail fast, in the caller, on values that are not JSON
            value = getattr(record, name)
            if value is not None:
                dumps(value)
        future: asyncio.Future[DeviceRecord] = asyncio.get_running_loop().create_future()
        self._submit(_UpsertOp(record, future))
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
                if first is _STOP:
                    break
                batch = [first]
                while len(batch) < self.max_batch:
                    try:
                        op = self._queue.get_nowait()
                    except asyncio.QueueEmpty:
                        break
                    if op is _STOP:
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
            if len(batch) == 1:
                log.warning("store_write_failed", error=repr(exc), kind=type(batch[0]).__name__)
                self._fail(batch, exc)
                return
            # Which write broke the batch is unknown: give each its own transaction, so
            # one bad write fails only its own caller.
            self.stats.fallbacks += 1
            log.warning("store_batch_failed", error=repr(exc), writes=len(batch))
            for op in batch:
                await self._run_batch([op])
            return
        self.stats._record_batch(len(batch), time.perf_counter() - started)
        for op, value in zip(batch, results, strict=True):
            if not op.future.done():  # the caller may have been cancelled
                op.future.set_result(value)

    def _fail(self, batch: list[_Op], exc: BaseException) -> None:
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
        """Apply the batch in order inside the open transaction; one result per op."""
        results: list[Any] = []
        start = 0
        while start < len(batch):
            op = batch[start]
            if isinstance(op, _UpsertOp):
                results.append(await self._apply_upsert(conn, op.record))
                start += 1
                continue
            end = start + 1
            while end < len(batch) and isinstance(batch[end], _SaveOp):
                end += 1
            saves: list[_SaveOp] = batch[start:end]  # type: ignore[assignment]
            results.extend(await self._apply_saves(conn, saves))
            start = end
        return results

    async def _apply_saves(self, conn: aiosqlite.Connection, saves: list[_SaveOp]) -> list[str]:
        # A session bound to a record updates that record even when the serial differs
        # (bound by MAC): its stored serial key becomes the conflict target of the upsert.
        bound_keys: dict[str, str] = {}
        wanted = [op.device_id for op in saves if op.device_id]
        if wanted:
            rows = await conn.execute_fetchall(_IDS_SQL, (dumps(wanted),))
            bound_keys = {row[0]: row[1] for row in rows}
        unbound = False
        for op in saves:
            key = bound_keys.get(op.device_id) if op.device_id else None
            if key is None:
                # New CPE, or its record was deleted meanwhile: find or create by serial.
                key = op.serial_key
                unbound = True
            op.args[0] = new_id()
            op.args[2] = key
        await conn.executemany(_SAVE_SQL, [op.args for op in saves])
        ids_by_key: dict[str, str] = {}
        if unbound:
            keys = sorted({op.serial_key for op in saves})
            rows = await conn.execute_fetchall(_KEYS_SQL, (dumps(keys),))
            ids_by_key = {row[1]: row[0] for row in rows}
        out: list[str] = []
        for op in saves:
            if op.device_id and op.device_id in bound_keys:
                out.append(op.device_id)
            else:
                out.append(ids_by_key[op.serial_key])
        return out

    async def _apply_upsert(self, conn: aiosqlite.Connection, record: DeviceRecord) -> DeviceRecord:
        key = serial_key(record.serial_number)
        by_serial = await self._scalar(conn, "SELECT id FROM devices WHERE serial_key = ?", (key,))
        by_id = None
        if record.id and is_id(record.id):
            by_id = await self._scalar(conn, "SELECT id FROM devices WHERE id = ?", (record.id,))
        if by_id is not None and by_serial is not None and by_id != by_serial:
            raise ConflictError(
                f"serial number {record.serial_number!r} already belongs to device {by_serial}"
            )
        now = clock.now()
        target = by_id or by_serial
        if target is not None:
            # Operator fields replace; what the CPE reported stays as the CPE reported it.
            values = [_column_value(record, name) for name in _OPERATOR]
            values += [key, mac_key(record.mac_address), now, target]
            await conn.execute(_UPDATE_SQL, values)
        else:
            target = record.id if record.id and is_id(record.id) else new_id()
            stored = DeviceRecord(**{name: getattr(record, name) for name in _FIELDS})
            stored.id = target
            stored.created = record.created or now
            stored.updated = now
            values = [_column_value(stored, name) for name in _INSERT_COLUMNS]
            await conn.execute(_INSERT_SQL, values)
        rows = list(await conn.execute_fetchall(f"{_SELECT} WHERE id = ?", (target,)))
        return _record(rows[0])
