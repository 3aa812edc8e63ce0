"""Session results: the one upsert that writes them, and a batch of them in a single
transaction on the writer's thread."""

from __future__ import annotations

import sqlite3
from typing import Any

from acsd.log import get_logger
from acsd.store.batching import log_failed
from acsd.store.records import DEVICE_SCALARS, dumps, warn_damaged, warn_rekeyed
from acsd.store.sqlite.rows import REKEY_ID_SQL, REKEY_SQL, as_read, is_malformed_json
from acsd.store.writes import (
    MAC_KEY_ARG,
    UP_TO_MAC,
    Bound,
    Failed,
    SaveOp,
    check_save,
    created_keys,
    miskeyed,
    saved,
    settle_saves,
    unbound_keys,
    with_ids,
)

log = get_logger("acsd.store")


# One statement for both "register" and "update": it inserts a new row, or, when the
# serial key exists, updates that row. Bound positionally: see acsd.store.writes.save_args.
_SAVE_SQL = """
INSERT INTO devices (
    id, serial_number, serial_key, mac_address, mac_key, oui, product_class, manufacturer,
    model_name, software_version, hardware_version, profile, state, revision, jobs, status,
    public_ip, last_inform, periodic_interval, params, absent_paths, connection_request_url,
    created, updated, provisioning, cr_username, cr_password, read_plan, sim, mac_from_router,
    reported_cr_username, udp_connection_request_address)
SELECT ?1, ?2, ?3,
       CASE WHEN taken THEN NULL ELSE ?4 END,
       CASE WHEN taken THEN NULL ELSE ?5 END,
       ?6, ?7, ?8, ?9, ?10, ?11, ?12, 'ACTIVE', 0, 0, ?13,
       ?14, ?15, ?16, ?17, coalesce(?18, '[]'), ?19, ?15, ?15, coalesce(?21, '{}'), ?26, ?27,
       ?28, ?29,
       ?5 IS NOT NULL AND NOT taken, ?30, ?32
-- whether a device has the reported MAC, looked up once (the router's own record, too: a
-- record that has it keeps it as it is); "WHERE true" lets SQLite parse the upsert
FROM (SELECT ?5 IS NOT NULL AND EXISTS (SELECT 1 FROM devices WHERE mac_key = ?5) AS taken)
WHERE true
ON CONFLICT (serial_key) DO UPDATE SET
    provisioning = coalesce(?21, provisioning),
    -- what the session decided about state/jobs/dhcp holds only for the revision it saw;
    -- these and the record's creation as the session read them (_AS_READ): a value edited
    -- by hand into another type (or a state this release does not know) is repaired
    state = CASE WHEN ?22 IS NOT NULL AND @revision = ?24 THEN ?22 ELSE @state END,
    jobs = CASE WHEN ?23 IS NOT NULL AND @revision = ?24 THEN ?23 ELSE @jobs END,
    dhcp = CASE WHEN ?25 IS NOT NULL AND @revision = ?24 THEN ?25 ELSE dhcp END,
    revision = @revision,
    created = @created,
    oui = excluded.oui,
    product_class = excluded.product_class,
    manufacturer = excluded.manufacturer,
    model_name = coalesce(excluded.model_name, model_name),
    software_version = coalesce(excluded.software_version, software_version),
    hardware_version = coalesce(excluded.hardware_version, hardware_version),
    -- The router's MAC only fills a record that has none and only when no device has it
    -- (excluded.* is NULL then): the operator's MAC is the one the API's contract is about,
    -- and a router must not squat the MAC of a device the operator has yet to register.
    -- (its key: _FILL_MAC_KEY_SQL)
    mac_address = coalesce(mac_address, excluded.mac_address),
    mac_from_router = CASE WHEN mac_address IS NULL THEN excluded.mac_from_router
                           ELSE mac_from_router END,
    profile = coalesce(excluded.profile, profile),
    periodic_interval = coalesce(excluded.periodic_interval, periodic_interval),
    connection_request_url = coalesce(excluded.connection_request_url, connection_request_url),
    udp_connection_request_address = coalesce(?32, udp_connection_request_address),
    cr_username = coalesce(?26, cr_username),
    cr_password = coalesce(?27, cr_password),
    read_plan = coalesce(?28, read_plan),
    sim = coalesce(?29, sim),
    -- a result that replaces the tree replaces the username read from it, even with none
    reported_cr_username = CASE WHEN ?20 THEN ?30 ELSE coalesce(?30, reported_cr_username) END,
    status = excluded.status,
    public_ip = excluded.public_ip,
    last_inform = excluded.last_inform,
    -- result wins; skipping json_patch for an empty result spares re-serialising the tree
    params = CASE WHEN ?20 THEN excluded.params
                  WHEN excluded.params = '{}' THEN params
                  WHEN ?31 THEN (
                      -- json_patch's result for a tree of leaves (a null value removes
                      -- its key), in time linear in the two trees: the stored keys the
                      -- result has not, then the result's. A value read by json_each is
                      -- SQL text or 0/1 by then: json() and the CASE make it JSON again.
                      -- A stored tree that is JSON but no object (edited by hand) has
                      -- keys that are no text, which would make the result no JSON or
                      -- give it parameters named "0": it is left out, as json_patch does.
                      SELECT json_group_object(key, CASE
                          WHEN type IN ('object', 'array') THEN json(value)
                          WHEN type IN ('true', 'false') THEN json(type)
                          ELSE value END)
                      FROM (
                          SELECT key, value, type FROM json_each(devices.params)
                          WHERE typeof(key) = 'text'
                            AND key NOT IN (SELECT key FROM json_each(?17))
                          UNION ALL
                          SELECT key, value, type FROM json_each(?17) WHERE type != 'null'
                      ))
                  ELSE json_patch(params, excluded.params) END,
    absent_paths = CASE WHEN ?18 IS NOT NULL THEN ?18
                        WHEN ?20 THEN '[]'
                        ELSE absent_paths END,
    updated = excluded.updated
"""
# The key of a MAC the upsert just gave a record that had none. Not in the upsert's SET:
# an indexed column named there has its index entry deleted and written again, same value
# or not, and every session reports its MAC: one WAL page of the devices_mac_key index per
# session (of ~7 a steady commit writes), against a look-up by the key that writes nothing.
# Run right after each upsert, so that the next save of the batch finds the MAC taken.
_FILL_MAC_KEY_SQL = (
    "UPDATE devices SET mac_key = ?5 WHERE serial_key = ?3 AND mac_key IS NULL AND mac_address = ?4"
)
# Each an expression of the stored value, in SQLite's C: a sound row pays a typeof() or two.
_AS_READ = ("revision", "state", "jobs", "created")
for _name in _AS_READ:
    _SAVE_SQL = _SAVE_SQL.replace(f"@{_name}", as_read(DEVICE_SCALARS, _name))

