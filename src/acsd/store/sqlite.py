"""SQLite backend: WAL, one batching writer task, a separate reader connection.

Why this shape:

- aiosqlite runs each connection on its own thread and costs ~100 µs per awaited call, so
  per-session transactions cannot reach the target rate (1,200 sessions/s on one core).
  Every write goes through one queue; one writer task drains it and commits everything
  queued in ONE transaction with a handful of awaits (``executemany`` does the rows).
  Under load the batches grow by themselves: while one commits, the next one queues.
- Operator writes (the API's) are queued calls ``fn(conn)`` in the same batches; each one
  writes its record and its audit entry together, and runs in a savepoint when it shares
  its batch, so a conflict undoes only that call instead of forcing a retry of the batch.
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
import math
import os
import re
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import aiosqlite
import orjson

from acsd import clock
from acsd.ids import is_id, new_id, normal_id
from acsd.log import get_logger
from acsd.store.addresses import address_clash
from acsd.store.base import (
    ABSENT,
    ApnAccountRecord,
    ApnDeviceRecord,
    ApnNetworkRecord,
    ApnOperationRecord,
    AuditRecord,
    ChangedError,
    ConflictError,
    CustomerRecord,
    DeviceQuery,
    DeviceRecord,
    DuplicateError,
    InternetAccountQuery,
    InternetAccountRecord,
    LaterLineError,
    MacChange,
    ModelRecord,
    SessionResult,
    StaleResultError,
    StateError,
    StoreClosedError,
    StoreError,
    TokenRecord,
    store_unavailable,
)
from acsd.store.schema import latest_version, migrate

#: every other confirmed line's address, additional range and router (a damaged confirm
#: body yields no range rather than failing every confirm; the address is NULL on a line
#: whose router's next line took it over, see confirm_internet_account)
_CLAIMS_SQL = (
    "SELECT id, ip_address, device,"
    " CASE WHEN json_valid(confirm) THEN json_extract(confirm, '$.net.lanNet') END,"
    " CASE WHEN json_valid(confirm) THEN json_extract(confirm, '$.net.lanSubnet') END"
    " FROM internet_accounts WHERE id != ? AND state IN ('CONFIRMED', 'ACTIVE')"
)

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
#: how much nicer than the event loop the writer's and the checkpointer's threads run
BACKGROUND_NICE = 10
#: upper bounds of the batch-size histogram in :class:`WriterStats` (the last catches all)
BATCH_BUCKETS: tuple[float, ...] = (1, 2, 5, 10, 20, 50, 100, 200, 500, float("inf"))


def dumps(value: Any) -> str:
    # allow_nan=False: NaN/Infinity are not JSON and would poison json_patch for the row.
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def dumps_params(params: dict[str, list[Any]]) -> str:
    """The CPE's parameter tree (name -> [value, type], strings only): written every
    session, several KB, so orjson (ten times faster here). orjson would turn a NaN into
    null silently, but a CPE's values are strings; anything else falls back to :func:`dumps`."""
    try:
        return orjson.dumps(params).decode()
    except TypeError:
        return dumps(params)


def _loads(text: str) -> Any:
    return orjson.loads(text)


_MAC_SEPARATORS = re.compile(r"[\s:.\-]")
_MAC_HEX = re.compile(r"^[0-9a-f]{12}\Z")


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
_COLUMNS = ", ".join(_FIELDS)
_SELECT = f"SELECT {_COLUMNS} FROM devices"
# The same columns for a session's look-up: the parameter tree and the status left out
# ('{}' in their place). A session writes a new status and seldom needs the tree, and an
# open session would otherwise hold both, decoded, for as long as it runs.
_SESSION_LEFT_OUT = ("params", "status")
_SELECT_FOR_SESSION = "SELECT {} FROM devices".format(
    ", ".join(f"'{{}}' AS {name}" if name in _SESSION_LEFT_OUT else name for name in _FIELDS)
)
_JSON_FIELDS = (
    "wifi", "dhcp", "status", "params", "absent_paths", "provisioning", "read_plan", "sim"
)  # fmt: skip
_JSON_INDEXES = tuple(_FIELDS.index(name) for name in _JSON_FIELDS)


_BOOL_INDEXES = (_FIELDS.index("drift_check"), _FIELDS.index("mac_from_router"))


def _record(row: Sequence[Any]) -> DeviceRecord:
    values = list(row)
    for index in _JSON_INDEXES:
        if values[index] is not None:
            values[index] = _loads(values[index])
    for index in _BOOL_INDEXES:
        values[index] = bool(values[index])
    return DeviceRecord(*values)


# -- session writes -----------------------------------------------------------------------

