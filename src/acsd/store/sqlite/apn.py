"""APN accounts, networks, devices and operations (seed 003)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

import aiosqlite

from acsd import clock
from acsd.store.apn_rules import (
    DEVICES_OF_NETWORK,
    NEW_JOB,
    ROUTERS_OF_NETWORK,
    changed_device,
    check_sim_free,
    new_apn_name,
    no_account,
    prepared_device,
    recorded,
    routers_due,
    stamped_account,
    stamped_device,
)
from acsd.store.base import (
    ApnAccountRecord,
    ApnDeviceRecord,
    ApnNetworkRecord,
    ApnOperationRecord,
    AuditRecord,
    DeviceRecord,
)
from acsd.store.records import (
    APN_ACCOUNTS,
    APN_DEVICES,
    APN_NETWORKS,
    APN_OPERATIONS,
    APN_UNIQUE,
    DEVICE_SELECT_NO_TREE,
    apn_device,
    audit_values,
    device_record,
)
from acsd.store.sqlite.core import SqliteCore
from acsd.store.sqlite.rows import insert_record, insert_sql, write_audit

_APN_UPDATE_SQL = (
    "UPDATE apn_devices SET "
    + ", ".join(f'"{n}" = ?' for n in APN_DEVICES.names[1:])
    + " WHERE id = ?"
)
#: a network's device of a CLI key: the live one, else the one removed last (the whole
#: look-up in the index apn_devices_by_cli)
BY_CLI = (
    "WHERE account = ? AND network = ? AND cli_key = ?"
    " ORDER BY end_date IS NOT NULL, end_date DESC LIMIT 1"
)


_ROUTERS_OF_NETWORK = ROUTERS_OF_NETWORK.format("?1", "?2")
_DEVICES_OF_NETWORK = DEVICES_OF_NETWORK.format("?1", "?2")


class ApnRecords(SqliteCore):
    """The APN API's accounts, networks, devices and operations."""

    async def get_apn_account(self, key: str) -> ApnAccountRecord | None:
        return await self._get(APN_ACCOUNTS, 'WHERE "key" = ?', (key,))

    async def get_apn_network(self, account: str, key: str) -> ApnNetworkRecord | None:
        return await self._get(APN_NETWORKS, 'WHERE account = ? AND "key" = ?', (account, key))

    async def _apn_devices(
        self, sql: str, args: Sequence[Any], *, by_key: bool = False
    ) -> list[ApnDeviceRecord]:
        """``by_key``: a look-up by an indexed key, read on the event loop (see _rows_now):
        a router's session makes one or two of them, which through the reader's thread
        were ~2 % of a boot storm's CPU."""
        query = f"{APN_DEVICES.select} {sql}"
        if by_key:
            rows = await self._indexed_rows(query, args)
        else:
            rows = list(await self._read.execute_fetchall(query, args))
        return [apn_device(row) for row in rows]

    async def get_apn_device(self, device_id: str) -> ApnDeviceRecord | None:
        found = await self._apn_devices("WHERE id = ?", (device_id,), by_key=True)
        return found[0] if found else None

    async def find_apn_device(
        self, account: str, network: str, cli_key: str
    ) -> ApnDeviceRecord | None:
        found = await self._apn_devices(BY_CLI, (account, network, cli_key), by_key=True)
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
        self,
        *,
        imsi: str | None,
        iccid: str | None,
        msisdn: str | None,
        include_ended: bool = False,
    ) -> list[ApnDeviceRecord]:
        if not (imsi or iccid or msisdn):
            return []
        live = "" if include_ended else "end_date IS NULL AND "
        return await self._apn_devices(
            f"WHERE {live}(imsi = ? OR iccid = ? OR msisdn = ?) ORDER BY created, id",
            (imsi, iccid, msisdn),
            by_key=True,
        )

    async def find_apn_devices_on_router(self, router: str) -> list[ApnDeviceRecord]:
        return await self._apn_devices(
            "WHERE router = ? AND end_date IS NULL ORDER BY created, id", (router,), by_key=True
        )

    async def give_apn_job(self, router: str, account: str) -> DeviceRecord | None:
        async def give(conn: aiosqlite.Connection) -> DeviceRecord | None:
            async with conn.execute(
                f"UPDATE devices SET {NEW_JOB}, updated = ?"
                " WHERE id = ? AND mvno_account = ? AND state != 'DELETING'",
                (clock.now(), router, account),
            ) as cursor:
                if cursor.rowcount == 0:
                    return None
            found = await conn.execute_fetchall(f"{DEVICE_SELECT_NO_TREE} WHERE id = ?", (router,))
            return device_record(found[0]) if found else None

        return await self._call("give_apn_job", give)

    async def get_apn_operation(self, operation_id: str) -> ApnOperationRecord | None:
        return await self._get(APN_OPERATIONS, "WHERE id = ?", (operation_id,))

    async def put_apn_network(
        self, record: ApnNetworkRecord, *, audit: AuditRecord | None = None
    ) -> tuple[ApnNetworkRecord, list[DeviceRecord]]:
        audit_row = audit_values(audit)

        async def put(conn: aiosqlite.Connection) -> tuple[ApnNetworkRecord, list[DeviceRecord]]:
            now = clock.now()
            before = await self._scalar(
                conn,
                'SELECT apn FROM apn_networks WHERE account = ? AND "key" = ?',
                (record.account, record.key),
            )
            try:
                await conn.execute(
                    'INSERT INTO apn_networks (account, "key", apn, created, updated)'
                    ' VALUES (?, ?, ?, ?, ?) ON CONFLICT (account, "key")'
                    " DO UPDATE SET apn = excluded.apn, updated = excluded.updated",
                    (record.account, record.key, record.apn, now, now),
                )
            except sqlite3.IntegrityError as exc:
                raise no_account(record.account) from exc
            rows = list(
                await conn.execute_fetchall(
                    f'{APN_NETWORKS.select} WHERE account = ? AND "key" = ?',
                    (record.account, record.key),
                )
            )
            await write_audit(conn, audit_row, f"{record.account}/{record.key}")
            routers: list[DeviceRecord] = []
            if new_apn_name(before, record.apn):
                args = (record.account, record.key)
                found = await conn.execute_fetchall(
                    f"{DEVICE_SELECT_NO_TREE} WHERE {_ROUTERS_OF_NETWORK}", args
                )
                devices = await conn.execute_fetchall(
                    f"{APN_DEVICES.select} {_DEVICES_OF_NETWORK}", args
                )
                due = routers_due(
                    [device_record(row) for row in found], [apn_device(row) for row in devices]
                )
                if due:
                    where = f"id IN ({', '.join('?' * len(due))})"
                    await conn.execute(
                        f"UPDATE devices SET {NEW_JOB}, updated = ? WHERE {where}", (now, *due)
                    )
                    found = await conn.execute_fetchall(
                        f"{DEVICE_SELECT_NO_TREE} WHERE {where}", due
                    )
                    routers = [device_record(row) for row in found]
            return APN_NETWORKS.record(rows[0]), routers

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
        record = prepared_device(record)
        audit_row, account_row = audit_values(audit), audit_values(account_audit)

        async def create(conn: aiosqlite.Connection) -> ApnDeviceRecord:
            now = clock.now()
            if account is not None:
                stamped = stamped_account(account, now)
                async with conn.execute(
                    f"{insert_sql(APN_ACCOUNTS)} ON CONFLICT DO NOTHING",
                    APN_ACCOUNTS.values(stamped),
                ) as cursor:
                    created = cursor.rowcount > 0
                if created:
                    await write_audit(conn, account_row, account.key)
            try:
                await conn.execute(
                    'INSERT INTO apn_networks (account, "key", apn, created, updated)'
                    " VALUES (?, ?, NULL, ?, ?) ON CONFLICT DO NOTHING",
                    (record.account, record.network, now, now),
                )
            except sqlite3.IntegrityError as exc:
                raise no_account(record.account) from exc
            # A SIM is in one network of an account at a time (check_sim_free).
            for name, column in APN_UNIQUE:
                value = getattr(record, column)
                if value is None:
                    continue
                taken = await self._scalar(
                    conn,
                    f"SELECT network FROM apn_devices WHERE account = ?"
                    f" AND {column} = ? AND end_date IS NULL",
                    (record.account, value),
                )
                check_sim_free(name, taken)
            stored = stamped_device(record, now)
            await insert_record(conn, APN_DEVICES, stored, "APN device")
            if operation is not None:
                op = recorded(operation, stored.id)
                await insert_record(conn, APN_OPERATIONS, op, "operation")
            await write_audit(conn, audit_row, stored.id)
            return stored

        return await self._call("create_apn_device", create)

    async def update_apn_device(
        self,
        device_id: str,
        change: Callable[[ApnDeviceRecord], tuple[ApnDeviceRecord | None, AuditRecord | None]],
        *,
        operation: ApnOperationRecord | None = None,
        steers: tuple[str, str] | None = None,
    ) -> ApnDeviceRecord | None:
        async def update(conn: aiosqlite.Connection) -> ApnDeviceRecord | None:
            if steers is not None and not await conn.execute_fetchall(
                "SELECT 1 FROM devices WHERE id = ? AND mvno_account = ?", steers
            ):
                return None
            rows = list(
                await conn.execute_fetchall(f"{APN_DEVICES.select} WHERE id = ?", (device_id,))
            )
            if not rows:
                return None
            current = apn_device(rows[0])
            new, audit = change(current)
            if new is None:
                return current
            new = changed_device(current, new, clock.now())
            await conn.execute(_APN_UPDATE_SQL, [*APN_DEVICES.values(new)[1:], current.id])
            if operation is not None:
                op = recorded(operation, current.id)
                await insert_record(conn, APN_OPERATIONS, op, "operation")
            await write_audit(conn, audit_values(audit), current.id)
            return new

        return await self._call("update_apn_device", update)
