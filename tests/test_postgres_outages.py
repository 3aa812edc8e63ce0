"""acsd on PostgreSQL when the database has a bad day: its server down (reached over TCP
or its socket file), made read-only and back, another client holding a lock, answering
nothing (frozen), ending acsd's connections while it stays up, or limits set on the
database that acsd's connections keep. Routers and API clients are told to come back (503
+ Retry-After) rather than shown a bug (a 500, a SOAP fault) or kept waiting, and acsd
recovers by itself."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace

import asyncpg
import pytest

from acsd.cwmp import rpc
from acsd.cwmp.soap import Envelope, parse_envelope, render_envelope
from acsd.sim.runner import Simulation
from acsd.store.base import StoreUnavailableError
from api_world import build_world, device_body
from apiclient import readyz, readyz_status, store_refusals
from conftest import wait_for
from cpe_steps import NS, SteppedCpe
from wire import Answer, Wire, envelope, inform_body


def _inform(daemon, serial: str):
    return Wire(daemon.cwmp_url).post(envelope(inform_body(serial), ns=NS))


def _socket_url(cluster, database: str) -> str:
    """The database by the server's socket file (libpq's host=DIRECTORY), as a local
    server is often reached: the file goes away while the server is down."""
    return f"postgresql://postgres@/{database}?host={cluster.root}&port={cluster.port}"


@pytest.mark.parametrize("reached_by", ["tcp", "socket"])
def test_while_the_server_is_down_routers_and_clients_are_told_to_come_back(
    daemon_factory, pg_cluster, reached_by
):
    url = pg_cluster.new_database()
    if reached_by == "socket":
        url = _socket_url(pg_cluster, url.rsplit("/", 1)[1])
    daemon = daemon_factory(store={"url": url})
    world = build_world(daemon)
    assert _inform(daemon, "DOWN0001").status == 200
    pg_cluster.pause()
    try:
        reply = wait_for(lambda: (r := world.api.get("/network/device")).status != 200 and r, 10)
        assert reply.status == 503, reply.body
        assert reply.body["message"] == "unavailable" and reply.headers["Retry-After"] == "10"
        assert reply.body["cause"] == "unreachable"
        # which trouble it is (not a full disk, not a lock), without the server's address
        down = reply.body["description"]
        assert down.startswith("The database server cannot be reached"), down
        assert "check that it runs" in down and str(pg_cluster.port) not in down
        assert str(pg_cluster.root) not in down
        # A router's Inform: told when to come back, as at the end of a session whose
        # result the database cannot take, not sent a fault it may retry at once.
        answer = _inform(daemon, "DOWN0002")
        assert answer.status == 503, answer.body
        assert answer.headers["Retry-After"] == "10" and answer.text == f"{down}\n"
        # the refused lookup counted, as the API's requests were
        counted = store_refusals(daemon.api_url)
        assert counted[("cwmp", "unreachable")] == 1 and counted[("api", "unreachable")] >= 1
        status, body = readyz(daemon.api_url)
        assert status == 503 and body["cause"] == "unreachable", body
        # writes: the writer cannot begin a batch either (its connection gone with the
        # server, nor a new one to be had)
        for n in range(2):
            written = world.api.post("/customer", {"name": f"Down {n}", "type": "CUSTOMER"})
            assert written.status == 503, written.body
    finally:
        pg_cluster.resume()
    assert wait_for(lambda: _inform(daemon, "DOWN0002").status == 200, 15)
    assert wait_for(lambda: world.api.get("/network/device").status == 200, 15)
    # the database's trouble, logged as such: no traceback, no 500
    assert not daemon.events("api_internal_error") and not daemon.events("cwmp.session_error")
    lookups = daemon.events("session.lookup_failed")
    assert lookups and all(e["level"] == "warning" and "exception" not in e for e in lookups)
    # nor asyncpg's own report of its pool's failed reconnections, a traceback each time
    # (under the request_id of whichever request's read had started them)
    entries = [json.loads(line) for line in daemon.lines if line.startswith("{")]
    assert not [e for e in entries if "exception" in e or e.get("logger", "").startswith("asyncpg")]
    # the outage is warnings: not an error line for each batch the writer could not begin
    assert not [e for e in entries if e.get("level") == "error"], [
        e for e in entries if e.get("level") == "error"
    ]


async def test_a_database_made_read_only_and_back_is_written_again_without_a_restart(
    daemon_factory, pg_cluster
):
    url = pg_cluster.new_database()
    name = url.rsplit("/", 1)[1]
    daemon = daemon_factory(store={"url": url})
    world = await asyncio.to_thread(build_world, daemon)

    def add_customer(label: str):
        return world.api.post("/customer", {"name": label, "type": "CUSTOMER"})

    # The DBA makes the database read-only (maintenance, a failover under way) and ends
    # its sessions: acsd's new connections start read-only.
    pg_cluster.psql(
        f'ALTER DATABASE "{name}" SET default_transaction_read_only = on;'
        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}';"
    )
    refused = await asyncio.to_thread(
        wait_for, lambda: (r := add_customer("Read-only")).status == 503 and r, 10
    )
    assert refused.body["message"] == "unavailable" and refused.headers["Retry-After"] == "60"
    read_only = refused.body["description"]
    assert read_only.startswith("The database is read-only: check that acsd's user may write")
    assert "default_transaction_read_only" in read_only and name not in read_only
    assert await asyncio.to_thread(wait_for, lambda: readyz_status(daemon.api_url) == 503, 10)
    status, body = await asyncio.to_thread(readyz, daemon.api_url)
    assert status == 503 and body["cause"] == "read_only", body
    assert refused.body["cause"] == "read_only"
    # ... and lifts it, ending no session: a connection made while it held keeps it, so
    # acsd must make new ones to be written to again.
    pg_cluster.psql(f'ALTER DATABASE "{name}" RESET default_transaction_read_only')
    await asyncio.to_thread(wait_for, lambda: add_customer("Writable").status == 201, 10)
    assert await asyncio.to_thread(wait_for, lambda: readyz_status(daemon.api_url) == 200, 10)
    assert not daemon.events("api_internal_error")


async def test_a_lock_held_past_the_lock_timeout_is_503_not_500(daemon_factory, pg_cluster):
    # Another client's lock (an open transaction in someone's psql) is waited for up to
    # store.lock_timeout, acsd's own whatever the database sets (here: no limit), and a
    # write it stops is the database's trouble, as SQLite's busy_timeout is (SQLITE_BUSY).
    url = pg_cluster.new_database()
    name = url.rsplit("/", 1)[1]
    pg_cluster.psql(f'ALTER DATABASE "{name}" SET lock_timeout = 0')
    daemon = daemon_factory(store={"url": url, "lock_timeout": 0.2})
    world = await asyncio.to_thread(build_world, daemon)
    holder = await asyncpg.connect(url)
    try:
        locked = holder.transaction()
        await locked.start()
        await holder.execute("LOCK TABLE customers IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        reply = await asyncio.to_thread(
            world.api.post, "/customer", {"name": "Locked out", "type": "CUSTOMER"}
        )
        assert reply.status == 503, reply.body
        assert time.monotonic() - started < 5  # not the 10 s of a statement
        assert reply.body["message"] == "unavailable" and reply.headers["Retry-After"] == "10"
        assert reply.body["description"].startswith("The database is busy: another client")
        await locked.rollback()
    finally:
        await holder.close()
    reply = await asyncio.to_thread(
        world.api.post, "/customer", {"name": "Let in", "type": "CUSTOMER"}
    )
    assert reply.status == 201, reply.body
    assert not daemon.events("api_internal_error")


def _rest_of_session(router: SteppedCpe) -> Answer:
    """The router's answers to the ACS's requests, from the one it holds, until the ACS
    answers other than with a request: the session's end, where its result is saved."""
    assert router.request is not None
    while True:
        reply = router.cpe.handle(router.request.body)
        answer = router.wire.post(render_envelope(Envelope(reply, id=router.request.id)))
        if answer.status != 200:
            return answer
        router.request = parse_envelope(answer.body)


