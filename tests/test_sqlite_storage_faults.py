"""acsd on SQLite when the database's storage fails under the running daemon: its disk full
(RLIMIT_FSIZE on the daemon: Python ignores SIGXFSZ, so writes past the limit fail as on a
full disk), its files removed or replaced underneath. Routers and API clients are told to
come back (503 + Retry-After), reads go on, /readyz and the log say why, nothing
acknowledged is lost, and acsd writes again by itself once the storage is back."""

from __future__ import annotations

import json
import resource
import sqlite3
import time
from pathlib import Path

import pytest

from acsd.cwmp.soap import Envelope, parse_envelope, render_envelope
from api_world import build_world, device_body
from apiclient import Api, readyz, readyz_status, store_refusals
from conftest import wait_for
from cpe_steps import NS, TREE, answer_request
from wire import Answer, Wire, envelope, inform_body

#: what a client is told while acsd refuses writes until a restart (no file's path)
RESTART_NEEDED = (
    "The database's files were removed or replaced while acsd ran: writes are refused until "
    "acsd is restarted, retrying does not help; restart acsd to use the database now in "
    "place (the server log's store_files_changed line says which file)"
)

#: an operator's notes that make each created device a few pages of the database
NOTES = "n" * 9000


def _session(daemon, serial: str) -> Answer:
    """A router's whole session (Inform, the ACS's requests answered, its end): the last
    answer, 204 when its result was committed."""
    wire = Wire(daemon.cwmp_url)
    answer = wire.post(envelope(inform_body(serial), ns=NS))
    assert answer.status == 200, answer.text
    tree = dict(TREE)
    answer = wire.post(None)
    for _ in range(60):
        if answer.status != 200:
            return answer
        env = parse_envelope(answer.body)
        reply = answer_request(env.body, tree)
        answer = wire.post(render_envelope(Envelope(body=reply, id=env.id, cwmp_ns=NS)))
    raise AssertionError("the session did not end")


def _database_bytes(db: Path) -> int:
    conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
    try:
        (pages,) = conn.execute("PRAGMA page_count").fetchone()
        (size,) = conn.execute("PRAGMA page_size").fetchone()
        return pages * size
    finally:
        conn.close()


def test_a_full_disk_fails_writes_clearly_and_acsd_writes_again_once_space_is_back(
    daemon_factory,
):
    daemon = daemon_factory()
    world = build_world(daemon)
    api = world.api
    assert _session(daemon, "FULL0001").status == 204
    acked: dict[str, str] = {}
    pid = daemon.proc.pid
    # the disk fills a little above what the database holds now (its WAL included: the
    # file may not have taken the migrations yet)
    limit = _database_bytes(daemon.db) + 64 * 1024
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    try:
        # operators write until the writes keep failing: a WAL that could not grow is
        # written from its start again once a copy into the database has emptied it, so
        # the first refusals may pass; once the database itself cannot grow, they last
        refused_since = None
        refusals = []
        for n in range(1000):
            body = {**device_body(world, "own", f"FULLDEV{n:04d}"), "notes": NOTES}
            refused = api.post("/network/device", body)
            if refused.status == 201:
                acked[body["serialNumber"]] = refused.body["_id"]
                refused_since = None
                continue
            assert refused.status == 503, refused.body
            refusals.append(refused)
            refused_since = refused_since or time.monotonic()
            if time.monotonic() - refused_since > 3:
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the writes never kept failing")
        assert refused.body["message"] == "unavailable" and refused.body["cause"] == "disk"
        # says what to check, without the database's path; no asking again within seconds:
        # room comes back only when an operator makes it
        full = refused.body["description"]
        assert full.startswith("The disk under the database is full or failing: free space")
        assert str(daemon.db.parent) not in full
        assert refused.headers["Retry-After"] == "60"
        assert acked, "the disk was full before the first write"
        # reads go on: a device, the list
        some = next(iter(acked.values()))
        assert api.get(f"/network/device/{some}").status == 200
        assert api.get("/network/device", query={"q": "FULLDEV"}).status == 200
        # a router's session: committed (a small write may fit in the room a failed larger
        # one left), or what it learned cannot be kept and it is told to come back
        ended = _session(daemon, "FULL0001")
        assert ended.status == 204 or (
            ended.status == 503
            and ended.headers["Retry-After"] == "60"
            and ended.text == f"{full}\n"
        ), ended.status
        # not ready while the writes fail, though the probe's own one-page write may fit
        # in the room a failed larger commit left in the WAL
        assert wait_for(lambda: readyz_status(daemon.api_url) == 503, 5)
        status, body = readyz(daemon.api_url)
        assert status == 503 and body["cause"] == "disk", body
        # every refusal counted, by where and why; the reads were not refused
        counted = store_refusals(daemon.api_url)
        assert sum(n for (where, _), n in counted.items() if where == "api") == len(refusals)
        assert counted[("api", "disk")] >= 1
        assert counted.get(("cwmp", "disk"), 0) == (ended.status == 503)
    finally:
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (-1, -1))
    # space is back: acsd writes again by itself, no restart
    assert wait_for(lambda: readyz_status(daemon.api_url) == 200, 10)
    assert _session(daemon, "FULL0001").status == 204
    after = api.post("/network/device", device_body(world, "own", "FULLDEV9999"))
    assert after.status == 201, after.body
    assert daemon.stop() == 0
    # the log names the cause once per outage, not once per write or request (on a full
    # disk the journal may share it), without tracebacks, and says when writes resume
    entries = [json.loads(line) for line in daemon.lines if line.startswith("{")]
    loud = [e for e in entries if e["level"] in ("warning", "error")]
    per_request = ("store_write_failed", "store_batch_failed", "api_store_unavailable",
                   "session.save_failed", "cwmp.retry_later")  # fmt: skip
    assert [e["event"] for e in loud if e["event"] in per_request] == []
    assert not [e for e in entries if "exception" in e or e["event"] == "api_internal_error"]
    failing = daemon.events("store_writes_failing")
    assert failing and all(e["error"] == "disk I/O error" for e in failing), failing
    # (the key the 503s, /readyz and acsd_store_refusals_total use: a script joins them)
    assert all(e["cause"] == "disk" for e in failing), failing
    assert len(failing) < len(refusals) / 2
    assert len(daemon.events("store_writes_resumed")) == len(failing)
    # nothing acknowledged lost, nothing half-written
    db = sqlite3.connect(daemon.db)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = dict(db.execute("SELECT serial_number, id FROM devices"))
    finally:
        db.close()
    assert {s: stored.get(s) for s in acked} == acked
    assert "FULLDEV9999" in stored


