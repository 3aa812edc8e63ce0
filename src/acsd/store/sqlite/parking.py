"""CWMP sessions parked between workers.

Through the writer queue like every write: a park commits with the next batch, and a
claim (DELETE ... RETURNING) is atomic, so two workers can never both go on."""

from __future__ import annotations

import math

import aiosqlite

from acsd import clock
from acsd.store.records import serial_key
from acsd.store.sqlite.core import SqliteCore


class ParkedSessions(SqliteCore):
    """The ``cwmp_sessions`` table: a session's state, parked by one worker, claimed by
    another (see the module's docstring)."""

    async def park_session(
        self,
        session_id: str,
        state: bytes,
        remote_ip: str | None = None,
        serial: str | None = None,
    ) -> None:
        key = serial_key(serial) if serial else None

        async def park(conn: aiosqlite.Connection) -> None:
            await conn.execute(
                "INSERT OR REPLACE INTO cwmp_sessions (id, state, parked, remote_ip, serial_key)"
                " VALUES (?, ?, ?, ?, ?)",
                (session_id, state, clock.now(), remote_ip, key),
            )

        await self._call("park_session", park)

    async def claim_session(self, session_id: str) -> bytes | None:
        async def claim(conn: aiosqlite.Connection) -> bytes | None:
            rows = list(
                await conn.execute_fetchall(
                    "DELETE FROM cwmp_sessions WHERE id = ? RETURNING state", (session_id,)
                )
            )
            return bytes(rows[0][0]) if rows else None

        # A cheap look first: most unknown cookies are stale, not parked.
        if not await self._indexed_rows("SELECT 1 FROM cwmp_sessions WHERE id = ?", (session_id,)):
            return None
        return await self._call("claim_session", claim)

    async def claim_session_from(self, remote_ip: str) -> bytes | None:
        async def claim(conn: aiosqlite.Connection) -> bytes | None:
            # The count and the delete in one statement of the write transaction: a second
            # session parked from the address meanwhile makes it ambiguous, and no claim.
            rows = list(
                await conn.execute_fetchall(
                    "DELETE FROM cwmp_sessions WHERE remote_ip = ?1 AND"
                    " (SELECT count(*) FROM cwmp_sessions WHERE remote_ip = ?1) = 1"
                    " RETURNING state",
                    (remote_ip,),
                )
            )
            return bytes(rows[0][0]) if rows else None

        found = await self._scalar(
            self._read, "SELECT count(*) FROM cwmp_sessions WHERE remote_ip = ?", (remote_ip,)
        )
        if found != 1:
            return None
        return await self._call("claim_session_from", claim)

    async def parked_of(self, serial: str) -> list[str]:
        # Every Inform asks (workers > 1), and nearly always finds none: through the
        # reader's thread this was a sixth of a worker's CPU per steady session.
        rows = await self._indexed_rows(
            "SELECT id FROM cwmp_sessions WHERE serial_key = ?", (serial_key(serial),)
        )
        return [row[0] for row in rows]

    async def touch_parked(
        self, *, session_id: str | None = None, remote_ip: str | None = None
    ) -> bool:
        if session_id is not None:
            where, key = "id = ?2", session_id
        elif remote_ip is not None:
            # As claim_session_from: a session only when it is the one parked from there.
            where = (
                "remote_ip = ?2 AND (SELECT count(*) FROM cwmp_sessions WHERE remote_ip = ?2) = 1"
            )
            key = remote_ip
        else:
            return False
        now = clock.now()
        # Most uploads belong to no parked session: ask the reader before queueing a write.
        found = await self._scalar(
            self._read, f"SELECT 1 FROM cwmp_sessions WHERE {where}", (now, key)
        )
        if found is None:
            return False

        async def touch(conn: aiosqlite.Connection) -> bool:
            async with conn.execute(
                f"UPDATE cwmp_sessions SET parked = ?1 WHERE parked < ?1 AND {where}", (now, key)
            ) as cursor:
                return cursor.rowcount > 0

        return await self._call("touch_parked", touch)

    async def parked_sessions(self, older_than: float | None = None) -> list[str]:
        before = math.inf if older_than is None else clock.now() - older_than
        rows = await self._read.execute_fetchall(
            "SELECT id FROM cwmp_sessions WHERE parked < ? ORDER BY parked", (before,)
        )
        return [row[0] for row in rows]

    async def restamp_parked(self) -> int:
        now = clock.now()
        # Most rounds find none: ask the reader before queueing a write.
        found = await self._scalar(
            self._read, "SELECT 1 FROM cwmp_sessions WHERE parked > ? LIMIT 1", (now,)
        )
        if found is None:
            return 0

        async def restamp(conn: aiosqlite.Connection) -> int:
            async with conn.execute(
                "UPDATE cwmp_sessions SET parked = ? WHERE parked > ?", (now, now)
            ) as cursor:
                return cursor.rowcount

        return await self._call("restamp_parked", restamp)
