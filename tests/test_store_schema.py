"""Migrations and store URLs."""

from __future__ import annotations

import sqlite3
from dataclasses import fields
from pathlib import Path

import aiosqlite
import pytest

from acsd.store import SchemaError, SqliteStore, open_store, sqlite_path
from acsd.store.base import DeviceRecord, TokenRecord
from acsd.store.schema import MIGRATIONS, Migration, latest_version, migrate, split_statements
from acsd.store.sqlite.apn import BY_CLI


def _raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


async def test_migrations_run_once_and_are_recorded(tmp_path: Path) -> None:
    path = tmp_path / "acsd.db"
    store = SqliteStore(path)
    await store.open()
    assert store.migrations_applied == [m.version for m in MIGRATIONS]
    assert await store.ping()
    await store.close()

    with _raw(path) as db:
        rows = db.execute(
            "SELECT version, description, applied_at FROM schema_migrations"
        ).fetchall()
        assert [r[0] for r in rows] == [m.version for m in MIGRATIONS]
        assert all(r[1] and r[2] > 0 for r in rows)
        assert db.execute("PRAGMA user_version").fetchone()[0] == latest_version()

    again = SqliteStore(path)
    await again.open()
    assert again.migrations_applied == []
    await again.close()
    with _raw(path) as db:
        assert db.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] == len(MIGRATIONS)


async def test_migrate_returns_what_it_applied(tmp_path: Path) -> None:
    async with aiosqlite.connect(tmp_path / "m.db", isolation_level=None) as conn:
        assert await migrate(conn) == [m.version for m in MIGRATIONS]
        assert await migrate(conn) == []
        extra = [
            *MIGRATIONS,
            Migration(
                len(MIGRATIONS) + 1,
                "widgets",
                """
                CREATE TABLE widgets (id TEXT PRIMARY KEY, name TEXT NOT NULL);
                -- a trigger body holds semicolons of its own
                CREATE TRIGGER widgets_name AFTER INSERT ON widgets BEGIN
                    UPDATE widgets SET name = trim(name) WHERE id = new.id;
                END;
                """,
            ),
        ]
        assert await migrate(conn, extra) == [len(MIGRATIONS) + 1]
        assert await migrate(conn, extra) == []
        await conn.execute("INSERT INTO widgets VALUES ('c1', '  Acme  ')")
        rows = list(await conn.execute_fetchall("SELECT name FROM widgets"))
        assert rows[0][0] == "Acme"


async def test_lines_replaced_before_the_upgrade_are_ended_by_it(tmp_path: Path) -> None:
    # Migration 10: a router's older ACTIVE lines become ENDED and free their addresses.
    async with aiosqlite.connect(tmp_path / "m.db", isolation_level=None) as conn:
        assert await migrate(conn, MIGRATIONS[:9]) == list(range(1, 10))
        for ident, device, start, ip in (
            ("a1", "d1", 100.0, "203.0.113.10"),
            ("a2", "d1", 200.0, "203.0.113.11"),
            ("a3", "d2", 100.0, "203.0.113.12"),
        ):
            await conn.execute(
                "INSERT INTO internet_accounts (id, customer, name, device, state, start_date,"
                " ip_address, created, updated) VALUES (?, 'c', 'n', ?, 'ACTIVE', ?, ?, 0, 0)",
                (ident, device, start, ip),
            )
        assert await migrate(conn, MIGRATIONS[:10]) == [10]
        rows = await conn.execute_fetchall("SELECT id, state FROM internet_accounts ORDER BY id")
        assert [tuple(r) for r in rows] == [("a1", "ENDED"), ("a2", "ACTIVE"), ("a3", "ACTIVE")]
        # the ended line's address may be confirmed again; a live line's may not
        await conn.execute(
            "INSERT INTO internet_accounts (id, customer, name, state, ip_address, created,"
            " updated) VALUES ('a4', 'c', 'n', 'CONFIRMED', '203.0.113.10', 0, 0)"
        )
        with pytest.raises(sqlite3.IntegrityError):
            await conn.execute(
                "INSERT INTO internet_accounts (id, customer, name, state, ip_address, created,"
                " updated) VALUES ('a5', 'c', 'n', 'CONFIRMED', '203.0.113.11', 0, 0)"
            )


