"""``acsd db backup``: a consistent copy of the SQLite database while the daemon runs.

SQLite's online backup API copies the database page by page from a connection of its own.
All pages are copied in one step, i.e. inside one read transaction: in WAL mode readers do
not block the daemon's writer (nor it them), and the copy is the database as of one
commit, whatever commits while it runs. The copy is written next to the target under a
temporary name, switched to a self-contained rollback journal (no -wal/-shm files belong
to it), checked, flushed to disk and only then renamed into place, so the target path
never holds half a backup.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path


class BackupError(Exception):
    """One line for the operator."""


@dataclass(slots=True)
class BackupResult:
    source: Path
    target: Path
    bytes: int
    schema_version: int | None
    devices: int | None


def backup(source: Path, target: Path, *, force: bool = False) -> BackupResult:
    if not source.is_file():
        # sqlite3.connect would create an empty database there.
        raise BackupError(f"no database at {source}")
    if target.is_dir():  # (--force or not: a backup never replaces a directory)
        raise BackupError(f"{target} is a directory; give the file to write")
    # Before the --force check, which would only invite the operator to force it. Its
    # -wal, -shm and -journal files are the database too: a copy written over the WAL of
    # a running daemon left "file is not a database".
    live = source.resolve()
    if target.resolve() == live:
        raise BackupError("the backup target is the database itself")
    for suffix in ("-wal", "-shm", "-journal"):
        if target.resolve() == live.with_name(live.name + suffix):
            raise BackupError(f"the backup target is the database's own {suffix[1:]} file")
    if target.is_symlink() or (target.exists() and not target.is_file()):
        # (--force or not: replaced by rename, /dev/full became a file of the database)
        raise BackupError(f"{target} is no regular file (a link, device or FIFO); give a file")
    if target.exists() and not force:
        raise BackupError(f"{target} exists; use --force to replace it")
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise BackupError(
            f"cannot write {target}: there is no directory {folder} (create it first)"
        )
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:  # a directory this user may not write, a full or read-only disk
        raise BackupError(f"cannot write in {folder}: {exc.strerror}") from None
    # Held while the copy is made: what a backup killed (SIGKILL, a timer's timeout, the
    # OOM killer) left, a copy of the database as large as it, is told by its lack.
    with contextlib.suppress(OSError):  # (a file system without flock: no sweep then)
        fcntl.flock(fd, fcntl.LOCK_EX)
    tmp = Path(tmp_name)
    _sweep_left(folder, target.name, tmp)
    try:
        # Read-only: the backup never writes to the live database.
        src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
        try:
            dst = sqlite3.connect(tmp)
            try:
                src.backup(dst)  # pages=-1: all pages in one step, one consistent snapshot
                dst.execute("PRAGMA journal_mode = DELETE")
                check = dst.execute("PRAGMA integrity_check").fetchone()[0]
                if check != "ok":
                    raise BackupError(f"the copy fails integrity_check: {check}")
                version = _scalar(dst, "SELECT max(version) FROM schema_migrations")
                devices = _scalar(dst, "SELECT count(*) FROM devices")
            finally:
                dst.close()
        finally:
            src.close()
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
        _fsync_dir(folder)
    except sqlite3.Error as exc:
        raise BackupError(f"backup of {source} failed: {exc}") from exc
    except OSError as exc:  # the copy could not be flushed or renamed into place
        raise BackupError(f"cannot write {target}: {exc.strerror}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.close(fd)
    return BackupResult(source, target, target.stat().st_size, version, devices)


def _sweep_left(folder: Path, name: str, ours: Path) -> None:
    """Remove the copies (and their journals) that killed backups to ``name`` left: they
    hold the database's secrets (CR passwords, token hashes) as well as its size. One
    whose lock is held is a backup still running."""
    for left in folder.glob(f".{glob.escape(name)}.*.tmp"):
        if left == ours:
            continue
        try:
            fd = os.open(left, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # (its backup runs)
        else:
            for stale in (left, left.with_name(left.name + "-journal")):
                with contextlib.suppress(OSError):
                    stale.unlink()
        finally:
            os.close(fd)


def _scalar(conn: sqlite3.Connection, sql: str) -> int | None:
    try:
        row = conn.execute(sql).fetchone()
    except sqlite3.Error:
        return None  # a database from before that table existed
    return row[0] if row else None


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