async def test_a_row_locked_elsewhere_fails_its_writes_once_and_holds_no_others(
    daemon_factory, pg_cluster
):
    # A row locked by another client (a transaction left open in someone's psql): its
    # router's session save and the operator's PATCH of it get the busy answer once
    # lock_timeout is out, and the other routers' sessions and devices' PATCHes in the
    # same batch are written meanwhile. The locked session's save waited lock_timeout for
    # the run of saves, again for its own row taken with the run's in the rerun, which
    # undid the batch's transaction; every write of the batch then ran again alone, the
    # locked ones waiting once more: other devices' writes waited 4-5 times lock_timeout,
    # and a locked device's PATCH was written (200) once the holder let go.
    url = pg_cluster.new_database()
    wait = 1.5  # lock_timeout
    daemon = daemon_factory(store={"url": url, "lock_timeout": wait})
    world = await asyncio.to_thread(build_world, daemon)
    routers: dict[str, SteppedCpe] = {}
    paths: dict[str, str] = {}
    for cpe in Simulation(daemon.cwmp_url, ["tplink-tr181"], 3, serial_prefix="HELD").routers:
        router = routers[cpe.serial[-1]] = SteppedCpe(daemon.cwmp_url, cpe)
        await asyncio.to_thread(router.session)  # registered
        reply = await asyncio.to_thread(
            world.api.post, "/network/device", device_body(world, "own", cpe.serial)
        )
        assert reply.status == 201, reply.body
        paths[cpe.serial[-1]] = f"/network/device/{reply.body['_id']}"
        await asyncio.to_thread(router.session)  # provisioned
    # X's (locked) and Y's (free) next sessions, up to their last answer: the session
    # read its record at the Inform, and its result is saved at its end
    x, y = routers["1"], routers["2"]
    for router in (x, y):
        await asyncio.to_thread(router.inform, ["2 PERIODIC"])
        await asyncio.to_thread(router.until, rpc.GetParameterValues)
    before = (await asyncio.to_thread(world.api.get, paths["1"])).body
    holder = await asyncpg.connect(url)
    try:
        held = holder.transaction()
        await held.start()
        await holder.execute(
            "SELECT 1 FROM devices WHERE id = ANY($1) FOR UPDATE",
            [paths[n].rsplit("/", 1)[1] for n in "13"],
        )

        def patch(n: str, notes: str):
            return asyncio.to_thread(world.api.patch, paths[n], {"notes": notes})

        # Z's PATCH waits for its row: the writer is busy, and what comes next is queued
        # to be written together, in one batch.
        first = asyncio.create_task(patch("3", "z"))
        waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        while not await holder.fetchval(waiting):
            assert not first.done(), first.result().body
            await asyncio.sleep(0.02)
        queued = [
            asyncio.to_thread(_rest_of_session, x),
            asyncio.to_thread(_rest_of_session, y),
            patch("1", "x"),
            patch("2", "y"),
        ]
        together = asyncio.gather(first, *queued)
        # The holder lets go once all are answered, or gives up waiting for that: the
        # writes take a lock_timeout for Z's PATCH and one for the batch after it.
        answered, _ = await asyncio.wait({together}, timeout=4 * wait)
    finally:
        await holder.close()  # (the lock with it)
    patched_z, session_x, session_y, patched_x, patched_y = await together
    assert patched_y.status == 200 and patched_y.body["notes"] == "y", patched_y.body
    assert session_y.status == 204, session_y.text
    for refused in (patched_z, patched_x):
        assert refused.status == 503, refused.body
        assert refused.body["cause"] == "busy" and refused.headers["Retry-After"] == "10"
    # the locked router's session: told to come back, its result to be sent again
    assert session_x.status == 503 and session_x.headers["Retry-After"] == "10"
    assert session_x.text.startswith("The database is busy: another client")
    # all of it while the row was held still (a write that waited for it once more, in a
    # rerun or the next batch, went through once it was let go)
    assert answered, "writes waited for the row past lock_timeout"
    # nothing of the refused writes was written, and the row takes writes again
    after = (await asyncio.to_thread(world.api.get, paths["1"])).body
    assert after == before
    assert (await patch("1", "x")).status == 200
    assert not daemon.events("api_internal_error") and not daemon.events("cwmp.session_error")


