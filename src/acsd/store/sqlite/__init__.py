"""SQLite backend: WAL, one batching writer task, a separate reader connection.

Why this shape:

- aiosqlite runs each connection on its own thread and costs ~100 µs per awaited call, so
  per-session transactions cannot reach the target rate (1,200 sessions/s on one core).
  Every write goes through one queue; one writer task drains it and commits everything
  queued in ONE transaction with a handful of awaits (``executemany`` does the rows).
  Under load the batches grow by themselves: while one commits, the next one queues.
  The sessions' rows go in a savepoint: when one of them fails, they are written again
  one by one, each in a savepoint of its own, so the bad one fails alone and the batch
  still commits (see ``saves.apply_saves_sync``).
- Operator writes (the API's) are queued calls ``fn(conn)`` in the same batches; each one
  writes its record and its audit entry together, and runs in a savepoint when it shares
  its batch, so a conflict undoes only that call instead of forcing a retry of the batch.
- The merge of a session's values into the stored ``params`` happens inside SQLite
  (``json_patch``; key by key for results of many values, see ``saves``), so the event
  loop never decodes and re-encodes stored parameter trees.
- WAL lets the reader connection (and other processes such as the operator CLI) read while
  the writer commits. Writers in other processes serialise on ``BEGIN IMMEDIATE`` and wait
  up to ``busy_timeout`` for the lock instead of failing at once.
- ``synchronous=NORMAL`` in WAL: a committed transaction survives a crash of the process;
  only a power loss / OS crash may lose the last few commits (never corrupts the file).

Modules: ``rows`` (SQLite's statements for records; the codecs are
``acsd.store.records``), ``filters`` (list queries), ``saves`` (session results; the queued
op and "first session wins" are ``acsd.store.writes``), ``writer`` (the queue's
transactions on SQLite; the queue and its task are ``acsd.store.batching``), ``core``
(connections and lifecycle), and one per resource (``internet``, ``apn``, ``parking``,
``crclaims``, ``store``: devices and the rest), whose rules are the store's ``*_rules`` modules.
"""

from acsd.store.sqlite.store import SqliteStore

__all__ = ["SqliteStore"]
