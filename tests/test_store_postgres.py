"""The PostgreSQL backend's own parts: its migrations reach the SQLite schema (same
version, tables, columns and indexes), several instances may start at once, a newer
database is refused, a URL's password never shows, the read pool has its configured size,
and with transaction_pooling it prepares no statement by name (pgbouncer)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest

from acsd.store import SchemaError, check_url, open_store, shown_url
from acsd.store.schema import MIGRATIONS, latest_version
from test_config import BAD_PG_QUERIES


def _sqlite_schema(path: Path) -> tuple[dict[str, list[str]], set[str]]:
    with sqlite3.connect(path) as db:
        # not SQLite's own tables (sqlite_stat1: what PRAGMA optimize learnt at close)
        tables = [
            r[0]
            for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")
            if not r[0].startswith("sqlite_")
        ]
        columns = {t: sorted(r[1] for r in db.execute(f"PRAGMA table_info({t})")) for t in tables}
        indexes = {
            r[0]
            for r in db.execute("SELECT name FROM sqlite_master WHERE type='index'")
            if not r[0].startswith("sqlite_autoindex")
        }
    return columns, indexes


async def _pg_schema(url: str) -> tuple[dict[str, list[str]], set[str]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = 'public'"
        )
        indexes = await conn.fetch(
            # (not those of primary keys and UNIQUE columns: SQLite's are not listed either)
            "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'"
            " AND indexname NOT IN (SELECT conname FROM pg_constraint)"
        )
    finally:
        await conn.close()
    columns: dict[str, list[str]] = {}
    for table, column in rows:
        columns.setdefault(table, []).append(column)
    return {t: sorted(c) for t, c in columns.items()}, {r[0] for r in indexes}


async def test_migrations_reach_the_sqlite_schema(pg_url: str, tmp_path: Path) -> None:
    sqlite_store = open_store(f"sqlite:///{tmp_path / 'acsd.db'}")
    await sqlite_store.open()
    await sqlite_store.close()
    store = open_store(pg_url)
    await store.open()
    try:
        assert store.migrations_applied == [m.version for m in MIGRATIONS]
        assert await store.ping()
        await store.check_writable()
    finally:
        await store.close()
    assert await _pg_schema(pg_url) == _sqlite_schema(tmp_path / "acsd.db")
    conn = await asyncpg.connect(pg_url)
    try:
        recorded = await conn.fetch("SELECT version, description FROM schema_migrations")
    finally:
        await conn.close()
    assert sorted(tuple(r) for r in recorded) == [(m.version, m.description) for m in MIGRATIONS]


async def test_an_apn_device_is_found_by_its_cli_in_an_index_not_by_a_scan(pg_url) -> None:
    """Migration 14 on PostgreSQL: find_apn_device's look-up (the live device of a CLI,
    else the last removed) reads apn_devices_by_cli, as on SQLite (test_store_schema)."""
    store = open_store(pg_url)
    await store.open()
    await store.close()
    conn = await asyncpg.connect(pg_url)
    try:
        # an empty table is scanned whatever its indexes: ask for the plan with an index
        await conn.execute("SET enable_seqscan = off")
        plan = await conn.fetch(
            "EXPLAIN SELECT * FROM apn_devices WHERE account = $1 AND network = $2"
            " AND cli_key = $3 ORDER BY end_date IS NOT NULL, end_date DESC LIMIT 1",
            "a",
            "n",
            "msisdn:1",
        )
    finally:
        await conn.close()
    assert any("apn_devices_by_cli" in row[0] for row in plan), plan


async def test_instances_starting_at_once_migrate_once(pg_url: str) -> None:
    stores = [open_store(pg_url) for _ in range(4)]
    await asyncio.gather(*(s.open() for s in stores))
    try:
        applied = sorted((s.migrations_applied for s in stores), key=len)
        # every step applied by exactly one of them
        steps = [v for a in applied for v in a]
        assert sorted(steps) == [m.version for m in MIGRATIONS]
        assert all([await s.ping() for s in stores])
    finally:
        await asyncio.gather(*(s.close() for s in stores))


async def test_a_database_of_a_newer_acsd_is_refused(pg_url: str) -> None:
    store = open_store(pg_url)
    await store.open()
    await store.close()
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute(
            "INSERT INTO schema_migrations VALUES ($1, 'from the future', 0)", latest_version() + 1
        )
    finally:
        await conn.close()
    newer = open_store(pg_url)
    with pytest.raises(SchemaError, match="newer acsd"):
        await newer.open()
    await newer.close()


async def test_an_unreachable_server_is_a_clear_error_without_the_password(pg_cluster) -> None:
    url = pg_cluster.url("nosuchdb", password="s3cret-pw")
    store = open_store(url)
    with pytest.raises(Exception) as err:
        await store.open()
    await store.close()
    assert "nosuchdb" in str(err.value) and "s3cret-pw" not in str(err.value)
    assert "s3cret-pw" not in repr(store)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://acsd:s3cret@db.example/acsd", "postgresql://acsd:***@db.example/acsd"),
        (
            "postgres://db.example/acsd?password=s3cret&sslmode=require",
            "postgres://db.example/acsd?password=***&sslmode=require",
        ),
        (
            "postgresql://db.example/acsd?sslkey=/k.pem&sslpassword=key-pw&PASSWORD=s3cret",
            "postgresql://db.example/acsd?sslkey=/k.pem&sslpassword=***&PASSWORD=***",
        ),
        ("postgresql://acsd@db.example:5433/acsd", "postgresql://acsd@db.example:5433/acsd"),
        ("sqlite:///acsd.db", "sqlite:///acsd.db"),
    ],
)
def test_shown_urls_hide_the_password(url: str, shown: str) -> None:
    assert shown_url(url) == shown


# -- commands on a PostgreSQL database ----------------------------------------------------


def test_db_migrate_and_the_record_commands_work_on_postgresql(pg_url: str, tmp_path) -> None:
    from conftest import run_cli, write_config

    config = write_config(tmp_path, store={"url": pg_url})
    made = run_cli("db", "migrate", "--config", str(config), check=True)
    assert made.stdout.strip() == f"applied migrations 1-{latest_version()}"
    again = run_cli("db", "migrate", "--config", str(config), check=True)
    assert again.stdout.strip() == "migrations up to date"
    # (a SQLite file of that name is not looked for: the records are on the server)
    token = run_cli("token", "create", "--role", "ADMIN", "--config", str(config), check=True)
    listed = run_cli("token", "list", "--config", str(config), check=True)
    assert token.stdout.strip() and "ADMIN" in listed.stdout


async def test_record_commands_leave_an_older_schema_to_db_migrate(pg_cluster, tmp_path):
    """As on SQLite (test_startup_failures): `acsd device list` of a newly installed acsd
    must not upgrade the schema under the instances still running the old one; nor make
    acsd's tables in an empty database. Never the password in what it says."""
    import asyncio

    from conftest import run_cli, write_config

    pg_url = pg_cluster.new_database(password="OldSchemaPw1")
    config = write_config(tmp_path, store={"url": pg_url})
    latest = latest_version()
    shown = shown_url(pg_url)
    assert "OldSchemaPw1" not in shown

    async def cli(*args: str):
        return await asyncio.to_thread(run_cli, *args, "--config", str(config), timeout=30)

    empty = await cli("token", "list")
    assert empty.returncode == 2 and empty.stdout == ""
    assert empty.stderr.strip() == (
        f"acsd: {shown} holds no acsd database yet "
        "(acsd serve or acsd db migrate create the database)"
    )
    store = open_store(pg_url)
    await store.open()
    await store.close()
    # back to the schema of two versions ago (23 adds two token columns, 24 an index)
    conn = await asyncpg.connect(pg_url)
    try:
        assert await conn.fetchval("SELECT to_regclass('schema_migrations')") is not None
        await conn.execute("ALTER TABLE tokens DROP COLUMN expires, DROP COLUMN last_used")
        await conn.execute("DROP INDEX apn_operations_done")
        await conn.execute("DELETE FROM schema_migrations WHERE version >= $1", latest - 1)
    finally:
        await conn.close()
    for args in (("device", "list"), ("token", "create", "--role", "ADMIN")):
        proc = await cli(*args)
        # (not ready yet, exit 1; the command line and configuration are right)
        assert proc.returncode == 1 and proc.stdout == "", proc.stderr
        assert proc.stderr.strip() == (
            f"acsd: the database {shown} has schema version {latest - 2}, this acsd needs "
            f"{latest}: back it up, then run acsd db migrate (or start acsd serve) to upgrade it"
        )
    migrated = await cli("db", "migrate")
    assert migrated.stdout.strip() == f"applied migrations {latest - 1}-{latest}"
    listed = await cli("device", "list")
    assert listed.returncode == 0, listed.stderr