async def test_a_server_that_answers_nothing_is_unavailable_in_bounded_time(pg_url, pg_cluster):
    # A server that hangs (or a partition that drops packets) keeps the connections open
    # and answers nothing: without a limit a read, and the writer with every write queued
    # behind it, would wait for as long as TCP takes to notice (many minutes).
    from acsd.store import store_unavailable
    from acsd.store.postgres import PgStore

    store = PgStore(pg_url, statement_wait=1.0)
    await store.open()
    try:
        pg_cluster.freeze()
        try:
            read = asyncio.create_task(store.find_token("0" * 64))
            write = asyncio.create_task(store.claim_connection_request("0" * 24, 10.0))
            done, _ = await asyncio.wait({read, write}, timeout=8)
            assert done == {read, write}, "a read or write still waits on the frozen server"
            for task in (read, write):
                assert store_unavailable(task.exception()) == (
                    "the PostgreSQL server did not answer in time"
                )
        finally:
            pg_cluster.thaw()
        # the server answers again: so does the store, on the connections it makes anew
        assert await store.find_token("0" * 64) is None
        assert await store.claim_connection_request("0" * 24, 10.0) is False
    finally:
        await store.close()


async def test_connections_the_server_ended_are_made_again_unnoticed(pg_url, pg_cluster):
    # The server ends acsd's connections while the server itself stays up: a failover
    # behind a proxy, an administrator's pg_terminate_backend, idle_session_timeout.
    # asyncpg learns of it only from the next statement it sends; that statement runs
    # again on a new connection rather than failing a request (it was a 500 or a 503).
    from acsd.store.postgres import PgStore

    store = PgStore(pg_url)
    store.ping_every = 0
    await store.open()
    name = pg_url.rsplit("/", 1)[1]
    try:
        for _ in range(3):
            # /readyz's probe among them: one ended connection must not take the instance
            # out of its load balancer
            assert await store.ping() is True
            assert await store.find_token("0" * 64) is None
            assert await store.claim_connection_request("0" * 24, 10.0) is False
            # (psql blocks the event loop: asyncpg cannot see the goodbye before the next
            # statement)
            pg_cluster.psql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                f" WHERE datname = '{name}' AND pid <> pg_backend_pid()"
            )
        assert await store.list_customers(limit=1, offset=0) == ([], 0)
    finally:
        await store.close()


