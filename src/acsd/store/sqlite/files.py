"""The database's files as acsd opened them, and whether they are still the ones at their
paths: an operator's ``rm`` or ``mv``, or a restore done while acsd runs, leaves acsd
writing to files nobody will read again, and its connections would then act on the new
files by name (the last one to close deletes ``PATH-wal``, whoever it belongs to)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
from collections.abc import Iterator
from pathlib import Path

#: the files of a database in WAL mode, by the suffix of their name
SUFFIXES = ("", "-wal", "-shm")

#: SQLite's lock bytes on the database file (unix VFS, os_unix.c): a connection's SHARED
#: lock is a read lock on these; closing the last connection takes a write lock on them
#: before it copies and deletes the WAL
_SHARED_FIRST = 0x40000000 + 2
_SHARED_SIZE = 510


class OpenedFiles:
    """The identity (device, inode) of each file of the database when it was opened, and
    a descriptor of the database file itself (to hold the files acsd writes to)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ids: dict[str, tuple[int, int]] = {}
        for suffix in SUFFIXES:
            try:
                stat = os.stat(f"{path}{suffix}")
            except FileNotFoundError:
                continue
            self.ids[suffix] = (stat.st_dev, stat.st_ino)
        self._fd: int | None = None
        with contextlib.suppress(OSError):
            self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)

    def changed(self) -> str | None:
        """Which file is no longer the one opened ("PATH-wal was removed", "PATH was
        replaced"); None while all are (or when a path cannot be looked at now)."""
        for suffix, ident in self.ids.items():
            name = f"{self.path}{suffix}"
            try:
                stat = os.stat(name)
            except FileNotFoundError:
                return f"{name} was removed"
            except OSError:  # (a directory made unreadable: nothing can be told)
                continue
            if (stat.st_dev, stat.st_ino) != ident:
                return f"{name} was replaced"
        return None

    def same(self, suffix: str) -> bool:
        """Whether the file at ``PATH + suffix`` is the one opened."""
        try:
            stat = os.stat(f"{self.path}{suffix}")
        except OSError:
            return False
        return self.ids.get(suffix) == (stat.st_dev, stat.st_ino)

    def keep_wal(self) -> bool:
        """Keep this process's connections from deleting ``PATH-wal`` when they close: a
        read lock of an open file description of its own on SQLite's SHARED bytes, which
        conflicts with the write lock the last connection needs first, even in this
        process (Linux OFD locks). Whether it holds."""
        lock = getattr(fcntl, "F_OFD_SETLK", None)
        if self._fd is None or lock is None:
            return False
        # struct flock: l_type, l_whence, l_start, l_len, l_pid (0 for OFD locks)
        arg = struct.pack("hhqqi4x", fcntl.F_RDLCK, os.SEEK_SET, _SHARED_FIRST, _SHARED_SIZE, 0)
        try:
            fcntl.fcntl(self._fd, lock, arg)
        except OSError:
            return False
        return True

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


class DatabaseUse:
    """An flock on the database file for as long as a store has it open: shared while it
    reads and writes, exclusive while it upgrades the schema. A daemon of the version
    before, still serving the file, would go on writing rows as its schema knew them,
    past every data migration (APN keys, reported usernames) the upgrade made: the
    upgrade (``acsd db migrate``, a new daemon started beside the old) is refused while
    another process has the file open. (flock, not SQLite's own POSIX locks, from which
    Linux keeps it apart; a file system without flock gives no such protection.)"""

    def __init__(self, path: Path) -> None:
        self._fd: int | None = None
        with contextlib.suppress(OSError):
            self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)

    def _lock(self, how: int) -> bool:
        if self._fd is None:
            return True
        try:
            fcntl.flock(self._fd, how | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        except OSError:  # (no flock here: nothing to be told)
            return True
        return True

    def share(self) -> bool:
        """Take (or go back to) the shared lock; False while another holds it alone."""
        return self._lock(fcntl.LOCK_SH)

    def alone(self) -> bool:
        """Take the exclusive lock; False while another process holds any."""
        return self._lock(fcntl.LOCK_EX)

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


@contextlib.contextmanager
def serving_alone(path: Path) -> Iterator[bool]:
    """An exclusive flock that one service (its supervisor, or its single process) holds
    on ``PATH-serve.lock`` while it serves the database at ``path``: False while another
    service holds it. A second instance on one SQLite file would end the first one's
    parked sessions at its start, and the file is no place for two services (PostgreSQL
    is, for several instances). Where no lock can be taken (no lock file can be made, a
    file system without flock) it is True: opening the store says what is wrong there."""
    try:
        fd = os.open(f"{path}-serve.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        yield True
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        except OSError:
            pass
        yield True
    finally:
        os.close(fd)