async def test_failed_migration_leaves_previous_version(tmp_path: Path) -> None:
    # An upgrade over several versions whose last step refuses (migration 15's two APN
    # devices that are one SIM) left the steps before it committed: a database at a
    # version neither the old acsd nor the new one opens. All of it or nothing.
    path = tmp_path / "f.db"
    async with aiosqlite.connect(path, isolation_level=None) as conn:
        await migrate(conn)
    n = len(MIGRATIONS)
    broken = [
        *MIGRATIONS,
        Migration(n + 1, "fine", "CREATE TABLE t1 (a)"),
        Migration(n + 2, "broken", "CREATE TABLE t2 (a); CREATE TABLE oops (;"),
    ]
    async with aiosqlite.connect(path, isolation_level=None) as conn:
        with pytest.raises(sqlite3.OperationalError):
            await migrate(conn, broken)
        assert not conn.in_transaction
    with _raw(path) as db:
        assert [r[0] for r in db.execute("SELECT version FROM schema_migrations")] == [
            m.version for m in MIGRATIONS
        ]
        assert db.execute("PRAGMA user_version").fetchone()[0] == n
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        # the step before the broken one, and the broken one's first statement
        assert "t1" not in tables and "t2" not in tables


async def test_database_from_the_future_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    store = SqliteStore(path)
    await store.open()
    await store.close()
    with _raw(path) as db:
        db.execute(
            "INSERT INTO schema_migrations (version, description, applied_at) VALUES (99, 'x', 1)"
        )
    newer = SqliteStore(path)
    with pytest.raises(
        SchemaError, match=rf"version 99 .*knows only up to {len(MIGRATIONS)}.*upgrade acsd"
    ):
        await newer.open()
    await newer.close()  # closing a store whose open() failed is harmless


async def test_broken_numbering_is_refused(tmp_path: Path) -> None:
    async with aiosqlite.connect(tmp_path / "n.db", isolation_level=None) as conn:
        n = len(MIGRATIONS)
        with pytest.raises(SchemaError, match=f"expected version {n + 1}"):
            await migrate(conn, [*MIGRATIONS, Migration(n + 2, "gap", "SELECT 1")])


async def test_devices_table_has_a_column_per_record_field(tmp_path: Path) -> None:
    path = tmp_path / "cols.db"
    store = SqliteStore(path)
    await store.open()
    await store.close()
    with _raw(path) as db:
        columns = {r[1] for r in db.execute("PRAGMA table_info(devices)")}
        indexes = {r[1] for r in db.execute("PRAGMA index_list(devices)")}
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert {f.name for f in fields(DeviceRecord)} | {"serial_key", "mac_key"} == columns
    assert {"devices_mac_key", "devices_last_inform"} <= indexes


async def test_an_apn_device_is_found_by_its_cli_in_an_index_not_by_a_scan(
    tmp_path: Path,
) -> None:
    """GET/DELETE .../apns/{CLI} (the live device or the last removed one) read every
    device of the network, ~35 ms at 100k: the plan is what shows it, not a timing."""
    path = tmp_path / "cli.db"
    store = SqliteStore(path)
    await store.open()
    await store.close()
    with _raw(path) as db:
        plan = [
            row[3]
            for row in db.execute(
                f"EXPLAIN QUERY PLAN SELECT * FROM apn_devices {BY_CLI}", ("a", "n", "msisdn:1")
            )
        ]
    assert any(
        "apn_devices_by_cli (account=? AND network=? AND cli_key=?)" in step for step in plan
    ), plan


async def test_connection_settings(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "p.db")
    await store.open()
    try:
        conn = store._writer_conn
        assert conn is not None
        for pragma, expected in [
            ("journal_mode", "wal"),
            ("synchronous", 1),  # NORMAL
            ("foreign_keys", 1),
            ("busy_timeout", 5000),
            ("journal_size_limit", 64 * 1024 * 1024),
        ]:
            rows = list(await conn.execute_fetchall(f"PRAGMA {pragma}"))
            assert rows[0][0] == expected, pragma
    finally:
        await store.close()


def test_split_statements() -> None:
    sql = "CREATE TABLE a (x TEXT DEFAULT ';'); -- note; here\nCREATE INDEX i ON a (x);\n"
    assert split_statements(sql) == [
        "CREATE TABLE a (x TEXT DEFAULT ';');",
        "-- note; here\nCREATE INDEX i ON a (x);",
    ]
    with pytest.raises(SchemaError, match="incomplete"):
        split_statements("CREATE TABLE a (x TEXT DEFAULT 'oops)")
    # a missing final semicolon is tolerated
    assert split_statements("SELECT 1") == ["SELECT 1;"]


