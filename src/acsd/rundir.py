"""The supervisor's private directory (``workers = N``): the configuration snapshot the
workers start from, their metrics snapshots and the notify socket.

A supervisor that stops removes it. One that is killed (SIGKILL, the OOM killer, a power
cut without tmpfs) cannot, and the directory would stay in the temporary directory for good,
with the snapshot in it, which holds the CWMP password and the store URL. So the supervisor
holds an flock on its directory for as long as it runs, and the next one to start removes
every directory of a supervisor that holds none: the lock, unlike a pid, is also right
across pid namespaces sharing one /tmp, and after the pid was reused.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from acsd.log import get_logger

log = get_logger("acsd.workers")

PREFIX = "acsd-workers-"
#: a directory younger than this is never removed: its supervisor may have made it and not
#: yet taken the lock (two starting at once)
MIN_AGE = 60.0


@contextlib.contextmanager
def supervisor_dir() -> Iterator[Path]:
    """A new private directory, locked while the block runs and removed after it; the
    directories killed supervisors left behind are removed first."""
    base = Path(tempfile.gettempdir())
    sweep_stale(base)
    path = Path(tempfile.mkdtemp(prefix=PREFIX))
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    # Once more when those too young to tell are old enough: a supervisor killed and
    # started again within MIN_AGE (Restart=on-failure) left its directory, the CPE
    # password of its configuration in it, until the start after next.
    later = threading.Timer(MIN_AGE + 1, sweep_stale, (base, MIN_AGE))
    later.daemon = True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # O_CLOEXEC by default: the workers don't inherit it
        later.start()
        yield path
    finally:
        later.cancel()
        os.close(fd)
        shutil.rmtree(path, ignore_errors=True)


def sweep_stale(base: Path, min_age: float = MIN_AGE, prefix: str = PREFIX) -> list[Path]:
    """Remove this user's supervisor directories under ``base`` that no running supervisor
    holds; the ones removed. (``prefix``: other such directories, kept locked, or written
    into more often than ``min_age``, while in use: the test suite's CLI outputs.)"""
    removed = []
    now = time.time()
    for path in base.glob(prefix + "*"):
        try:
            info = path.lstat()
        except OSError:
            continue
        if not path.is_dir() or path.is_symlink() or info.st_uid != os.getuid():
            continue
        if now - info.st_mtime < min_age:
            continue
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # its supervisor runs
            os.close(fd)
            continue
        try:
            shutil.rmtree(path, ignore_errors=True)
        finally:
            os.close(fd)
        removed.append(path)
    if removed:
        log.info("workers.stale_dirs_removed", count=len(removed), base=str(base), prefix=prefix)
    return removed
