"""Internet accounts (seed 002) on PostgreSQL: the rules of the SQLite backend's internet
module."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import asyncpg

from acsd.ids import new_id
from acsd.store.base import (
    AuditRecord,
    DeviceRecord,
    InternetAccountQuery,
    InternetAccountRecord,
)
from acsd.store.internet_rules import (
    check_address_free,
    check_claims,
    check_device_takes_lines,
    check_starts_last,
    confirmed,
    given_way,
    line_ended,
    ordered,
    replaced_lines,
    to_end,
)
from acsd.store.postgres.core import PgCore
from acsd.store.postgres.rows import (
    Args,
    insert_record,
    internet_account_filters,
    rowcount,
    write_audit,
)
from acsd.store.records import (
    DEVICE_SELECT_NO_TREE,
    INTERNET_ACCOUNTS,
    audit_values,
    device_record,
    dumps,
    stamped_copy,
)

_CLAIMS_SQL = (
    "SELECT id, ip_address, device, confirm #>> '{net,lanNet}', confirm #>> '{net,lanSubnet}',"
    " confirm #>> '{net,gateway}'"
    " FROM internet_accounts WHERE id != $1 AND state IN ('CONFIRMED', 'ACTIVE')"
)


async def _activate_device(
    conn: asyncpg.Connection, device_id: str, now: float
) -> DeviceRecord | None:
    status = await conn.execute(
        "UPDATE devices SET revision = revision + 1, state = 'PROVISIONING', jobs = 1,"
        " updated = $1 WHERE id = $2 AND state != 'DELETING'",
        now,
        device_id,
    )
    if rowcount(status) == 0:
        return None
    row = await conn.fetchrow(f"{DEVICE_SELECT_NO_TREE} WHERE id = $1", device_id)
    return device_record(row) if row is not None else None


#: what an ``internet.end`` audit entry says of a line (internet_rules.line_ended)
_LINE_COLUMNS = (
    "id, customer, device, state, start_date, confirm #>> '{net,ipAddress}',"
    " confirm #>> '{net,lanNet}', confirm #>> '{net,lanSubnet}'"
)
_LINE_SQL = f"SELECT {_LINE_COLUMNS} FROM internet_accounts"


async def _end_lines(
    conn: asyncpg.Connection,
    lines: list[Any],
    *,
    reason: str,
    now: float,
    replaced_by: str | None = None,
    author: AuditRecord | None = None,
) -> None:
    """ENDED, each with its audit entry: operators read there why a static address moved."""
    for line in lines:
        # Not one ended meanwhile: another instance's sweep may end the same line (two
        # due lines of one router, or of one line's replacements); its UPDATE waits for
        # this one's and finds the line ENDED, with its entry written once.
        status = await conn.execute(
            "UPDATE internet_accounts SET state = 'ENDED', updated = $1"
            " WHERE id = $2 AND state != 'ENDED'",
            now,
            line[0],
        )
        if rowcount(status) == 0:
            continue
        entry = line_ended(
            tuple(line), reason=reason, now=now, replaced_by=replaced_by, author=author
        )
        await write_audit(conn, audit_values(entry), line[0])


async def _end_superseded(
    conn: asyncpg.Connection, device_id: str, now: float, author: AuditRecord | None
) -> None:
    lines = await conn.fetch(
        f"{_LINE_SQL} WHERE device = $1 AND state IN ('CONFIRMED', 'ACTIVE')"
        " AND start_date <= $2 ORDER BY start_date DESC, id DESC",
        device_id,
        now,
    )
    if len(lines) > 1:
        latest, *before = lines
        await _end_lines(
            conn, before, reason="superseded", now=now, replaced_by=latest[0], author=author
        )


async def _end_replaced(
    conn: asyncpg.Connection, line_id: str, replaces: str | None, now: float
) -> None:
    """As the SQLite backend's: a line that names no router started, and the lines it was
    confirmed to replace end."""

    async def fetch(account_id: str) -> Any:
        return await conn.fetchrow(
            f"SELECT {_LINE_COLUMNS}, replaces FROM internet_accounts WHERE id = $1", account_id
        )

    lines = await replaced_lines(line_id, replaces, fetch, now)
    await _end_lines(conn, lines, reason="superseded", now=now, replaced_by=line_id)


async def _take_over_routerless(
    conn: asyncpg.Connection,
    account: InternetAccountRecord,
    ip_address: str,
    confirm: dict[str, Any],
    now: float,
    author: AuditRecord | None,
) -> None:
    """As the SQLite backend's: a line of the customer's that names no router gives way
    (ENDED) to the customer's line for a router that takes its addresses. Run under the
    confirm's table lock, so no other instance confirms in between."""
    # the address each line was confirmed with, not its claim (see the SQLite backend's)
    rows = await conn.fetch(
        "SELECT id, confirm #>> '{net,ipAddress}', device, confirm #>> '{net,lanNet}',"
        " confirm #>> '{net,lanSubnet}' FROM internet_accounts"
        " WHERE customer = $1 AND device IS NULL AND id != $2"
        " AND state IN ('CONFIRMED', 'ACTIVE')",
        account.customer,
        account.id,
    )
    if lines := given_way(rows, ip_address, confirm):
        ended = await conn.fetch(f"{_LINE_SQL} WHERE id = ANY($1::text[]) ORDER BY id", lines)
        await _end_lines(
            conn, ended, reason="taken_over", now=now, replaced_by=account.id, author=author
        )