# One statement for both "register" and "update": it inserts a new row, or, when the
# serial key exists, updates that row. Bound positionally (see _SaveOp.args):
#  1 id for a new row     2 serial_number   3 serial_key (the conflict target)
#  4 mac_address          5 mac_key (both: as reported; dropped if any device has it)
#                                            6 oui   7 product_class   8 manufacturer
#  9 model_name          10 software_version  11 hardware_version   12 profile
# 13 status (JSON)       14 public_ip        15 at                   16 periodic_interval
# 17 params (JSON)       18 absent_paths (JSON or NULL)              19 connection_request_url
# 20 reset_params (0/1)
# 21 provisioning (JSON or NULL)  22 state or NULL  23 jobs or NULL  24 revision or NULL
# 25 dhcp (JSON or NULL)
# 26 cr_username or NULL   27 cr_password or NULL (NULL keeps the stored value)
# 28 read_plan (JSON or NULL: NULL keeps the stored one)   29 sim (JSON or NULL: keeps)
_SAVE_SQL = """
INSERT INTO devices (
    id, serial_number, serial_key, mac_address, mac_key, oui, product_class, manufacturer,
    model_name, software_version, hardware_version, profile, state, revision, jobs, status,
    public_ip, last_inform, periodic_interval, params, absent_paths, connection_request_url,
    created, updated, provisioning, cr_username, cr_password, read_plan, sim, mac_from_router)
SELECT ?1, ?2, ?3,
       CASE WHEN taken THEN NULL ELSE ?4 END,
       CASE WHEN taken THEN NULL ELSE ?5 END,
       ?6, ?7, ?8, ?9, ?10, ?11, ?12, 'ACTIVE', 0, 0, ?13,
       ?14, ?15, ?16, ?17, coalesce(?18, '[]'), ?19, ?15, ?15, coalesce(?21, '{}'), ?26, ?27,
       ?28, ?29,
       ?5 IS NOT NULL AND NOT taken
-- whether a device has the reported MAC, looked up once (the router's own record, too: a
-- record that has it keeps it as it is); "WHERE true" lets SQLite parse the upsert
FROM (SELECT ?5 IS NOT NULL AND EXISTS (SELECT 1 FROM devices WHERE mac_key = ?5) AS taken)
WHERE true
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
    -- The router's MAC only fills a record that has none and only when no device has it
    -- (excluded.* is NULL then): the operator's MAC is the one the API's contract is about,
    -- and a router must not squat the MAC of a device the operator has yet to register.
    mac_address = coalesce(mac_address, excluded.mac_address),
    mac_key = CASE WHEN mac_address IS NULL THEN excluded.mac_key ELSE mac_key END,
    mac_from_router = CASE WHEN mac_address IS NULL THEN excluded.mac_from_router
                           ELSE mac_from_router END,
    profile = coalesce(excluded.profile, profile),
    periodic_interval = coalesce(excluded.periodic_interval, periodic_interval),
    connection_request_url = coalesce(excluded.connection_request_url, connection_request_url),
    cr_username = coalesce(?26, cr_username),
    cr_password = coalesce(?27, cr_password),
    read_plan = coalesce(?28, read_plan),
    sim = coalesce(?29, sim),
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

_IDS_SQL = (
    "SELECT id, serial_key, last_inform FROM devices WHERE id IN (SELECT value FROM json_each(?))"
)
_KEYS_SQL = (
    "SELECT id, serial_key FROM devices WHERE serial_key IN (SELECT value FROM json_each(?))"
)
_HEARD_SQL = (
    "SELECT serial_key, last_inform FROM devices"
    " WHERE serial_key IN (SELECT value FROM json_each(?))"
)


@dataclass(slots=True)
class _SaveOp:
    #: the bound parameters of _SAVE_SQL; [0] and [2] are filled in by the writer
    args: list[Any]
    serial_key: str
    device_id: str | None
    future: asyncio.Future[Any]
    #: SessionResult.at and .since: the result is stale unless the record's last_inform
    #: is still ``since``, and once written it is ``at``
    at: float = 0.0
    since: float | None = None
    #: SessionResult.bound_serial as a serial key: stale when the record's differs
    bound_key: str | None = None


@dataclass(slots=True)
class _CallOp:
    """Any other write: ``fn(conn)`` runs inside the batch transaction and its return value
    goes to the caller. ``fn`` may run more than once (a batch that fails is retried one
    write at a time), so it must build everything it writes from its inputs, never from
    state left behind by an earlier attempt."""

    kind: str
    fn: Callable[[aiosqlite.Connection], Awaitable[Any]]
    future: asyncio.Future[Any]


@dataclass(slots=True)
class _Failed:
    """The outcome of a write that failed alone inside a batch that commits."""

    error: Exception


_Op = _SaveOp | _CallOp
_STOP = object()
#: name of the savepoint that isolates one call in a batch (it is never nested)
_SAVEPOINT = "acsd_call"


def _save_args(result: SessionResult) -> list[Any]:
    ident = result.identity
    # A router's MAC is written as the seed writes MACs ("123456789012"), whatever the
    # firmware's notation; one that is no MAC address is not written at all.
    mac = mac_key(result.mac_address)
    return [
        None,
        ident.serial_number,
        None,
        None if mac is None else mac.upper(),
        mac,
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
        dumps_params(result.params),
        None if result.absent_paths is None else dumps(result.absent_paths),
        result.connection_request_url,
        1 if result.reset_params else 0,
        None if result.provisioning is None else dumps(result.provisioning),
        result.state,
        result.jobs,
        result.revision,
        None if result.dhcp is None else dumps(result.dhcp),
        result.cr_username,
        result.cr_password,
        None if result.read_plan is None else dumps(result.read_plan),
        None if result.sim is None else dumps(result.sim),
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
        "cr_username",
        "cr_password",
        # written by the internet account calls only (create_internet_account)
        "internet_account",
        "read_plan",
        "sim",
    }
)
_OPERATOR = [name for name in _FIELDS if name not in _REPORTED | {"id", "created", "updated"}]
# What belongs to the router in the field rather than to the record: a new router (its
# serial number changed) starts with none of the old one's.
_ROUTER_FIELDS = tuple(sorted(_REPORTED - {"internet_account"}))
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


# -- device queries -----------------------------------------------------------------------

_LIKE_SPECIAL = re.compile(r"([\\%_])")
_MAC_QUERY = re.compile(r"^[0-9a-fA-F\s:.\-]+\Z")

# Online as acsd.provisioning.status.is_online computes it: a session within twice the
# periodic interval (the default one when unknown or not positive) plus grace.
_ONLINE_SQL = (
    "last_inform >= :now - (2 * (CASE WHEN periodic_interval > 0 THEN periodic_interval"
    " ELSE :default_interval END) + :grace)"
)


def _fold(value: Any) -> str | None:
    """``acsd_fold(x)`` in SQL: Unicode case folding (SQLite's lower() and LIKE know ASCII)."""
    return value.casefold() if isinstance(value, str) else None


def _mac_fragment(q: str) -> str | None:
    """The hex digits of a search that looks like (part of) a MAC address, e.g. ``aa:bb``,
    ``AA-BB-CC``, ``0011.22``, ``001122``; None otherwise."""
    if not _MAC_QUERY.match(q):
        return None
    digits = _MAC_SEPARATORS.sub("", q).lower()
    return digits if 2 <= len(digits) <= 12 else None


def _customer_filters(
    query: DeviceQuery | InternetAccountQuery,
) -> tuple[list[str], dict[str, Any]]:
    """The scoping that every list shares: the customers a reseller's token sees, and the
    one customer asked for."""
    clauses: list[str] = []
    params: dict[str, Any] = {}
    if query.customers is not None:
        clauses.append("customer IN (SELECT value FROM json_each(:customers))")
        params["customers"] = dumps(sorted(query.customers))
    if query.customer is not None:
        clauses.append("customer = :customer")
        params["customer"] = query.customer
    return clauses, params


def _device_filters(query: DeviceQuery) -> tuple[str, dict[str, Any]]:
    """The WHERE clause of :meth:`SqliteStore.query_devices` and its named parameters."""
    clauses, params = _customer_filters(query)
    if query.state is not None:
        clauses.append("state = :state")
        params["state"] = query.state
    if query.online is not None:
        # never-seen devices (last_inform NULL) are offline
        clauses.append(_ONLINE_SQL if query.online else f"NOT coalesce({_ONLINE_SQL}, 0)")
        params["now"] = query.now or clock.now()
        params["default_interval"] = query.default_interval
        params["grace"] = query.grace
    q = (query.q or "").strip()
    if q:
        columns = ("name", "serial_number", "notes")
        if q.isascii():
            # LIKE is case-insensitive for ASCII; the pattern matches q literally
            params["like"] = "%" + _LIKE_SPECIAL.sub(r"\\\1", q) + "%"
            terms = [f"{c} LIKE :like ESCAPE '\\'" for c in columns]
        else:
            params["fold"] = q.casefold()
            terms = [f"instr(acsd_fold({c}), :fold) > 0" for c in columns]
        mac = _mac_fragment(q)
        if mac is not None:
            terms.append("instr(mac_key, :mac) > 0")
            params["mac"] = mac
        clauses.append(f"({' OR '.join(terms)})")
    return (" AND ".join(clauses) or "1"), params


# -- customers, tokens, models, audit -----------------------------------------------------


class _Table:
    """A table whose columns are exactly the fields of a record dataclass, in order."""

    def __init__(self, name: str, cls: type, json_fields: frozenset[str] = frozenset()) -> None:
        self.name = name
        self.cls = cls
        self.names = [f.name for f in fields(cls)]
        self.json_indexes = [i for i, n in enumerate(self.names) if n in json_fields]
        # quoted: audit has columns named "before" and "after"
        self.columns = ", ".join(f'"{n}"' for n in self.names)
        self.select = f"SELECT {self.columns} FROM {name}"
        marks = ", ".join("?" for _ in self.names)
        self.insert_sql = f"INSERT INTO {name} ({self.columns}) VALUES ({marks})"

    def values(self, record: Any) -> list[Any]:
        out = [getattr(record, n) for n in self.names]
        for i in self.json_indexes:
            if out[i] is not None:
                out[i] = dumps(out[i])
        return out

    def record(self, row: Sequence[Any]) -> Any:
        values = list(row)
        for i in self.json_indexes:
            if values[i] is not None:
                values[i] = json.loads(values[i])
        return self.cls(*values)


_CUSTOMERS = _Table("customers", CustomerRecord)
_TOKENS = _Table("tokens", TokenRecord)
_MODELS = _Table("models", ModelRecord)
_AUDIT = _Table("audit", AuditRecord, frozenset({"before", "after"}))
_AUDIT_RESOURCE_ID = _AUDIT.names.index("resource_id")
_AUDIT_AT = _AUDIT.names.index("at")
_AUDIT_AFTER = _AUDIT.names.index("after")
_INTERNET_ACCOUNTS = _Table("internet_accounts", InternetAccountRecord, frozenset({"confirm"}))

# An account is ACTIVE from its start date on, whether or not the sweep has stored it yet.
_INTERNET_ACCOUNT_STATES = {
    "ORDERED": "state = 'ORDERED'",
    "CONFIRMED": "(state = 'CONFIRMED' AND start_date > :now)",
    "ACTIVE": "(state = 'ACTIVE' OR (state = 'CONFIRMED' AND start_date <= :now))",
    "ENDED": "state = 'ENDED'",
}


def _internet_account_filters(query: InternetAccountQuery) -> tuple[str, dict[str, Any]]:
    clauses, params = _customer_filters(query)
    if query.device is not None:
        clauses.append("device = :device")
        params["device"] = query.device
    if query.state is not None:
        clauses.append(_INTERNET_ACCOUNT_STATES.get(query.state, "0"))
        params["now"] = query.now or clock.now()
    return (" AND ".join(clauses) or "1"), params


async def _activate_device(
    conn: aiosqlite.Connection, device_id: str, now: float
) -> DeviceRecord | None:
    """An account took effect: the router has something new to hold (a new revision, so a
    session already under way cannot mark it ACTIVE on the old one). A router being
    released is left alone."""
    async with conn.execute(
        "UPDATE devices SET revision = revision + 1, state = 'PROVISIONING', jobs = 1,"
        " updated = ? WHERE id = ? AND state != 'DELETING'",
        (now, device_id),
    ) as cursor:
        if cursor.rowcount == 0:
            return None
    rows = list(await conn.execute_fetchall(f"{_SELECT} WHERE id = ?", (device_id,)))
    return _record(rows[0]) if rows else None


async def _end_superseded(conn: aiosqlite.Connection, device_id: str, now: float) -> None:
    """A router applies the line that started last: the lines it had before are ENDED,
    and their addresses free for other lines."""
    await conn.execute(
        "UPDATE internet_accounts SET state = 'ENDED', updated = :now"
        " WHERE device = :device AND state IN ('CONFIRMED', 'ACTIVE') AND start_date <= :now"
        " AND id != (SELECT id FROM internet_accounts WHERE device = :device"
        " AND state IN ('CONFIRMED', 'ACTIVE') AND start_date <= :now"
        " ORDER BY start_date DESC, id DESC LIMIT 1)",
        {"device": device_id, "now": now},
    )


def _audit_values(audit: AuditRecord | None) -> list[Any] | None:
    """The audit row, encoded in the caller (a value that is not JSON fails it at once and
    later changes to its dicts cannot leak in). An empty id gets a new one, ``at`` 0 the
    commit time, ``resource_id`` None the id of the record written (see _write_audit)."""
    if audit is None:
        return None
    values = _AUDIT.values(replace(audit, id=audit.id or new_id()))
    if not audit.at:
        values[_AUDIT_AT] = None
    return values


async def _write_audit(
    conn: aiosqlite.Connection, values: list[Any] | None, resource_id: str | None
) -> None:
    if values is None:
        return
    row = list(values)  # the call may be retried: never change the prepared values
    if row[_AUDIT_AT] is None:
        row[_AUDIT_AT] = clock.now()
    if row[_AUDIT_RESOURCE_ID] is None:
        row[_AUDIT_RESOURCE_ID] = resource_id
    await conn.execute(_AUDIT.insert_sql, row)


def _mac_change(record: DeviceRecord) -> MacChange:
    """What a write that does not say does with the MAC: what the record holds replaces the
    stored one (as the other operator fields do), unless it is the router's report."""
    if record.mac_from_router:
        return "keep"
    return "set" if record.mac_address else "remove"


def _check_device(record: DeviceRecord) -> None:
    if not record.serial_number:
        raise ValueError("DeviceRecord.serial_number is empty")
    for name in _JSON_FIELDS:  # fail fast, in the caller, on values that are not JSON
        value = getattr(record, name)
        if value is not None:
            dumps(value)


def _stamped(record: Any) -> Any:
    """A copy of a new record with ``created`` (unless given) now and ``updated`` = created."""
    created = record.created or clock.now()
    return replace(record, created=created, updated=record.updated or created)


async def _insert(conn: aiosqlite.Connection, table: _Table, record: Any, what: str) -> None:
    try:
        await conn.execute(table.insert_sql, table.values(record))
    except sqlite3.IntegrityError as exc:
        raise ConflictError(f"{what} {record.id!r} cannot be stored: {exc}") from exc


def _kind(op: _Op) -> str:
    return op.kind if isinstance(op, _CallOp) else "save_session"


# -- APN API (seed 003) -------------------------------------------------------------------

_APN_ACCOUNTS = _Table("apn_accounts", ApnAccountRecord)
_APN_NETWORKS = _Table("apn_networks", ApnNetworkRecord)
_APN_DEVICES = _Table("apn_devices", ApnDeviceRecord, frozenset({"metadata"}))
_APN_OPERATIONS = _Table("apn_operations", ApnOperationRecord)
_APN_UPDATE_SQL = (
    "UPDATE apn_devices SET "
    + ", ".join(f'"{n}" = ?' for n in _APN_DEVICES.names[1:])
    + " WHERE id = ?"
)
#: the unique values of a network's active devices, as the client names them
_APN_UNIQUE = (("CLI", "cli_key"), ("SIMNumber", "iccid"))


def _apn_device(row: Sequence[Any]) -> ApnDeviceRecord:
    record: ApnDeviceRecord = _APN_DEVICES.record(row)
    record.enabled = bool(record.enabled)
    record.lock_imei = bool(record.lock_imei)
    return record


# -- statistics ---------------------------------------------------------------------------


@dataclass(slots=True)
class WriterStats:
    """Counters of the writer task (for /metrics and tests). Monotonic except ``last_batch``
    and ``queue_depth``."""

    #: committed transactions
    batches: int = 0
    #: writes (sessions and operator writes) committed
    writes: int = 0
    #: writes whose caller got an exception
    failed: int = 0
    #: batches rolled back because one write failed, then retried one write at a time
    fallbacks: int = 0
    #: session results not written: a later session of the CPE had committed first
    stale: int = 0
    largest_batch: int = 0
    last_batch: int = 0
    #: wall time spent inside write transactions (BEGIN .. COMMIT), seconds
    busy_seconds: float = 0.0
    #: batch-size histogram: upper bound (BATCH_BUCKETS) -> number of committed batches
    batch_sizes: dict[float, int] = field(default_factory=lambda: dict.fromkeys(BATCH_BUCKETS, 0))
    queue_depth: int = 0
    #: the database's own error (read-only, I/O, locked) that failed the last writes, until
    #: a write succeeds again: the store is then not ready (/readyz)
    write_error: str | None = None

    def _record_batch(self, size: int, seconds: float) -> None:
        self.write_error = None
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


def _be_nicer(_conn: sqlite3.Connection, by: int) -> None:
    """Lower the priority of the calling thread (Linux: the nice value is per thread)."""
    tid = threading.get_native_id()
    os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + by))


