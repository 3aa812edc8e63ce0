"""A throwaway PostgreSQL cluster for the tests: one per test session (per xdist worker),
owned by the ``postgres`` user (the server refuses to run as root), on 127.0.0.1 with a
free port, fsync off; a fresh database per test."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

PG_USER = "postgres"


def _server_programs() -> Path:
    """Where the server's programs are: ACSD_TEST_PG_BIN, else the newest of Debian's
    /usr/lib/postgresql/<version>/bin, else the directory of an initdb on PATH."""
    if given := os.environ.get("ACSD_TEST_PG_BIN"):
        return Path(given)
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if versions:
        return versions[-1].parent
    found = shutil.which("initdb")
    return Path(found).parent if found else Path("/usr/lib/postgresql/15/bin")


PG_BIN = _server_programs()
#: the server refuses to run as root: as root the cluster is the postgres user's, else the
#: current user's own
AS_ROOT = os.geteuid() == 0


class ClusterError(Exception):
    """The test cluster cannot start: the message says what is missing."""


@dataclass
class Cluster:
    root: Path
    port: int

    def url(self, database: str = "postgres", password: str = "") -> str:
        # trust authentication: a password in the URL is accepted and ignored, which lets
        # tests check that one never shows
        auth = f"{PG_USER}:{password}@" if password else f"{PG_USER}@"
        return f"postgresql://{auth}127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        proc = subprocess.run(
            [
                *_as_user(),
                str(PG_BIN / "psql"),
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
            ],
            input=sql,
            capture_output=True,
            text=True,
            check=False,
            env={
                **os.environ,
                "PGHOST": str(self.root),
                "PGPORT": str(self.port),
                "PGDATABASE": database,
                "PGUSER": PG_USER,
            },
        )
        if proc.returncode != 0:
            raise ClusterError(f"psql failed: {proc.stderr.strip()}")
        return proc.stdout

    def new_database(
        self, password: str = "", *, icu_locale: str | None = None, ctype: str | None = None
    ) -> str:
        """A new, empty database; its URL (with ``password`` in it, when given).
        ``icu_locale``: the database's default collation is that language's (ICU), not the
        cluster's C.UTF-8, which orders text as bytes do. ``ctype``: its LC_CTYPE (and
        LC_COLLATE), e.g. "C", as a database created by an operator whose shell had none."""
        name = f"acsd_{uuid.uuid4().hex[:12]}"
        options = ""
        if icu_locale is not None:
            options = f" TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE '{icu_locale}'"
        elif ctype is not None:
            # ("C" with LATIN1: a single-byte database, as older clusters were made)
            encoding = "LATIN1" if ctype == "C-LATIN1" else "UTF8"
            ctype = "C" if ctype == "C-LATIN1" else ctype
            options = (
                f" TEMPLATE template0 ENCODING '{encoding}' LC_CTYPE '{ctype}' LC_COLLATE '{ctype}'"
            )
        self.psql(f'CREATE DATABASE "{name}"{options}')
        return self.url(name, password)

    def pause(self) -> None:
        """Stop the server (as a restart or a failover does), keeping its databases."""
        _as_postgres(PG_BIN / "pg_ctl", "-D", str(self.root / "data"), "-m", "fast", "stop")

    def resume(self) -> None:
        _start(self.root, self.port)

    def freeze(self) -> None:
        """Stop every process of the server where it is (SIGSTOP), as a server that hangs
        or a network that drops its packets does: connections stay open, nothing answers."""
        for pid in self._pids():
            os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        for pid in self._pids():
            os.kill(pid, signal.SIGCONT)

    def _pids(self) -> list[int]:
        """The postmaster and its children (backends, checkpointer, ...)."""
        main = int((self.root / "data" / "postmaster.pid").read_text().split()[0])
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # gone meanwhile
            if int(fields[1]) == main:  # the parent's pid, after the state
                children.append(int(stat.parent.name))
        return [main, *children]

    def stop(self) -> None:
        _as_postgres(
            PG_BIN / "pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "stop", check=False
        )
        shutil.rmtree(self.root, ignore_errors=True)


def _as_user() -> list[str]:
    """What runs a server program as the cluster's owner."""
    return ["runuser", "-u", PG_USER, "--"] if AS_ROOT else []


def _as_postgres(program: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [*_as_user(), str(program), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if check and proc.returncode != 0:
        raise ClusterError(f"{program.name} failed: {(proc.stderr or proc.stdout).strip()}")
    return proc


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(root: Path, port: int) -> None:
    options = (
        f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off"
        " -c synchronous_commit=off -c full_page_writes=off"
    )
    log = str(root / "server.log")
    data = str(root / "data")
    _as_postgres(PG_BIN / "pg_ctl", "-D", data, "-o", options, "-l", log, "-w", "start")


def start_cluster() -> Cluster:
    for program in ("initdb", "pg_ctl", "postgres", "psql"):
        if not (PG_BIN / program).exists():
            raise ClusterError(
                f"no PostgreSQL server programs in {PG_BIN} ({program} is missing): install "
                "postgresql-15 (or set ACSD_TEST_PG_BIN to the directory holding initdb)"
            )
    if AS_ROOT and shutil.which("runuser") is None:
        raise ClusterError("runuser is missing: the test cluster runs as the postgres user")
    # Not under pytest's tmp_path: its parents are private to root, and the server runs
    # as postgres.
    root = Path(tempfile.mkdtemp(prefix="acsd-pg-"))
    try:
        if AS_ROOT:
            shutil.chown(root, PG_USER, PG_USER)
    except (LookupError, PermissionError) as exc:
        shutil.rmtree(root, ignore_errors=True)
        raise ClusterError(f"cannot give {root} to the {PG_USER} user: {exc}") from None
    data = root / "data"
    try:
        _as_postgres(
            PG_BIN / "initdb",
            "-D",
            str(data),
            "-U",
            PG_USER,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
            "--no-instructions",
        )
        port = _free_port()
        _start(root, port)
    except (ClusterError, subprocess.TimeoutExpired) as exc:
        log = root / "server.log"
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        raise ClusterError(f"{exc}\n{tail}") from None
    return Cluster(root, port)