def _creator(world, prefix: str, acked: dict[str, str]):
    """``create()``: an operator's POST of the next device ``PREFIXn``, its reply; those
    answered 201 are kept in ``acked``."""
    count = iter(range(10_000))

    def create():
        body = device_body(world, "own", f"{prefix}{next(count):04d}")
        reply = world.api.post("/network/device", body)
        if reply.status == 201:
            acked[body["serialNumber"]] = reply.body["_id"]
        return reply

    return create


def _stored_serials(db: Path) -> set[str]:
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return {row[0] for row in conn.execute("SELECT serial_number FROM devices")}
    finally:
        conn.close()


def _refused_until_restart(daemon, create, what: str) -> None:
    """Writes get 503 once acsd found its files changed (within a second or so), /readyz
    is 503, and one error line says which file and what to do."""
    refused = wait_for(lambda: (r := create()).status != 201 and r, 5)
    assert refused.status == 503, refused.body
    assert refused.body["message"] == "unavailable"
    # retrying cannot help before a restart: the client is told so, and to wait long
    assert refused.body["description"] == RESTART_NEEDED, refused.body
    assert refused.headers["Retry-After"] == "600"
    assert readyz_status(daemon.api_url) == 503
    [line] = wait_for(lambda: daemon.events("store_files_changed"), 5)
    assert line["level"] == "error" and line["error"] == what and "restart" in line["action"]


def test_its_wal_removed_underneath_acsd_refuses_writes_and_loses_nothing(daemon_factory):
    daemon = daemon_factory()
    world = build_world(daemon)
    acked: dict[str, str] = {}
    create = _creator(world, "WALGONE", acked)
    for _ in range(5):
        assert create().status == 201
    # an operator's cleanup while acsd runs: acsd goes on writing the files it holds,
    # which nobody reads again, and the next opener makes new ones
    for suffix in ("-wal", "-shm"):
        Path(f"{daemon.db}{suffix}").unlink()
    _refused_until_restart(daemon, create, f"{daemon.db}-wal was removed")
    # reads go on; a router's session is told to come back at its end
    assert world.api.get(f"/network/device/{acked['WALGONE0000']}").status == 200
    ended = _session(daemon, "WALGONE-CPE")
    assert ended.status == 503 and ended.headers["Retry-After"] == "600"
    assert ended.text == f"{RESTART_NEEDED}\n"
    # a write on the server meanwhile goes to the new WAL, which acsd's stop leaves alone
    daemon.apply({"serialNumber": "WALGONE-CLI"})
    assert daemon.stop() == 0
    # every write answered 201 is in the database file, and so is the CLI's
    stored = _stored_serials(daemon.db)
    assert set(acked) <= stored and "WALGONE-CLI" in stored


def test_a_database_restored_underneath_acsd_is_left_as_restored(daemon_factory, tmp_path):
    daemon = daemon_factory()
    world = build_world(daemon)
    acked: dict[str, str] = {}
    create = _creator(world, "RESTORE", acked)
    for _ in range(3):
        assert create().status == 201
    backup = tmp_path / "backup.db"
    daemon.cli("db", "backup", str(backup))
    assert create().status == 201  # (RESTORE0003: not in the backup)
    # a restore done while acsd runs (the README stops it first)
    backup.replace(daemon.db)
    _refused_until_restart(daemon, create, f"{daemon.db} was replaced")
    assert world.api.get(f"/network/device/{acked['RESTORE0000']}").status == 200
    assert daemon.stop() == 0
    # the restored file holds what the backup held, nothing acsd wrote after it
    stored = _stored_serials(daemon.db)
    assert {"RESTORE0000", "RESTORE0001", "RESTORE0002"} <= stored
    assert "RESTORE0003" not in stored
    # the restart serves it, and writes again
    again = Api(daemon_factory().api_url, world.api.token)
    assert again.post("/network/device", device_body(world, "own", "AFTER0000")).status == 201