# last_inform as the session read it: one that is no number (a row edited by hand) reads
# as none (acsd.store.records.scalar_values), and the check that no later session
# committed first compares the two: else it would refuse every session of the router.
_LAST_INFORM = "CASE WHEN typeof(last_inform) IN ('real', 'integer') THEN last_inform END"
_IDS_SQL = (
    f"SELECT id, serial_key, {_LAST_INFORM}, {as_read(DEVICE_SCALARS, 'revision')} FROM devices"
    " WHERE id IN (SELECT value FROM json_each(?))"
)
_KEYS_SQL = (
    "SELECT id, serial_key FROM devices WHERE serial_key IN (SELECT value FROM json_each(?))"
)
_HEARD_SQL = (
    f"SELECT serial_key, {_LAST_INFORM}, id, serial_number FROM devices"
    " WHERE serial_key IN (SELECT value FROM json_each(?))"
)


# ?1: the serial key that the save's upsert targets (save_args' [2], set by the writer)
_CLEAR_DAMAGED_TREE_SQL = (
    "UPDATE devices SET params = '{}' WHERE serial_key = ? AND NOT json_valid(params) RETURNING id"
)


class BeginFailed(Exception):
    """BEGIN IMMEDIATE failed (the write lock stayed busy): no save of the batch is at fault."""


def commit_saves(conn: sqlite3.Connection, saves: list[SaveOp]) -> list[str | Failed]:
    try:
        conn.execute("BEGIN IMMEDIATE")
    except Exception as exc:
        raise BeginFailed() from exc
    try:
        ids = apply_saves_sync(conn, saves)
        conn.execute("COMMIT")
    except BaseException:
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        except Exception as undo:
            log.error("store_rollback_failed", error=str(undo))
        raise
    return ids


#: names of the savepoints that isolate session saves inside the batch's transaction (the
#: writer's _SAVEPOINT isolates a call; neither is ever nested in the other)
_SAVES_SAVEPOINT = "acsd_saves"
_SAVE_SAVEPOINT = "acsd_save"


def apply_saves_sync(conn: sqlite3.Connection, saves: list[SaveOp]) -> list[str | Failed]:
    """The saves, in an open transaction; the device id each one wrote, or a
    :class:`Failed` with :class:`StaleResultError` for one a later session overtook (the
    rules are acsd.store.writes.check_save), or with the error of one that failed alone
    (its own writes undone, the others kept).

    All in one statement, in a savepoint: when a save fails there, the savepoint is rolled
    back and the saves are written again one at a time, each in a savepoint of its own, so
    that the bad one fails alone without the writer replaying the whole batch (other
    callers' writes included) one transaction at a time."""
    conn.execute(f"SAVEPOINT {_SAVES_SAVEPOINT}")
    try:
        out = _apply_saves(conn, saves, alone=False)
    except Exception:
        # Some errors (disk full, I/O) roll the whole transaction back: no savepoint is
        # left, and the writer falls back to a transaction per write.
        if not conn.in_transaction:
            raise
        conn.execute(f"ROLLBACK TO {_SAVES_SAVEPOINT}")
        conn.execute(f"RELEASE {_SAVES_SAVEPOINT}")
        return _apply_saves(conn, saves, alone=True)
    conn.execute(f"RELEASE {_SAVES_SAVEPOINT}")
    return out