class InternetAccounts(PgCore):
    async def get_internet_account(self, account_id: str) -> InternetAccountRecord | None:
        return await self._get(INTERNET_ACCOUNTS, "WHERE id = $1", account_id)

    async def query_internet_accounts(
        self, query: InternetAccountQuery
    ) -> tuple[list[InternetAccountRecord], int]:
        args = Args()
        where = internet_account_filters(query, args)
        rows, total = await self._page(
            INTERNET_ACCOUNTS.columns,
            "internet_accounts",
            where,
            "id",
            args,
            query.limit,
            query.offset,
            after=query.after,
        )
        return [INTERNET_ACCOUNTS.record(row) for row in rows], total

    async def next_internet_start(self) -> float | None:
        return await self._scalar(
            "SELECT min(start_date) FROM internet_accounts WHERE state = 'CONFIRMED'"
        )

    async def internet_account_for_device(
        self, device_id: str, now: float
    ) -> InternetAccountRecord | None:
        return await self._get(
            INTERNET_ACCOUNTS,
            "WHERE device = $1 AND state IN ('CONFIRMED', 'ACTIVE') AND start_date <= $2"
            " ORDER BY start_date DESC, id DESC LIMIT 1",
            device_id,
            now,
        )

    async def create_internet_account(
        self, record: InternetAccountRecord, *, audit: AuditRecord | None = None
    ) -> InternetAccountRecord:
        record = replace(record, id=record.id or new_id())
        audit_row = audit_values(audit)

        async def create(conn: asyncpg.Connection) -> InternetAccountRecord:
            stored = stamped_copy(record)
            if stored.device is not None:
                # checked again here, the row locked: a DELETE (or a DELETING) since the
                # caller read the device, by any instance, is seen or waits for this one
                state = await conn.fetchval(
                    "SELECT state FROM devices WHERE id = $1 FOR UPDATE", stored.device
                )
                check_device_takes_lines(stored.device, state)
            await insert_record(conn, INTERNET_ACCOUNTS, stored, "internet account")
            if stored.device is not None:
                await conn.execute(
                    "UPDATE devices SET internet_account = $1 WHERE id = $2",
                    stored.id,
                    stored.device,
                )
            await write_audit(conn, audit_row, stored.id)
            return stored

        return await self._call("create_internet_account", create, rows=(record.device,))

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
        audit_row = audit_values(audit)

        async def write(
            conn: asyncpg.Connection,
        ) -> tuple[InternetAccountRecord, DeviceRecord | None]:
            # Serialises confirms across instances: the address and range checks below
            # read other lines, which a concurrent confirm elsewhere could be changing.
            await conn.execute("LOCK TABLE internet_accounts IN SHARE ROW EXCLUSIVE MODE")
            row = await conn.fetchrow(f"{INTERNET_ACCOUNTS.select} WHERE id = $1", account_id)
            account = ordered(
                account_id, INTERNET_ACCOUNTS.record(row) if row is not None else None
            )
            replaces = None
            if account.device is not None:
                await _take_over_routerless(conn, account, ip_address, confirm, now, audit)
            taken = await conn.fetchval(
                "SELECT id FROM internet_accounts WHERE ip_address = $1 AND id != $2"
                " AND state != 'ENDED' AND (device IS NULL OR $3::text IS NULL OR device != $3)",
                ip_address,
                account_id,
                account.device,
            )
            check_address_free(ip_address, taken)
            others = await conn.fetch(_CLAIMS_SQL, account_id)
            check_claims(ip_address, confirm, account.device, others)
            if account.device is not None:
                later = await conn.fetchval(
                    "SELECT id FROM internet_accounts WHERE device = $1 AND id != $2"
                    " AND state IN ('CONFIRMED', 'ACTIVE') AND start_date >= $3"
                    " ORDER BY start_date DESC LIMIT 1",
                    account.device,
                    account_id,
                    start_date,
                )
                check_starts_last(account.device, later)
                # the line it will replace, ended by id should the router's record go
                replaces = await conn.fetchval(
                    "SELECT id FROM internet_accounts WHERE device = $1 AND id != $2"
                    " AND state IN ('CONFIRMED', 'ACTIVE') ORDER BY start_date DESC, id DESC"
                    " LIMIT 1",
                    account.device,
                    account_id,
                )
                await conn.execute(
                    "UPDATE internet_accounts SET ip_address = NULL WHERE ip_address = $1"
                    " AND device = $2 AND id != $3 AND state != 'ENDED'",
                    ip_address,
                    account.device,
                    account_id,
                )
            stored = confirmed(
                account,
                encoded=encoded,
                start_date=start_date,
                ip_address=ip_address,
                now=now,
                replaces=replaces,
            )
            due = stored.state == "ACTIVE"
            await conn.execute(
                "UPDATE internet_accounts SET state = $1, confirm = $2, start_date = $3,"
                " ip_address = $4, updated = $5, replaces = $6 WHERE id = $7",
                stored.state,
                encoded,
                start_date,
                ip_address,
                now,
                replaces,
                account_id,
            )
            device = None
            if due and account.device is not None:
                await _end_superseded(conn, account.device, now, audit)
                device = await _activate_device(conn, account.device, now)
            await write_audit(conn, audit_row, account_id)
            return stored, device

        # the router whose row a line that starts now writes (read before the write, for
        # the writer to keep it apart while the row is held; the write reads it again)
        device = await self._scalar(
            "SELECT device FROM internet_accounts WHERE id = $1", account_id
        )
        # (a line that starts later leaves the row alone)
        return await self._call("confirm_internet_account", write, may_lock=(device,))

    async def end_internet_account(
        self, account_id: str, *, now: float, audit: AuditRecord | None = None
    ) -> InternetAccountRecord:
        async def end(conn: asyncpg.Connection) -> InternetAccountRecord:
            # As a confirm's: a confirm elsewhere that would take this line over (or a
            # DELETE of its router) waits for this one, or this one for it and sees what
            # it did. A row lock alone would deadlock with a confirm's table lock.
            await conn.execute("LOCK TABLE internet_accounts IN SHARE ROW EXCLUSIVE MODE")
            row = await conn.fetchrow(f"{INTERNET_ACCOUNTS.select} WHERE id = $1", account_id)
            account, end = to_end(
                account_id, INTERNET_ACCOUNTS.record(row) if row is not None else None, now
            )
            if not end:
                return account  # ended already: nothing changes, nothing to audit
            lines = await conn.fetch(f"{_LINE_SQL} WHERE id = $1", account_id)
            await _end_lines(conn, lines, reason="ended", now=now, author=audit)
            if account.ip_address is not None:
                # as on SQLite: the claim goes back to a line that still uses the address
                await conn.execute(
                    "UPDATE internet_accounts SET ip_address = $1 WHERE id = (SELECT id"
                    " FROM internet_accounts WHERE ip_address IS NULL"
                    " AND state IN ('CONFIRMED', 'ACTIVE')"
                    " AND confirm #>> '{net,ipAddress}' = $1"
                    " ORDER BY start_date DESC, id DESC LIMIT 1)",
                    account.ip_address,
                )
            return replace(account, state="ENDED", updated=now)

        return await self._call("end_internet_account", end)

    async def activate_internet_accounts(self, now: float) -> list[DeviceRecord]:
        due_sql = "FROM internet_accounts WHERE state = 'CONFIRMED' AND start_date <= $1"
        # (their routers: the rows the sweep writes, for the writer to keep it apart while
        # one of them is held; a line is due until started, so these are few)
        due = await self._fetch(f"SELECT DISTINCT device {due_sql}", now)
        if not due:
            return []

        async def activate(conn: asyncpg.Connection) -> list[DeviceRecord]:
            # Another instance's sweep may run at the same moment: the rows it takes are
            # locked, and skipped here, so each device is activated once.
            rows = await conn.fetch(
                f"SELECT id, device, replaces {due_sql} ORDER BY start_date, id"
                " FOR UPDATE SKIP LOCKED",
                now,
            )
            if not rows:
                return []
            await conn.execute(
                "UPDATE internet_accounts SET state = 'ACTIVE', updated = $1"
                " WHERE id = ANY($2::text[])",
                now,
                [row[0] for row in rows],
            )
            devices = []
            for device_id in sorted({row[1] for row in rows if row[1] is not None}):
                await _end_superseded(conn, device_id, now, None)
                device = await _activate_device(conn, device_id, now)
                if device is not None:
                    devices.append(device)
            # Routerless lines (their router's record was deleted since the confirm) end
            # the lines they name as replaced, in start order: each entry names the next.
            for line_id, device_id, replaces in rows:
                if device_id is None:
                    await _end_replaced(conn, line_id, replaces, now)
            return devices

        return await self._call("activate_internet_accounts", activate, rows=[r[0] for r in due])
