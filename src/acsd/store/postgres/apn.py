"""APN accounts, networks, devices and operations (seed 003) on PostgreSQL: the rules of
the SQLite backend's apn module."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg

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
    DuplicateError,
)
from acsd.store.postgres.core import PgCore
from acsd.store.postgres.rows import (
    flags,
    insert_record,
    insert_sql,
    lock_value,
    rowcount,
    write_audit,
)
from acsd.store.records import (
    APN_ACCOUNTS,
    APN_DEVICES,
    APN_NETWORKS,
    APN_OPERATIONS,
    APN_UNIQUE,
    DEVICE_LIST_COLUMNS,
    apn_device,
    audit_values,
    device_record,
)

_APN_UPDATE_SQL = (
    "UPDATE apn_devices SET "
    + ", ".join(f'"{n}" = ${i}' for i, n in enumerate(APN_DEVICES.names[1:], start=1))
    + f" WHERE id = ${len(APN_DEVICES.names)}"
)
_APN_INSERT_SQL = insert_sql(APN_DEVICES)
#: the seed of the advisory lock key of each unique value (create_apn_device)
_APN_LOCKS = {"cli_key": 0x61636C69, "iccid": 0x61636963}


_ROUTERS_OF_NETWORK = ROUTERS_OF_NETWORK.format("$1", "$2")
_DEVICES_OF_NETWORK = DEVICES_OF_NETWORK.format("$1", "$2")


class ApnRecords(PgCore):
    async def get_apn_account(self, key: str) -> ApnAccountRecord | None:
        return await self._get(APN_ACCOUNTS, 'WHERE "key" = $1', key)

    async def get_apn_network(self, account: str, key: str) -> ApnNetworkRecord | None:
        return await self._get(APN_NETWORKS, 'WHERE account = $1 AND "key" = $2', account, key)

    async def _apn_devices(self, sql: str, *args: Any) -> list[ApnDeviceRecord]:
        rows = await self._fetch(f"{APN_DEVICES.select} {sql}", *args)
        return [apn_device(row) for row in rows]

    async def get_apn_device(self, device_id: str) -> ApnDeviceRecord | None:
        found = await self._apn_devices("WHERE id = $1", device_id)
        return found[0] if found else None

    async def find_apn_device(
        self, account: str, network: str, cli_key: str
    ) -> ApnDeviceRecord | None:
        found = await self._apn_devices(
            "WHERE account = $1 AND network = $2 AND cli_key = $3"
            " ORDER BY end_date IS NOT NULL, end_date DESC LIMIT 1",
            account,
            network,
            cli_key,
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
        where = "WHERE account = $1 AND network = $2 AND id > $3"
        if not include_ended:
            where += " AND end_date IS NULL"
        return await self._apn_devices(
            f"{where} ORDER BY id LIMIT $4", account, network, after or "", max(0, limit)
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
            f"WHERE {live}(imsi = $1 OR iccid = $2 OR msisdn = $3) ORDER BY created, id",
            imsi,
            iccid,
            msisdn,
        )

    async def find_apn_devices_on_router(self, router: str) -> list[ApnDeviceRecord]:
        return await self._apn_devices(
            "WHERE router = $1 AND end_date IS NULL ORDER BY created, id", router
        )

    async def give_apn_job(self, router: str, account: str) -> DeviceRecord | None:
        async def give(conn: asyncpg.Connection) -> DeviceRecord | None:
            row = await conn.fetchrow(
                f"UPDATE devices SET {NEW_JOB}, updated = $1"
                " WHERE id = $2 AND mvno_account = $3 AND state != 'DELETING'"
                f" RETURNING {DEVICE_LIST_COLUMNS}",
                clock.now(),
                router,
                account,
            )
            return device_record(row) if row is not None else None

        return await self._call("give_apn_job", give, rows=(router,))

    async def get_apn_operation(self, operation_id: str) -> ApnOperationRecord | None:
        return await self._get(APN_OPERATIONS, "WHERE id = $1", operation_id)

    async def put_apn_network(
        self, record: ApnNetworkRecord, *, audit: AuditRecord | None = None
    ) -> tuple[ApnNetworkRecord, list[DeviceRecord]]:
        audit_row = audit_values(audit)

        async def put(conn: asyncpg.Connection) -> tuple[ApnNetworkRecord, list[DeviceRecord]]:
            now = clock.now()
            before = await conn.fetchval(
                'SELECT apn FROM apn_networks WHERE account = $1 AND "key" = $2 FOR UPDATE',
                record.account,
                record.key,
            )
            try:
                row = await conn.fetchrow(
                    'INSERT INTO apn_networks (account, "key", apn, created, updated)'
                    ' VALUES ($1, $2, $3, $4, $4) ON CONFLICT (account, "key")'
                    " DO UPDATE SET apn = excluded.apn, updated = excluded.updated"
                    f" RETURNING {APN_NETWORKS.columns}",
                    record.account,
                    record.key,
                    record.apn,
                    now,
                )
            except asyncpg.ForeignKeyViolationError as exc:
                raise no_account(record.account) from exc
            await write_audit(conn, audit_row, f"{record.account}/{record.key}")
            routers: list[DeviceRecord] = []
            if new_apn_name(before, record.apn):
                args = (record.account, record.key)
                found = await conn.fetch(
                    f"SELECT {DEVICE_LIST_COLUMNS} FROM devices WHERE {_ROUTERS_OF_NETWORK}"
                    " FOR UPDATE",
                    *args,
                )
                devices = await conn.fetch(f"{APN_DEVICES.select} {_DEVICES_OF_NETWORK}", *args)
                due = routers_due(
                    [device_record(found_row) for found_row in found],
                    [apn_device(device_row) for device_row in devices],
                )
                if due:
                    found = await conn.fetch(
                        f"UPDATE devices SET {NEW_JOB}, updated = $1 WHERE id = ANY($2::text[])"
                        f" RETURNING {DEVICE_LIST_COLUMNS}",
                        now,
                        due,
                    )
                    routers = [device_record(found_row) for found_row in found]
            return APN_NETWORKS.record(row), routers

        # the routers whose rows a new APN name locks (read before the write, for the
        # writer to keep it apart while one of them is held; the write finds them again)
        routers_rows = await self._fetch(
            f"SELECT id FROM devices WHERE {_ROUTERS_OF_NETWORK}", record.account, record.key
        )
        # (locked only when the name changes)
        routers = [row[0] for row in routers_rows]
        return await self._call("put_apn_network", put, may_lock=routers)

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

        async def create(conn: asyncpg.Connection) -> ApnDeviceRecord:
            now = clock.now()
            if account is not None:
                stamped = stamped_account(account, now)
                status = await insert_record(
                    conn, APN_ACCOUNTS, stamped, "APN account", tail="ON CONFLICT DO NOTHING"
                )
                if rowcount(status) > 0:
                    await write_audit(conn, account_row, account.key)
            try:
                await conn.execute(
                    'INSERT INTO apn_networks (account, "key", apn, created, updated)'
                    " VALUES ($1, $2, NULL, $3, $3) ON CONFLICT DO NOTHING",
                    record.account,
                    record.network,
                    now,
                )
            except asyncpg.ForeignKeyViolationError as exc:
                raise no_account(record.account) from exc
            # A SIM is in one network of an account at a time (as on SQLite). No index
            # spans an account's networks, and SQLite's single writer is not there: other
            # instances create devices at the same moment. A lock on account and value,
            # held to the commit, makes the look-up and the insert one step for each SIM;
            # taken CLI first, SIMNumber second in every create, so no two wait in a cycle.
            for name, column in APN_UNIQUE:
                value = getattr(record, column)
                if value is None:
                    continue
                await lock_value(
                    conn, f"{len(record.account)}:{record.account}:{value}", _APN_LOCKS[column]
                )
                taken = await conn.fetchval(
                    f"SELECT network FROM apn_devices WHERE account = $1"
                    f" AND {column} = $2 AND end_date IS NULL",
                    record.account,
                    value,
                )
                check_sim_free(name, taken)
            stored = stamped_device(record, now)
            try:
                await conn.execute(
                    _APN_INSERT_SQL, *flags(APN_DEVICES.names, APN_DEVICES.values(stored))
                )
            except asyncpg.UniqueViolationError as exc:
                # another instance created the same CLI or SIM since the look-up above
                field = "SIMNumber" if "iccid" in str(exc.constraint_name) else "CLI"
                raise DuplicateError(
                    field, f"{field} is already in use in network {record.network!r}"
                ) from exc
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
        async def update(conn: asyncpg.Connection) -> ApnDeviceRecord | None:
            # The router's row first, as an operator's write of it locks it before the APN
            # devices it unlinks: a PATCH under way is waited for, one after sees this write.
            if steers is not None and not await conn.fetchval(
                "SELECT 1 FROM devices WHERE id = $1 AND mvno_account = $2 FOR SHARE", *steers
            ):
                return None
            row = await conn.fetchrow(f"{APN_DEVICES.select} WHERE id = $1 FOR UPDATE", device_id)
            if row is None:
                return None
            current = apn_device(row)
            new, audit = change(current)
            if new is None:
                return current
            new = changed_device(current, new, clock.now())
            values = flags(APN_DEVICES.names, APN_DEVICES.values(new))[1:]
            await conn.execute(_APN_UPDATE_SQL, *values, current.id)
            if operation is not None:
                op = recorded(operation, current.id)
                await insert_record(conn, APN_OPERATIONS, op, "operation")
            await write_audit(conn, audit_values(audit), current.id)
            return new

        # (a steered write locks its router's row: kept apart while another client holds it)
        return await self._call("update_apn_device", update, rows=steers[:1] if steers else ())
