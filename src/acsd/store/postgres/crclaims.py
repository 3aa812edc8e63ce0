"""Connection Request claims: which process (worker, instance) may ask a router to connect
now.

One conditional upsert: a second claimer's INSERT waits on the first's uncommitted row
and, once that commits, finds it held (READ COMMITTED re-checks ON CONFLICT's WHERE on the
row as committed), so of two processes asking at once exactly one gets the claim."""

from __future__ import annotations

import asyncpg

from acsd.store.postgres.core import NOW, PgCore
from acsd.store.writes import claim_seconds

#: as SQLite's (acsd.store.sqlite.crclaims): taken when there is none or it has run out
#: (or runs longer than any is asked for: the clock went back), a row returned when taken;
#: none for a device that is gone
_CLAIM = (
    f"INSERT INTO cr_claims (device, until) SELECT id, {NOW} + $2 FROM devices WHERE id = $1"
    f" ON CONFLICT (device) DO UPDATE SET until = excluded.until"
    f" WHERE cr_claims.until <= {NOW} OR cr_claims.until > {NOW} + $2 + 1"
    " RETURNING 1"
)


class CrClaims(PgCore):
    async def claim_connection_request(self, device_id: str, seconds: float) -> bool:
        seconds = claim_seconds(seconds)

        async def claim(conn: asyncpg.Connection) -> bool:
            return await conn.fetchval(_CLAIM, device_id, seconds) is not None

        # (its cr_claims row refers to the device's, which the check locks FOR KEY SHARE)
        return await self._call("claim_connection_request", claim, rows=(device_id,))
