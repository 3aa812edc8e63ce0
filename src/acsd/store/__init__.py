"""Persistence. ``open_store(url)`` picks the backend; callers only see :class:`Store`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from acsd.store.base import (
    RETRY_UNAVAILABLE,
    AuditRecord,
    ConflictError,
    CpeIdentity,
    CustomerRecord,
    DeviceQuery,
    DeviceRecord,
    ModelRecord,
    RecordDeletedError,
    SchemaError,
    SessionResult,
    StaleResultError,
    Store,
    StoreClosedError,
    StoreError,
    StoreUnavailableError,
    TokenRecord,
    store_unavailable,
)
from acsd.store.outages import Outage, outage
from acsd.store.sqlite import SqliteStore

if TYPE_CHECKING:
    from acsd.config import StoreConfig

__all__ = [
    "RETRY_UNAVAILABLE",
    "AuditRecord",
    "ConflictError",
    "CpeIdentity",
    "CustomerRecord",
    "DeviceQuery",
    "DeviceRecord",
    "ModelRecord",
    "Outage",
    "RecordDeletedError",
    "SchemaError",
    "SessionResult",
    "SqliteStore",
    "StaleResultError",
    "Store",
    "StoreClosedError",
    "StoreError",
    "StoreUnavailableError",
    "TokenRecord",
    "is_postgres",
    "open_store",
    "outage",
    "shown_url",
    "sqlite_path",
    "store_unavailable",
]

_ACCEPTED = (
    "sqlite:///relative/path.db (relative to the working directory), "
    "sqlite:////absolute/path.db, a plain file path, or postgresql://user@host/database"
)


#: what RFC 3986 allows in a scheme: anything else is not echoed in an error
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")


def sqlite_path(url: str, *, base_dir: Path | None = None) -> Path:
    """The database file that a ``store.url`` names. Raises ValueError for other URLs."""
    url = url.strip()
    if not url:
        raise ValueError(f"store.url: empty; expected {_ACCEPTED}")
    if "://" in url:
        scheme, rest = url.split("://", 1)
        scheme = scheme.lower()
        if not _SCHEME.fullmatch(scheme):  # then it may hold what follows (a password)
            raise ValueError(f"store.url: not a URL with a scheme; expected {_ACCEPTED}")
        if scheme in _PG_SCHEMES:
            raise ValueError("store.url: a PostgreSQL URL names no database file")
        if scheme != "sqlite":
            raise ValueError(f"store.url: unsupported scheme {scheme!r}; expected {_ACCEPTED}")
        if not rest.startswith("/"):
            # sqlite://host/... : there is no host for a local file.
            raise ValueError(f"store.url: sqlite URLs have no host part; expected {_ACCEPTED}")
        raw = rest[1:]
        if not raw:
            raise ValueError(f"store.url: no file name in the sqlite URL; expected {_ACCEPTED}")
        if "?" in raw or "#" in raw:
            # (sqlite:///acsd.db?mode=ro made a file "acsd.db?mode=ro", read-write)
            raise ValueError(
                "store.url: a sqlite URL takes no query or fragment (acsd sets the "
                f"database's options itself); expected {_ACCEPTED}"
            )
        path = Path(raw)
    elif (scheme := url.partition(":")[0].lower()) in ("sqlite", *_PG_SCHEMES) and ":" in url:
        # "sqlite:acsd.db" made a file of that name
        raise ValueError(f"store.url: a {scheme}: URL without '//'; expected {_ACCEPTED}")
    else:
        try:
            path = Path(url).expanduser()
        except RuntimeError:  # "~someone" who is no user here
            raise ValueError(
                f"store.url: no such home directory in the path; expected {_ACCEPTED}"
            ) from None
    if str(path) == ":memory:":
        # Two connections (writer and reader) would each see their own empty database.
        raise ValueError("store.url: in-memory SQLite is not supported; give a file path")
    if not path.is_absolute():
        try:
            path = (base_dir if base_dir is not None else Path.cwd()) / path
        except OSError as exc:  # the working directory is gone
            raise ValueError(f"store.url: a relative path, but {exc.strerror}") from None
    return path


_PG_SCHEMES = ("postgresql", "postgres")


def is_postgres(url: str) -> bool:
    """Whether ``store.url`` names a PostgreSQL database."""
    scheme, sep, _ = url.strip().partition("://")
    return bool(sep) and scheme.lower() in _PG_SCHEMES


def postgres_dsn(url: str) -> str:
    """The DSN asyncpg connects with, checked. Errors never echo the URL (it may carry a
    password)."""
    url = url.strip()
    scheme = url.split("://", 1)[0].lower()
    if scheme not in _PG_SCHEMES:
        raise ValueError(f"store.url: not a PostgreSQL URL; expected {_ACCEPTED}")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a port that is no number)
    except ValueError:
        raise ValueError("store.url: a postgresql URL that cannot be parsed") from None
    if not parts.path.strip("/") and "dbname=" not in parts.query:
        raise ValueError("store.url: the postgresql URL names no database (postgresql://host/db)")
    if parts.fragment:
        raise ValueError("store.url: a postgresql URL has no #fragment")
    # the query as asyncpg takes it: a bad option stops the first connection, not the check
    from acsd.store.pgurl import check_query

    check_query(parts.query, netloc_host=bool(parts.netloc.rpartition("@")[2]))
    return url


def shown_url(url: str) -> str:
    """``store.url`` as it may be logged or printed: a password in it becomes ``***``
    (a ``password=`` or ``sslpassword=`` query parameter too)."""
    if not is_postgres(url):
        return url
    try:
        parts = urlsplit(url.strip())
        netloc = parts.netloc
        if parts.password is not None:
            user, _, host = netloc.rpartition("@")
            netloc = f"{user.split(':', 1)[0]}:***@{host}"
        # (sslpassword too: the passphrase of the client key)
        query = re.sub(r"(?i)(^|&)([^&=]*password=)[^&]*", r"\1\2***", parts.query)
        return parts._replace(netloc=netloc, query=query).geturl()
    except ValueError:
        return "postgresql://***"


def check_url(url: str) -> None:
    """Raise ValueError (a clear message, never the URL) unless ``url`` can be a store."""
    if is_postgres(url):
        postgres_dsn(url)
    else:
        sqlite_path(url)


def open_store(
    url: str,
    *,
    base_dir: Path | None = None,
    pool_size: int | None = None,
    transaction_pooling: bool = False,
    busy_timeout: float | None = None,
    lock_timeout: float | None = None,
) -> Store:
    """The store for ``url`` (not yet opened: ``await store.open()``). PostgreSQL only
    (SQLite has none of them): ``pool_size``, the read pool's connections (None: the
    backend's default); ``transaction_pooling``, the URL is a pooler's in transaction mode;
    ``lock_timeout``, seconds a write waits for a lock another client holds (None: 2).
    SQLite only: ``busy_timeout``, seconds a write waits for another process's lock
    (None: 5)."""
    if is_postgres(url):
        from acsd.store.postgres import PgStore  # asyncpg is loaded only when used

        options: dict[str, Any] = {"transaction_pooling": transaction_pooling}
        if pool_size is not None:
            options["pool_size"] = pool_size
        if lock_timeout is not None:
            options["lock_timeout"] = lock_timeout
        return PgStore(postgres_dsn(url), **options)
    options = {} if busy_timeout is None else {"busy_timeout": busy_timeout}
    return SqliteStore(sqlite_path(url, base_dir=base_dir), **options)


def store_of(config: StoreConfig) -> Store:
    """The store a ``[store]`` section describes (not yet opened), with every setting of it:
    what the daemon, the workers' supervisor and the CLI open, so that a new store setting
    reaches all three."""
    return open_store(
        config.url,
        pool_size=config.pool_size,
        transaction_pooling=config.transaction_pooling,
        busy_timeout=config.busy_timeout,
        lock_timeout=config.lock_timeout,
    )
