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