def _save_alone(conn: sqlite3.Connection, op: SaveOp) -> Exception | None:
    """One save in a savepoint of its own: its error (its writes undone), or None."""
    error = _try_save(conn, op)
    if error is not None and _cleared_damaged_tree(conn, op, error):
        error = _try_save(conn, op)
    if error is not None:
        log_failed(error, "save_session")
    return error


def _try_save(conn: sqlite3.Connection, op: SaveOp) -> Exception | None:
    conn.execute(f"SAVEPOINT {_SAVE_SAVEPOINT}")
    try:
        _write(conn, op.args)
    except Exception as exc:
        if not conn.in_transaction:
            raise
        conn.execute(f"ROLLBACK TO {_SAVE_SAVEPOINT}")
        conn.execute(f"RELEASE {_SAVE_SAVEPOINT}")
        return exc
    conn.execute(f"RELEASE {_SAVE_SAVEPOINT}")
    return None


def _write(conn: sqlite3.Connection, args: list[Any]) -> None:
    conn.execute(_SAVE_SQL, args)
    if args[MAC_KEY_ARG] is not None:
        conn.execute(_FILL_MAC_KEY_SQL, args[UP_TO_MAC])


def _cleared_damaged_tree(conn: sqlite3.Connection, op: SaveOp, error: Exception) -> bool:
    """A stored tree that is no JSON (edited by hand, a half restored backup) failed the
    merge of every session of its router: it is emptied, with the warning its reads give,
    and the session's values start it anew. Checked only once a save has failed, so the
    sessions of sound rows never pay for parsing their tree once more."""
    if not isinstance(error, sqlite3.OperationalError) or not is_malformed_json(error):
        return False
    rows = conn.execute(_CLEAR_DAMAGED_TREE_SQL, (op.args[2],)).fetchall()
    for (device_id,) in rows:
        warn_damaged("devices", device_id, "params", "invalid JSON")
    return bool(rows)


def _heard(conn: sqlite3.Connection, saves: list[SaveOp], keys: set[str]) -> dict[str, Any]:
    """The stored last_inform of the records of serial keys ``keys`` (the saves with no
    record to update), with their keys repaired (records.warn_rekeyed) where a hand edit
    damaged them: a record holding another serial number's key gets its own back, and one
    of a save's serial that a damaged key hid gets the save's: the save then updates the
    record of its serial, neither another nor a second one. A CPE's first sessions only
    pay for this."""
    rows = conn.execute(_HEARD_SQL, (dumps(sorted(keys)),)).fetchall()
    wrong = miskeyed(rows)  # first: each frees the key it held for its serial's record
    held = {row[0] for row in rows if row[2] not in dict(wrong)}
    serials = {op.serial_key: op.args[1] for op in saves if op.serial_key not in held}
    statements = [(REKEY_ID_SQL, pair) for pair in wrong]
    statements += [(REKEY_SQL, (serial, key)) for key, serial in serials.items() if key in keys]
    repaired = False
    for sql, args in statements:
        for (device_id,) in conn.execute(sql, args).fetchall():
            warn_rekeyed(device_id)
            repaired = True
    if repaired:
        rows = conn.execute(_HEARD_SQL, (dumps(sorted(keys)),)).fetchall()
    return {row[0]: row[1] for row in rows}


def _apply_saves(
    conn: sqlite3.Connection, saves: list[SaveOp], *, alone: bool
) -> list[str | Failed]:
    """apply_saves_sync's work: ``alone`` writes each save as it is checked, in a
    savepoint of its own (a save that failed is then no later save's predecessor);
    else all of them at the end."""
    # A session bound to a record updates that record even when the serial differs
    # (bound by MAC): its stored serial key becomes the conflict target of the upsert.
    bound: dict[str, Bound] = {}  # id -> (serial key, last_inform, revision)
    wanted = [op.device_id for op in saves if op.device_id]
    if wanted:
        rows = conn.execute(_IDS_SQL, (dumps(wanted),)).fetchall()
        bound = {row[0]: (row[1], row[2], row[3]) for row in rows}
    unbound = unbound_keys(saves, bound)
    heard: dict[str, float | None] = {}
    if unbound:
        heard = _heard(conn, saves, unbound)
    out: list[str | Failed | None]
    if alone:
        out = []
        for op in saves:
            done = check_save(op, bound, heard)
            if not isinstance(done, Failed):
                if (error := _save_alone(conn, op)) is not None:
                    done = Failed(error)
                else:
                    saved(op, done, bound, heard)
            out.append(done)
    else:
        out, live = settle_saves(saves, bound, heard)
        for op in live:
            _write(conn, op.args)
    if None not in out:
        return out  # type: ignore[return-value]
    rows = conn.execute(_KEYS_SQL, (dumps(created_keys(saves, out)),)).fetchall()
    return with_ids(saves, out, {row[1]: row[0] for row in rows})