async def test_a_read_of_a_silent_server_ends_within_statement_wait(pg_url, pg_cluster):
    # asyncpg's pool takes back a connection whose statement it gave up on only when the
    # server has answered its cancel request: a second statement_wait, before the read's
    # caller learnt of the first (and a third when the read needed a new connection).
    from acsd.store.postgres import PgStore

    store = PgStore(pg_url, statement_wait=2.0)
    await store.open()
    try:
        assert await store.find_token("0" * 64) is None  # the pool has a connection
        pg_cluster.freeze()
        try:
            for _ in range(2):  # on that connection, then on a new one
                started = time.monotonic()
                with pytest.raises(StoreUnavailableError, match="did not answer in time"):
                    await store.find_token("0" * 64)
                assert time.monotonic() - started < 3.2
        finally:
            pg_cluster.thaw()
        assert await store.find_token("0" * 64) is None
    finally:
        await store.close()


async def test_a_row_locked_elsewhere_fails_its_own_write_soon_and_no_other(pg_url):
    # Without a lock_timeout on the role, a write waited for the row until statement_wait
    # (10 s), and the writer, which runs one batch at a time, with it: every write queued
    # behind it waited too, and failed with it.
    from acsd.store import store_unavailable
    from acsd.store.base import CustomerRecord, DeviceRecord
    from acsd.store.postgres import PgStore

    store = PgStore(pg_url, lock_timeout=0.3)
    await store.open()
    holder = await asyncpg.connect(pg_url)
    try:
        device = await store.upsert_device(DeviceRecord(id="", serial_number="LOCKED01"))
        held = holder.transaction()
        await held.start()
        await holder.execute("SELECT 1 FROM devices WHERE id = $1 FOR UPDATE", device.id)
        started = time.monotonic()
        delete = asyncio.create_task(store.delete_device(device.id))
        other = asyncio.create_task(store.create_customer(CustomerRecord(id="", name="Free")))
        await asyncio.wait({delete, other}, timeout=8)
        assert time.monotonic() - started < 4
        assert other.result().name == "Free"
        assert "lock timeout" in (store_unavailable(delete.exception()) or "")
        await held.rollback()
        assert await store.delete_device(device.id) is True
    finally:
        await holder.close()
        await store.close()


async def test_the_databases_limits_do_not_hold_writes_and_a_reset_applies_to_reads(
    pg_url, pg_cluster
):
    # The operator set a statement_timeout on the database, too low, then RESET it: the
    # connections acsd made meanwhile keep it. acsd's writes run with its own limits; a
    # read the old limit cut short (503) makes the next read use a new connection.
    from acsd.store.base import CustomerRecord, DeviceRecord
    from acsd.store.postgres import PgStore

    name = pg_url.rsplit("/", 1)[1]
    store = PgStore(pg_url)
    await store.open()
    holder = await asyncpg.connect(pg_url)

    async def held_for(seconds: float, sql: str) -> asyncio.Task:
        # a lock that another client lets go of after ``seconds``
        await holder.execute(f"BEGIN; {sql}")
        return asyncio.create_task(asyncio.sleep(seconds))

    try:
        device = await store.upsert_device(DeviceRecord(id="", serial_number="LIMITS01"))
        holder_pid = holder.get_server_pid()
        pg_cluster.psql(
            f"ALTER DATABASE \"{name}\" SET statement_timeout = '100ms';"
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            f" WHERE datname = '{name}' AND pid NOT IN (pg_backend_pid(), {holder_pid})"
        )
        # a write that waits 0.5 s for a row: longer than the database's limit
        wait = await held_for(0.5, f"SELECT 1 FROM devices WHERE id = '{device.id}' FOR UPDATE")
        write = asyncio.create_task(store.delete_device(device.id))
        await wait
        await holder.execute("ROLLBACK")
        assert await write is True
        # a read that waits 0.5 s for a table another client locked: cut short
        wait = await held_for(0.5, "LOCK TABLE customers IN ACCESS EXCLUSIVE MODE")
        with pytest.raises(asyncpg.QueryCanceledError, match="statement timeout"):
            await store.get_customer("0" * 24)
        await wait
        await holder.execute("ROLLBACK")
        pg_cluster.psql(f'ALTER DATABASE "{name}" RESET statement_timeout')
        wait = await held_for(0.5, "LOCK TABLE customers IN ACCESS EXCLUSIVE MODE")
        read = asyncio.create_task(store.get_customer("0" * 24))
        await wait
        await holder.execute("ROLLBACK")
        assert await read is None
        assert (await store.create_customer(CustomerRecord(id="", name="After"))).name == "After"
    finally:
        await holder.close()
        await store.close()


