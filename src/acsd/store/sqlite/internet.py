"""Internet accounts (seed 002): lines, their confirmation and activation."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import aiosqlite

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
from acsd.store.records import (
    DEVICE_SELECT_NO_TREE,
    INTERNET_ACCOUNTS,
    audit_values,
    device_record,
    dumps,
    stamped_copy,
)
from acsd.store.sqlite.core import SqliteCore
from acsd.store.sqlite.filters import internet_account_filters
from acsd.store.sqlite.rows import as_read, insert_record, write_audit

# What a write of a line's state keeps, as read (records.scalar_values): the write repairs
# a value edited by hand into another type (a name, the creation time).
_REPAIRED = ", ".join(
    f"{name} = {as_read(INTERNET_ACCOUNTS, name)}" for name in ("name", "created")
)

#: every other confirmed line's address, additional range and router (a damaged confirm
#: body yields no range rather than failing every confirm; the address is NULL on a line
#: whose router's next line took it over, see confirm_internet_account)
_CLAIMS_SQL = (
    "SELECT id, ip_address, device,"
    " CASE WHEN json_valid(confirm) THEN json_extract(confirm, '$.net.lanNet') END,"
    " CASE WHEN json_valid(confirm) THEN json_extract(confirm, '$.net.lanSubnet') END,"
    " CASE WHEN json_valid(confirm) THEN json_extract(confirm, '$.net.gateway') END"
    " FROM internet_accounts WHERE id != ? AND state IN ('CONFIRMED', 'ACTIVE')"
)


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
    rows = list(await conn.execute_fetchall(f"{DEVICE_SELECT_NO_TREE} WHERE id = ?", (device_id,)))
    return device_record(rows[0]) if rows else None


#: what an ``internet.end`` audit entry says of a line (internet_rules.line_ended)
_LINE_COLUMNS = (
    "id, customer, device, state, start_date,"
    " CASE WHEN json_valid(confirm) THEN json_extract(confirm, '$.net.ipAddress') END,"
    " CASE WHEN json_valid(confirm) THEN json_extract(confirm, '$.net.lanNet') END,"
    " CASE WHEN json_valid(confirm) THEN json_extract(confirm, '$.net.lanSubnet') END"
)
_LINE_SQL = f"SELECT {_LINE_COLUMNS} FROM internet_accounts"


async def _end_lines(
    conn: aiosqlite.Connection,
    lines: list[Any],
    *,
    reason: str,
    now: float,
    replaced_by: str | None = None,
    author: AuditRecord | None = None,
) -> None:
    """ENDED, each with its audit entry: operators read there why a static address moved."""
    for line in lines:
        await conn.execute(
            f"UPDATE internet_accounts SET state = 'ENDED', updated = ?, {_REPAIRED} WHERE id = ?",
            (now, line[0]),
        )
        entry = line_ended(line, reason=reason, now=now, replaced_by=replaced_by, author=author)
        await write_audit(conn, audit_values(entry), line[0])


async def _end_superseded(
    conn: aiosqlite.Connection, device_id: str, now: float, author: AuditRecord | None
) -> None:
    """A router applies the line that started last: the lines it had before are ENDED,
    and their addresses free for other lines."""
    lines = list(
        await conn.execute_fetchall(
            f"{_LINE_SQL} WHERE device = ? AND state IN ('CONFIRMED', 'ACTIVE')"
            " AND start_date <= ? ORDER BY start_date DESC, id DESC",
            (device_id, now),
        )
    )
    if len(lines) > 1:
        latest, *before = lines
        await _end_lines(
            conn, before, reason="superseded", now=now, replaced_by=latest[0], author=author
        )


async def _end_replaced(
    conn: aiosqlite.Connection, line_id: str, replaces: str | None, now: float
) -> None:
    """A line that names no router started: the lines it was confirmed to replace end, as
    its router's would have (its router's record was deleted while it was pending)."""

    async def fetch(account_id: str) -> Any:
        rows = list(
            await conn.execute_fetchall(
                f"SELECT {_LINE_COLUMNS}, replaces FROM internet_accounts WHERE id = ?",
                (account_id,),
            )
        )
        return rows[0] if rows else None

    lines = await replaced_lines(line_id, replaces, fetch, now)
    await _end_lines(conn, lines, reason="superseded", now=now, replaced_by=line_id)


async def _take_over_routerless(
    conn: aiosqlite.Connection,
    account: InternetAccountRecord,
    ip_address: str,
    confirm: dict[str, Any],
    now: float,
    author: AuditRecord | None,
) -> None:
    """A line of the customer's that names no router (its record was deleted, or it was
    ordered without one) gives way to the customer's line for a router that takes its
    addresses: that is how the line moves to a replacement router, since a line names its
    router only when ordered. Such lines are ENDED, so the checks below no longer see them;
    a routerless line whose addresses the new one leaves alone is kept."""
    # The address each line was confirmed with, not its claim (ip_address): a line whose
    # router's upgrade keeps the address handed the claim to the upgrade, and is still
    # the line in use, with that address, until the upgrade starts.
    rows = await conn.execute_fetchall(
        "SELECT id,"
        " CASE WHEN json_valid(confirm) THEN json_extract(confirm, '$.net.ipAddress') END,"
        " device,"
        " CASE WHEN json_valid(confirm) THEN json_extract(confirm, '$.net.lanNet') END,"
        " CASE WHEN json_valid(confirm) THEN json_extract(confirm, '$.net.lanSubnet') END"
        " FROM internet_accounts WHERE customer = ? AND device IS NULL AND id != ?"
        " AND state IN ('CONFIRMED', 'ACTIVE')",
        (account.customer, account.id),
    )
    for line_id in given_way(rows, ip_address, confirm):
        lines = list(await conn.execute_fetchall(f"{_LINE_SQL} WHERE id = ?", (line_id,)))
        await _end_lines(
            conn, lines, reason="taken_over", now=now, replaced_by=account.id, author=author
        )


class InternetAccounts(SqliteCore):
    """The ``internet_accounts`` table, and what their activation does to devices."""

    async def get_internet_account(self, account_id: str) -> InternetAccountRecord | None:
        return await self._get(INTERNET_ACCOUNTS, "WHERE id = ?", (account_id,))

    async def query_internet_accounts(
        self, query: InternetAccountQuery
    ) -> tuple[list[InternetAccountRecord], int]:
        where, params = internet_account_filters(query)
        rows, total = await self._page(
            INTERNET_ACCOUNTS.columns,
            "internet_accounts",
            where,
            "id",
            params,
            query.limit,
            query.offset,
            after=query.after,
        )
        return [INTERNET_ACCOUNTS.record(row) for row in rows], total

    async def next_internet_start(self) -> float | None:
        return await self._scalar(
            self._read, "SELECT min(start_date) FROM internet_accounts WHERE state = 'CONFIRMED'"
        )

    async def internet_account_for_device(
        self, device_id: str, now: float
    ) -> InternetAccountRecord | None:
        return await self._get(
            INTERNET_ACCOUNTS,
            "WHERE device = ? AND state IN ('CONFIRMED', 'ACTIVE') AND start_date <= ?"
            " ORDER BY start_date DESC, id DESC LIMIT 1",
            (device_id, now),
        )

    async def create_internet_account(
        self, record: InternetAccountRecord, *, audit: AuditRecord | None = None
    ) -> InternetAccountRecord:
        record = replace(record, id=record.id or new_id())
        audit_row = audit_values(audit)

        async def create(conn: aiosqlite.Connection) -> InternetAccountRecord:
            stored = stamped_copy(record)
            if stored.device is not None:
                # checked again here: a DELETE since the caller read the device
                state = await self._scalar(
                    conn, "SELECT state FROM devices WHERE id = ?", (stored.device,)
                )
                check_device_takes_lines(stored.device, state)
            await insert_record(conn, INTERNET_ACCOUNTS, stored, "internet account")
            if stored.device is not None:
                await conn.execute(
                    "UPDATE devices SET internet_account = ? WHERE id = ?",
                    (stored.id, stored.device),
                )
            await write_audit(conn, audit_row, stored.id)
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
        audit_row = audit_values(audit)

        async def write(
            conn: aiosqlite.Connection,
        ) -> tuple[InternetAccountRecord, DeviceRecord | None]:
            rows = list(
                await conn.execute_fetchall(
                    f"{INTERNET_ACCOUNTS.select} WHERE id = ?", (account_id,)
                )
            )
            account = ordered(account_id, INTERNET_ACCOUNTS.record(rows[0]) if rows else None)
            replaces = None
            if account.device is not None:
                await _take_over_routerless(conn, account, ip_address, confirm, now, audit)
            # The router's own lines are not in the way: the new one must start after
            # them (below) and ends them when it does, so an upgrade keeps its address.
            taken = await self._scalar(
                conn,
                "SELECT id FROM internet_accounts WHERE ip_address = ? AND id != ?"
                " AND state != 'ENDED' AND (device IS NULL OR ? IS NULL OR device != ?)",
                (ip_address, account_id, account.device, account.device),
            )
            check_address_free(ip_address, taken)
            others = await conn.execute_fetchall(_CLAIMS_SQL, (account_id,))
            check_claims(ip_address, confirm, account.device, others)
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
                check_starts_last(account.device, later)
                # The line it will replace when it starts (all of the router's started
                # before it): ended by id, should the router's record go meanwhile.
                replaces = await self._scalar(
                    conn,
                    "SELECT id FROM internet_accounts WHERE device = ? AND id != ?"
                    " AND state IN ('CONFIRMED', 'ACTIVE') ORDER BY start_date DESC, id DESC"
                    " LIMIT 1",
                    (account.device, account_id),
                )
                # The address is unique among lines by index: the new line takes over the
                # claim of the router's line it replaces (lines are never withdrawn, so
                # the claim cannot fall back to nobody).
                await conn.execute(
                    "UPDATE internet_accounts SET ip_address = NULL WHERE ip_address = ?"
                    " AND device = ? AND id != ? AND state != 'ENDED'",
                    (ip_address, account.device, account_id),
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
                "UPDATE internet_accounts SET state = ?, confirm = ?, start_date = ?,"
                f" ip_address = ?, updated = ?, replaces = ?, {_REPAIRED} WHERE id = ?",
                (stored.state, encoded, start_date, ip_address, now, replaces, account_id),
            )
            device = None
            if due and account.device is not None:
                await _end_superseded(conn, account.device, now, audit)
                device = await _activate_device(conn, account.device, now)
            await write_audit(conn, audit_row, account_id)
            return stored, device

        return await self._call("confirm_internet_account", write)

    async def end_internet_account(
        self, account_id: str, *, now: float, audit: AuditRecord | None = None
    ) -> InternetAccountRecord:
        async def end(conn: aiosqlite.Connection) -> InternetAccountRecord:
            rows = list(
                await conn.execute_fetchall(
                    f"{INTERNET_ACCOUNTS.select} WHERE id = ?", (account_id,)
                )
            )
            account, end = to_end(
                account_id, INTERNET_ACCOUNTS.record(rows[0]) if rows else None, now
            )
            if not end:
                return account  # ended already: nothing changes, nothing to audit
            lines = list(await conn.execute_fetchall(f"{_LINE_SQL} WHERE id = ?", (account_id,)))
            await _end_lines(conn, lines, reason="ended", now=now, author=audit)
            if account.ip_address is not None:
                # A line its router's next line took the address from (the claim moved to
                # that one, see confirm_internet_account) still uses it: the claim goes
                # back to it, or another line could take the address from under it.
                await conn.execute(
                    "UPDATE internet_accounts SET ip_address = :ip WHERE id = (SELECT id"
                    " FROM internet_accounts WHERE ip_address IS NULL"
                    " AND state IN ('CONFIRMED', 'ACTIVE') AND json_valid(confirm)"
                    " AND json_extract(confirm, '$.net.ipAddress') = :ip"
                    " ORDER BY start_date DESC, id DESC LIMIT 1)",
                    {"ip": account.ip_address},
                )
            return replace(account, state="ENDED", updated=now)

        return await self._call("end_internet_account", end)

    async def activate_internet_accounts(self, now: float) -> list[DeviceRecord]:
        due_sql = "FROM internet_accounts WHERE state = 'CONFIRMED' AND start_date <= ?"
        # Most sweeps find nothing: ask the reader before queueing a write.
        if await self._scalar(self._read, f"SELECT 1 {due_sql} LIMIT 1", (now,)) is None:
            return []

        async def activate(conn: aiosqlite.Connection) -> list[DeviceRecord]:
            rows = await conn.execute_fetchall(
                f"SELECT id, device, replaces {due_sql} ORDER BY start_date, id", (now,)
            )
            await conn.execute(
                f"UPDATE internet_accounts SET state = 'ACTIVE', updated = ?, {_REPAIRED}"
                f" WHERE id IN (SELECT id {due_sql})",
                (now, now),
            )
            devices = []
            for device_id in dict.fromkeys(row[1] for row in rows if row[1] is not None):
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

        return await self._call("activate_internet_accounts", activate)
