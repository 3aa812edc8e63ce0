"""Session results on PostgreSQL: the upsert that writes them and the "first session wins"
checks, made under row locks so that they hold across acsd instances."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from acsd.log import get_logger
from acsd.store.batching import log_failed
from acsd.store.postgres.rows import MAC_LOCK, lock_value, rekey
from acsd.store.records import DEVICE_STATE
from acsd.store.writes import (
    Bound,
    Failed,
    SaveOp,
    created_keys,
    miskeyed,
    settle_saves,
    unbound_keys,
    with_ids,
)

log = get_logger("acsd.store")

# The SQLite statement (acsd.store.sqlite.saves._SAVE_SQL) with the same positional
# parameters; params are JSONB here and merge with ||, which for a flat object of
# path -> [value, type] is what json_patch does. Every parameter is cast once, as it is
# used, because PostgreSQL infers one type per parameter.
SAVE_SQL = """
INSERT INTO devices AS d (
    id, serial_number, serial_key, mac_address, mac_key, oui, product_class, manufacturer,
    model_name, software_version, hardware_version, profile, state, revision, jobs, status,
    public_ip, last_inform, periodic_interval, params, absent_paths, connection_request_url,
    created, updated, provisioning, cr_username, cr_password, read_plan, sim, mac_from_router,
    reported_cr_username, udp_connection_request_address)
SELECT $1::text, $2::text, $3::text,
       CASE WHEN taken THEN NULL ELSE $4::text END,
       CASE WHEN taken THEN NULL ELSE $5::text END,
       $6::text, $7::text, $8::text, $9::text, $10::text, $11::text, $12::text,
       'ACTIVE', 0, 0, $13::text, $14::text, $15::float8, $16::bigint, $17::jsonb,
       coalesce($18::text, '[]'), $19::text, $15::float8, $15::float8,
       coalesce($21::text, '{}'), $26::text, $27::text, $28::text, $29::text,
       CASE WHEN $5::text IS NOT NULL AND NOT taken THEN 1 ELSE 0 END, $30::text, $31::text
FROM (SELECT $5::text IS NOT NULL
             AND EXISTS (SELECT 1 FROM devices WHERE mac_key = $5::text) AS taken) AS mac
ON CONFLICT (serial_key) DO UPDATE SET
    provisioning = coalesce($21::text, d.provisioning),
    -- (a state this release does not know, edited by hand, as read: repaired)
    state = CASE WHEN $22::text IS NOT NULL AND d.revision = $24::bigint
                 THEN $22::text WHEN d.state IN (@known) THEN d.state ELSE @default END,
    jobs = CASE WHEN $23::bigint IS NOT NULL AND d.revision = $24::bigint
                THEN $23::bigint ELSE d.jobs END,
    dhcp = CASE WHEN $25::text IS NOT NULL AND d.revision = $24::bigint
                THEN $25::text ELSE d.dhcp END,
    oui = excluded.oui,
    product_class = excluded.product_class,
    manufacturer = excluded.manufacturer,
    model_name = coalesce(excluded.model_name, d.model_name),
    software_version = coalesce(excluded.software_version, d.software_version),
    hardware_version = coalesce(excluded.hardware_version, d.hardware_version),
    mac_address = coalesce(d.mac_address, excluded.mac_address),
    mac_key = CASE WHEN d.mac_address IS NULL THEN excluded.mac_key ELSE d.mac_key END,
    mac_from_router = CASE WHEN d.mac_address IS NULL THEN excluded.mac_from_router
                           ELSE d.mac_from_router END,
    profile = coalesce(excluded.profile, d.profile),
    periodic_interval = coalesce(excluded.periodic_interval, d.periodic_interval),
    connection_request_url = coalesce(excluded.connection_request_url,
                                      d.connection_request_url),
    udp_connection_request_address = coalesce($31::text, d.udp_connection_request_address),
    cr_username = coalesce($26::text, d.cr_username),
    cr_password = coalesce($27::text, d.cr_password),
    read_plan = coalesce($28::text, d.read_plan),
    sim = coalesce($29::text, d.sim),
    reported_cr_username = CASE WHEN $20::boolean THEN $30::text
                                ELSE coalesce($30::text, d.reported_cr_username) END,
    status = excluded.status,
    public_ip = excluded.public_ip,
    last_inform = excluded.last_inform,
    -- a stored tree that is JSON but no object (edited by hand) is replaced, as SQLite's
    -- json_patch replaces it: || would make an array of the two
    params = CASE WHEN $20::boolean THEN excluded.params
                  WHEN excluded.params = '{}'::jsonb THEN d.params
                  WHEN jsonb_typeof(d.params) <> 'object' THEN excluded.params
                  ELSE d.params || excluded.params END,
    absent_paths = CASE WHEN $18::text IS NOT NULL THEN $18::text
                        WHEN $20::boolean THEN '[]'
                        ELSE d.absent_paths END,
    updated = excluded.updated
