"""Records <-> PostgreSQL rows: the codecs are acsd.store.records; the statements here use
PostgreSQL's $n parameters."""

from __future__ import annotations

import re
from typing import Any

import asyncpg

from acsd import clock
from acsd.macs import mac_fragment
from acsd.store.base import ConflictError, DeviceQuery, InternetAccountQuery
from acsd.store.records import (
    AUDIT,
    AUDIT_AT,
    AUDIT_RESOURCE_ID,
    DEVICE_STATE,
    INSERT_COLUMNS,
    INTERNET_STATE,
    OPERATOR,
    Table,
    search_fold,
    shown_as,
    warn_rekeyed,
)

DEVICE_INSERT_SQL = (
    f"INSERT INTO devices ({', '.join(INSERT_COLUMNS)})"
    f" VALUES ({', '.join(f'${i}' for i in range(1, len(INSERT_COLUMNS) + 1))})"
)
_UPDATE_COLUMNS = [*OPERATOR, "serial_key", "mac_key", "updated"]
DEVICE_UPDATE_SQL = (
    "UPDATE devices SET "
    + ", ".join(f"{c} = ${i}" for i, c in enumerate(_UPDATE_COLUMNS, start=1))
    + f" WHERE id = ${len(_UPDATE_COLUMNS) + 1}"
)
# As SQLite's (acsd.store.sqlite.rows.REKEY_SQL): a record whose serial_key is damaged,
# found by its serial number in small letters, gets the key ($1 the serial, $2 its key).
BY_SERIAL_SQL = "WHERE lower(serial_number) = lower($1) ORDER BY created, id LIMIT 1"
_REKEY = (
    "UPDATE devices SET serial_key = $2 WHERE id = {}"
    " AND NOT EXISTS (SELECT 1 FROM devices WHERE serial_key = $2) RETURNING id"
)
REKEY_SQL = _REKEY.format(f"(SELECT id FROM devices {BY_SERIAL_SQL})")
REKEY_ID_SQL = _REKEY.format("$1")


async def rekey(conn: asyncpg.Connection, row: str, key: str, *, by_id: bool = False) -> bool:
    """REKEY_SQL (``row`` a serial number), or REKEY_ID_SQL (a record's id), in a
    savepoint of its own: another instance's repair of the same record at once fails it on
    the unique key, which changes nothing that matters."""
    try:
        async with conn.transaction():
            rows = await conn.fetch(REKEY_ID_SQL if by_id else REKEY_SQL, row, key)
    except asyncpg.UniqueViolationError:
        return False
    for (device_id,) in rows:
        warn_rekeyed(device_id)
    return bool(rows)


#: integer columns that hold a flag: asyncpg takes no bool for them
_FLAGS = frozenset({"drift_check", "mac_from_router", "enabled", "lock_imei"})


def flags(names: list[str], values: list[Any]) -> list[Any]:
    return [
        int(v) if n in _FLAGS and v is not None else v for n, v in zip(names, values, strict=True)
    ]


def insert_sql(table: Table) -> str:
    marks = ", ".join(f"${i}" for i in range(1, len(table.names) + 1))
    return f"INSERT INTO {table.name} ({table.columns}) VALUES ({marks})"


_AUDIT_INSERT = insert_sql(AUDIT)


async def write_audit(
    conn: asyncpg.Connection, values: list[Any] | None, resource_id: str | None
) -> None:
    if values is None:
        return
    row = list(values)  # the call may be retried: never change the prepared values
    if row[AUDIT_AT] is None:
        row[AUDIT_AT] = clock.now()
    if row[AUDIT_RESOURCE_ID] is None:
        row[AUDIT_RESOURCE_ID] = resource_id
    await conn.execute(_AUDIT_INSERT, *row)


async def insert_record(
    conn: asyncpg.Connection, table: Table, record: Any, what: str, *, tail: str = ""
) -> str:
    try:
        return await conn.execute(
            f"{insert_sql(table)} {tail}", *flags(table.names, table.values(record))
        )
    except asyncpg.IntegrityConstraintViolationError as exc:
        raise ConflictError(f"{what} {record.id!r} cannot be stored: {exc}") from exc


def rowcount(status: str) -> int:
    """The row count of a command status ("UPDATE 3", "INSERT 0 1", "DELETE 0")."""
    return int(status.rsplit(" ", 1)[-1])


# -- list filters (acsd.store.sqlite.filters, in PostgreSQL) ------------------------------