def test_db_backup_of_postgresql_points_to_pg_dump(pg_url: str, tmp_path) -> None:
    from conftest import run_cli, write_config

    config = write_config(tmp_path, store={"url": pg_url})
    proc = run_cli("db", "backup", str(tmp_path / "copy.db"), "--config", str(config))
    assert proc.returncode == 2  # a configuration it will never work with
    assert "pg_dump" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "copy.db").exists()


def test_a_database_that_is_not_there_is_one_line(pg_cluster, tmp_path) -> None:
    from conftest import run_cli, write_config

    url = pg_cluster.url("nosuchdb", password="DbSecretPw1")
    config = write_config(tmp_path, store={"url": url})
    proc = run_cli("device", "list", "--config", str(config))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    [line] = proc.stderr.splitlines()
    assert "nosuchdb" in line and "DbSecretPw1" not in line


async def _readers_while_blocked(url: str, store, expected: int) -> int:
    """How many connections ``store`` reads with at once: its reads are held on a table
    lock while more of them are asked for than any pool would have (waited for until
    ``expected`` wait, and a moment longer for any beyond)."""
    db = url.rsplit("/", 1)[1]
    locker = await asyncpg.connect(url)
    try:
        tx = locker.transaction()
        await tx.start()
        await locker.execute("LOCK TABLE devices IN ACCESS EXCLUSIVE MODE")
        reads = [asyncio.ensure_future(store.count_devices()) for _ in range(12)]

        async def waiting() -> int:
            # (inside a transaction the activity view is one snapshot unless cleared)
            await locker.execute("SELECT pg_stat_clear_snapshot()")
            return await locker.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1"
                " AND wait_event_type = 'Lock'",
                db,
            )

        for _ in range(100):
            if await waiting() >= expected:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        found = await waiting()
        await tx.rollback()
        assert await asyncio.gather(*reads) == [0] * 12
        return found
    finally:
        await locker.close()