def test_a_database_another_process_locks_says_why_acsd_is_not_ready(daemon_factory):
    daemon = daemon_factory()
    assert wait_for(lambda: readyz_status(daemon.api_url) == 200, 5)
    # a sqlite3 shell left in a write transaction: an idle acsd finds out by its probe
    holder = sqlite3.connect(daemon.db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        assert wait_for(lambda: readyz_status(daemon.api_url) == 503, 10)
        time.sleep(1.2)  # (a probe's answer stands for a second: this is another one)
        assert readyz_status(daemon.api_url) == 503
        # one line says why, however often /readyz is asked
        [line] = daemon.events("store_write_probe_failed")
        assert line["error"] == "database is locked", line
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert wait_for(lambda: readyz_status(daemon.api_url) == 200, 5)
    assert len(daemon.events("store_write_probe_ok")) == 1


def test_a_failed_commit_of_the_write_probe_keeps_its_own_cause() -> None:
    # A full disk fails the probe's COMMIT, which ends the transaction: the ROLLBACK after
    # it raised "no transaction is active", and /readyz said "unavailable", not "disk".
    from acsd.store.sqlite.core import _rewrite_header

    full = sqlite3.OperationalError("database or disk is full")
    full.sqlite_errorcode = sqlite3.SQLITE_FULL  # type: ignore[attr-defined]

    class FullDisk:
        in_transaction = False

        def execute(self, sql: str) -> sqlite3.Cursor:
            if sql == "COMMIT":
                raise full
            if sql == "ROLLBACK":
                raise sqlite3.OperationalError("cannot rollback - no transaction is active")
            if sql == "PRAGMA user_version":
                return sqlite3.connect(":memory:").execute("SELECT 7")
            return sqlite3.connect(":memory:").execute("SELECT 1")

    with pytest.raises(sqlite3.OperationalError) as raised:
        _rewrite_header(FullDisk())  # type: ignore[arg-type]
    assert raised.value is full


def _damage(path: Path) -> None:
    """Overwrite the devices table's pages with garbage, as a copy over the file while acsd
    ran, or another database's WAL replayed onto a backup, leave some: the schema is
    sound, so the file opens."""
    with sqlite3.connect(path) as db:
        page = db.execute("PRAGMA page_size").fetchone()[0]
        pages = [row[0] for row in db.execute(
            "SELECT pageno FROM dbstat WHERE name = 'devices' AND pagetype = 'leaf'"
        )]  # fmt: skip
    assert pages
    with open(path, "r+b") as file:
        for number in pages:
            file.seek((number - 1) * page)
            file.write(b"\xa5" * 64)


async def test_a_damaged_file_is_refused_at_the_start_after_an_unclean_end(tmp_path: Path):
    # A restore after a crash without removing the old WAL (SQLite replays it onto the
    # backup): acsd started, said ready, and answered writes 2xx until one met a broken
    # page. With a WAL left at the path, the start checks the file first.
    from acsd.store import SqliteStore, StoreError
    from acsd.store.base import CpeIdentity, SessionResult

    path = tmp_path / "acsd.db"
    store = SqliteStore(path)
    await store.open()
    for n in range(200):
        identity = CpeIdentity(oui="00D09E", product_class="HG", serial_number=f"DMG{n:04d}")
        await store.save_session(SessionResult(identity=identity, at=1000.0))
    await store.close()
    _damage(path)
    Path(f"{path}-wal").write_bytes(b"\0" * 32)  # what a crash leaves: a WAL
    damaged = SqliteStore(path)
    with pytest.raises(StoreError, match="is damaged"):
        await damaged.open()
    await damaged.close()


async def test_a_write_sqlite_finds_damaged_keeps_the_store_unready(tmp_path: Path):
    from acsd.store import SqliteStore, outage
    from acsd.store.outages import CORRUPT

    broken = tmp_path / "broken.db"
    broken.write_bytes(b"this is not a database file" * 200)
    with pytest.raises(sqlite3.DatabaseError) as raised:
        sqlite3.connect(broken).execute("SELECT * FROM sqlite_master").fetchall()
    assert outage(raised.value) is CORRUPT  # a 503 of its own, not a 500
    store = SqliteStore(tmp_path / "acsd.db", ping_every=0)
    await store.open()
    try:
        assert await store.readiness() is None
        store._failed_with(raised.value)  # as the writer does with a batch it failed
        # a later write that touches sound pages does not mend the file
        assert await store.readiness() is CORRUPT
    finally:
        await store.close()
