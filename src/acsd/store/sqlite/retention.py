"""The retention prune on SQLite: the oldest rows of a table group, a batch at a time,
each batch one queued write (acsd.store.retention says which rows)."""

from __future__ import annotations

import aiosqlite

from acsd.store.retention import PRUNABLE, Group
from acsd.store.sqlite.core import SqliteCore


class Retention(SqliteCore):
    async def prune(self, group: Group, before: float, limit: int) -> int:
        rows = PRUNABLE[group]
        where = rows.where("?1")
        # Most hours find nothing: ask the reader (through the index) before queueing a write.
        found = await self._scalar(
            self._read, f"SELECT 1 FROM {rows.table} WHERE {where} LIMIT 1", (before,)
        )
        if found is None:
            return 0

        async def prune(conn: aiosqlite.Connection) -> int:
            # Oldest first through the time column's index; by id, which is the key.
            async with conn.execute(
                f"DELETE FROM {rows.table} WHERE id IN (SELECT id FROM {rows.table}"
                f" WHERE {where} ORDER BY {rows.column} LIMIT ?2)",
                (before, limit),
            ) as cursor:
                return max(0, cursor.rowcount)

        return await self._call(f"prune_{group}", prune)