class Args:
    """Positional parameters ($1, $2, ...) of SQL built piece by piece."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def __call__(self, value: Any, cast: str = "") -> str:
        self.values.append(value)
        return f"${len(self.values)}{'::' + cast if cast else ''}"


_LIKE_SPECIAL = re.compile(r"([\\%_])")


def _customer_filters(query: DeviceQuery | InternetAccountQuery, args: Args) -> list[str]:
    clauses: list[str] = []
    if query.customers is not None:
        clauses.append(f"customer = ANY({args(sorted(query.customers), 'text[]')})")
    if query.customer is not None:
        clauses.append(f"customer = {args(query.customer, 'text')}")
    return clauses


def device_filters(query: DeviceQuery, args: Args, *, unicode: bool = True) -> str:
    """The WHERE clause of a device query. ``unicode``: the database is UTF-8; a LATIN1
    one can hold neither the fold's Greek sigmas nor normalize() them, so its search is
    ILIKE alone (as it was)."""
    clauses = _customer_filters(query, args)
    if query.state is not None:
        clauses.append(shown_as(DEVICE_STATE, query.state, args(query.state, "text")))
    if query.online is not None:
        now = args(query.now or clock.now(), "float8")
        default = args(query.default_interval, "bigint")
        grace = args(query.grace, "bigint")
        online = (
            f"last_inform >= {now} - (2 * (CASE WHEN periodic_interval > 0"
            f" THEN periodic_interval ELSE {default} END) + {grace})"
        )
        # never-seen devices (last_inform NULL) are offline
        clauses.append(online if query.online else f"NOT coalesce({online}, false)")
    if query.job is not None:
        # as SQLite's (acsd.store.sqlite.filters._JOB_SQL): the job of the record's
        # revision, read from the index devices_job_state (schema version 20)
        job = f"acsd_job_state(provisioning, revision) = {args(query.job, 'text')}"
        if query.job == "PENDING":
            # and a change no session has taken up yet, shown as a PENDING job of the
            # revision (acsd.device_view.waiting_job): from the same index, as SQLite's
            job = (
                f"({job} OR (acsd_job_state(provisioning, revision) IS NULL"
                " AND state = 'PROVISIONING' AND revision > 0))"
            )
        clauses.append(job)
    q = (query.q or "").strip()
    if q:
        columns = ("name", "serial_number", "notes")
        pattern = "%" + _LIKE_SPECIAL.sub(r"\\\1", q) + "%"
        if not unicode:
            like = args(pattern, "text")
            terms = [f"{c} ILIKE {like} ESCAPE '\\'" for c in columns]
        else:
            # as SQLite's acsd_fold compares (search_fold): decomposed, lower(), the final
            # sigma U+03C2 made U+03C3 and the sharp s "ss" as casefold() makes them
            # (lower() and ILIKE keep both: "Hauptstraße" was found by no search with an
            # ß), composed again. (Bound only here: a LATIN1 database cannot take them.)
            fold = args(search_fold(q), "text")
            final, sigma = args("\u03c2", "text"), args("\u03c3", "text")
            sharp, double = args("\u00df", "text"), args("ss", "text")

            def folded(c: str) -> str:
                return (
                    f"strpos(normalize(replace(translate(lower(normalize({c}, NFD)), {final},"
                    f" {sigma}), {sharp}, {double}), NFC), {fold}) > 0"
                )

            if q.isascii():
                # ILIKE folds case as the database's LC_CTYPE does (Unicode in a UTF-8
                # locale); a text that is not all ASCII is folded too ("strasse" finds
                # "Straße"), and only such a text
                like, wide = args(pattern, "text"), args("[^\x01-\x7f]", "text")
                terms = [
                    f"({c} ILIKE {like} ESCAPE '\\' OR ({c} ~ {wide} AND {folded(c)}))"
                    for c in columns
                ]
            else:
                terms = [folded(c) for c in columns]
        mac = mac_fragment(q)
        if mac is not None:
            terms.append(f"strpos(mac_key, {args(mac, 'text')}) > 0")
        clauses.append(f"({' OR '.join(terms)})")
    return " AND ".join(clauses) or "true"


def internet_account_filters(query: InternetAccountQuery, args: Args) -> str:
    clauses = _customer_filters(query, args)
    if query.device is not None:
        clauses.append(f"device = {args(query.device, 'text')}")
    if query.state in ("CONFIRMED", "ACTIVE"):
        # An account is ACTIVE from its start date on, whether or not the sweep stored it;
        # one without a start date stays CONFIRMED.
        now = args(query.now or clock.now(), "float8")
        clauses.append(
            f"(state = 'CONFIRMED' AND NOT coalesce(start_date <= {now}, false))"
            if query.state == "CONFIRMED"
            else f"(state = 'ACTIVE' OR (state = 'CONFIRMED' AND start_date <= {now}))"
        )
    elif query.state is not None:
        clauses.append(shown_as(INTERNET_STATE, query.state, args(query.state, "text")))
    return " AND ".join(clauses) or "true"


#: the seed of the advisory lock key of a MAC given to a device, by an operator or by its
#: router's report ("amac"; the APN devices' locks have their own: apn._APN_LOCKS)
MAC_LOCK = 0x616D6163


async def lock_value(conn: asyncpg.Connection, value: str, seed: int) -> None:
    """Hold, until the transaction ends, the lock of ``value`` in the space ``seed`` names:
    for a value no index makes unique (an account's SIMs, a MAC), other instances'
    look-ups of it wait for this transaction's insert, and see it."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, $2))", value, seed)