# -- store.url ------------------------------------------------------------------------------


def test_sqlite_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert sqlite_path("sqlite:///acsd.db") == tmp_path / "acsd.db"
    assert sqlite_path("sqlite:///data/acsd.db") == tmp_path / "data" / "acsd.db"
    assert sqlite_path("sqlite:////var/lib/acsd/acsd.db") == Path("/var/lib/acsd/acsd.db")
    assert sqlite_path("acsd.db") == tmp_path / "acsd.db"
    assert sqlite_path("/srv/a.db") == Path("/srv/a.db")
    base = tmp_path / "etc"
    assert sqlite_path("sqlite:///x.db", base_dir=base) == base / "x.db"
    assert sqlite_path("x.db", base_dir=base) == base / "x.db"
    assert sqlite_path("sqlite:////abs.db", base_dir=base) == Path("/abs.db")
    store = open_store("sqlite:///acsd.db", base_dir=base)
    assert isinstance(store, SqliteStore)
    assert store.path == base / "acsd.db"


def test_postgresql_urls_open_the_postgresql_store() -> None:
    from acsd.store.postgres import PgStore

    for url in ("postgresql://acsd:secret@db.example/acsd", "postgres://db.example:5433/acsd"):
        store = open_store(url)
        assert isinstance(store, PgStore)
        assert "secret" not in repr(store)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://acsd:secret@db", "store.url: the postgresql URL names no database"),
        ("postgres://acsd:secret@db:port/acsd", "store.url: a postgresql URL that cannot be"),
        ("mysql://db/acsd", "store.url: unsupported scheme 'mysql'"),
        ("sqlite://host/acsd.db", "store.url: sqlite URLs have no host"),
        ("sqlite:///", "store.url: no file name"),
        ("", "store.url: empty"),
        ("sqlite:///:memory:", "store.url: in-memory"),
    ],
)
def test_bad_store_urls(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as err:
        open_store(url)
    assert "secret" not in str(err.value)  # never echo a password
    if "scheme" in message:
        assert "sqlite:///" in str(err.value)  # says what is accepted
        assert "postgresql://" in str(err.value)


async def test_db_migrate_says_which_migrations_it_applied(tmp_path: Path) -> None:
    from conftest import run_cli, write_config

    config = write_config(tmp_path)
    latest = latest_version()
    made = run_cli("db", "migrate", "--config", str(config), timeout=30, check=True)
    assert made.stdout.strip() == f"applied migrations 1-{latest}"
    again = run_cli("db", "migrate", "--config", str(config), timeout=30, check=True)
    assert again.stdout.strip() == "migrations up to date"

    # A database an older acsd left at an earlier schema: only the steps it lacked.
    older = tmp_path / "older"
    older.mkdir()
    async with aiosqlite.connect(older / "acsd.db", isolation_level=None) as conn:
        await migrate(conn, MIGRATIONS[:-2])
    config = write_config(older)
    upgraded = run_cli("db", "migrate", "--config", str(config), timeout=30, check=True)
    assert upgraded.stdout.strip() == f"applied migrations {latest - 1}-{latest}"


async def _run_raw(store_url: str, statements: tuple[str, ...]) -> None:
    """``statements`` on the database of ``store_url`` outside acsd (either backend): an
    upgrade's undoing, to migrate again."""
    if store_url.startswith("sqlite"):
        with _raw(sqlite_path(store_url)) as db:
            for sql in statements:
                db.execute(sql)
        return
    import asyncpg

    conn = await asyncpg.connect(store_url)
    try:
        for sql in statements:
            await conn.execute(sql)
    finally:
        await conn.close()


async def test_the_upgrade_keeps_the_username_each_router_reported(store_url: str) -> None:
    """Migration 18 fills the column of the Connection Request username from the trees
    routers reported before it (TR-181 and TR-098; an empty one leaves acsd's)."""

    from acsd.store.base import CpeIdentity, SessionResult

    ms = "ManagementServer.ConnectionRequestUsername"
    reported = {"MIG181": ("Device.", "cpeadmin"), "MIG098": ("InternetGatewayDevice.", "isp")}
    reported["MIGNONE"] = ("Device.", "")
    store = open_store(store_url)
    await store.open()
    ids = {}
    try:
        for serial, (root, username) in reported.items():
            tree = {root + ms: [username, "xsd:string"], root + "X": ["1", "xsd:int"]}
            ids[serial] = await store.save_session(
                SessionResult(
                    identity=CpeIdentity(oui="00D09E", product_class="X", serial_number=serial),
                    at=1000.0, params=tree, reset_params=True,
                )
            )  # fmt: skip
    finally:
        await store.close()
    # back to the schema before 18: no column, the trees as they were
    undo = (
        "ALTER TABLE devices DROP COLUMN reported_cr_username",
        "DELETE FROM schema_migrations WHERE version = 18",
    )
    await _run_raw(store_url, undo)
    store = open_store(store_url)
    await store.open()
    try:
        got = {serial: await store.get_device(device_id) for serial, device_id in ids.items()}
    finally:
        await store.close()
    assert {s: r.reported_cr_username if r else "gone" for s, r in got.items()} == {
        "MIG181": "cpeadmin",
        "MIG098": "isp",
        "MIGNONE": "",
    }


async def test_the_upgrade_keeps_every_token_valid_never_used(store_url: str) -> None:
    """Migration 23 adds when a token expires and was last used: the tokens of the
    database before it work as they did (no expiry) and show no use yet."""

    store = open_store(store_url)
    await store.open()
    try:
        made = await store.create_token(
            TokenRecord(id="", hash="a" * 64, role="ADMIN", name="older", created=1000.0)
        )
        gone = await store.create_token(TokenRecord(id="", hash="b" * 64, role="ADMIN"))
        assert await store.revoke_token(gone.id)
    finally:
        await store.close()
    # back to the schema before 23: no columns
    undo = (
        "ALTER TABLE tokens DROP COLUMN expires",
        "ALTER TABLE tokens DROP COLUMN last_used",
        "DELETE FROM schema_migrations WHERE version = 23",
    )
    await _run_raw(store_url, undo)
    store = open_store(store_url)
    await store.open()
    try:
        assert store.migrations_applied == [23]
        assert await store.find_token("a" * 64) == made
        assert made.expires is None and made.last_used is None
        assert await store.find_token("b" * 64) is None  # revoked stays revoked
        [listed] = [t for t in await store.list_tokens() if t.id == gone.id]
        assert listed.revoked is not None and listed.expires is None
    finally:
        await store.close()


def test_a_session_keeps_the_username_migration_18_would() -> None:
    """A session's save picks the router's reported username as migration 18 does from a
    stored tree: TR-098's unless it is empty, else TR-181's (a gateway may carry both)."""
    from acsd.store.writes import reported_username

    igd = "InternetGatewayDevice.ManagementServer.ConnectionRequestUsername"
    dev = "Device.ManagementServer.ConnectionRequestUsername"
    assert reported_username({igd: ["isp", "xsd:string"], dev: ["cpe", "xsd:string"]}) == "isp"
    assert reported_username({igd: ["", "xsd:string"], dev: ["cpe", "xsd:string"]}) == "cpe"
    assert reported_username({dev: ["", "xsd:string"]}) == ""
    assert reported_username({"Device.X": ["1", "xsd:int"]}) is None


async def test_the_schema_is_not_upgraded_under_a_process_that_has_the_database_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `acsd db migrate` (or a new daemon) while the daemon of the version before still
    # served the file: the old one went on writing rows as its schema knew them, past the
    # data migrations (two live APN devices for one SIM, which migration 15 prevents).
    from acsd.store import StoreError, schema

    path = tmp_path / "acsd.db"
    monkeypatch.setattr(schema, "MIGRATIONS", MIGRATIONS[:-1])
    old = SqliteStore(path)  # the version before, serving
    await old.open()
    monkeypatch.setattr(schema, "MIGRATIONS", MIGRATIONS)
    try:
        new = SqliteStore(path)
        with pytest.raises(StoreError, match="another acsd process has this database open"):
            await new.open()
        await new.close()
        assert await old.count_devices() == 0  # the old one goes on, on its schema
    finally:
        await old.close()
    upgraded = SqliteStore(path)  # once it is stopped
    await upgraded.open()
    try:
        assert upgraded.migrations_applied == [MIGRATIONS[-1].version]
        # and processes of one version share the file as before (the daemon, a command)
        other = SqliteStore(path)
        await other.open()
        await other.close()
    finally:
        await upgraded.close()