async def test_migrations_run_whatever_limits_the_database_sets(pg_url, pg_cluster):
    # A lock_timeout or statement_timeout on the database (or role) applied to migrations:
    # an instance starting while another migrates waited for the migration lock past the
    # database's lock_timeout and failed to start (a long step would fail the same way).
    from acsd.store.postgres import PgStore
    from acsd.store.postgres.schema import MIGRATION_LOCK

    name = pg_url.rsplit("/", 1)[1]
    pg_cluster.psql(
        f"ALTER DATABASE \"{name}\" SET lock_timeout = '50ms';"
        f"ALTER DATABASE \"{name}\" SET statement_timeout = '50ms'"
    )
    migrating = await asyncpg.connect(pg_url)  # another instance, in its migration
    await migrating.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
    store = PgStore(pg_url)
    try:
        opening = asyncio.create_task(store.open())
        await asyncio.sleep(0.5)
        assert not opening.done(), opening
        await migrating.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
        await asyncio.wait_for(opening, 10)
        assert store.migrations_applied  # the whole schema, made under those limits
    finally:
        await migrating.close()
        await store.close()


async def test_a_batch_the_writer_cannot_begin_while_the_server_is_down_is_a_warning(
    pg_cluster,
):
    # store_begin_failed was an error line for every batch while the server was stopped
    # (the README promises the outage as warnings); the write is still refused (503).
    from structlog.testing import capture_logs

    from acsd.store import CustomerRecord, open_store
    from acsd.store.base import store_unavailable

    store = open_store(pg_cluster.new_database())
    await store.open()
    try:
        pg_cluster.pause()
        try:
            with capture_logs() as logs:
                for n in range(2):
                    with pytest.raises(Exception) as caught:
                        await store.create_customer(CustomerRecord(id="", name=f"Down {n}"))
                    assert store_unavailable(caught.value) is not None, caught.value
        finally:
            pg_cluster.resume()
        begun = [e for e in logs if e["event"] == "store_begin_failed"]
        assert begun and all(e["log_level"] == "warning" for e in begun), begun
    finally:
        await store.close()


async def raised(task: asyncio.Task) -> BaseException | None:
    """What ``task`` raised (None: it returned)."""
    try:
        await task
    except Exception as exc:
        return exc
    return None


