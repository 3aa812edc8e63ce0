"""What a 503 says when the database cannot take a request: which trouble it is, in words
an operator acts on, and when to come back. The one place where a store error becomes the
text and Retry-After of the operator API's, the APN API's and a router's 503, and where a
store's readiness (``/readyz``) finds why it is not ready.

The texts name what to check, never a file path, a connection URL or a statement: the
driver's own message (which has them) goes to the log only.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass

from acsd.fdwatch import exhausted
from acsd.store.base import RETRY_UNAVAILABLE, RestartNeededError, store_unavailable

#: an operator has to act (free space, lift read-only) before a write can go through;
#: acsd notices by itself within seconds once they have
RETRY_OPERATOR = 60
#: nothing changes until acsd restarts: long, so that routers and scripts stop asking
#: every few seconds, yet a router comes back soon enough after the restart
RETRY_RESTART = 600


@dataclass(frozen=True, slots=True)
class Outage:
    """Why the database cannot take a request now. ``cause`` is a short key that clients and
    monitors branch on (the 503's ``cause``, ``/readyz``'s, the refusals metric's label: keep
    the keys stable), ``text`` what the client is told, ``retry_after`` in seconds."""

    cause: str
    text: str
    retry_after: int


RESTART_NEEDED = Outage(
    "restart_needed",
    "The database's files were removed or replaced while acsd ran: writes are refused "
    "until acsd is restarted, retrying does not help; restart acsd to use the database now "
    "in place (the server log's store_files_changed line says which file)",
    RETRY_RESTART,
)
DISK = Outage(
    "disk",
    "The disk under the database is full or failing: free space on the database's file "
    "system (or check the disk); acsd writes again by itself once there is room; retry "
    "later",
    RETRY_OPERATOR,
)
READ_ONLY = Outage(
    "read_only",
    "The database is read-only: check that acsd's user may write the database file and its "
    "directory, or on PostgreSQL the database's default_transaction_read_only and whether "
    "the server is a standby; acsd writes again by itself once it is writable; retry later",
    RETRY_OPERATOR,
)
UNREACHABLE = Outage(
    "unreachable",
    "The database server cannot be reached (stopped, restarting, or the network): check "
    "that it runs and accepts acsd's connections; acsd reconnects by itself; retry later",
    RETRY_UNAVAILABLE,
)
BUSY = Outage(
    "busy",
    "The database is busy: another client holds a lock acsd waits for, or a statement ran "
    "past its time limit; look for a transaction left open (a database shell) or a long "
    "job; retry later",
    RETRY_UNAVAILABLE,
)
CORRUPT = Outage(
    "corrupt",
    "The database file is damaged (SQLite finds it malformed: a file copied over it while "
    "acsd ran, a WAL left from another database, a failing disk): retrying does not help; "
    "stop acsd, check it with sqlite3's PRAGMA integrity_check and restore the last backup",
    RETRY_RESTART,
)
FD_LIMIT = Outage(
    "fd_limit",
    "acsd has no file descriptors left (its open-files limit, LimitNOFILE under systemd): "
    "too many connections at once; it serves again by itself as they close; retry later",
    RETRY_UNAVAILABLE,
)
OTHER = Outage(
    "unavailable", "The database is not available right now; retry later", RETRY_UNAVAILABLE
)

#: every cause a request or a session can be refused for (the refusals metric's label)
REFUSAL_CAUSES = tuple(
    o.cause for o in (RESTART_NEEDED, DISK, READ_ONLY, UNREACHABLE, BUSY, CORRUPT, FD_LIMIT, OTHER)
)

# Only /readyz answers with these: no request meets them (a closed store's calls fail as
# bugs would; the schema is checked before the listeners open)
CLOSED = Outage(
    "store_closed",
    "The database is not open: acsd is starting or stopping",
    RETRY_UNAVAILABLE,
)
WRITER_STOPPED = Outage(
    "writer_stopped",
    "The database's writer task stopped, so every write would be refused: restart acsd "
    "(the server log says why it stopped)",
    RETRY_RESTART,
)
SCHEMA_VERSION = Outage(
    "schema_version",
    "The database's schema is not the version this acsd runs (another version of acsd "
    "migrated it, or a backup of another version was restored): run one version of acsd "
    "on it",
    RETRY_RESTART,
)

# SQLite's extended error names, by prefix; READONLY_DBMOVED: the file was moved or
# removed under an open connection (acsd's own check finds that too: RESTART_NEEDED)
_SQLITE = (
    ("SQLITE_READONLY_DBMOVED", RESTART_NEEDED),
    ("SQLITE_READONLY", READ_ONLY),
    ("SQLITE_FULL", DISK),
    ("SQLITE_IOERR", DISK),  # (a file that may grow no more: a quota, a size limit)
    ("SQLITE_BUSY", BUSY),
    ("SQLITE_LOCKED", BUSY),
    ("SQLITE_CORRUPT", CORRUPT),
    ("SQLITE_NOTADB", CORRUPT),
)
# PostgreSQL's SQLSTATEs, by prefix (see store.base._PG_UNAVAILABLE)
_POSTGRES = (
    ("53100", DISK),  # disk_full
    ("25006", READ_ONLY),  # read_only_sql_transaction
    ("08", UNREACHABLE),
    ("57P", UNREACHABLE),  # admin_shutdown, crash_shutdown, cannot_connect_now
    ("55P03", BUSY),  # lock_not_available (lock_timeout)
    ("57014", BUSY),  # query_canceled (statement_timeout)
    ("25P03", BUSY),  # idle_in_transaction_session_timeout
)


def outage(exc: BaseException) -> Outage | None:
    """Why ``exc`` (or what it was raised from) says the database cannot take a request
    now; None when it is no such error (a bug: a 500)."""
    if store_unavailable(exc) is None:
        return None
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, RestartNeededError):
            return RESTART_NEEDED
        name = getattr(seen, "sqlite_errorname", None)
        if isinstance(name, str):
            if name.startswith("SQLITE_CANTOPEN") and exhausted():
                return FD_LIMIT  # (not the file's permissions: no descriptor to open it)
            return next((o for prefix, o in _SQLITE if name.startswith(prefix)), OTHER)
        state = getattr(seen, "sqlstate", None)
        if isinstance(state, str):
            return next((o for prefix, o in _POSTGRES if state.startswith(prefix)), OTHER)
        if isinstance(seen, OSError) and seen.errno in (errno.EMFILE, errno.ENFILE):
            return FD_LIMIT  # (a PostgreSQL connection that could not be opened)
        if isinstance(seen, ConnectionError):
            return UNREACHABLE
        seen = seen.__cause__
    # StoreUnavailableError of its own: only the PostgreSQL backend raises it bare (a lost
    # connection, a server that does not answer), and the write queue's RestartNeededError
    return UNREACHABLE