async def test_the_read_pool_has_the_configured_size(pg_url: str, tmp_path: Path) -> None:
    """store.pool_size: the connections each process reads with (4 when unset)."""
    from acsd.config import load_config

    path = tmp_path / "acsd.toml"
    path.write_text(f'[store]\nurl = "{pg_url}"\npool_size = 7\n')
    config = load_config(path, environ={})
    for pool_size, expected in ((config.store.pool_size, 7), (None, 4)):
        store = open_store(pg_url, pool_size=pool_size)
        await store.open()
        try:
            assert await _readers_while_blocked(pg_url, store, expected) == expected
        finally:
            await store.close()


async def test_readiness_does_not_wait_behind_busy_readers(pg_url: str) -> None:
    """Every reader busy (400 API GETs at once on pool_size 2) is load, not an outage:
    /readyz answered 503 unreachable after statement_wait, queued behind them."""
    store = open_store(pg_url, pool_size=1)
    await store.open()
    try:
        assert store._pool is not None
        busy = await store._pool.acquire()  # the only reader, held as a slow read would
        try:
            assert await asyncio.wait_for(store.readiness(), 5.0) is None
        finally:
            await store._pool.release(busy)
    finally:
        await store.close()


async def test_transaction_pooling_keeps_no_prepared_statement_on_a_connection(pg_url):
    """store.transaction_pooling: behind pgbouncer in transaction mode each transaction
    may get another server connection, so a statement prepared by name on one is missing
    on the next ("prepared statement __asyncpg_stmt_N__ does not exist"). With the switch
    on, asyncpg prepares none by name; without it, it keeps them (the check's control)."""
    from acsd.store import DeviceRecord

    for pooling, keeps in ((False, True), (True, False)):
        store = open_store(pg_url, transaction_pooling=pooling)
        await store.open()
        try:
            await store.upsert_device(DeviceRecord(id="", serial_number="PGB001", name="one"))
            assert (await store.get_device("PGB001")).name == "one"
            assert [r.serial_number for r in await store.list_devices()] == ["PGB001"]
            async with store._pool.acquire() as conn:  # every connection of the pool
                await conn.fetchval("SELECT count(*) FROM devices")
                kept = await conn.fetchval("SELECT count(*) FROM pg_prepared_statements")
            assert (kept > 0) is keeps, (pooling, kept)
        finally:
            await store.close()


@contextlib.asynccontextmanager
async def _store_and_other(pg_url: str) -> AsyncIterator[tuple[Any, asyncpg.Connection]]:
    """acsd's store, and a connection of another client (another instance) beside it."""
    store = open_store(pg_url)
    await store.open()
    other = await asyncpg.connect(pg_url)
    try:
        yield store, other
    finally:
        await other.close()
        await store.close()


