"""Connection Request claims: which process (worker) may ask a router to connect now.

One conditional upsert through the writer queue: the write lock (BEGIN IMMEDIATE) orders
it against every other process's on the file, so of two workers asking at once the second
finds the first's claim."""

from __future__ import annotations

import aiosqlite

from acsd.store.sqlite.core import SqliteCore
from acsd.store.writes import claim_seconds

#: now in POSIX seconds, on the database's clock (SQLite's; "now" is one value per
#: statement), to the millisecond
_NOW = "((julianday('now') - 2440587.5) * 86400.0)"

#: the claim, taken when there is none or it has run out; a row returned when taken. From
#: devices: no claim (and no row to leave behind) for a device that is gone. A claim that
#: runs longer than any is asked for was taken before the clock went back: it is void (it
#: held off the router's Connection Requests for as long as the step).
_CLAIM = (
    f"INSERT INTO cr_claims (device, until) SELECT id, {_NOW} + ?2 FROM devices WHERE id = ?1"
    f" ON CONFLICT (device) DO UPDATE SET until = excluded.until"
    f" WHERE cr_claims.until <= {_NOW} OR cr_claims.until > {_NOW} + ?2 + 1"
    " RETURNING 1"
)


class CrClaims(SqliteCore):
    async def claim_connection_request(self, device_id: str, seconds: float) -> bool:
        seconds = claim_seconds(seconds)

        async def claim(conn: aiosqlite.Connection) -> bool:
            return bool(list(await conn.execute_fetchall(_CLAIM, (device_id, seconds))))

        return await self._call("claim_connection_request", claim)
