"""Which trouble a 503 names, for the errors the daemon tests cannot cheaply cause (a
SQLite file made read-only while acsd runs as root, a PostgreSQL disk full): the driver's
error codes map to the same words an API client and a router get."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from acsd.store import StoreUnavailableError, outage
from acsd.store.base import RestartNeededError
from acsd.store.outages import (
    BUSY,
    CLOSED,
    CORRUPT,
    DISK,
    OTHER,
    READ_ONLY,
    REFUSAL_CAUSES,
    RESTART_NEEDED,
    SCHEMA_VERSION,
    UNREACHABLE,
    WRITER_STOPPED,
)


def _sqlite(name: str) -> sqlite3.Error:
    exc = sqlite3.OperationalError("attempt to write a readonly database")
    exc.sqlite_errorname = name  # (what sqlite3 sets from the extended result code)
    return exc


class _PgError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__("the server's message, which names the database")
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (_sqlite("SQLITE_READONLY"), READ_ONLY),
        (_sqlite("SQLITE_READONLY_DBMOVED"), RESTART_NEEDED),
        (_sqlite("SQLITE_FULL"), DISK),
        (_sqlite("SQLITE_IOERR_WRITE"), DISK),
        (_sqlite("SQLITE_BUSY"), BUSY),
        (_sqlite("SQLITE_CORRUPT"), CORRUPT),
        (_sqlite("SQLITE_NOTADB"), CORRUPT),
        (_PgError("53100"), DISK),
        (_PgError("25006"), READ_ONLY),
        (_PgError("57P01"), UNREACHABLE),
        (_PgError("08006"), UNREACHABLE),
        (_PgError("57014"), BUSY),
        (ConnectionRefusedError("connect call failed ('192.0.2.1', 5432)"), UNREACHABLE),
        (RestartNeededError("/var/lib/acsd/acsd.db was replaced"), RESTART_NEEDED),
    ],
)
def test_each_trouble_has_its_words_and_its_wait(exc: BaseException, expected) -> None:
    assert outage(exc) == expected
    # raised again by the store with the driver's error as its cause: the same
    try:
        raise StoreUnavailableError("wrapped") from exc
    except StoreUnavailableError as wrapped:
        assert outage(wrapped) == expected


def test_a_bug_is_no_outage() -> None:
    assert outage(sqlite3.OperationalError("no such column: x")) is None
    assert outage(_PgError("42703")) is None


def test_the_words_name_no_path_address_or_statement() -> None:
    for found in (BUSY, DISK, READ_ONLY, RESTART_NEEDED, UNREACHABLE, CORRUPT):
        assert "/" not in found.text and "://" not in found.text, found
        assert found.retry_after > 0
    assert RESTART_NEEDED.retry_after > DISK.retry_after > UNREACHABLE.retry_after


def test_troubleshooting_shows_the_words_clients_get() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    for found in (BUSY, DISK, OTHER, READ_ONLY, RESTART_NEEDED, UNREACHABLE, CORRUPT):
        assert f"| `{found.text}` |" in readme, found.cause
        assert f"| {found.retry_after} |" in readme, found.cause
        # and the key a script branches on, in the row of its words
        assert f"| `{found.cause}` | {found.retry_after} |" in readme, found.cause


def test_the_keys_clients_branch_on_are_the_documented_ones() -> None:
    # a client's or an alert's branch on a cause must not silently stop matching
    assert REFUSAL_CAUSES == (
        "restart_needed", "disk", "read_only", "unreachable", "busy", "corrupt", "fd_limit",
        "unavailable",
    )  # fmt: skip
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    for found in (CLOSED, WRITER_STOPPED, SCHEMA_VERSION):  # /readyz's own
        assert f"`{found.cause}`" in readme, found.cause
        assert "/" not in found.text and found.retry_after > 0
