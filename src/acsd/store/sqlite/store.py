"""The SQLite store: devices, customers, tokens, models and audit, and the session
results, on top of the resources of its other modules."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import aiosqlite

from acsd import clock
from acsd.ids import is_id, new_id, normal_id
from acsd.macs import mac_key
from acsd.store.base import (
    ABSENT,
    AuditRecord,
    ChangedError,
    ConflictError,
    CustomerRecord,
    DeviceQuery,
    DeviceRecord,
    MacChange,
    ModelRecord,
    SessionResult,
    TokenRecord,
)
from acsd.store.device_rules import (
    audit_with_after,
    check_unchanged,
    new_row,
    router_to_merge,
    routers_own_holders,
    settle_stored_mac,
    take_router_fields,
    update_values,
    upsert_target,
    wanted_id,
)
from acsd.store.records import (
    AUDIT,
    CUSTOMERS,
    DEVICE_LIST_COLUMNS,
    DEVICE_SELECT,
    DEVICE_SELECT_FOR_SESSION,
    DEVICE_SELECT_NO_TREE,
    MODELS,
    ROUTER_FIELDS,
    TOKENS,
    audit_values,
    check_device,
    device_record,
    dumps,
    loads,
    mac_change,
    serial_key,
    stamped_copy,
    tree_column,
    tree_paths,
    warn_damaged,
    warn_rekeyed,
)
from acsd.store.sqlite.apn import ApnRecords
from acsd.store.sqlite.core import SqliteCore
from acsd.store.sqlite.crclaims import CrClaims
from acsd.store.sqlite.filters import device_filters
from acsd.store.sqlite.internet import InternetAccounts
from acsd.store.sqlite.parking import ParkedSessions
from acsd.store.sqlite.retention import Retention
from acsd.store.sqlite.rows import (
    BY_SERIAL_SQL,
    INSERT_SQL,
    REKEY_ID_SQL,
    REKEY_SQL,
    UPDATE_SQL,
    insert_record,
    is_malformed_json,
    write_audit,
)
from acsd.store.writes import save_op


async def _router_gone(
    conn: aiosqlite.Connection, device_id: str, *, but: str | None = None
) -> None:
    """The router of record ``device_id`` is no longer acsd's (the record deleted, or taken
    by another router), or no longer linked to an API account other than ``but`` (its
    mvnoAccount): the APN devices last seen in it name no router, and are not shown
    connected through it any more (no session of it will say otherwise; 0 disconnected).
    A change a client sees, so a new Version (apn._versioned). Ended devices keep the
    router they were last seen in (and the partial index apn_devices_router serves this:
    it runs at every operator write of a device)."""
    await conn.execute(
        "UPDATE apn_devices SET router = NULL, network_status = 0, version = version + 1,"
        " updated = ?"
        " WHERE router = ? AND end_date IS NULL AND account IS NOT ?",
        (clock.now(), device_id, but),
    )


class SqliteStore(InternetAccounts, ApnRecords, ParkedSessions, CrClaims, Retention, SqliteCore):
    """The default :class:`~acsd.store.base.Store`. Create, ``await open()``, use, ``await
    close()``. One instance per process and database file."""

    async def find_device_for_cpe(
        self, serial_number: str, mac_address: str | None = None, *, for_session: bool = False
    ) -> DeviceRecord | None:
        select = DEVICE_SELECT_FOR_SESSION if for_session else DEVICE_SELECT_NO_TREE
        record = await self._by_serial(select, serial_number)
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
            record = await self._one(f"{DEVICE_SELECT_NO_TREE} WHERE id = ?", (device_id,))
            if record is not None:
                return record
            # A 24-hex serial number is unlikely but possible: fall through.
        return await self._by_serial(DEVICE_SELECT_NO_TREE, key)

    async def _by_serial(self, select: str, serial_number: str) -> DeviceRecord | None:
        """The record of ``serial_number`` (any case). One whose stored key is damaged is
        found by its serial number, and its key repaired (records.warn_rekeyed): a look-up
        that misses costs one more probe of an index."""
        key = serial_key(serial_number)
        record = await self._one(f"{select} WHERE serial_key = ?", (key,))
        if record is not None and serial_key(record.serial_number) == key:
            return record
        if record is not None:  # another serial number's key: it gets its own back
            await self._rekey(REKEY_ID_SQL, record.id, serial_key(record.serial_number))
        record = await self._one(f"{select} {BY_SERIAL_SQL}", (serial_number,))
        if record is None or serial_key(record.serial_number) != key:
            return None
        await self._rekey(REKEY_SQL, serial_number, key)
        return record

    async def _rekey(self, sql: str, row: str, key: str) -> None:
        async def rekey(conn: aiosqlite.Connection) -> None:
            for (device_id,) in await conn.execute_fetchall(sql, (row, key)):
                warn_rekeyed(device_id)

        await self._call("rekey_device", rekey)

    async def device_holder(self, device_id: str) -> tuple[Any, Any] | None:
        sql = "SELECT state, serial_number FROM devices WHERE id = ?"
        rows = await self._indexed_rows(sql, (device_id,))
        return (rows[0][0], rows[0][1]) if rows else None

    async def device_params(self, device_id: str) -> dict[str, list[Any]]:
        sql = "SELECT params FROM devices WHERE id = ?"
        text = await self._scalar(self._read, sql, (device_id,))
        return tree_column(text, device_id)

    async def device_values(self, device_id: str, paths: Sequence[str]) -> dict[str, list[Any]]:
        # json_extract parses the tree in SQLite's C, in the reader's thread (once per
        # statement, whatever the number of paths): the event loop decodes a few values.
        try:
            rows = await self._read.execute_fetchall(
                "SELECT p.value, json_extract(d.params, '$.\"' || p.value || '\"')"
                " FROM devices AS d, json_each(?2) AS p WHERE d.id = ?1",
                (device_id, dumps(tree_paths(paths))),
            )
        except sqlite3.OperationalError as exc:
            # a tree that is no JSON (edited by hand): none of its values is known, as
            # device_params reads it; the router's next values replace it
            if not is_malformed_json(exc):
                raise
            warn_damaged("devices", device_id, "params", "invalid JSON")
            return {}
        return {path: loads(value) for path, value in rows if value is not None}

    async def list_devices(
        self, *, limit: int = 1000, offset: int = 0, after: str | None = None
    ) -> list[DeviceRecord]:
        # `acsd device list` shows no tree either: its default page of 1000 routers of
        # 100k parameters each read and decoded GBs (as the API's list did).
        past = "" if after is None else "WHERE serial_key > :after "
        rows = await self._read.execute_fetchall(
            f"SELECT {DEVICE_LIST_COLUMNS} FROM devices {past}"
            "ORDER BY serial_key, id LIMIT :limit OFFSET :offset",
            {
                "limit": max(0, limit),
                "offset": max(0, offset),
                "after": None if after is None else serial_key(after),
            },
        )
        return [device_record(row) for row in rows]

    async def count_devices(self) -> int:
        return int(await self._scalar(self._read, "SELECT count(*) FROM devices"))

    async def query_devices(self, query: DeviceQuery) -> tuple[list[DeviceRecord], int]:
        where, params = device_filters(query)
        rows, total = await self._page(
            DEVICE_LIST_COLUMNS,
            "devices",
            where,
            "id",
            params,
            query.limit,
            query.offset,
            # Rows carry KB of parameters each: a filter is answered from the index of the
            # filtered columns. Without one, the first ids come cheaply from the table. A
            # job= list has an index of its own (devices_job_state, which holds no search
            # columns): the planner picks it, or a customer's when that narrows more.
            index=None if where == "1" or query.job is not None else "devices_filters",
            after=query.after,
        )
        return [device_record(row) for row in rows], total

    async def find_device_by_mac(self, mac_address: str) -> DeviceRecord | None:
        key = mac_key(mac_address)
        if key is None:
            return None
        # the oldest, like find_device_for_cpe
        return await self._one(
            f"{DEVICE_SELECT_NO_TREE} WHERE mac_key = ? ORDER BY created, id LIMIT 1", (key,)
        )

    async def get_customer(self, customer_id: str) -> CustomerRecord | None:
        return await self._get(CUSTOMERS, "WHERE id = ?", (customer_id,))

    async def list_customers(
        self,
        *,
        ids: set[str] | None = None,
        limit: int = 100,
        offset: int = 0,
        after: str | None = None,
    ) -> tuple[list[CustomerRecord], int]:
        where, params = "1", {}
        if ids is not None:
            where = "id IN (SELECT value FROM json_each(:ids))"
            params["ids"] = dumps(sorted(ids))
        rows, total = await self._page(
            CUSTOMERS.columns, "customers", where, "id", params, limit, offset, after=after
        )
        return [CUSTOMERS.record(row) for row in rows], total

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
        return await self._get(TOKENS, "WHERE hash = ? AND revoked IS NULL", (token_hash,))

    async def list_tokens(self) -> list[TokenRecord]:
        rows = await self._read.execute_fetchall(f"{TOKENS.select} ORDER BY id")
        return [TOKENS.record(row) for row in rows]

    async def get_model(self, model_id: str) -> ModelRecord | None:
        return await self._get(MODELS, "WHERE id = ?", (model_id,))

    async def list_models(
        self, *, limit: int = 100, offset: int = 0
    ) -> tuple[list[ModelRecord], int]:
        rows, total = await self._page(MODELS.columns, "models", "1", "id", {}, limit, offset)
        return [MODELS.record(row) for row in rows], total

    async def list_audit(
        self, *, limit: int = 100, offset: int = 0, before: str | None = None
    ) -> tuple[list[AuditRecord], int]:
        if before is None:
            rows, total = await self._page(
                AUDIT.columns, "audit", "1", "at DESC, id DESC", {}, limit, offset
            )
            return [AUDIT.record(row) for row in rows], total
        # entries never change: where the last one seen stands can be read on its own
        found = await self._read.execute_fetchall("SELECT at FROM audit WHERE id = ?", (before,))
        if not found:
            raise LookupError(f"no audit entry {before}")
        rows = list(
            await self._read.execute_fetchall(
                f"SELECT {AUDIT.columns}, (SELECT count(*) FROM audit) FROM audit"
                " WHERE at < :at OR (at = :at AND id < :before)"
                " ORDER BY at DESC, id DESC LIMIT :limit OFFSET :offset",
                {
                    "at": found[0][0],
                    "before": before,
                    "limit": max(0, limit),
                    "offset": max(0, offset),
                },
            )
        )
        if rows:
            return [AUDIT.record(row[:-1]) for row in rows], int(rows[0][-1])
        return [], int(await self._scalar(self._read, "SELECT count(*) FROM audit"))

    async def save_session(self, result: SessionResult) -> str:
        op = save_op(result)
        self._submit(op)
        # Not shielded on purpose: a cancelled caller's write is still committed (the data
        # came from the CPE and is not lost), the caller just stops waiting for it.
        device_id = await op.future
        result.revision_moved = op.revision_moved
        return device_id

    async def upsert_device(
        self, record: DeviceRecord, *, mac: MacChange | None = None
    ) -> DeviceRecord:
        check_device(record)
        change = mac or mac_change(record)

        async def write(conn: aiosqlite.Connection) -> DeviceRecord:
            await self._settle_mac(conn, record, change, strict=False)
            return await self._apply_upsert(conn, record)

        return await self._call("upsert_device", write)

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
        check_device(record)
        audit_row = audit_values(audit)
        change = mac or mac_change(record)

        async def write(conn: aiosqlite.Connection) -> DeviceRecord:
            if expect == ABSENT:
                key = serial_key(record.serial_number)
                if await self._scalar(conn, "SELECT 1 FROM devices WHERE serial_key = ?", (key,)):
                    raise ChangedError(f"a device {record.serial_number!r} was just created")
            elif isinstance(expect, DeviceRecord):
                await self._unchanged(conn, expect)
            incoming = await self._take_router(conn, record) if new_router else None
            if record.id:
                await _router_gone(conn, record.id, but=record.mvno_account)
            await self._settle_mac(
                conn, record, change, strict=mac == "set", new_router=new_router, incoming=incoming
            )
            stored = await self._apply_upsert(conn, record)
            await write_audit(conn, audit_with_after(audit_row, audit_after, stored), stored.id)
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
        rows = await conn.execute_fetchall(
            "SELECT mac_address, mac_from_router FROM devices WHERE id = ? OR serial_key = ?"
            " ORDER BY id = ? DESC LIMIT 1",
            (record.id, serial_key(record.serial_number), record.id),
        )
        stored = (rows[0][0], bool(rows[0][1])) if rows else None
        settle_stored_mac(record, change, stored, new_router=new_router, incoming=incoming)

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
            f"{DEVICE_SELECT_NO_TREE} WHERE mac_key = ? AND id != ?", (key, record.id)
        )
        others = [device_record(row) for row in rows]
        for other_id in routers_own_holders(record, others, strict=strict):
            await conn.execute(
                "UPDATE devices SET mac_address = NULL, mac_key = NULL, mac_from_router = 0"
                " WHERE id = ?",
                (other_id,),
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
                f"{DEVICE_SELECT} WHERE serial_key = ? AND id != ?",
                (serial_key(record.serial_number), record.id),
            )
        )
        found = router_to_merge(record, device_record(rows[0]) if rows else None)
        # The old router is no record's now: the SIM it had is not known to be in any.
        await _router_gone(conn, record.id)
        if found.id:
            await conn.execute("DELETE FROM devices WHERE id = ?", (found.id,))
            # the SIM that router carries now points at the record it is merged into
            await conn.execute(
                "UPDATE apn_devices SET router = ?, version = version + 1 WHERE router = ?",
                (record.id, found.id),
            )
        values = take_router_fields(record, found)
        columns = ", ".join(f"{name} = ?" for name in ROUTER_FIELDS)
        await conn.execute(f"UPDATE devices SET {columns} WHERE id = ?", [*values, record.id])
        return found if found.id else None

    async def _unchanged(self, conn: aiosqlite.Connection, expect: DeviceRecord) -> None:
        """ChangedError unless the record still holds the operator fields ``expect`` has."""
        rows = list(
            await conn.execute_fetchall(f"{DEVICE_SELECT_NO_TREE} WHERE id = ?", (expect.id,))
        )
        check_unchanged(device_record(rows[0]) if rows else None, expect)

    async def delete_device(
        self,
        device_id: str,
        *,
        audit: AuditRecord | None = None,
        expect: DeviceRecord | None = None,
    ) -> bool:
        audit_row = audit_values(audit)

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
                # Nor an APN device's SIM in a router that is gone (Meta.Router; a record
                # made again for that router gets another id).
                await _router_gone(conn, device_id)
                await write_audit(conn, audit_row, device_id)
            return deleted

        return await self._call("delete_device", delete)

    async def create_customer(
        self, record: CustomerRecord, *, audit: AuditRecord | None = None
    ) -> CustomerRecord:
        record = replace(record, id=record.id or new_id())
        if record.reseller is not None and record.reseller == record.id:
            raise ValueError(f"customer {record.id!r} cannot be its own reseller")
        audit_row = audit_values(audit)

        async def create(conn: aiosqlite.Connection) -> CustomerRecord:
            stored = stamped_copy(record)
            if stored.reseller is not None:
                found = await self._scalar(
                    conn, "SELECT 1 FROM customers WHERE id = ?", (stored.reseller,)
                )
                if found is None:
                    raise ConflictError(f"reseller {stored.reseller!r} does not exist")
            await insert_record(conn, CUSTOMERS, stored, "customer")
            await write_audit(conn, audit_row, stored.id)
            return stored

        return await self._call("create_customer", create)

    async def create_token(
        self, record: TokenRecord, *, audit: AuditRecord | None = None
    ) -> TokenRecord:
        if not record.hash:
            raise ValueError("TokenRecord.hash is empty")
        record = replace(record, id=record.id or new_id())
        audit_row = audit_values(audit)

        async def create(conn: aiosqlite.Connection) -> TokenRecord:
            stored = replace(record, created=record.created or clock.now())
            await insert_record(conn, TOKENS, stored, "token")
            await write_audit(conn, audit_row, stored.id)
            return stored

        return await self._call("create_token", create)

    async def revoke_token(self, token_id: str, *, audit: AuditRecord | None = None) -> bool:
        """False when there is no unrevoked token with this id (an earlier revocation and
        its time are kept)."""
        audit_row = audit_values(audit)

        async def revoke(conn: aiosqlite.Connection) -> bool:
            async with conn.execute(
                "UPDATE tokens SET revoked = ? WHERE id = ? AND revoked IS NULL",
                (clock.now(), token_id),
            ) as cursor:
                revoked = cursor.rowcount > 0
            if revoked:
                await write_audit(conn, audit_row, token_id)
            return revoked

        return await self._call("revoke_token", revoke)

    async def note_token_uses(self, uses: Mapping[str, float]) -> None:
        # (one small statement a minute or so per token and process, queued as any write)
        rows = [(at, token_id) for token_id, at in sorted(uses.items())]

        async def note(conn: aiosqlite.Connection) -> None:
            await conn.executemany(
                "UPDATE tokens SET last_used = ?1 WHERE id = ?2"
                " AND (last_used IS NULL OR last_used < ?1)",
                rows,
            )

        await self._call("note_token_uses", note)

    async def create_model(
        self, record: ModelRecord, *, audit: AuditRecord | None = None
    ) -> ModelRecord:
        record = replace(record, id=record.id or new_id())
        audit_row = audit_values(audit)

        async def create(conn: aiosqlite.Connection) -> ModelRecord:
            stored = stamped_copy(record)
            await insert_record(conn, MODELS, stored, "model")
            await write_audit(conn, audit_row, stored.id)
            return stored

        return await self._call("create_model", create)

    async def _apply_upsert(self, conn: aiosqlite.Connection, record: DeviceRecord) -> DeviceRecord:
        key = serial_key(record.serial_number)
        by_serial = await self._scalar(conn, "SELECT id FROM devices WHERE serial_key = ?", (key,))
        by_id = None
        if wanted_id(record) is not None:
            by_id = await self._scalar(conn, "SELECT id FROM devices WHERE id = ?", (record.id,))
        target = upsert_target(record, by_id, by_serial)
        now = clock.now()
        if target is not None:
            await conn.execute(UPDATE_SQL, [*update_values(record, now), target])
        else:
            target, values = new_row(record, now)
            await conn.execute(INSERT_SQL, values)
        rows = list(await conn.execute_fetchall(f"{DEVICE_SELECT_NO_TREE} WHERE id = ?", (target,)))
        return device_record(rows[0])