def _on_thread(conn: aiosqlite.Connection, fn: Callable[..., Any], *args: Any) -> Awaitable[Any]:
    """``fn(sqlite3_connection, *args)`` on the connection's own thread, in one hop. aiosqlite
    has no public call for this; ``_execute`` and ``_conn`` have been its (stable) internals
    since 0.11, and the tests exercise this path on every session save."""
    return conn._execute(lambda: fn(conn._conn, *args))


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


#: what a write may rightly be refused for: the caller answers it (409, 422, a stale
#: session result), and the warning log is for the database's trouble, not the data's
_REFUSALS = (ConflictError, StateError, ChangedError, StaleResultError)


def _log_failed(exc: Exception, kind: str) -> None:
    if isinstance(exc, _REFUSALS):
        log.debug("store_write_refused", error=repr(exc), kind=kind)
    else:
        log.warning("store_write_failed", error=repr(exc), kind=kind)


class _BeginFailed(Exception):
    """BEGIN IMMEDIATE failed (the write lock stayed busy): no save of the batch is at fault."""


def _rewrite_header(conn: sqlite3.Connection) -> None:
    """Write the database header as it is (a real, idempotent write): raises if the file
    cannot be written. ``conn`` is in autocommit mode (isolation_level=None)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        conn.execute(f"PRAGMA user_version = {int(version)}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _commit_saves(conn: sqlite3.Connection, saves: list[_SaveOp]) -> list[str | _Failed]:
    try:
        conn.execute("BEGIN IMMEDIATE")
    except Exception as exc:
        raise _BeginFailed() from exc
    try:
        ids = _apply_saves_sync(conn, saves)
        conn.execute("COMMIT")
    except BaseException:
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        except Exception as undo:
            log.error("store_rollback_failed", error=str(undo))
        raise
    return ids


def _apply_saves_sync(conn: sqlite3.Connection, saves: list[_SaveOp]) -> list[str | _Failed]:
    """The saves, in an open transaction; the device id each one wrote, or a
    :class:`_Failed` with :class:`StaleResultError` for one a later session overtook."""
    # A session bound to a record updates that record even when the serial differs
    # (bound by MAC): its stored serial key becomes the conflict target of the upsert.
    bound: dict[str, tuple[str, float | None]] = {}  # id -> (serial key, last_inform)
    wanted = [op.device_id for op in saves if op.device_id]
    if wanted:
        rows = conn.execute(_IDS_SQL, (dumps(wanted),)).fetchall()
        bound = {row[0]: (row[1], row[2]) for row in rows}
    # A session that began without a record (a CPE's first) is overtaken when a record of
    # its serial heard from the CPE later: cut and committed at its timeout, it must not
    # write older values over the session after it.
    unbound = {op.serial_key for op in saves if not op.device_id or op.device_id not in bound}
    heard: dict[str, float | None] = {}
    if unbound:
        heard = dict(conn.execute(_HEARD_SQL, (dumps(sorted(unbound)),)).fetchall())
    # a device id, a _Failed, or None: found by serial key once written
    out: list[str | _Failed | None] = []
    live: list[_SaveOp] = []
    for op in saves:
        device_id = op.device_id
        found = bound.get(device_id) if device_id else None
        if found is None:
            # New CPE, or its record was deleted meanwhile: find or create by serial.
            last = heard.get(op.serial_key)
            if last is not None and last > op.at:
                out.append(_Failed(StaleResultError(
                    f"{op.serial_key}: a later session committed first"
                )))  # fmt: skip
                continue
            heard[op.serial_key] = op.at  # in queue order, as below
            key, done = op.serial_key, None
        else:
            key, informed = found
            if op.since is not None and informed != op.since:
                out.append(_Failed(StaleResultError(
                    f"device {device_id}: a later session committed first"
                )))  # fmt: skip
                continue
            if op.bound_key is not None and key != op.bound_key:
                out.append(_Failed(StaleResultError(
                    f"device {device_id} was moved to another router during the session"
                )))  # fmt: skip
                continue
            # In queue order: of two results of one device in a batch, the second sees
            # the first's last_inform.
            bound[device_id] = (key, op.at)  # type: ignore[index]
            done = device_id
        op.args[0] = new_id()
        op.args[2] = key
        live.append(op)
        out.append(done)
    if live:
        conn.executemany(_SAVE_SQL, [op.args for op in live])
    if None in out:
        keys = sorted({op.serial_key for op, done in zip(saves, out, strict=True) if done is None})
        rows = conn.execute(_KEYS_SQL, (dumps(keys),)).fetchall()
        ids_by_key = {row[1]: row[0] for row in rows}
        out = [
            ids_by_key[op.serial_key] if done is None else done
            for op, done in zip(saves, out, strict=True)
        ]
    return out  # type: ignore[return-value]


class SqliteStore:
    """The default :class:`~acsd.store.base.Store`. Create, ``await open()``, use, ``await
    close()``. One instance per process and database file."""

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
        self._pinged: tuple[float, bool] = (-math.inf, False)
        self._ping_lock = asyncio.Lock()
        self.stats = WriterStats()
        #: versions that open() applied (empty when the schema was up to date)
        self.migrations_applied: list[int] = []
        self._writer_conn: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._writer_task: asyncio.Task[None] | None = None
        self._checkpointer: aiosqlite.Connection | None = None
        self._checkpoint_task: asyncio.Task[None] | None = None
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
            self.migrations_applied = await migrate(self._writer_conn)
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
            await self._reader.create_function("acsd_fold", 1, _fold, deterministic=True)
            await self._background(self._writer_conn, self._checkpointer)
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
                await _on_thread(conn, _be_nicer, self.background_nice)
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
            if self.stats.writes == done:
                continue
            done = self.stats.writes
            try:
                # (busy, frames in the WAL, frames copied)
                row = await self._first_row(conn, "PRAGMA wal_checkpoint(PASSIVE)")
                if row is not None and row[1] >= restart_frames:
                    await self._first_row(conn, "PRAGMA wal_checkpoint(RESTART)")
            except Exception as exc:  # the next round tries again
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
                raise StoreError(f"cannot open database {self.path}: {exc}") from exc
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

    def _fail_queued(self, exc: BaseException) -> None:
        while True:
            try:
                op = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            if op is not _STOP and not op.future.done():
                op.future.set_exception(exc)
                self.stats.failed += 1

    async def check_writable(self) -> None:
        """Raise StoreError unless the database takes a write. SQLite opens a file it may
        not write read-only without a word, and every session would fail later; the
        daemon asks this once at start (one real, idempotent write of the header)."""
        if self._writer_conn is None:
            raise StoreClosedError(f"{self!r} is not open")
        try:
            await _on_thread(self._writer_conn, _rewrite_header)
        except sqlite3.OperationalError as exc:
            raise StoreError(f"{self.path}: the database cannot be written: {exc}") from None

    async def ping(self) -> bool:
        if not self._opened or self._reader is None or self._closing is not None:
            return False
        if self._writer_task is None or self._writer_task.done():
            return False  # every write would be refused: not ready, whatever reads do
        # /readyz needs no token: however often it is asked, at most one write probe a
        # second, and one at a time (a flood of probes would queue behind, and delay, the
        # sessions' writes)
        async with self._ping_lock:
            if time.monotonic() - self._pinged[0] < self.ping_every:
                return self._pinged[1]
            ready = await self._ping()
            self._pinged = (time.monotonic(), ready)
            return ready

    async def _ping(self) -> bool:
        try:
            version = await self._scalar(self._reader, "SELECT max(version) FROM schema_migrations")
        except Exception:
            return False
        # A write probe every time, not only after a write of this process failed: the
        # workers of a service (each its own store) must agree, and another process may
        # hold the write lock before any write here has met it.
        if not await self._writes_again():
            return False
        return version == latest_version()

    async def _writes_again(self) -> bool:
        """Whether a write goes through now (a connection of its own, so that an idle
        daemon does not stay unready until its next session)."""

        def probe() -> None:
            conn = sqlite3.connect(self.path, timeout=1.0, isolation_level=None)
            try:
                _rewrite_header(conn)
            finally:
                conn.close()

        try:
            await asyncio.to_thread(probe)
        except sqlite3.Error as exc:
            self.stats.write_error = str(exc)
            return False
        self.stats.write_error = None
        return True

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
        self, serial_number: str, mac_address: str | None = None, *, for_session: bool = False
    ) -> DeviceRecord | None:
        select = _SELECT_FOR_SESSION if for_session else _SELECT
        record = await self._one(f"{select} WHERE serial_key = ?", (serial_key(serial_number),))
        if record is not None:
            return record
        key = mac_key(mac_address)
        if key is None:
            return None
        # Several records with one MAC is an operator error; bind to the oldest, always
        # the same one, rather than flip between them.
        return await self._one(f"{select} WHERE mac_key = ? ORDER BY created, id LIMIT 1", (key,))

    async def get_device(self, key: str) -> DeviceRecord | None:
        # ids are accepted in any case (the seeds print them in upper case)
        if is_id(device_id := normal_id(key)):
            record = await self._one(f"{_SELECT} WHERE id = ?", (device_id,))
            if record is not None:
                return record
            # A 24-hex serial number is unlikely but possible: fall through.
        return await self._one(f"{_SELECT} WHERE serial_key = ?", (serial_key(key),))

    async def device_params(self, device_id: str) -> dict[str, list[Any]]:
        sql = "SELECT params FROM devices WHERE id = ?"
        text = await self._scalar(self._read, sql, (device_id,))
        return _loads(text) if text else {}

    async def list_devices(self, *, limit: int = 1000, offset: int = 0) -> list[DeviceRecord]:
        rows = await self._read.execute_fetchall(
            f"{_SELECT} ORDER BY serial_key, id LIMIT ? OFFSET ?",
            (max(0, limit), max(0, offset)),
        )
        return [_record(row) for row in rows]

    async def count_devices(self) -> int:
        return int(await self._scalar(self._read, "SELECT count(*) FROM devices"))

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
    ) -> tuple[list[Sequence[Any]], int]:
        """One page of rows and the number of all matching rows, read in one statement
        (one snapshot: the total always agrees with the page). With ``index`` (one that
        covers ``where`` and ``order``), the matching keys and their count come from the
        index alone and only the page's rows are read from the table: for tables whose
        rows are large."""
        matching = f"FROM {table} INDEXED BY {index}" if index else f"FROM {table}"
        matching += f" WHERE {where}"
        count_sql = f"SELECT count(*) {matching}"
        page = f"ORDER BY {order} LIMIT :limit OFFSET :offset"
        if index:
            sql = (
                f"SELECT {columns}, ({count_sql}) FROM {table}"
                f" WHERE {order} IN (SELECT {order} {matching} {page}) ORDER BY {order}"
            )
        else:
            sql = f"SELECT {columns}, ({count_sql}) {matching} {page}"
        rows = list(
            await self._read.execute_fetchall(
                sql, {**params, "limit": max(0, limit), "offset": max(0, offset)}
            )
        )
        if rows:
            return [row[:-1] for row in rows], int(rows[0][-1])
        if limit > 0 and offset <= 0:
            return [], 0
        # an empty page past the end (or limit 0): count on its own
        return [], int(await self._scalar(self._read, count_sql, params))

    async def query_devices(self, query: DeviceQuery) -> tuple[list[DeviceRecord], int]:
        where, params = _device_filters(query)
        rows, total = await self._page(
            _COLUMNS,
            "devices",
            where,
            "id",
            params,
            query.limit,
            query.offset,
            # Rows carry KB of parameters each: a filter is answered from the index of the
            # filtered columns. Without one, the first ids come cheaply from the table.
            index=None if where == "1" else "devices_filters",
        )
        return [_record(row) for row in rows], total

    async def find_device_by_mac(self, mac_address: str) -> DeviceRecord | None:
        key = mac_key(mac_address)
        if key is None:
            return None
        # the oldest, like find_device_for_cpe
        return await self._one(f"{_SELECT} WHERE mac_key = ? ORDER BY created, id LIMIT 1", (key,))

    async def _get(self, table: _Table, sql: str, args: Sequence[Any]) -> Any:
        rows = list(await self._read.execute_fetchall(f"{table.select} {sql}", args))
        return table.record(rows[0]) if rows else None

    async def get_customer(self, customer_id: str) -> CustomerRecord | None:
        return await self._get(_CUSTOMERS, "WHERE id = ?", (customer_id,))

    async def list_customers(
        self, *, ids: set[str] | None = None, limit: int = 100, offset: int = 0
    ) -> tuple[list[CustomerRecord], int]:
        where, params = "1", {}
        if ids is not None:
            where = "id IN (SELECT value FROM json_each(:ids))"
            params["ids"] = dumps(sorted(ids))
        rows, total = await self._page(
            _CUSTOMERS.columns, "customers", where, "id", params, limit, offset
        )
        return [_CUSTOMERS.record(row) for row in rows], total

    async def customer_tree(self, customer_id: str) -> set[str]:
        # UNION (not UNION ALL) drops rows already seen, so a reseller cycle ends the walk.
        rows = await self._read.execute_fetchall(
            """
            WITH RECURSIVE tree (id) AS (
                SELECT id FROM customers WHERE id = ?1
                UNION
                SELECT customers.id FROM customers JOIN tree ON customers.reseller = tree.id
            )
            SELECT id FROM tree
            """,
            (customer_id,),
        )
        # The customer itself always: devices may name a customer that has no record yet.
        return {customer_id, *(row[0] for row in rows)}

    async def find_token(self, token_hash: str) -> TokenRecord | None:
        return await self._get(_TOKENS, "WHERE hash = ? AND revoked IS NULL", (token_hash,))

    async def list_tokens(self) -> list[TokenRecord]:
        rows = await self._read.execute_fetchall(f"{_TOKENS.select} ORDER BY id")
        return [_TOKENS.record(row) for row in rows]

    async def get_model(self, model_id: str) -> ModelRecord | None:
        return await self._get(_MODELS, "WHERE id = ?", (model_id,))

    async def list_models(
        self, *, limit: int = 100, offset: int = 0
    ) -> tuple[list[ModelRecord], int]:
        rows, total = await self._page(_MODELS.columns, "models", "1", "id", {}, limit, offset)
        return [_MODELS.record(row) for row in rows], total

    async def list_audit(
        self, *, limit: int = 100, offset: int = 0
    ) -> tuple[list[AuditRecord], int]:
        rows, total = await self._page(
            _AUDIT.columns, "audit", "1", "at DESC, id DESC", {}, limit, offset
        )
        return [_AUDIT.record(row) for row in rows], total

    async def get_internet_account(self, account_id: str) -> InternetAccountRecord | None:
        return await self._get(_INTERNET_ACCOUNTS, "WHERE id = ?", (account_id,))

    async def query_internet_accounts(
        self, query: InternetAccountQuery
    ) -> tuple[list[InternetAccountRecord], int]:
        where, params = _internet_account_filters(query)
        rows, total = await self._page(
            _INTERNET_ACCOUNTS.columns,
            "internet_accounts",
            where,
            "id",
            params,
            query.limit,
            query.offset,
        )
        return [_INTERNET_ACCOUNTS.record(row) for row in rows], total

    async def next_internet_start(self) -> float | None:
        return await self._scalar(
            self._read, "SELECT min(start_date) FROM internet_accounts WHERE state = 'CONFIRMED'"
        )

    async def internet_account_for_device(
        self, device_id: str, now: float
    ) -> InternetAccountRecord | None:
        return await self._get(
            _INTERNET_ACCOUNTS,
            "WHERE device = ? AND state IN ('CONFIRMED', 'ACTIVE') AND start_date <= ?"
            " ORDER BY start_date DESC, id DESC LIMIT 1",
            (device_id, now),
        )

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
        bound = None if result.bound_serial is None else serial_key(result.bound_serial)
        op = _SaveOp(
            args, serial_key(serial), result.device_id, future, result.at, result.since, bound
        )
        self._submit(op)
        # Not shielded on purpose: a cancelled caller's write is still committed (the data
        # came from the CPE and is not lost), the caller just stops waiting for it.
        return await future

    async def upsert_device(
        self, record: DeviceRecord, *, mac: MacChange | None = None
    ) -> DeviceRecord:
        _check_device(record)
        change = mac or _mac_change(record)

        async def write(conn: aiosqlite.Connection) -> DeviceRecord:
            await self._settle_mac(conn, record, change, strict=False)
            return await self._apply_upsert(conn, record)

        return await self._call("upsert_device", write)

    async def _call(self, kind: str, fn: Callable[[aiosqlite.Connection], Awaitable[Any]]) -> Any:
        """Queue ``fn`` behind the writes before it; its result once its transaction commits."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._submit(_CallOp(kind, fn, future))
        return await future

    # Operator writes with an audit entry: the entry is inserted by the same call, so it
    # commits or rolls back together with the write it records. A None ``resource_id`` in
    # the entry becomes the id of the record written (a new record's id is made here).

    async def write_device(
        self,
        record: DeviceRecord,
        *,
        audit: AuditRecord | None = None,
        audit_after: Callable[[DeviceRecord], dict[str, Any]] | None = None,
        expect: DeviceRecord | str | None = None,
        mac: MacChange | None = None,
        new_router: bool = False,
    ) -> DeviceRecord:
        _check_device(record)
        audit_row = _audit_values(audit)
        change = mac or _mac_change(record)

        async def write(conn: aiosqlite.Connection) -> DeviceRecord:
            if expect == ABSENT:
                key = serial_key(record.serial_number)
                if await self._scalar(conn, "SELECT 1 FROM devices WHERE serial_key = ?", (key,)):
                    raise ChangedError(f"a device {record.serial_number!r} was just created")
            elif isinstance(expect, DeviceRecord):
                await self._unchanged(conn, expect)
            incoming = await self._take_router(conn, record) if new_router else None
            await self._settle_mac(
                conn, record, change, strict=mac == "set", new_router=new_router, incoming=incoming
            )
            stored = await self._apply_upsert(conn, record)
            row = audit_row
            if row is not None and audit_after is not None:
                row = list(row)
                row[_AUDIT_AFTER] = dumps(audit_after(stored))
            await _write_audit(conn, row, stored.id)
            return stored

        return await self._call("write_device", write)

    async def _settle_mac(
        self,
        conn: aiosqlite.Connection,
        record: DeviceRecord,
        change: MacChange,
        *,
        strict: bool,
        new_router: bool = False,
        incoming: DeviceRecord | None = None,
    ) -> None:
        """The one place an operator's write decides the record's MAC, inside its
        transaction: what the caller read may be stale by now (a session filled it in,
        another write took it). "set": the MAC the caller wrote, taken from routers' own
        records (_take_mac; ``strict``: ChangedError if another device has it since);
        "keep": as the row the write lands on (by id, else by serial number) holds it now;
        "remove": the same less an operator's MAC (a router's report of itself stays: its
        next session would fill it in again). On a router swap (``new_router``) a MAC the
        old router reported goes, and one the new router reported of itself (``incoming``,
        its unclaimed record, merged by _take_router) comes."""
        if change == "set":
            record.mac_from_router = False
            await self._take_mac(conn, record, strict=strict)
            return
        record.mac_address, record.mac_from_router = None, False
        rows = await conn.execute_fetchall(
            "SELECT mac_address, mac_from_router FROM devices WHERE id = ? OR serial_key = ?"
            " ORDER BY id = ? DESC LIMIT 1",
            (record.id, serial_key(record.serial_number), record.id),
        )
        if rows:
            mac, from_router = rows[0][0], bool(rows[0][1])
            if (from_router and not new_router) or (not from_router and change == "keep"):
                record.mac_address, record.mac_from_router = mac, from_router
        if (
            new_router
            and record.mac_address is None
            and incoming is not None
            and incoming.mac_from_router
            and incoming.mac_address
        ):
            record.mac_address, record.mac_from_router = incoming.mac_address, True

    async def _take_mac(
        self, conn: aiosqlite.Connection, record: DeviceRecord, *, strict: bool = True
    ) -> None:
        """``record``'s MAC from the records of routers that only reported it of
        themselves (DeviceRecord.mac_is_routers_own): the operator's word wins over a
        router's, which must not keep a MAC from the device it belongs to. ``strict``:
        ChangedError if another record has it otherwise (taken since the caller checked);
        else such records keep it too (``upsert_device``: a record as given)."""
        key = mac_key(record.mac_address)
        rows = await conn.execute_fetchall(
            f"{_SELECT} WHERE mac_key = ? AND id != ?", (key, record.id)
        )
        others = [_record(row) for row in rows]
        if strict and not all(other.mac_is_routers_own for other in others):
            raise ChangedError(f"MAC address {record.mac_address} was just taken")
        for other in (o for o in others if o.mac_is_routers_own):
            await conn.execute(
                "UPDATE devices SET mac_address = NULL, mac_key = NULL, mac_from_router = 0"
                " WHERE id = ?",
                (other.id,),
            )

    async def _take_router(
        self, conn: aiosqlite.Connection, record: DeviceRecord
    ) -> DeviceRecord | None:
        """The record's router was replaced (its serial number changed): what the old one
        reported goes. If the new one already called in (an unclaimed record with its
        serial), that record's reports, Connection Request URL and credentials become this
        record's and it is deleted (and returned: its MAC is for _settle_mac); else the
        record knows nothing of its router yet."""
        rows = list(
            await conn.execute_fetchall(
                f"{_SELECT} WHERE serial_key = ? AND id != ?",
                (serial_key(record.serial_number), record.id),
            )
        )
        found = _record(rows[0]) if rows else DeviceRecord(id="", serial_number="")
        # A record an operator made is no router's own report to merge: its settings
        # would go without a trace.
        if found.id and found.made_by_operator:
            raise DuplicateError(
                "serialNumber", f"serial number {record.serial_number!r} is device {found.id}"
            )
        if found.id:
            await conn.execute("DELETE FROM devices WHERE id = ?", (found.id,))
            # the SIM that router carries now points at the record it is merged into
            await conn.execute(
                "UPDATE apn_devices SET router = ? WHERE router = ?", (record.id, found.id)
            )
        for name in _ROUTER_FIELDS:
            setattr(record, name, getattr(found, name))
        values = [_column_value(record, name) for name in _ROUTER_FIELDS]
        columns = ", ".join(f"{name} = ?" for name in _ROUTER_FIELDS)
        await conn.execute(f"UPDATE devices SET {columns} WHERE id = ?", [*values, record.id])
        return found if found.id else None

    async def _unchanged(self, conn: aiosqlite.Connection, expect: DeviceRecord) -> None:
        """ChangedError unless the record still holds the operator fields ``expect`` has."""
        rows = list(await conn.execute_fetchall(f"{_SELECT} WHERE id = ?", (expect.id,)))
        if not rows:
            raise ChangedError(f"device {expect.id} was just deleted")
        current = _record(rows[0])
        if any(getattr(current, name) != getattr(expect, name) for name in _OPERATOR):
            raise ChangedError(f"device {expect.id} was just changed")

    async def delete_device(
        self,
        device_id: str,
        *,
        audit: AuditRecord | None = None,
        expect: DeviceRecord | None = None,
    ) -> bool:
        audit_row = _audit_values(audit)

        async def delete(conn: aiosqlite.Connection) -> bool:
            if expect is not None:
                await self._unchanged(conn, expect)
            async with conn.execute("DELETE FROM devices WHERE id = ?", (device_id,)) as cursor:
                deleted = cursor.rowcount > 0
            if deleted:  # nothing happened, nothing to audit
                # An internet account's line no longer ends at a router acsd knows: it
                # must not name (or be found by) the record that is gone.
                await conn.execute(
                    "UPDATE internet_accounts SET device = NULL, updated = ? WHERE device = ?",
                    (clock.now(), device_id),
                )
                await _write_audit(conn, audit_row, device_id)
            return deleted

        return await self._call("delete_device", delete)

    async def create_customer(
        self, record: CustomerRecord, *, audit: AuditRecord | None = None
    ) -> CustomerRecord:
        record = replace(record, id=record.id or new_id())
        if record.reseller is not None and record.reseller == record.id:
            raise ValueError(f"customer {record.id!r} cannot be its own reseller")
        audit_row = _audit_values(audit)

        async def create(conn: aiosqlite.Connection) -> CustomerRecord:
            stored = _stamped(record)
            if stored.reseller is not None:
                found = await self._scalar(
                    conn, "SELECT 1 FROM customers WHERE id = ?", (stored.reseller,)
                )
                if found is None:
                    raise ConflictError(f"reseller {stored.reseller!r} does not exist")
            await _insert(conn, _CUSTOMERS, stored, "customer")
            await _write_audit(conn, audit_row, stored.id)
            return stored

        return await self._call("create_customer", create)

    async def create_token(
        self, record: TokenRecord, *, audit: AuditRecord | None = None
    ) -> TokenRecord:
        if not record.hash:
            raise ValueError("TokenRecord.hash is empty")
        record = replace(record, id=record.id or new_id())
        audit_row = _audit_values(audit)

        async def create(conn: aiosqlite.Connection) -> TokenRecord:
            stored = replace(record, created=record.created or clock.now())
            await _insert(conn, _TOKENS, stored, "token")
            await _write_audit(conn, audit_row, stored.id)
            return stored

        return await self._call("create_token", create)

    async def revoke_token(self, token_id: str, *, audit: AuditRecord | None = None) -> bool:
        """False when there is no unrevoked token with this id (an earlier revocation and
        its time are kept)."""
        audit_row = _audit_values(audit)

        async def revoke(conn: aiosqlite.Connection) -> bool:
            async with conn.execute(
                "UPDATE tokens SET revoked = ? WHERE id = ? AND revoked IS NULL",
                (clock.now(), token_id),
            ) as cursor:
                revoked = cursor.rowcount > 0
            if revoked:
                await _write_audit(conn, audit_row, token_id)
            return revoked

        return await self._call("revoke_token", revoke)

    async def create_model(
        self, record: ModelRecord, *, audit: AuditRecord | None = None
    ) -> ModelRecord:
        record = replace(record, id=record.id or new_id())
        audit_row = _audit_values(audit)

        async def create(conn: aiosqlite.Connection) -> ModelRecord:
            stored = _stamped(record)
            await _insert(conn, _MODELS, stored, "model")
            await _write_audit(conn, audit_row, stored.id)
            return stored

        return await self._call("create_model", create)

    async def create_internet_account(
        self, record: InternetAccountRecord, *, audit: AuditRecord | None = None
    ) -> InternetAccountRecord:
        record = replace(record, id=record.id or new_id())
        audit_row = _audit_values(audit)

        async def create(conn: aiosqlite.Connection) -> InternetAccountRecord:
            stored = _stamped(record)
            await _insert(conn, _INTERNET_ACCOUNTS, stored, "internet account")
            if stored.device is not None:
                await conn.execute(
                    "UPDATE devices SET internet_account = ? WHERE id = ?",
                    (stored.id, stored.device),
                )
            await _write_audit(conn, audit_row, stored.id)
            return stored

        return await self._call("create_internet_account", create)

    async def confirm_internet_account(
        self,
        account_id: str,
        *,
        confirm: dict[str, Any],
        start_date: float,
        ip_address: str,
        now: float,
        audit: AuditRecord | None = None,
    ) -> tuple[InternetAccountRecord, DeviceRecord | None]:
        encoded = dumps(confirm)
        audit_row = _audit_values(audit)

        async def write(
            conn: aiosqlite.Connection,
        ) -> tuple[InternetAccountRecord, DeviceRecord | None]:
            rows = list(
                await conn.execute_fetchall(
                    f"{_INTERNET_ACCOUNTS.select} WHERE id = ?", (account_id,)
                )
            )
            if not rows:
                raise KeyError(account_id)
            account = _INTERNET_ACCOUNTS.record(rows[0])
            if account.state != "ORDERED":
                raise StateError(f"internet account {account_id} is {account.state}, not ORDERED")
            # The router's own lines are not in the way: the new one must start after
            # them (below) and ends them when it does, so an upgrade keeps its address.
            taken = await self._scalar(
                conn,
                "SELECT id FROM internet_accounts WHERE ip_address = ? AND id != ?"
                " AND state != 'ENDED' AND (device IS NULL OR ? IS NULL OR device != ?)",
                (ip_address, account_id, account.device, account.device),
            )
            if taken is not None:
                raise ConflictError(f"{ip_address} is the address of internet account {taken}")
            others = await conn.execute_fetchall(_CLAIMS_SQL, (account_id,))
            clash = address_clash(ip_address, confirm.get("net", {}), account.device, others)
            if clash is not None:
                raise DuplicateError(*clash)
            if account.device is not None:
                # The router applies the line that started last: one that starts no later
                # than another of its lines would be "active" and never reach it.
                later = await self._scalar(
                    conn,
                    "SELECT id FROM internet_accounts WHERE device = ? AND id != ?"
                    " AND state IN ('CONFIRMED', 'ACTIVE') AND start_date >= ?"
                    " ORDER BY start_date DESC LIMIT 1",
                    (account.device, account_id, start_date),
                )
                if later is not None:
                    raise LaterLineError(
                        f"device {account.device} already has internet account {later}, "
                        "taking effect at the same time or later: a new line must start "
                        "after it"
                    )
                # The address is unique among lines by index: the new line takes over the
                # claim of the router's line it replaces (lines are never withdrawn, so
                # the claim cannot fall back to nobody).
                await conn.execute(
                    "UPDATE internet_accounts SET ip_address = NULL WHERE ip_address = ?"
                    " AND device = ? AND id != ? AND state != 'ENDED'",
                    (ip_address, account.device, account_id),
                )
            due = start_date <= now
            state = "ACTIVE" if due else "CONFIRMED"
            await conn.execute(
                "UPDATE internet_accounts SET state = ?, confirm = ?, start_date = ?,"
                " ip_address = ?, updated = ? WHERE id = ?",
                (state, encoded, start_date, ip_address, now, account_id),
            )
            device = None
            if due and account.device is not None:
                await _end_superseded(conn, account.device, now)
                device = await _activate_device(conn, account.device, now)
            await _write_audit(conn, audit_row, account_id)
            stored = replace(
                account,
                state=state,
                confirm=json.loads(encoded),
                start_date=start_date,
                ip_address=ip_address,
                updated=now,
            )
            return stored, device

        return await self._call("confirm_internet_account", write)

    async def activate_internet_accounts(self, now: float) -> list[DeviceRecord]:
        due_sql = "FROM internet_accounts WHERE state = 'CONFIRMED' AND start_date <= ?"
        # Most sweeps find nothing: ask the reader before queueing a write.
        if await self._scalar(self._read, f"SELECT 1 {due_sql} LIMIT 1", (now,)) is None:
            return []

        async def activate(conn: aiosqlite.Connection) -> list[DeviceRecord]:
            rows = await conn.execute_fetchall(f"SELECT DISTINCT device {due_sql}", (now,))
            await conn.execute(
                f"UPDATE internet_accounts SET state = 'ACTIVE', updated = ?"
                f" WHERE id IN (SELECT id {due_sql})",
                (now, now),
            )
            devices = []
            for (device_id,) in rows:
                if device_id is not None:
                    await _end_superseded(conn, device_id, now)
                    device = await _activate_device(conn, device_id, now)
                    if device is not None:
                        devices.append(device)
            return devices

        return await self._call("activate_internet_accounts", activate)

    # -- APN API (seed 003) ---------------------------------------------------------------

    async def get_apn_account(self, key: str) -> ApnAccountRecord | None:
        return await self._get(_APN_ACCOUNTS, 'WHERE "key" = ?', (key,))

    async def get_apn_network(self, account: str, key: str) -> ApnNetworkRecord | None:
        return await self._get(_APN_NETWORKS, 'WHERE account = ? AND "key" = ?', (account, key))

    async def _apn_devices(self, sql: str, args: Sequence[Any]) -> list[ApnDeviceRecord]:
        rows = await self._read.execute_fetchall(f"{_APN_DEVICES.select} {sql}", args)
        return [_apn_device(row) for row in rows]

    async def get_apn_device(self, device_id: str) -> ApnDeviceRecord | None:
        found = await self._apn_devices("WHERE id = ?", (device_id,))
        return found[0] if found else None

    async def find_apn_device(
        self, account: str, network: str, cli_key: str
    ) -> ApnDeviceRecord | None:
        found = await self._apn_devices(
            "WHERE account = ? AND network = ? AND cli_key = ?"
            " ORDER BY end_date IS NOT NULL, end_date DESC LIMIT 1",
            (account, network, cli_key),
        )
        return found[0] if found else None

    async def list_apn_devices(
        self,
        account: str,
        network: str,
        *,
        after: str | None = None,
        limit: int = 100,
        include_ended: bool = False,
    ) -> list[ApnDeviceRecord]:
        where = "WHERE account = ? AND network = ? AND id > ?"
        if not include_ended:
            where += " AND end_date IS NULL"
        return await self._apn_devices(
            f"{where} ORDER BY id LIMIT ?", (account, network, after or "", max(0, limit))
        )

    async def find_apn_devices_for_sim(
        self, *, imsi: str | None, iccid: str | None, msisdn: str | None
    ) -> list[ApnDeviceRecord]:
        if not (imsi or iccid or msisdn):
            return []
        return await self._apn_devices(
            "WHERE end_date IS NULL AND (imsi = ? OR iccid = ? OR msisdn = ?) ORDER BY created, id",
            (imsi, iccid, msisdn),
        )

    async def get_apn_operation(self, operation_id: str) -> ApnOperationRecord | None:
        return await self._get(_APN_OPERATIONS, "WHERE id = ?", (operation_id,))

    async def put_apn_network(
        self, record: ApnNetworkRecord, *, audit: AuditRecord | None = None
    ) -> ApnNetworkRecord:
        audit_row = _audit_values(audit)

        async def put(conn: aiosqlite.Connection) -> ApnNetworkRecord:
            now = clock.now()
            try:
                await conn.execute(
                    'INSERT INTO apn_networks (account, "key", apn, created, updated)'
                    ' VALUES (?, ?, ?, ?, ?) ON CONFLICT (account, "key")'
                    " DO UPDATE SET apn = excluded.apn, updated = excluded.updated",
                    (record.account, record.key, record.apn, now, now),
                )
            except sqlite3.IntegrityError as exc:
                raise ConflictError(f"APN account {record.account!r} does not exist") from exc
            rows = list(
                await conn.execute_fetchall(
                    f'{_APN_NETWORKS.select} WHERE account = ? AND "key" = ?',
                    (record.account, record.key),
                )
            )
            await _write_audit(conn, audit_row, f"{record.account}/{record.key}")
            return _APN_NETWORKS.record(rows[0])

        return await self._call("put_apn_network", put)

    async def create_apn_device(
        self,
        record: ApnDeviceRecord,
        *,
        account: ApnAccountRecord | None = None,
        operation: ApnOperationRecord | None = None,
        audit: AuditRecord | None = None,
        account_audit: AuditRecord | None = None,
    ) -> ApnDeviceRecord:
        record = replace(record, id=record.id or new_id())
        if record.metadata is not None:
            dumps(record.metadata)  # fail fast, in the caller
        audit_row, account_row = _audit_values(audit), _audit_values(account_audit)

        async def create(conn: aiosqlite.Connection) -> ApnDeviceRecord:
            now = clock.now()
            if account is not None:
                stamped = replace(account, created=account.created or now)
                async with conn.execute(
                    f"{_APN_ACCOUNTS.insert_sql} ON CONFLICT DO NOTHING",
                    _APN_ACCOUNTS.values(stamped),
                ) as cursor:
                    created = cursor.rowcount > 0
                if created:
                    await _write_audit(conn, account_row, account.key)
            try:
                await conn.execute(
                    'INSERT INTO apn_networks (account, "key", apn, created, updated)'
                    " VALUES (?, ?, NULL, ?, ?) ON CONFLICT DO NOTHING",
                    (record.account, record.network, now, now),
                )
            except sqlite3.IntegrityError as exc:
                raise ConflictError(f"APN account {record.account!r} does not exist") from exc
            for name, column in _APN_UNIQUE:
                value = getattr(record, column)
                if value is None:
                    continue
                taken = await self._scalar(
                    conn,
                    f"SELECT id FROM apn_devices WHERE account = ? AND network = ?"
                    f" AND {column} = ? AND end_date IS NULL",
                    (record.account, record.network, value),
                )
                if taken is not None:
                    raise DuplicateError(name, f"{name} is already in use in this network")
            stored = replace(
                record,
                start_date=record.start_date or now,
                created=record.created or now,
                updated=now,
            )
            await _insert(conn, _APN_DEVICES, stored, "APN device")
            if operation is not None:
                op = replace(operation, resource_id=operation.resource_id or stored.id)
                await _insert(conn, _APN_OPERATIONS, op, "operation")
            await _write_audit(conn, audit_row, stored.id)
            return stored

        return await self._call("create_apn_device", create)

    async def update_apn_device(
        self,
        device_id: str,
        change: Callable[[ApnDeviceRecord], tuple[ApnDeviceRecord | None, AuditRecord | None]],
        *,
        operation: ApnOperationRecord | None = None,
    ) -> ApnDeviceRecord | None:
        async def update(conn: aiosqlite.Connection) -> ApnDeviceRecord | None:
            rows = list(
                await conn.execute_fetchall(f"{_APN_DEVICES.select} WHERE id = ?", (device_id,))
            )
            if not rows:
                return None
            current = _apn_device(rows[0])
            new, audit = change(current)
            if new is None:
                return current
            new = replace(new, id=current.id, updated=clock.now())
            await conn.execute(_APN_UPDATE_SQL, [*_APN_DEVICES.values(new)[1:], current.id])
            if operation is not None:
                op = replace(operation, resource_id=operation.resource_id or current.id)
                await _insert(conn, _APN_OPERATIONS, op, "operation")
            await _write_audit(conn, _audit_values(audit), current.id)
            return new

        return await self._call("update_apn_device", update)

    # -- sessions parked between workers -----------------------------------------------------
    # Through the writer queue like every write: a park commits with the next batch, and a
    # claim (DELETE ... RETURNING) is atomic, so two workers can never both go on.

    async def park_session(
        self,
        session_id: str,
        state: bytes,
        at: float,
        remote_ip: str | None = None,
        serial: str | None = None,
    ) -> None:
        key = serial_key(serial) if serial else None

        async def park(conn: aiosqlite.Connection) -> None:
            await conn.execute(
                "INSERT OR REPLACE INTO cwmp_sessions (id, state, parked, remote_ip, serial_key)"
                " VALUES (?, ?, ?, ?, ?)",
                (session_id, state, at, remote_ip, key),
            )

        await self._call("park_session", park)

    async def claim_session(self, session_id: str) -> bytes | None:
        async def claim(conn: aiosqlite.Connection) -> bytes | None:
            rows = list(
                await conn.execute_fetchall(
                    "DELETE FROM cwmp_sessions WHERE id = ? RETURNING state", (session_id,)
                )
            )
            return bytes(rows[0][0]) if rows else None

        # A cheap look first: most unknown cookies are stale, not parked.
        found = await self._read.execute_fetchall(
            "SELECT 1 FROM cwmp_sessions WHERE id = ?", (session_id,)
        )
        if not list(found):
            return None
        return await self._call("claim_session", claim)

    async def claim_session_from(self, remote_ip: str) -> bytes | None:
        async def claim(conn: aiosqlite.Connection) -> bytes | None:
            # The count and the delete in one statement of the write transaction: a second
            # session parked from the address meanwhile makes it ambiguous, and no claim.
            rows = list(
                await conn.execute_fetchall(
                    "DELETE FROM cwmp_sessions WHERE remote_ip = ?1 AND"
                    " (SELECT count(*) FROM cwmp_sessions WHERE remote_ip = ?1) = 1"
                    " RETURNING state",
                    (remote_ip,),
                )
            )
            return bytes(rows[0][0]) if rows else None

        found = await self._scalar(
            self._read, "SELECT count(*) FROM cwmp_sessions WHERE remote_ip = ?", (remote_ip,)
        )
        if found != 1:
            return None
        return await self._call("claim_session_from", claim)

    async def parked_of(self, serial: str) -> list[str]:
        rows = await self._read.execute_fetchall(
            "SELECT id FROM cwmp_sessions WHERE serial_key = ?", (serial_key(serial),)
        )
        return [row[0] for row in rows]

    async def parked_sessions(self, parked_before: float) -> list[str]:
        rows = await self._read.execute_fetchall(
            "SELECT id FROM cwmp_sessions WHERE parked < ? ORDER BY parked", (parked_before,)
        )
        return [row[0] for row in rows]

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
        if all(type(op) is _SaveOp for op in batch):
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
        failed = sum(isinstance(value, _Failed) for value in results)
        if failed < len(batch):
            self.stats._record_batch(len(batch) - failed, time.perf_counter() - started)
        for op, value in zip(batch, results, strict=True):
            self._resolve(op, value)

    async def _run_saves(self, saves: list[_SaveOp]) -> None:
        """A batch of session saves alone, BEGIN to COMMIT in one hop to the writer thread.
        Each hop waits for a turn of the event loop, which under load is tens of ms: four
        hops per batch made every session wait for four turns before its commit."""
        conn = self._writer_conn
        assert conn is not None
        started = time.perf_counter()
        try:
            ids = await _on_thread(conn, _commit_saves, saves)
        except _BeginFailed as exc:
            log.error("store_begin_failed", error=str(exc.__cause__), writes=len(saves))
            self._fail(saves, exc.__cause__ or exc)
            return
        except Exception as exc:  # rolled back on the writer thread already
            await self._batch_failed(saves, exc, self._run_saves)
            return
        self.stats._record_batch(len(saves), time.perf_counter() - started)
        for op, value in zip(saves, ids, strict=True):
            self._resolve(op, value)

    def _resolve(self, op: _Op, value: Any) -> None:
        if isinstance(value, _Failed):
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
        """After a rolled-back batch: fail its one write, or retry each of its writes in a
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
        :class:`_Failed` for a call that failed alone)."""
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
            while end < len(batch) and isinstance(batch[end], _SaveOp):
                end += 1
            saves: list[_SaveOp] = batch[start:end]  # type: ignore[assignment]
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
            return _Failed(exc)
        await conn.execute(f"RELEASE {_SAVEPOINT}")
        return value

    async def _apply_saves(
        self, conn: aiosqlite.Connection, saves: list[_SaveOp]
    ) -> list[str | _Failed]:
        return await _on_thread(conn, _apply_saves_sync, saves)

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
