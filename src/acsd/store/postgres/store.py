"""The PostgreSQL store: devices, customers, tokens, models, audit and session results,
with the rules of the SQLite store (acsd.store.sqlite.store) in PostgreSQL's SQL."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import asyncpg

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
from acsd.store.postgres.apn import ApnRecords
from acsd.store.postgres.core import PgCore
from acsd.store.postgres.crclaims import CrClaims
from acsd.store.postgres.internet import InternetAccounts
from acsd.store.postgres.parking import ParkedSessions
from acsd.store.postgres.retention import Retention
from acsd.store.postgres.rows import (
    BY_SERIAL_SQL,
    DEVICE_INSERT_SQL,
    DEVICE_UPDATE_SQL,
    MAC_LOCK,
    Args,
    device_filters,
    flags,
    insert_record,
    lock_value,
    rekey,
    rowcount,
    write_audit,
)
from acsd.store.records import (
    AUDIT,
    CUSTOMERS,
    DEVICE_LIST_COLUMNS,
    DEVICE_SELECT,
    DEVICE_SELECT_FOR_SESSION,
    DEVICE_SELECT_NO_TREE,
    INSERT_COLUMNS,
    MODELS,
    OPERATOR,
    ROUTER_FIELDS,
    TOKENS,
    audit_values,
    check_device,
    device_record,
    loads,
    mac_change,
    serial_key,
    stamped_copy,
    tree_column,
    tree_paths,
)
from acsd.store.writes import save_op

_UPDATE_NAMES = [*OPERATOR, "serial_key", "mac_key", "updated"]


async def _router_gone(conn: asyncpg.Connection, device_id: str, *, but: str | None = None) -> None:
    """As the SQLite store's: the router of record ``device_id`` is no longer acsd's, or no
    longer linked to an API account other than ``but``: the APN devices last seen in it
    name no router and show disconnected, with a new Version (a change a client sees)."""
    await conn.execute(
        "UPDATE apn_devices SET router = NULL, network_status = 0, version = version + 1,"
        " updated = $1 WHERE router = $2 AND end_date IS NULL"
        " AND account IS DISTINCT FROM $3",
        clock.now(),
        device_id,
        but,
    )


class PgStore(InternetAccounts, ApnRecords, ParkedSessions, CrClaims, Retention, PgCore):
    """The :class:`~acsd.store.base.Store` on PostgreSQL (``store.url = postgresql://...``).
    One instance per process; any number of processes and hosts may share the database."""

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
        return await self._one(f"{select} WHERE mac_key = $1 ORDER BY created, id LIMIT 1", key)

    async def get_device(self, key: str) -> DeviceRecord | None:
        if is_id(device_id := normal_id(key)):
            record = await self._one(f"{DEVICE_SELECT_NO_TREE} WHERE id = $1", device_id)
            if record is not None:
                return record
        return await self._by_serial(DEVICE_SELECT_NO_TREE, key)

    async def _by_serial(self, select: str, serial_number: str) -> DeviceRecord | None:
        """As the SQLite store's: a record whose stored key is damaged is found by its
        serial number, and its key repaired."""
        key = serial_key(serial_number)
        record = await self._one(f"{select} WHERE serial_key = $1", key)
        if record is not None and serial_key(record.serial_number) == key:
            return record
        if record is not None:  # another serial number's key: it gets its own back
            device_id, own = record.id, serial_key(record.serial_number)
            await self._call(
                "rekey_device",
                lambda conn: rekey(conn, device_id, own, by_id=True),
                rows=(device_id,),
            )
        record = await self._one(f"{select} {BY_SERIAL_SQL}", serial_number)
        if record is None or serial_key(record.serial_number) != key:
            return None
        # (the row REKEY_SQL finds by the serial number is the one just read, but for
        # another instance's write in between, which the row lock, not this, keeps right)
        await self._call(
            "rekey_device", lambda conn: rekey(conn, serial_number, key), rows=(record.id,)
        )
        return record

    async def device_holder(self, device_id: str) -> tuple[Any, Any] | None:
        sql = "SELECT state, serial_number FROM devices WHERE id = $1"
        row = await self._reading("fetchrow", sql, device_id)
        return (row[0], row[1]) if row is not None else None

    async def device_params(self, device_id: str) -> dict[str, list[Any]]:
        text = await self._scalar("SELECT params FROM devices WHERE id = $1", device_id)
        return tree_column(text, device_id)

    async def device_values(self, device_id: str, paths: Sequence[str]) -> dict[str, list[Any]]:
        # -> finds a key in the stored jsonb without decoding the rest
        rows = await self._fetch(
            "SELECT p, d.params -> p FROM devices AS d, unnest($2::text[]) AS p"
            # (an array holds p as an element: a tree that is no object holds no value)
            " WHERE d.id = $1 AND jsonb_typeof(d.params) = 'object' AND d.params ? p",
            device_id,
            tree_paths(paths),
        )
        return {row[0]: loads(row[1]) for row in rows}

    async def list_devices(
        self, *, limit: int = 1000, offset: int = 0, after: str | None = None
    ) -> list[DeviceRecord]:
        # no tree, as SqliteStore.list_devices: `acsd device list` reads 1000 records.
        # COLLATE "C": in code point order, as SQLite's; the database's own collation
        # would follow its locale (en_US puts "_" before "-"), which differs by server.
        # (The unique index on serial_key then goes unused here: a sort of the table for
        # a CLI listing, rather than a migration of the column.)
        # (after: compared in the same order, "C", as SQLite's BINARY compares)
        rows = await self._fetch(
            f"SELECT {DEVICE_LIST_COLUMNS} FROM devices"
            ' WHERE $3::text IS NULL OR serial_key COLLATE "C" > $3::text'
            ' ORDER BY serial_key COLLATE "C", id LIMIT $1 OFFSET $2',
            max(0, limit),
            max(0, offset),
            None if after is None else serial_key(after),
        )
        return [device_record(row) for row in rows]

    async def count_devices(self) -> int:
        return int(await self._scalar("SELECT count(*) FROM devices"))

    async def query_devices(self, query: DeviceQuery) -> tuple[list[DeviceRecord], int]:
        args = Args()
        where = device_filters(query, args, unicode=self.utf8)
        rows, total = await self._page(
            DEVICE_LIST_COLUMNS,
            "devices",
            where,
            "id",
            args,
            query.limit,
            query.offset,
            after=query.after,
            # rows carry KBs of status and memory (the tree is toasted): a deep page reads
            # the ids it skips from an index, not the rows
            wide=True,
            # A search (q=) reads every row's text, which no index holds (notes): once,
            # unless an index narrows the rows first (a customer's, a job's), which both
            # the count and the page then use (the window over the keys was planned as a
            # walk of every row in id order: 80 ms rather than 20 for q= and a customer's
            # 2,000 devices among 100k).
            scan_once=bool((query.q or "").strip())
            and query.customer is None
            and query.customers is None
            and query.job is None,
        )
        return [device_record(row) for row in rows], total

    async def find_device_by_mac(self, mac_address: str) -> DeviceRecord | None:
        key = mac_key(mac_address)
        if key is None:
            return None
        return await self._one(
            f"{DEVICE_SELECT_NO_TREE} WHERE mac_key = $1 ORDER BY created, id LIMIT 1", key
        )

    async def get_customer(self, customer_id: str) -> CustomerRecord | None:
        return await self._get(CUSTOMERS, "WHERE id = $1", customer_id)

    async def list_customers(
        self,
        *,
        ids: set[str] | None = None,
        limit: int = 100,
        offset: int = 0,
        after: str | None = None,
    ) -> tuple[list[CustomerRecord], int]:
        args = Args()
        where = "true" if ids is None else f"id = ANY({args(sorted(ids), 'text[]')})"
        rows, total = await self._page(
            CUSTOMERS.columns, "customers", where, "id", args, limit, offset, after=after
        )
        return [CUSTOMERS.record(row) for row in rows], total

    async def customer_tree(self, customer_id: str) -> set[str]:
        # UNION (not UNION ALL) drops rows already seen, so a reseller cycle ends the walk.
        rows = await self._fetch(
            """
            WITH RECURSIVE tree (id) AS (
                SELECT id FROM customers WHERE id = $1
                UNION
                SELECT customers.id FROM customers JOIN tree ON customers.reseller = tree.id
            )
            SELECT id FROM tree
            """,
            customer_id,
        )
        return {customer_id, *(row[0] for row in rows)}

    async def find_token(self, token_hash: str) -> TokenRecord | None:
        return await self._get(TOKENS, "WHERE hash = $1 AND revoked IS NULL", token_hash)

    async def list_tokens(self) -> list[TokenRecord]:
        return [TOKENS.record(row) for row in await self._fetch(f"{TOKENS.select} ORDER BY id")]

    async def get_model(self, model_id: str) -> ModelRecord | None:
        return await self._get(MODELS, "WHERE id = $1", model_id)

    async def list_models(
        self, *, limit: int = 100, offset: int = 0
    ) -> tuple[list[ModelRecord], int]:
        rows, total = await self._page(
            MODELS.columns, "models", "true", "id", Args(), limit, offset
        )
        return [MODELS.record(row) for row in rows], total

    async def list_audit(
        self, *, limit: int = 100, offset: int = 0, before: str | None = None
    ) -> tuple[list[AuditRecord], int]:
        if before is None:
            rows, total = await self._page(
                AUDIT.columns, "audit", "true", "at DESC, id DESC", Args(), limit, offset
            )
            return [AUDIT.record(row) for row in rows], total
        # entries never change: where the last one seen stands can be read on its own
        at = await self._scalar("SELECT at FROM audit WHERE id = $1", before)
        if at is None:
            raise LookupError(f"no audit entry {before}")
        rows = await self._fetch(
            f"SELECT {AUDIT.columns}, (SELECT count(*) FROM audit) FROM audit"
            " WHERE at < $1 OR (at = $1 AND id < $2)"
            " ORDER BY at DESC, id DESC LIMIT $3 OFFSET $4",
            at,
            before,
            max(0, limit),
            max(0, offset),
        )
        if rows:
            return [AUDIT.record(tuple(row)[:-1]) for row in rows], int(rows[0][-1])
        return [], int(await self._scalar("SELECT count(*) FROM audit"))

    async def save_session(self, result: SessionResult) -> str:
        op = save_op(result)
        self._submit(op)
        device_id = await op.future
        result.revision_moved = op.revision_moved
        return device_id

    async def upsert_device(
        self, record: DeviceRecord, *, mac: MacChange | None = None
    ) -> DeviceRecord:
        check_device(record)
        change = mac or mac_change(record)

        async def write(conn: asyncpg.Connection) -> DeviceRecord:
            await self._settle_mac(conn, record, change, strict=False)
            return await self._apply_upsert(conn, record)

        others = await self._other_rows(record, change)
        # (the others: the records whose serial or MAC it may take, found before it)
        return await self._call("upsert_device", write, rows=(record.id,), may_lock=others)

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

        async def write(conn: asyncpg.Connection) -> DeviceRecord:
            # (a create, expect == ABSENT: _apply_upsert finds a record made meanwhile)
            if isinstance(expect, DeviceRecord):
                await self._unchanged(conn, expect)
            incoming = await self._take_router(conn, record) if new_router else None
            if record.id:
                await _router_gone(conn, record.id, but=record.mvno_account)
            await self._settle_mac(
                conn, record, change, strict=mac == "set", new_router=new_router, incoming=incoming
            )
            stored = await self._apply_upsert(conn, record, new=expect == ABSENT)
            await write_audit(conn, audit_with_after(audit_row, audit_after, stored), stored.id)
            return stored

        others = await self._other_rows(record, change)
        return await self._call("write_device", write, rows=(record.id,), may_lock=others)

    async def _other_rows(self, record: DeviceRecord, change: MacChange) -> list[str]:
        """The rows besides its own that a write of ``record`` may write or lock: the
        records that hold the MAC it sets (_take_mac takes it from them), and the one
        that holds its serial number (a new router's unclaimed record, which
        _take_router merges; or the row a record without an id is written over). Read
        before the write, for the writer to keep it apart while one of them is held
        (CallOp.rows); what the write does is decided in its transaction, as before."""
        key = mac_key(record.mac_address) if change == "set" else None
        rows = await self._fetch(
            "SELECT id FROM devices WHERE id != $1 AND (serial_key = $2 OR mac_key = $3)",
            record.id,
            serial_key(record.serial_number),
            key,
        )
        return [row[0] for row in rows]

    async def _settle_mac(
        self,
        conn: asyncpg.Connection,
        record: DeviceRecord,
        change: MacChange,
        *,
        strict: bool,
        new_router: bool = False,
        incoming: DeviceRecord | None = None,
    ) -> None:
        """As SqliteStore._settle_mac: the write's MAC, decided in its transaction."""
        if change == "set":
            record.mac_from_router = False
            await self._take_mac(conn, record, strict=strict)
            return
        row = await conn.fetchrow(
            "SELECT mac_address, mac_from_router FROM devices WHERE id = $1 OR serial_key = $2"
            " ORDER BY id = $1 DESC LIMIT 1",
            record.id,
            serial_key(record.serial_number),
        )
        stored = (row[0], bool(row[1])) if row is not None else None
        settle_stored_mac(record, change, stored, new_router=new_router, incoming=incoming)

    async def _take_mac(
        self, conn: asyncpg.Connection, record: DeviceRecord, *, strict: bool = True
    ) -> None:
        """As SqliteStore._take_mac: the operator's MAC wins over routers' own reports.
        Under a lock on the MAC held to the commit: two instances giving two new records
        one MAC would each find it free (neither sees the other's uncommitted row, and no
        index makes a MAC unique); the second now waits, then finds the first's."""
        key = mac_key(record.mac_address)
        if key is not None:
            await lock_value(conn, key, MAC_LOCK)
        rows = await conn.fetch(
            f"{DEVICE_SELECT_NO_TREE} WHERE mac_key = $1 AND id != $2 FOR UPDATE", key, record.id
        )
        others = [device_record(row) for row in rows]
        for other_id in routers_own_holders(record, others, strict=strict):
            await conn.execute(
                "UPDATE devices SET mac_address = NULL, mac_key = NULL, mac_from_router = 0"
                " WHERE id = $1",
                other_id,
            )

    async def _take_router(
        self, conn: asyncpg.Connection, record: DeviceRecord
    ) -> DeviceRecord | None:
        """As SqliteStore._take_router: a replaced router's reports go, the new one's
        unclaimed record (if it called in already) is merged in."""
        row = await conn.fetchrow(
            f"{DEVICE_SELECT} WHERE serial_key = $1 AND id != $2 FOR UPDATE",
            serial_key(record.serial_number),
            record.id,
        )
        found = router_to_merge(record, device_record(row) if row is not None else None)
        # The old router is no record's now: the SIM it had is not known to be in any.
        await _router_gone(conn, record.id)
        if found.id:
            await conn.execute("DELETE FROM devices WHERE id = $1", found.id)
            # the SIM that router carries now points at the record it is merged into
            await conn.execute(
                "UPDATE apn_devices SET router = $1, version = version + 1 WHERE router = $2",
                record.id,
                found.id,
            )
        values = take_router_fields(record, found)
        columns = ", ".join(f"{name} = ${i}" for i, name in enumerate(ROUTER_FIELDS, start=1))
        await conn.execute(
            f"UPDATE devices SET {columns} WHERE id = ${len(ROUTER_FIELDS) + 1}",
            *flags(list(ROUTER_FIELDS), values),
            record.id,
        )
        return found if found.id else None

    async def _unchanged(self, conn: asyncpg.Connection, expect: DeviceRecord) -> None:
        row = await conn.fetchrow(f"{DEVICE_SELECT_NO_TREE} WHERE id = $1 FOR UPDATE", expect.id)
        check_unchanged(device_record(row) if row is not None else None, expect)

    async def delete_device(
        self,
        device_id: str,
        *,
        audit: AuditRecord | None = None,
        expect: DeviceRecord | None = None,
    ) -> bool:
        audit_row = audit_values(audit)

        async def delete(conn: asyncpg.Connection) -> bool:
            if expect is not None:
                await self._unchanged(conn, expect)
            status = await conn.execute("DELETE FROM devices WHERE id = $1", device_id)
            deleted = rowcount(status) > 0
            if deleted:
                await conn.execute(
                    "UPDATE internet_accounts SET device = NULL, updated = $1 WHERE device = $2",
                    clock.now(),
                    device_id,
                )
                # nor an APN device's SIM in a router that is gone
                await _router_gone(conn, device_id)
                await write_audit(conn, audit_row, device_id)
            return deleted

        return await self._call("delete_device", delete, rows=(device_id,))

    async def create_customer(
        self, record: CustomerRecord, *, audit: AuditRecord | None = None
    ) -> CustomerRecord:
        record = replace(record, id=record.id or new_id())
        if record.reseller is not None and record.reseller == record.id:
            raise ValueError(f"customer {record.id!r} cannot be its own reseller")
        audit_row = audit_values(audit)

        async def create(conn: asyncpg.Connection) -> CustomerRecord:
            stored = stamped_copy(record)
            if stored.reseller is not None:
                found = await conn.fetchval(
                    "SELECT 1 FROM customers WHERE id = $1", stored.reseller
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

        async def create(conn: asyncpg.Connection) -> TokenRecord:
            stored = replace(record, created=record.created or clock.now())
            await insert_record(conn, TOKENS, stored, "token")
            await write_audit(conn, audit_row, stored.id)
            return stored

        return await self._call("create_token", create)

    async def revoke_token(self, token_id: str, *, audit: AuditRecord | None = None) -> bool:
        audit_row = audit_values(audit)

        async def revoke(conn: asyncpg.Connection) -> bool:
            status = await conn.execute(
                "UPDATE tokens SET revoked = $1 WHERE id = $2 AND revoked IS NULL",
                clock.now(),
                token_id,
            )
            revoked = rowcount(status) > 0
            if revoked:
                await write_audit(conn, audit_row, token_id)
            return revoked

        return await self._call("revoke_token", revoke)

    async def note_token_uses(self, uses: Mapping[str, float]) -> None:
        # In id order: two instances noting the same tokens take their row locks in one
        # order. The later time wins, whichever instance writes last.
        rows = [(at, token_id) for token_id, at in sorted(uses.items())]

        async def note(conn: asyncpg.Connection) -> None:
            await conn.executemany(
                "UPDATE tokens SET last_used = $1 WHERE id = $2"
                " AND (last_used IS NULL OR last_used < $1)",
                rows,
            )

        await self._call("note_token_uses", note)

    async def create_model(
        self, record: ModelRecord, *, audit: AuditRecord | None = None
    ) -> ModelRecord:
        record = replace(record, id=record.id or new_id())
        audit_row = audit_values(audit)

        async def create(conn: asyncpg.Connection) -> ModelRecord:
            stored = stamped_copy(record)
            await insert_record(conn, MODELS, stored, "model")
            await write_audit(conn, audit_row, stored.id)
            return stored

        return await self._call("create_model", create)

    async def _apply_upsert(
        self, conn: asyncpg.Connection, record: DeviceRecord, *, new: bool = False
    ) -> DeviceRecord:
        """Write ``record`` over its row, or as a new one. ``new``: the caller saw no
        record of this serial (a create): a row found now is one another instance
        committed since (each statement sees the latest commits), and the caller must
        read again, not write over another tenant's record as if it were its own."""
        key = serial_key(record.serial_number)
        by_serial = await conn.fetchval("SELECT id FROM devices WHERE serial_key = $1", key)
        by_id = None
        if wanted_id(record) is not None:
            by_id = await conn.fetchval("SELECT id FROM devices WHERE id = $1", record.id)
        if new and (by_serial or by_id) is not None:
            raise ChangedError(f"a device {record.serial_number!r} was just created")
        target = upsert_target(record, by_id, by_serial)
        now = clock.now()
        if target is not None:
            values = update_values(record, now)
            try:
                await conn.execute(DEVICE_UPDATE_SQL, *flags(_UPDATE_NAMES, values), target)
            except asyncpg.UniqueViolationError as exc:
                # Another instance gave the serial number (or MAC) to a record since the
                # look-up above (two PATCHes to one serial, a POST against a PATCH): read
                # again, and the serial is then taken in plain sight (409, not a 500).
                raise ChangedError(
                    f"serial number {record.serial_number!r} was just taken"
                ) from exc
        else:
            target, values = new_row(record, now)
            try:
                await conn.execute(DEVICE_INSERT_SQL, *flags(INSERT_COLUMNS, values))
            except asyncpg.UniqueViolationError as exc:
                # Another instance created this serial since the look-up above (a router's
                # first session, an operator's POST there): the caller reads again and
                # writes over that record, as after any change under a read-modify-write.
                raise ChangedError(
                    f"serial number {record.serial_number!r} was just registered"
                ) from exc
        row = await conn.fetchrow(f"{DEVICE_SELECT_NO_TREE} WHERE id = $1", target)
        return device_record(row)
