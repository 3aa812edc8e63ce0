"""Persistence. ``open_store(url)`` picks the backend; callers only see :class:`Store`."""

from __future__ import annotations

import re
from pathlib import Path

from acsd.store.base import (
    RETRY_UNAVAILABLE,
    AuditRecord,
    ConflictError,
    CpeIdentity,
    CustomerRecord,
    DeviceQuery,
    DeviceRecord,
    ModelRecord,
    SchemaError,
    SessionResult,
    StaleResultError,
    Store,
    StoreClosedError,
    StoreError,
    TokenRecord,
    store_unavailable,
)
from acsd.store.sqlite import SqliteStore

__all__ = [
    "RETRY_UNAVAILABLE",
    "AuditRecord",
    "ConflictError",
    "CpeIdentity",
    "CustomerRecord",
    "DeviceQuery",
    "DeviceRecord",
    "ModelRecord",
    "SchemaError",
    "SessionResult",
    "SqliteStore",
    "StaleResultError",
    "Store",
    "StoreClosedError",
    "StoreError",
    "TokenRecord",
    "open_store",
    "sqlite_path",
    "store_unavailable",
]

_ACCEPTED = (
    "sqlite:///relative/path.db (relative to the working directory), "
    "sqlite:////absolute/path.db, or a plain file path"
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
        if scheme in ("postgresql", "postgres") or scheme.startswith("postgresql+"):
            # The URL itself is not echoed: it may carry a password.
            raise ValueError(
                "store.url: postgresql is not supported yet (a later release adds it); "
                f"use {_ACCEPTED}"
            )
        if scheme != "sqlite":
            raise ValueError(f"store.url: unsupported scheme {scheme!r}; expected {_ACCEPTED}")
        if not rest.startswith("/"):
            # sqlite://host/... : there is no host for a local file.
            raise ValueError(f"store.url: sqlite URLs have no host part; expected {_ACCEPTED}")
        raw = rest[1:]
        if not raw:
            raise ValueError(f"store.url: no file name in the sqlite URL; expected {_ACCEPTED}")
        path = Path(raw)
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


def open_store(url: str, *, base_dir: Path | None = None) -> Store:
    """The store for ``url`` (not yet opened: ``await store.open()``)."""
    return SqliteStore(sqlite_path(url, base_dir=base_dir))