""".replace(
    "@known", ", ".join(f"'{state}'" for state in sorted(DEVICE_STATE.allowed or ()))
).replace("@default", f"'{DEVICE_STATE.default}'")

# Row locks taken in serial-key order (see the core's docstring): another instance's
# session of the same CPE commits before or after this batch, never in between the check
# and the write.
_BOUND_SQL = (
    "SELECT id, serial_key, last_inform, revision, mac_key IS NULL FROM devices"
    " WHERE id = ANY($1::text[]) ORDER BY serial_key FOR UPDATE"
)
#: save_args' position of the reported MAC's key
_MAC_KEY = 4
_HEARD_SQL = (
    "SELECT serial_key, last_inform, id, serial_number FROM devices"
    " WHERE serial_key = ANY($1::text[])"
    " ORDER BY serial_key FOR UPDATE"
)
_KEYS_SQL = "SELECT id, serial_key FROM devices WHERE serial_key = ANY($1::text[])"

#: errors after which nothing of the batch is left to commit
_CONNECTION_LOST = (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError)

_RESET = 19
#: save_args' ?31 tells SQLite to merge a result of many values key by key, as json_patch
#: is quadratic there (acsd.store.writes.MERGE_BY_KEY_FROM). jsonb || is linear in
#: both trees whatever their sizes, so SAVE_SQL takes the first 30 and has no ?31: the
#: parameters after it move down one ($31 is save_args' 32nd).
_SQLITE_ONLY = 30


def _pg_args(args: list[Any]) -> list[Any]:
    out = [*args[:_SQLITE_ONLY], *args[_SQLITE_ONLY + 1 :]]
    out[_RESET] = bool(out[_RESET])
    return out


async def apply_saves(
    conn: asyncpg.Connection,
    saves: list[SaveOp],
    failed: Callable[[Exception], Awaitable[None]],
) -> list[str | Failed]:
    """The saves, in the open transaction: the device id each wrote, or a Failed with
    StaleResultError for one a later session overtook, or with the error of one that
    failed alone (the rules are acsd.store.writes.check_save; savepoints as the SQLite
    backend's apply_saves_sync). ``failed`` is told of each error that a savepoint undid
    (the writer's wait for locks, see PgCore._savepoint_failed)."""
    try:
        async with conn.transaction():  # a savepoint inside the batch's transaction
            return await _apply_saves(conn, saves)
    except _CONNECTION_LOST:
        raise  # nothing of the batch is left to commit
    except Exception as exc:
        await failed(exc)
    # Which save broke the run is unknown: each again alone, its row locks taken in a
    # savepoint of its own too. A row locked by another client then fails its own save
    # only; taken for the whole run, it undid the batch's transaction, and every write
    # of the batch ran again alone, waiting out the same lock once more.
    out: list[str | Failed] = []
    for op in saves:
        try:
            async with conn.transaction():
                out.extend(await _apply_saves(conn, [op]))
        except _CONNECTION_LOST:
            raise
        except Exception as exc:
            log_failed(exc, "save_session")
            await failed(exc)
            out.append(Failed(exc))
    return out


async def _heard(conn: asyncpg.Connection, saves: list[SaveOp], keys: set[str]) -> dict[str, Any]:
    """As SQLite's: the stored last_inform of the records of ``keys``, their keys
    repaired where a hand edit damaged them (another serial number's, or one that hid the
    record of a save's serial)."""
    rows = await conn.fetch(_HEARD_SQL, sorted(keys))
    wrong = miskeyed(rows)  # first: each frees the key it held for its serial's record
    held = {row[0] for row in rows if row[2] not in dict(wrong)}
    serials = {op.serial_key: op.args[1] for op in saves if op.serial_key not in held}
    repaired = False
    for device_id, own in wrong:
        repaired = await rekey(conn, device_id, own, by_id=True) or repaired
    for key in sorted(serials.keys() & keys):  # (row locks in serial-key order)
        repaired = await rekey(conn, serials[key], key) or repaired
    if repaired:
        rows = await conn.fetch(_HEARD_SQL, sorted(keys))
    return {row[0]: row[1] for row in rows}


async def _apply_saves(conn: asyncpg.Connection, saves: list[SaveOp]) -> list[str | Failed]:
    """apply_saves' work: the saves' rows locked, each checked in queue order, and those
    to write upserted together at the end, in serial-key order."""
    bound: dict[str, Bound] = {}
    macless: set[str] = set()
    wanted = sorted({op.device_id for op in saves if op.device_id})
    if wanted:
        rows = await conn.fetch(_BOUND_SQL, wanted)
        bound = {row[0]: (row[1], row[2], row[3]) for row in rows}
        macless = {row[0] for row in rows if row[4]}
    # A router's MAC goes to its record only while no other holds it (SAVE_SQL's `taken`):
    # an operator's write of that MAC on another instance, not committed yet, holds its
    # lock (store._take_mac), and this waits for it and then sees its row.
    for key in sorted(
        {
            op.args[_MAC_KEY]
            for op in saves
            if op.args[_MAC_KEY] is not None and (not op.device_id or op.device_id in macless)
        }
    ):
        await lock_value(conn, key, MAC_LOCK)
    unbound = unbound_keys(saves, bound)
    heard: dict[str, float | None] = {}
    if unbound:
        heard = await _heard(conn, saves, unbound)
    out, live = settle_saves(saves, bound, heard)
    if live:
        # Upserts in serial-key order too (stable: one CPE's results keep queue order).
        ordered = sorted(live, key=lambda op: op.args[2])
        await conn.executemany(SAVE_SQL, [_pg_args(op.args) for op in ordered])
    if None not in out:
        return out  # type: ignore[return-value]
    rows = await conn.fetch(_KEYS_SQL, created_keys(saves, out))
    return with_ids(saves, out, {row[1]: row[0] for row in rows})
