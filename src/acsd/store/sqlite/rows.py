"""Records <-> SQLite rows: the statements that bind values with SQLite's ``?``
placeholders (the codecs are acsd.store.records), and the audit row every operator write
adds."""

from __future__ import annotations

import sqlite3
from typing import Any

import aiosqlite

from acsd import clock
from acsd.store.base import ConflictError
from acsd.store.records import (
    AUDIT,
    AUDIT_AT,
    AUDIT_RESOURCE_ID,
    DEVICE_SCALARS,
    INSERT_COLUMNS,
    OPERATOR,
    Scalars,
    Table,
)

INSERT_SQL = (
    f"INSERT INTO devices ({', '.join(INSERT_COLUMNS)})"
    f" VALUES ({', '.join('?' for _ in INSERT_COLUMNS)})"
)

# A record whose serial_key is not its serial number's key (see records.warn_rekeyed),
# found by its serial number in small letters (SQLite's lower() folds ASCII only, on both
# sides: a serial that differs from the stored one in the case of other letters is not
# found), gets the key: ?1 the serial number, ?2 its key. The oldest of several; none
# while a record holds the key. REKEY_ID_SQL: record ?1 gets key ?2 (its own, when the
# one stored is another serial number's).
BY_SERIAL_SQL = "WHERE lower(serial_number) = lower(?) ORDER BY created, id LIMIT 1"
_REKEY = (
    "UPDATE devices SET serial_key = ?2 WHERE id = {}"
    " AND NOT EXISTS (SELECT 1 FROM devices WHERE serial_key = ?2) RETURNING id"
)
REKEY_SQL = _REKEY.format(f"(SELECT id FROM devices {BY_SERIAL_SQL.replace('?', '?1')})")
REKEY_ID_SQL = _REKEY.format("?1")


# SQLite's typeof() of the values each record field's type holds (records._HOLDS)
_TYPEOF = {str: "'text'", int: "'integer'", float: "'real', 'integer'", bool: "'integer'"}


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(int(value) if isinstance(value, bool) else value)


def as_read(table: Table | Scalars, name: str) -> str:
    """Column ``name`` as records.scalar_values reads it, in SQL: what a write that does
    not otherwise set the column writes, so that the write repairs a damaged value (a row
    edited by hand) in the C of the statement, at no cost to the row it leaves alone."""
    scalars = table.scalars if isinstance(table, Table) else table
    column = scalars.named(name)
    kinds = _TYPEOF[column.kind] + (", 'null'" if column.nullable else "")
    sound = f"typeof({name}) IN ({kinds})"
    if column.allowed is not None:  # (a value of another type is none of them)
        sound = f"{name} IN ({', '.join(_literal(v) for v in sorted(column.allowed))})"
    instead = _literal(column.default)
    if (other := column.fallback) is not None:
        instead = (
            f"CASE WHEN typeof({other.name}) IN ({_TYPEOF[other.kind]}) THEN {other.name}"
            f" ELSE {instead} END"
        )
    return f"CASE WHEN {sound} THEN {name} ELSE {instead} END"


_UPDATE_COLUMNS = [*OPERATOR, "serial_key", "mac_key", "updated"]
# (created, which an operator's write keeps, as read: repaired when damaged)
UPDATE_SQL = (
    f"UPDATE devices SET {', '.join(f'{c} = ?' for c in _UPDATE_COLUMNS)},"
    f" created = {as_read(DEVICE_SCALARS, 'created')} WHERE id = ?"
)


def is_malformed_json(exc: sqlite3.Error) -> bool:
    """Whether a statement failed on a stored JSON column that holds no JSON (SQLite
    names no column in that error)."""
    return "malformed JSON" in str(exc)


def insert_sql(table: Table) -> str:
    marks = ", ".join("?" for _ in table.names)
    return f"INSERT INTO {table.name} ({table.columns}) VALUES ({marks})"


_AUDIT_INSERT = insert_sql(AUDIT)


async def write_audit(
    conn: aiosqlite.Connection, values: list[Any] | None, resource_id: str | None
) -> None:
    if values is None:
        return
    row = list(values)  # the call may be retried: never change the prepared values
    if row[AUDIT_AT] is None:
        row[AUDIT_AT] = clock.now()
    if row[AUDIT_RESOURCE_ID] is None:
        row[AUDIT_RESOURCE_ID] = resource_id
    await conn.execute(_AUDIT_INSERT, row)


async def insert_record(conn: aiosqlite.Connection, table: Table, record: Any, what: str) -> None:
    try:
        await conn.execute(insert_sql(table), table.values(record))
    except sqlite3.IntegrityError as exc:
        raise ConflictError(f"{what} {record.id!r} cannot be stored: {exc}") from exc