async def test_writes_of_a_row_held_elsewhere_are_kept_out_of_the_others_batches(pg_url):
    # A row another client keeps locked (a transaction left open in someone's psql): its
    # router's session results, sent again after each 503, and the PATCHes of its record
    # shared the batch of every other write queued with them, so each such batch waited
    # lock_timeout once more, and every other router's and API client's write with it, for
    # as long as the row was held. Once a write of the row has waited lock_timeout out,
    # the row's writes are written apart, without waiting for it.
    from dataclasses import replace

    from acsd.store import store_unavailable
    from acsd.store.base import CpeIdentity, SessionResult
    from acsd.store.postgres import PgStore

    wait = 3.0  # lock_timeout: the writes of free rows take far less
    store = PgStore(pg_url, lock_timeout=wait)
    identities = {s: CpeIdentity("00D09E", "HG", s) for s in ("HELDX", "FREEY", "FREEZ")}
    ids: dict[str, str] = {}
    informed = dict.fromkeys(identities, 1000.0)  # each record's last_inform

    def save(serial: str, at: float) -> asyncio.Task:
        result = SessionResult(
            identity=identities[serial], at=at, since=informed[serial], device_id=ids[serial]
        )
        return asyncio.create_task(store.save_session(result))

    async def round_of(at: float) -> tuple[list[asyncio.Task], list[asyncio.Task]]:
        """The held router's session result and a PATCH of its record, and the free
        ones', queued together (one batch: nothing is awaited in between)."""
        records = {s: await store.get_device(ids[s]) for s in identities}

        def patch(serial: str) -> asyncio.Task:
            notes = f"{serial} {at}"
            return asyncio.create_task(store.write_device(replace(records[serial], notes=notes)))

        return [save("HELDX", at), patch("HELDX")], [
            save("FREEY", at),
            save("FREEZ", at),
            patch("FREEY"),
        ]

    await store.open()
    holder = await asyncpg.connect(pg_url)
    try:
        for serial, identity in identities.items():
            ids[serial] = await store.save_session(SessionResult(identity=identity, at=1000.0))
        locked = holder.transaction()
        await locked.start()
        await holder.execute("SELECT 1 FROM devices WHERE id = $1 FOR UPDATE", ids["HELDX"])
        for n in range(4):
            at = 2000.0 + n
            held, free = await round_of(at)
            # the first batch that meets the lock waits lock_timeout out (nothing told the
            # row was held before); the later ones do not wait for it
            done, _ = await asyncio.wait(free, timeout=None if n == 0 else wait)
            assert done == set(free), f"round {n}: the free rows' writes waited for the held row"
            for task in free:
                task.result()
            informed["FREEY"] = informed["FREEZ"] = at
            # the held row's writes are refused each time, as busy (503 + Retry-After)
            for task in held:
                error = await asyncio.wait_for(raised(task), wait)
                assert "lock timeout" in (store_unavailable(error) or ""), repr(error)
        stored = await store.get_device(ids["HELDX"])
        assert stored.last_inform == 1000.0 and stored.notes is None  # nothing of them written
        await locked.rollback()
        # let go of: the held router's result and PATCH go through at once
        held, free = await round_of(3000.0)
        await asyncio.wait_for(asyncio.gather(*held, *free), wait)
        stored = await store.get_device(ids["HELDX"])
        assert stored.last_inform == 3000.0 and stored.notes == "HELDX 3000.0"
        assert (await store.get_device(ids["FREEY"])).notes == "FREEY 3000.0"
    finally:
        await holder.close()
        await store.close()