async def _created_uncommitted(other: asyncpg.Connection, record: Any) -> tuple[Any, str]:
    """``record`` inserted by ``other`` in a transaction left open: (it, the row's id)."""
    from acsd import clock
    from acsd.store.device_rules import new_row
    from acsd.store.postgres.rows import DEVICE_INSERT_SQL, flags
    from acsd.store.records import INSERT_COLUMNS

    row_id, values = new_row(record, clock.now())
    tx = other.transaction()
    await tx.start()
    await other.execute(DEVICE_INSERT_SQL, *flags(INSERT_COLUMNS, values))
    return tx, row_id


async def _waits_then_reads_again(write: Awaitable[Any], other_tx: Any) -> None:
    """``write`` waits for the other client's transaction, then, once it commits, is told
    to read again (ChangedError, which the API and `acsd device apply` retry)."""
    from acsd.store.base import ChangedError

    task = asyncio.ensure_future(write)
    await asyncio.sleep(0.3)
    assert not task.done()
    await other_tx.commit()
    with pytest.raises(ChangedError):
        await task


async def test_a_serial_registered_by_another_instance_meanwhile_is_a_change_to_retry(pg_url):
    # Two instances: a router's first session on one inserts its serial while an
    # operator's POST of the same serial runs on the other, between its look-up and its
    # insert. The POST must be told to read again, not fail as a conflict (a 500).
    from acsd.store.base import ABSENT, DeviceRecord

    async with _store_and_other(pg_url) as (store, other):
        first = DeviceRecord(id="", serial_number="RACE000001")
        tx, row_id = await _created_uncommitted(other, first)
        # the POST's insert waits on the uncommitted row's key, then finds it taken
        post = store.write_device(DeviceRecord(id="", serial_number="race000001"), expect=ABSENT)
        await _waits_then_reads_again(post, tx)
        # read again, the write finds the record and goes on as an update of it
        found = await store.find_device_for_cpe("RACE000001")
        assert found is not None and found.id == row_id


async def test_a_create_that_finds_its_serial_taken_meanwhile_reads_again(pg_url):
    # Two instances create one new serial for two customers: each saw no record, and the
    # second's upsert, whose look-up saw the first's commit, wrote over it (both got 201,
    # the record went to the second customer). A create never writes over a row.
    from acsd.store.base import ChangedError, DeviceRecord

    store = open_store(pg_url)
    await store.open()
    try:
        first = DeviceRecord(id="", serial_number="TWICE00001", customer="c1", name="first")
        stored = await store.write_device(first)
        again = DeviceRecord(id="", serial_number="twice00001", customer="c2", name="second")

        async def create(conn: asyncpg.Connection) -> object:
            return await store._apply_upsert(conn, again, new=True)

        with pytest.raises(ChangedError):
            await store._call("write_device", create)
        kept = await store.get_device(stored.id)
        assert kept is not None and (kept.customer, kept.name) == ("c1", "first")
    finally:
        await store.close()


async def test_two_instances_giving_one_mac_to_two_new_records_do_not_both_succeed(pg_url):
    # No index makes a MAC unique: each instance found it free (the other's row not yet
    # committed) and both records got it. The MAC's lock makes the second wait for the
    # first's commit, find its row and read again (ChangedError; the API then says 422).
    from acsd.macs import mac_key
    from acsd.store.base import ABSENT, DeviceRecord
    from acsd.store.postgres.rows import MAC_LOCK, lock_value

    async with _store_and_other(pg_url) as (store, other):
        mac = "02:00:00:AB:CD:EF"
        first = DeviceRecord(id="", serial_number="MACA000001", mac_address=mac, customer="c1")
        tx, _row_id = await _created_uncommitted(other, first)  # the other instance's create
        await lock_value(other, mac_key(mac), MAC_LOCK)  # held to its commit, as acsd does
        second = DeviceRecord(id="", serial_number="MACB000001", mac_address=mac, customer="c2")
        await _waits_then_reads_again(store.write_device(second, expect=ABSENT, mac="set"), tx)
        holders = await other.fetch("SELECT serial_number FROM devices WHERE mac_key = $1",
                                    mac_key(mac))  # fmt: skip
        assert [r[0] for r in holders] == ["MACA000001"]
        assert await store.find_device_for_cpe("MACB000001") is None


