"""A process that dies mid-write leaves a consistent database holding every acknowledged
write (WAL + synchronous=NORMAL survives process crashes; only OS crashes may lose commits)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

# Many concurrent "sessions" write without pause; each prints its serial and device id only
# after save_session() returned, i.e. after its transaction committed. Once enough have been
# acknowledged, the child dies abruptly (os._exit skips every cleanup, like a crash) while
# other writes are still queued or mid-transaction — or the parent SIGKILLs it.
CHILD = r"""
import asyncio, os, sys
from acsd.log import configure
from acsd.store import CpeIdentity, SessionResult, SqliteStore

configure(stream=sys.stderr)  # stdout carries only acknowledged writes

path, stop_after, how = sys.argv[1], int(sys.argv[2]), sys.argv[3]

async def main():
    store = SqliteStore(path)
    await store.open()
    acked = 0

    async def cpe(n):
        nonlocal acked
        for i in range(10_000):
            serial = f"K{n:03d}-{i:05d}"
            result = SessionResult(
                CpeIdentity("00D09E", "HG", serial), at=float(i),
                params={"Device.DeviceInfo.UpTime": [str(i), "xsd:unsignedInt"]},
            )
            device_id = await store.save_session(result)
            sys.stdout.write(f"{serial} {device_id}\n")
            sys.stdout.flush()
            acked += 1
            if how == "exit" and acked >= stop_after:
                os._exit(3)

    await asyncio.gather(*[cpe(n) for n in range(50)])

asyncio.run(main())
"""


@pytest.mark.parametrize("how", ["exit", "sigkill"])
def test_killed_writer_keeps_every_acknowledged_write(tmp_path: Path, how: str) -> None:
    path = tmp_path / "crash.db"
    stop_after = 1500
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), str(stop_after), how],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert child.stdout is not None
    acked: dict[str, str] = {}
    try:
        for line in child.stdout:
            serial, device_id = line.split()
            acked[serial] = device_id
            if how == "sigkill" and len(acked) >= stop_after:
                os.kill(child.pid, signal.SIGKILL)
                break
        # Whatever the child printed before it died was acknowledged too.
        for line in child.stdout:
            serial, device_id = line.split()
            acked[serial] = device_id
    finally:
        child.kill()
        child.wait(timeout=30)
    assert child.returncode == (3 if how == "exit" else -signal.SIGKILL)
    assert len(acked) >= stop_after

    # The WAL file is still there (nobody checkpointed it): the next opener recovers it.
    db = sqlite3.connect(path, isolation_level=None)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = dict(db.execute("SELECT serial_number, id FROM devices"))
    finally:
        db.close()
    missing = {s for s in acked if stored.get(s) != acked[s]}
    assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {sorted(missing)[:3]}"
    # Rows beyond the acknowledged ones may exist (committed, not yet printed): fine.
    assert len(stored) >= len(acked)


# Brings a database of schema version 7 up to date, with one change: migration 8 calls
# acsd_stall() after its own statements, inside its transaction, before it is recorded.
# acsd_stall says so on stdout and waits to be killed.
MIGRATING_CHILD = r"""
import asyncio, sys, time
import aiosqlite
from acsd.store.schema import MIGRATIONS, Migration, migrate

def stall():
    sys.stdout.write("stalled\n")
    sys.stdout.flush()
    time.sleep(600)

async def main():
    eighth = MIGRATIONS[7]
    steps = [*MIGRATIONS[:7], Migration(8, eighth.description, eighth.sql + "SELECT acsd_stall();")]
    async with aiosqlite.connect(sys.argv[1], isolation_level=None) as conn:
        await conn.execute("PRAGMA journal_mode = WAL")
        await conn.create_function("acsd_stall", 0, stall)
        await migrate(conn, steps)

asyncio.run(main())
"""


async def test_a_migration_killed_midway_is_completed_by_the_next_start(tmp_path: Path) -> None:
    import aiosqlite

    from acsd.store import SqliteStore
    from acsd.store.schema import MIGRATIONS, migrate

    path = tmp_path / "old.db"
    async with aiosqlite.connect(path, isolation_level=None) as conn:
        await conn.execute("PRAGMA journal_mode = WAL")
        await migrate(conn, MIGRATIONS[:7])
        await conn.executemany(
            "INSERT INTO devices (id, serial_number, serial_key, customer, params, created,"
            " updated) VALUES (?, ?, lower(?2), 'c1', ?, 1, 1)",
            [(f"{n:024x}", f"OLD{n}", f'{{"Device.X":["{n}","xsd:string"]}}') for n in range(50)],
        )
    child = subprocess.Popen(
        [sys.executable, "-c", MIGRATING_CHILD, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    try:
        assert child.stdout.readline() == "stalled\n"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL

    db = sqlite3.connect(path, isolation_level=None)
    try:
        assert db.execute("SELECT max(version) FROM schema_migrations").fetchone()[0] == 7
        assert db.execute("PRAGMA user_version").fetchone()[0] == 7
    finally:
        db.close()
    store = SqliteStore(path)
    await store.open()
    try:
        assert store.migrations_applied == [m.version for m in MIGRATIONS[7:]]
        assert await store.count_devices() == 50
        record = await store.get_device("old7")
        assert record is not None and record.customer == "c1"
        assert await store.device_params(record.id) == {"Device.X": ["7", "xsd:string"]}
    finally:
        await store.close()
