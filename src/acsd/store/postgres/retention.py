"""The retention prune on PostgreSQL: as SQLite's (acsd.store.retention says which rows),
safe while other instances prune the same table at the same moment."""

from __future__ import annotations

import asyncpg

from acsd.store.postgres.core import PgCore
from acsd.store.retention import PRUNABLE, Group


class Retention(PgCore):
    async def prune(self, group: Group, before: float, limit: int) -> int:
        rows = PRUNABLE[group]
        where = rows.where("$1")
        if await self._scalar(f"SELECT 1 FROM {rows.table} WHERE {where} LIMIT 1", before) is None:
            return 0

        async def prune(conn: asyncpg.Connection) -> int:
            # Rows another instance's prune holds are skipped, not waited for (a wait would
            # run into lock_timeout and fail the batch of writes this one is part of): each
            # row goes once, whichever instance takes it, as the internet lines' sweep.
            gone = await conn.fetchval(
                f"WITH gone AS (DELETE FROM {rows.table} WHERE id IN (SELECT id"
                f" FROM {rows.table} WHERE {where} ORDER BY {rows.column} LIMIT $2"
                " FOR UPDATE SKIP LOCKED) RETURNING 1) SELECT count(*) FROM gone",
                before,
                limit,
            )
            return int(gone or 0)

        return await self._call(f"prune_{group}", prune)
