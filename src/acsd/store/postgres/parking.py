"""CWMP sessions parked between workers, and between acsd instances that share the
database: a claim is one DELETE ... RETURNING, so only one of them goes on. Parked and
touched on the database server's clock: instances whose clocks differ by more than a
session's timeout would otherwise reap each other's fresh sessions."""

from __future__ import annotations

import asyncpg

from acsd.store.postgres.core import NOW, PgCore
from acsd.store.postgres.rows import rowcount
from acsd.store.records import serial_key


class ParkedSessions(PgCore):
    async def park_session(
        self,
        session_id: str,
        state: bytes,
        remote_ip: str | None = None,
        serial: str | None = None,
    ) -> None:
        key = serial_key(serial) if serial else None

        async def park(conn: asyncpg.Connection) -> None:
            await conn.execute(
                "INSERT INTO cwmp_sessions (id, state, parked, remote_ip, serial_key)"
                f" VALUES ($1, $2, {NOW}, $3, $4) ON CONFLICT (id) DO UPDATE SET"
                " state = excluded.state, parked = excluded.parked,"
                " remote_ip = excluded.remote_ip, serial_key = excluded.serial_key",
                session_id,
                state,
                remote_ip,
                key,
            )

        await self._call("park_session", park)

    async def claim_session(self, session_id: str) -> bytes | None:
        async def claim(conn: asyncpg.Connection) -> bytes | None:
            state = await conn.fetchval(
                "DELETE FROM cwmp_sessions WHERE id = $1 RETURNING state", session_id
            )
            return bytes(state) if state is not None else None

        if await self._scalar("SELECT 1 FROM cwmp_sessions WHERE id = $1", session_id) is None:
            return None
        return await self._call("claim_session", claim)

    async def claim_session_from(self, remote_ip: str) -> bytes | None:
        async def claim(conn: asyncpg.Connection) -> bytes | None:
            # Locked first: a session parked from the address meanwhile (by any instance)
            # makes the address ambiguous, and then nobody claims.
            rows = await conn.fetch(
                "SELECT id FROM cwmp_sessions WHERE remote_ip = $1 FOR UPDATE", remote_ip
            )
            if len(rows) != 1:
                return None
            state = await conn.fetchval(
                "DELETE FROM cwmp_sessions WHERE id = $1 RETURNING state", rows[0][0]
            )
            return bytes(state) if state is not None else None

        found = await self._scalar(
            "SELECT count(*) FROM cwmp_sessions WHERE remote_ip = $1", remote_ip
        )
        if found != 1:
            return None
        return await self._call("claim_session_from", claim)

    async def parked_of(self, serial: str) -> list[str]:
        rows = await self._fetch(
            "SELECT id FROM cwmp_sessions WHERE serial_key = $1", serial_key(serial)
        )
        return [row[0] for row in rows]

    async def touch_parked(
        self, *, session_id: str | None = None, remote_ip: str | None = None
    ) -> bool:
        if session_id is not None:
            where, key = "id = $1", session_id
        elif remote_ip is not None:
            where, key = "remote_ip = $1", remote_ip
        else:
            return False
        # Most uploads belong to no parked session: read before queueing a write.
        found = await self._scalar(f"SELECT count(*) FROM cwmp_sessions WHERE {where}", key)
        if found != 1:
            return False

        async def touch(conn: asyncpg.Connection) -> bool:
            # As claim_session_from: by address, only the one session parked from there,
            # counted under lock (another instance may park a second one meanwhile).
            rows = await conn.fetch(f"SELECT id FROM cwmp_sessions WHERE {where} FOR UPDATE", key)
            if len(rows) != 1:
                return False
            status = await conn.execute(
                f"UPDATE cwmp_sessions SET parked = {NOW} WHERE id = $1 AND parked < {NOW}",
                rows[0][0],
            )
            return rowcount(status) > 0

        return await self._call("touch_parked", touch)

    async def parked_sessions(self, older_than: float | None = None) -> list[str]:
        if older_than is None:
            rows = await self._fetch("SELECT id FROM cwmp_sessions ORDER BY parked")
        else:
            rows = await self._fetch(
                f"SELECT id FROM cwmp_sessions WHERE parked < {NOW} - $1 ORDER BY parked",
                older_than,
            )
        return [row[0] for row in rows]

    async def restamp_parked(self) -> int:
        if await self._scalar(f"SELECT 1 FROM cwmp_sessions WHERE parked > {NOW} LIMIT 1") is None:
            return 0

        async def restamp(conn: asyncpg.Connection) -> int:
            # one instant for the test and the stamp (clock_timestamp() moves within a statement)
            status = await conn.execute(
                f"UPDATE cwmp_sessions SET parked = clock.t FROM (SELECT {NOW} AS t) AS clock"
                " WHERE parked > clock.t"
            )
            return rowcount(status)

        return await self._call("restamp_parked", restamp)