@pytest.mark.parametrize(
    "write", ["steered", "rekey", "mac", "internet_line", "line_confirm", "apn_name"]
)
async def test_writes_that_lock_a_held_row_besides_their_own_are_kept_apart_too(pg_url, write: str):
    # As above, for the writes that lock another device's row than (or besides) the one
    # they are for: an APN device's write steered by its router's record, a repair of a
    # damaged serial key on a look-up, an operator's MAC taken from the router that
    # reported it, a new internet line of a router, a line confirmed to start now (its
    # router gets the job), a new APN name of the router's network. Each was kept apart
    # from nothing (the row it met was not one it named), so each time it was tried
    # again, it and every write queued behind it waited lock_timeout. Now each names the
    # rows it writes.
    from dataclasses import replace

    from acsd.macs import mac_key
    from acsd.store import store_unavailable
    from acsd.store.base import (
        ApnAccountRecord,
        ApnDeviceRecord,
        ApnNetworkRecord,
        AuditRecord,
        CpeIdentity,
        InternetAccountRecord,
        SessionResult,
    )
    from acsd.store.batching import CallOp
    from acsd.store.postgres import PgStore

    wait = 3.0  # lock_timeout: the writes of free rows take far less
    store = PgStore(pg_url, lock_timeout=wait)
    identities = {s: CpeIdentity("00D09E", "HG", s) for s in ("HELDX", "FREEY", "FREEZ")}
    ids: dict[str, str] = {}
    informed = dict.fromkeys(identities, 1000.0)
    mac = "02:00:5E:10:00:01"
    # the write of each kind, tried again each round; its kind in the write queue
    kinds = {
        "steered": "update_apn_device",
        "rekey": "rekey_device",
        "mac": "write_device",
        "internet_line": "create_internet_account",
        "line_confirm": "confirm_internet_account",
        "apn_name": "put_apn_network",
    }
    queued = asyncio.Event()
    submit = store._submit

    def noting(op) -> None:
        submit(op)
        if isinstance(op, CallOp) and op.kind == kinds[write]:
            queued.set()

    store._submit = noting

    def save(serial: str, at: float) -> asyncio.Task:
        result = SessionResult(
            identity=identities[serial], at=at, since=informed[serial], device_id=ids[serial]
        )
        return asyncio.create_task(store.save_session(result))

    async def tagged(at: float) -> object:
        if write == "steered":
            return await store.update_apn_device(
                apn.id,
                lambda d: (replace(d, router=ids["HELDX"], network_status=1), None),
                steers=(ids["HELDX"], "acc"),
            )
        if write == "rekey":
            return await store.get_device("HELDX")
        if write == "mac":
            record = await store.get_device(ids["FREEY"])
            record.mac_address, record.mac_from_router = mac, False
            return await store.write_device(record, mac="set")
        if write == "line_confirm":
            net = {"ipAddress": "203.0.113.10", "subnet": "255.255.255.248"}
            return await store.confirm_internet_account(
                line.id,
                confirm={"net": net},
                start_date=1500.0,
                ip_address=net["ipAddress"],
                now=1600.0,
                audit=AuditRecord(id="", at=1600.0, action="internet.confirm", resource="x"),
            )
        if write == "apn_name":
            return await store.put_apn_network(ApnNetworkRecord("acc", "net", f"apn{at}"))
        new = InternetAccountRecord(id="", customer="c1", name=f"Fibre {at}", device=ids["HELDX"])
        return await store.create_internet_account(new)

    async def round_of(at: float) -> tuple[asyncio.Task, list[asyncio.Task]]:
        """The write that meets the held row, and the free routers' writes queued behind
        it (FREEY's session result clears what a write of FREEY's record left known)."""
        record = await store.get_device(ids["FREEZ"])
        queued.clear()
        held = asyncio.create_task(tagged(at))
        await asyncio.wait_for(queued.wait(), wait)
        patch = store.write_device(replace(record, notes=f"FREEZ {at}"))
        return held, [save("FREEY", at), save("FREEZ", at), asyncio.create_task(patch)]

    await store.open()
    holder = await asyncpg.connect(pg_url)
    try:
        for serial, identity in identities.items():
            ids[serial] = await store.save_session(SessionResult(identity=identity, at=1000.0))
        if write in ("steered", "apn_name"):
            router = await store.get_device(ids["HELDX"])
            await store.write_device(replace(router, mvno_account="acc"))
            apn = await store.create_apn_device(
                ApnDeviceRecord(id="", account="acc", network="net", cli="316", cli_key="cli:316"),
                account=ApnAccountRecord(key="acc", email_contact="ops@example.com"),
            )
            if write == "apn_name":  # its SIM seen in the router
                await store.update_apn_device(
                    apn.id,
                    lambda d: (replace(d, router=ids["HELDX"], network_status=1), None),
                    steers=(ids["HELDX"], "acc"),
                )
        elif write == "line_confirm":
            line = await store.create_internet_account(
                InternetAccountRecord(id="", customer="c1", name="Fibre", device=ids["HELDX"])
            )
        elif write == "rekey":  # (a key left damaged: the look-up by serial repairs it)
            await holder.execute(
                "UPDATE devices SET serial_key = 'damaged' WHERE id = $1", ids["HELDX"]
            )
        elif write == "mac":  # the router's own report, which an operator's MAC takes
            await holder.execute(
                "UPDATE devices SET mac_address = $1, mac_key = $2, mac_from_router = 1"
                " WHERE id = $3",
                mac,
                mac_key(mac),
                ids["HELDX"],
            )
        locked = holder.transaction()
        await locked.start()
        await holder.execute("SELECT 1 FROM devices WHERE id = $1 FOR UPDATE", ids["HELDX"])
        for n in range(3):
            at = 2000.0 + n
            held, free = await round_of(at)
            # the first meets the lock unknown and waits lock_timeout out, and the writes
            # behind it with it; the later ones do not wait for it
            done, _ = await asyncio.wait(free, timeout=None if n == 0 else wait)
            assert done == set(free), f"round {n}: the free rows' writes waited for the held row"
            for task in free:
                task.result()
            informed["FREEY"] = informed["FREEZ"] = at
            error = await asyncio.wait_for(raised(held), wait)
            assert "lock timeout" in (store_unavailable(error) or ""), repr(error)
        await locked.rollback()
        # let go of: the write goes through at once
        await asyncio.wait_for(tagged(3000.0), wait)
        if write == "steered":
            assert (await store.get_apn_device(apn.id)).router == ids["HELDX"]
        elif write == "line_confirm":
            assert (await store.get_internet_account(line.id)).state == "ACTIVE"
            assert (await store.get_device(ids["HELDX"])).state == "PROVISIONING"
        elif write == "apn_name":
            assert (await store.get_apn_network("acc", "net")).apn == "apn3000.0"
            assert (await store.get_device(ids["HELDX"])).state == "PROVISIONING"
        elif write == "rekey":
            key = await holder.fetchval(
                "SELECT serial_key FROM devices WHERE id = $1", ids["HELDX"]
            )
            assert key != "damaged"
        elif write == "mac":
            assert (await store.get_device(ids["FREEY"])).mac_address == mac
            assert (await store.get_device(ids["HELDX"])).mac_address is None
        else:
            assert (await store.get_device(ids["HELDX"])).internet_account is not None
    finally:
        await holder.close()
        await store.close()