async def test_a_router_reporting_a_mac_another_instance_is_giving_away_waits_for_it(pg_url):
    # An operator's create on one instance gives a new record a MAC (not committed yet)
    # while, on another, the first session of an unknown router reporting that MAC ends:
    # the save's "is it taken" check saw no holder and both records got the MAC. It now
    # waits for the MAC's lock, then finds it taken and leaves the router's record without.
    from acsd.macs import mac_key
    from acsd.store.base import CpeIdentity, DeviceRecord, SessionResult
    from acsd.store.postgres.rows import MAC_LOCK, lock_value

    async with _store_and_other(pg_url) as (store, other):
        mac = "02:00:00:AB:CD:F0"
        given = DeviceRecord(id="", serial_number="MACO000001", mac_address=mac, customer="c1")
        tx, given_id = await _created_uncommitted(other, given)
        await lock_value(other, mac_key(mac), MAC_LOCK)  # as the operator's write holds it
        report = SessionResult(
            identity=CpeIdentity("0A5E14", "P", "MACR000001"), at=1000.0, mac_address=mac
        )
        save = asyncio.ensure_future(store.save_session(report))
        await asyncio.sleep(0.3)
        assert not save.done()
        await tx.commit()
        router_id = await save
        holders = await other.fetch("SELECT id FROM devices WHERE mac_key = $1", mac_key(mac))
        assert [r[0] for r in holders] == [given_id]
        router = await store.get_device(router_id)
        assert router is not None and router.mac_address is None


async def test_a_write_that_lost_a_deadlock_to_another_client_is_run_again(pg_url):
    # Two instances (or workers) lock the same rows in other orders: the server breaks
    # the cycle by rolling one back. That write, run again alone, goes through; its
    # caller got the error before (a 500 from the API).
    from acsd.store.base import DeviceRecord

    async with _store_and_other(pg_url) as (store, other):
        a = await store.write_device(DeviceRecord(id="", serial_number="LOCKA00001"))
        b = await store.write_device(DeviceRecord(id="", serial_number="LOCKB00001"))
        runs = []

        async def a_then_b(conn: asyncpg.Connection) -> str:
            runs.append(1)
            await conn.execute("SELECT 1 FROM devices WHERE id = $1 FOR UPDATE", a.id)
            await conn.execute("SELECT 1 FROM devices WHERE id = $1 FOR UPDATE", b.id)
            return "written"

        # the other client checks for deadlocks late: the store's write is the one undone
        await other.execute("SET deadlock_timeout = '30s'")
        tx = other.transaction()
        await tx.start()
        await other.execute("SELECT 1 FROM devices WHERE id = $1 FOR UPDATE", b.id)
        write = asyncio.create_task(store._call("lock_rows", a_then_b))
        await asyncio.sleep(0.3)  # the store's write holds A and waits for B
        await other.execute("SELECT 1 FROM devices WHERE id = $1 FOR UPDATE", a.id)
        await tx.commit()
        assert await asyncio.wait_for(write, 10) == "written"
        assert len(runs) == 2


@pytest.mark.parametrize("query", sorted(BAD_PG_QUERIES))
async def test_what_the_url_check_refuses_the_first_connection_fails_on(pg_url, query) -> None:
    # The check (acsd.store.pgurl) mirrors asyncpg and the server without connecting: each
    # query it refuses does stop a real connection, so config check refuses no URL that
    # would have worked.
    with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, ValueError)):
        conn = await asyncpg.connect(_port_in_query(pg_url, query), timeout=10)
        await conn.close()


def _port_in_query(url: str, query: str) -> str:
    """``url?query``; with a ``port`` in the query, the host and port move there too
    (asyncpg reads the query's port only when the URL names no host before its path)."""
    if "port=" not in query:
        return f"{url}?{query}"
    parts = urlsplit(url)
    user, _, _ = parts.netloc.rpartition("@")
    return parts._replace(netloc=f"{user}@", query=f"host={parts.hostname}&{query}").geturl()


@pytest.mark.parametrize(
    "query",
    ["application_name=acsd", "search_path=public", "TimeZone=UTC", "myext.flag=1",
     "options=-c%20statement_timeout%3D5s", "target_session_attrs=read-write"],
)  # fmt: skip
async def test_what_the_url_check_passes_connects(pg_url, query) -> None:
    check_url(f"{pg_url}?{query}")
    conn = await asyncpg.connect(f"{pg_url}?{query}", timeout=10)
    await conn.close()
