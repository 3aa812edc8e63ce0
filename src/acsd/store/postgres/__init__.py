"""PostgreSQL backend (asyncpg): the schema of the SQLite backend, shared by any number of
acsd instances. See ``core`` for the writer and the locks that make that safe."""

from acsd.store.postgres.store import PgStore

__all__ = ["PgStore"]