@pytest.mark.parametrize("write", ["apn_same_name", "line_confirm_later"])
async def test_a_write_that_may_leave_a_held_row_alone_does_not_forget_it(pg_url, write: str):
    """A write that names a row it locks only in some cases (an APN network PUT that keeps
    the name, a line confirmed to start later) commits without touching the held row: the
    row stays known as held, and the next batch with its write does not wait lock_timeout
    again, nor the free writes in it (found by review)."""
    from acsd.store import store_unavailable
    from acsd.store.base import (
        ApnAccountRecord,
        ApnDeviceRecord,
        ApnNetworkRecord,
        AuditRecord,
        CpeIdentity,
        InternetAccountRecord,
        SessionResult,
    )
    from acsd.store.postgres import PgStore

    wait = 3.0
    store = PgStore(pg_url, lock_timeout=wait)
    identities = {s: CpeIdentity("00D09E", "HG", s) for s in ("HELDX", "FREEY")}
    ids: dict[str, str] = {}
    informed = dict.fromkeys(identities, 1000.0)

    def save(serial: str, at: float) -> asyncio.Task:
        result = SessionResult(
            identity=identities[serial], at=at, since=informed[serial], device_id=ids[serial]
        )
        return asyncio.create_task(store.save_session(result))

    async def round_of(at: float) -> float:
        """HELDX's and FREEY's session results in one batch; how long FREEY's took."""
        t0 = time.monotonic()
        held, free = save("HELDX", at), save("FREEY", at)
        await free
        took = time.monotonic() - t0
        informed["FREEY"] = at
        # the held row's write is refused each time, as busy (503 + Retry-After)
        with pytest.raises(Exception) as refused:
            await held
        assert "lock timeout" in (store_unavailable(refused.value) or ""), repr(refused.value)
        return took

    await store.open()
    holder = await asyncpg.connect(pg_url)
    try:
        for serial, identity in identities.items():
            ids[serial] = await store.save_session(SessionResult(identity=identity, at=1000.0))
        router = await store.get_device(ids["HELDX"])
        await store.write_device(replace(router, mvno_account="acc"))
        apn = await store.create_apn_device(
            ApnDeviceRecord(id="", account="acc", network="net", cli="316", cli_key="cli:316"),
            account=ApnAccountRecord(key="acc", email_contact="ops@example.com"),
        )
        await store.update_apn_device(
            apn.id,
            lambda d: (replace(d, router=ids["HELDX"], network_status=1), None),
            steers=(ids["HELDX"], "acc"),
        )
        await store.put_apn_network(ApnNetworkRecord("acc", "net", "apn.one"))
        line = await store.create_internet_account(
            InternetAccountRecord(id="", customer="c1", name="Fibre", device=ids["HELDX"])
        )
        locked = holder.transaction()
        await locked.start()
        await holder.execute("SELECT 1 FROM devices WHERE id = $1 FOR UPDATE", ids["HELDX"])
        await round_of(2000.0)  # meets the lock unknown: waits lock_timeout
        await round_of(2001.0)  # known held now
        assert ids["HELDX"] in store._held
        if write == "apn_same_name":
            # an API client's idempotent PUT of the network, the name unchanged
            await store.put_apn_network(ApnNetworkRecord("acc", "net", "apn.one"))
        else:
            net = {"ipAddress": "203.0.113.10", "subnet": "255.255.255.248"}
            far = time.time() + 86400 * 30
            await store.confirm_internet_account(
                line.id, confirm={"net": net}, start_date=far, ip_address=net["ipAddress"],
                now=time.time(),
                audit=AuditRecord(id="", at=1600.0, action="internet.confirm", resource="x"),
            )  # fmt: skip
        third = await round_of(2002.0)
        await locked.rollback()
        assert third < wait / 2, f"FREEY's write waited {third:.2f}s for the held row again"
    finally:
        await holder.close()
        await store.close()
