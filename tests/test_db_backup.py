"""``acsd db backup PATH``: a consistent copy while the daemon writes, never over an
existing file without --force, and never a half-written file at PATH."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

from api_world import SEED_BODY
from conftest import REPO, acsd_cmd, run_cli, wait_for


def sessions_committed(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT count(*) FROM devices WHERE last_inform IS NOT NULL"
        ).fetchone()[0]


def check_backup(path: Path) -> int:
    """integrity_check of the copy; returns its device count."""
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        # A self-contained file: no -wal belongs to it.
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert conn.execute("SELECT max(version) FROM schema_migrations").fetchone()[0] >= 1
        return conn.execute("SELECT count(*) FROM devices").fetchone()[0]
    finally:
        conn.close()


def test_backup_while_simulated_routers_keep_writing(daemon_factory, tmp_path: Path):
    daemon = daemon_factory(cwmp={"periodic_interval": 1})
    load = subprocess.Popen(
        acsd_cmd(
            "sim",
            "--acs",
            daemon.cwmp_url,
            "--count",
            "30",
            "--profile",
            "tr181-mobile,tr098-dsl,huawei-hg8245",
            "--serial-prefix",
            "BAK",
            "--interval",
            "1",
            "--ramp",
            "0.5",
            "--duration",
            "8",
        ),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for(lambda: sessions_committed(daemon.db) >= 10, timeout=20)
        started = len(daemon.events("session.end"))
        copies = []
        for n in range(3):
            target = tmp_path / "backups" / f"acsd-{n}.db"
            target.parent.mkdir(exist_ok=True)
            done = daemon.cli("db", "backup", str(target))
            assert done.returncode == 0, done.stderr
            assert str(target) in done.stdout and "devices" in done.stdout
            copies.append(target)
            time.sleep(0.5)
        # The routers really were writing while the copies were taken.
        assert load.poll() is None
        assert len(daemon.events("session.end")) > started
        # Their work is done: the sim ends its run as at the end of --duration (sessions in
        # flight finish, then its summary), without the rest of the 8 s waited out.
        load.send_signal(signal.SIGTERM)
    finally:
        output = load.communicate(timeout=60)[0]
    assert load.returncode == 0, output

    counts = [check_backup(path) for path in copies]
    assert all(count >= 10 for count in counts), counts
    assert counts == sorted(counts)  # later copies never hold less
    # Nothing but the copies was left in the folder (no temporary files).
    assert sorted(p.name for p in (tmp_path / "backups").iterdir()) == [p.name for p in copies]
    with sqlite3.connect(copies[-1]) as conn:
        serials = {row[0] for row in conn.execute("SELECT serial_number FROM devices")}
    assert any(s.startswith("BAK") for s in serials)


def test_an_existing_file_is_kept_unless_forced(daemon, tmp_path: Path):
    target = tmp_path / "backup.db"
    target.write_text("precious")
    refused = daemon.cli("db", "backup", str(target), check=False)
    assert refused.returncode == 1
    assert "exists" in refused.stderr and "--force" in refused.stderr
    assert target.read_text() == "precious"

    daemon.apply({**SEED_BODY, "serialNumber": "BAKONE01"})
    forced = daemon.cli("db", "backup", str(target), "--force")
    assert forced.returncode == 0
    assert check_backup(target) == 1
    assert f"wrote {target}" in forced.stdout and forced.stdout.endswith(", 1 device\n")


def test_no_database_no_backup(tmp_path: Path):
    config = tmp_path / "acsd.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{tmp_path / "missing.db"}"\n')
    result = run_cli("db", "backup", str(tmp_path / "out.db"), "--config", str(config))
    # as device and token commands: a usage error (the wrong configuration), exit 2
    assert result.returncode == 2
    assert "no database" in result.stderr
    # Neither the backup nor an empty database was created.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["acsd.toml"]


def test_a_backup_of_a_file_that_holds_no_acsd_database_is_a_usage_error(tmp_path: Path):
    # "wrote ... at schema version None, None devices", exit 0: a nightly backup of the
    # wrong file reported success every night
    import sqlite3

    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE notes (text)")
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    for source in (other, empty):
        config = tmp_path / "acsd.toml"
        config.write_text(f'[store]\nurl = "sqlite:///{source}"\n')
        out = tmp_path / "out.db"
        result = run_cli("db", "backup", str(out), "--config", str(config))
        assert result.returncode == 2 and result.stdout == "", result.stdout
        assert result.stderr.splitlines() == [f"acsd: {source} holds no acsd database: "
                                              "check store.url (--config)"]  # fmt: skip
        assert not out.exists()


def test_commands_on_a_store_that_is_no_database_say_so_in_one_line(tmp_path):
    """serve said store_open_failed; the CLI commands ended in a sqlite3 traceback."""
    junk = tmp_path / "junk.db"
    junk.write_text("not a database at all, just text" * 10)
    config = tmp_path / "junk.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{junk}"\n')
    for command in (("db", "migrate"), ("device", "list"), ("device", "show", "X"),
                    ("token", "list")):  # fmt: skip
        proc = run_cli(*command, "--config", str(config))
        # exit 1, as serve's store_open_failed: the command failed, its line was right
        assert proc.returncode == 1 and proc.stdout == "", command
        assert proc.stderr.splitlines() == [
            f"acsd: cannot open the database {junk}: file is not a database"
        ], command
    missing = tmp_path / "nodir" / "x.db"
    config.write_text(f'[store]\nurl = "sqlite:///{missing}"\n')
    proc = run_cli("db", "migrate", "--config", str(config))
    # (2: the configuration names a directory that is not there, as serve says)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    [line] = proc.stderr.splitlines()
    assert line.startswith("acsd: ") and str(missing.parent) in line
    assert not missing.parent.exists()


def test_a_backup_path_that_is_no_file_to_write_is_refused(daemon, tmp_path: Path):
    """A trailing slash wrote a file named like the directory; a directory this user
    may not write ended in a PermissionError traceback."""
    cases = {
        f"{tmp_path}/newdir/": f"acsd: {tmp_path}/newdir/ names a directory that does not "
        "exist; give the file to write",
        f"{tmp_path}/": f"acsd: {tmp_path} is a directory; give the file to write",
        # (it said "no directory backups", which reads as a complaint about the database)
        f"{tmp_path}/nodir/b.db": f"acsd: cannot write {tmp_path}/nodir/b.db: there is no "
        f"directory {tmp_path}/nodir (create it first)",
    }
    # a FIFO, a device or a link (--force replaced /dev/full with a file of the database;
    # a device node is not made here: a regression would replace it)
    fifo, link = tmp_path / "fifo", tmp_path / "link.db"
    os.mkfifo(fifo)
    link.symlink_to(tmp_path / "elsewhere.db")
    for odd in (fifo, link):
        cases[str(odd)] = f"acsd: {odd} is no regular file (a link, device or FIFO); give a file"
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    # root writes in any directory but not in sysfs
    unwritable = Path("/sys") if os.geteuid() == 0 else locked
    cases[str(unwritable / "b.db")] = f"acsd: cannot write in {unwritable}: Permission denied"
    for path, message in cases.items():
        for force in ((), ("--force",)):
            proc = daemon.cli("db", "backup", path, *force, check=False)
            assert proc.returncode == 1 and proc.stdout == "", path
            assert proc.stderr.splitlines() == [message], path
    assert not (tmp_path / "newdir").exists() and list(locked.iterdir()) == []
    assert fifo.is_fifo() and link.is_symlink()


def test_a_backup_over_the_live_databases_own_files_is_refused(daemon, tmp_path: Path):
    # "--force" onto acsd.db-wal replaced the running daemon's WAL with a whole database
    # file: /readyz went false and every command said "file is not a database".
    import json
    import urllib.request

    for suffix in ("", "-wal", "-shm"):
        target = Path(f"{daemon.db}{suffix}")
        assert target.exists(), target
        refused = daemon.cli("db", "backup", str(target), "--force", check=False)
        assert refused.returncode == 1, (suffix, refused.stdout)
        assert "the backup target is the database" in refused.stderr
        assert "--force" not in refused.stderr
    with urllib.request.urlopen(daemon.api_url + "readyz", timeout=5) as answer:
        assert json.loads(answer.read()) == {"ready": True}
    assert daemon.cli("device", "list").returncode == 0


def test_an_empty_backup_path_is_a_usage_error(tmp_path):
    # (it said ". is a directory")
    proc = run_cli("db", "backup", "", "--config", str(tmp_path / "none.toml"))
    assert proc.returncode == 2 and "an empty PATH: give the file to write" in proc.stderr


def test_what_a_killed_backup_left_goes_with_the_next_one(daemon, tmp_path: Path):
    # SIGKILL (a timer's timeout, the OOM killer) left the copy under its temporary name,
    # as large as the database and holding its secrets, for good. The next backup to the
    # same PATH removes it, but not the copy a backup still running holds.
    import fcntl

    target = tmp_path / "nightly.db"
    left = tmp_path / ".nightly.db.k1ll3d.tmp"
    left.write_bytes(b"half a copy")
    (tmp_path / ".nightly.db.k1ll3d.tmp-journal").write_bytes(b"its journal")
    running = tmp_path / ".nightly.db.runn1n.tmp"
    running.write_bytes(b"a copy being made")
    other = tmp_path / ".weekly.db.k1ll3d.tmp"  # another target's: not this backup's to judge
    other.write_bytes(b"x")
    held = os.open(running, os.O_RDONLY)
    fcntl.flock(held, fcntl.LOCK_EX)
    try:
        assert daemon.cli("db", "backup", str(target)).returncode == 0
    finally:
        os.close(held)
    names = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("."))
    assert names == [".nightly.db.runn1n.tmp", ".weekly.db.k1ll3d.tmp"]
    assert check_backup(target) == 0
