"""acsd on PostgreSQL end to end: a simulated router's sessions through the daemon, the API
showing what they reported, and two services sharing one database as instances behind a
load balancer do (a session begun on one goes on on the other)."""

from __future__ import annotations

import asyncio
import random
import string

import asyncpg

from acsd.models import NOTES_MAX
from acsd.sim.runner import Simulation
from api_world import build_world, device_body
from apiclient import readyz_status
from conftest import wait_for
from test_workers import session_over_new_connections, start_workers

PASSWORD = "PgSecretPw1"


async def test_a_routers_sessions_on_postgresql_show_in_the_api(daemon_factory, pg_cluster):
    url = pg_cluster.new_database(password=PASSWORD)
    daemon = daemon_factory(store={"url": url})
    world = build_world(daemon)
    sim = Simulation(
        daemon.cwmp_url, ["tplink-tr181"], 1, serial_prefix="PG", interval=3600,
        cr_listen="127.0.0.1:0", ramp=0.01,
    )  # fmt: skip
    serial = sim.routers[0].serial
    running = asyncio.create_task(sim.run(duration=60))
    router = sim.router(serial)
    try:
        # BOOTSTRAP registers the router; the device the operator then makes for it is
        # provisioned through a Connection Request, all of it stored on PostgreSQL.
        await asyncio.to_thread(wait_for, lambda: router.stats.ok >= 1, 20)
        reply = world.api.post("/network/device", device_body(world, "own", serial))
        assert reply.status == 201, reply.body
        device_id = reply.body["_id"]
        await asyncio.to_thread(
            wait_for,
            lambda: world.api.get(f"/network/device/{device_id}").body["state"] == "ACTIVE",
            20,
        )
    finally:
        sim.stop()
        await running
    device = world.api.get(f"/network/device/{device_id}").body
    tree = router.tree.flat()
    assert device["status"]["online"] is True and device["status"]["provisioned"] is True
    assert device["status"]["lanIp"] == tree["Device.IP.Interface.1.IPv4Address.1.IPAddress"]
    assert tree["Device.WiFi.SSID.1.SSID"] == "SkyNet"
    # the list's search, in PostgreSQL's SQL (any case)
    listed = world.api.get("/network/device", query={"q": serial.lower()}).body
    assert [d["_id"] for d in listed["items"]] == [device_id]
    conn = await asyncpg.connect(url)
    try:
        # the tree the sessions merged into the stored one (jsonb ||): path -> [value, type]
        stored = await conn.fetchval(
            "SELECT params -> 'Device.IP.Interface.1.IPv4Address.1.IPAddress' ->> 0"
            " FROM devices WHERE id = $1",
            device_id,
        )
    finally:
        await conn.close()
    assert stored == device["status"]["lanIp"]
    # A client reads what it reads on SQLite: notes longer than an index entry of
    # PostgreSQL holds (~2.7 KB compressed) are taken, and a confirmed internet line
    # answers in the seed's order (not jsonb's, which sorts keys by length).
    notes = "".join(random.choice(string.ascii_letters) for _ in range(NOTES_MAX))
    patched = world.api.patch(f"/network/device/{device_id}", {"notes": notes})
    assert patched.status == 200 and patched.body["notes"] == notes, patched.body
    line = {"customer": world.customers["own"], "device": device_id, "name": "Fibre"}
    account = world.api.post("/internet/account", line).body["_id"]
    confirm = {
        "providerOrderId": "5637575637", "providerName": "TDC",
        "startDate": "2016-02-01T00:00:00Z", "circuit": "EM23867",
        "installTime": "12_00_TO_16_00",
        "net": {"ipAddress": "203.0.113.10", "subnet": "255.255.255.248",
                "gateway": "203.0.113.9", "lanNet": "198.51.100.16",
                "lanSubnet": "255.255.255.240", "failover": True, "failoverNumber": "71919998"},
    }  # fmt: skip
    confirmed = world.api.post(f"/internet/account/{account}/confirm", confirm)
    assert confirmed.status == 200, confirmed.body
    shown = world.api.get(f"/internet/account/{account}").body
    assert list(shown) == ["_id", "customer", "device", "name", "state", *confirm], shown
    assert list(shown["net"]) == list(confirm["net"]) and shown["net"] == confirm["net"]
    # the database's password is in no log line (the daemon logs the store URL)
    assert daemon.events("listening") and PASSWORD not in daemon.log_text()


def test_two_services_on_one_database_carry_a_session_between_them(daemon_factory, pg_url):
    first = start_workers(daemon_factory, store={"url": pg_url})
    second = start_workers(daemon_factory, store={"url": pg_url})
    for n in range(4):
        # Each request on a new connection, every other one to the other service: the
        # session parked by one is taken up by the other, from the shared database.
        tree = session_over_new_connections(
            first.cwmp_url, f"TWO{n:03d}", announce=True, hop_to=second.cwmp_url
        )
        assert tree["Device.ManagementServer.ConnectionRequestUsername"][0] == f"TWO{n:03d}"
        assert second.device_json(f"TWO{n:03d}")["status"]["upTime"] == 77
    taken = first.events("cwmp.session_taken_over") + second.events("cwmp.session_taken_over")
    assert first.events("cwmp.session_taken_over") and second.events("cwmp.session_taken_over")
    assert len(taken) >= 4
    ends = [
        e
        for daemon in (first, second)
        for e in daemon.events("session.end")
        if e["serial"].startswith("TWO")
    ]
    assert len(ends) == 4 and all(e["complete"] for e in ends)


def test_a_database_that_goes_away_is_503_and_acsd_recovers_when_it_is_back(
    daemon_factory, pg_cluster
):
    daemon = daemon_factory(store={"url": pg_cluster.new_database()})
    world = build_world(daemon)
    assert world.api.get("/network/device").status == 200
    # The server goes away (a restart, a failover): acsd's connections are cut and new
    # ones refused.
    pg_cluster.pause()
    try:
        refused = wait_for(lambda: (r := world.api.get("/network/device")).status == 503 and r, 10)
        assert int(refused.headers["Retry-After"]) > 0
        assert wait_for(lambda: readyz_status(daemon.api_url) == 503, 10)
    finally:
        pg_cluster.resume()
    # back: reads and writes go through again, without a restart of acsd
    wait_for(lambda: world.api.get("/network/device").status == 200, 15)
    reply = world.api.post("/network/device", device_body(world, "own", "BACK0001"))
    assert reply.status == 201, reply.body
    assert wait_for(lambda: readyz_status(daemon.api_url) == 200, 15)
    assert not daemon.events("store_writer_crashed")


def test_another_service_starting_or_stopping_leaves_this_ones_parked_sessions(
    daemon_factory, pg_url
):
    # One instance of several on a database: a session parked by another one, whose CPE
    # reconnects there in a moment, is not this one's to end, when it starts (it ended
    # every parked session as "left parked by an earlier run") nor when it stops.
    from test_workers import NS, _versioned
    from wire import Wire, envelope, inform_body

    parks = start_workers(daemon_factory, store={"url": pg_url}, cwmp={"session_timeout": 300})
    wire = Wire(parks.cwmp_url)
    inform = inform_body("HOLD000001", events=("0 BOOTSTRAP",), params=_versioned("1.0.0"))
    assert wire.post(envelope(inform, ns=NS), headers={"Connection": "close"}).status == 200
    wait_for(lambda: parks.events("cwmp.session_parked"), timeout=5)
    alone = daemon_factory(store={"url": pg_url})  # workers = 1, parks nothing itself
    both = start_workers(daemon_factory, store={"url": pg_url}, top={"shutdown_grace": 0})
    assert both.stop() == 0
    assert not alone.events("cwmp.parked_ended") and not both.events("cwmp.parked_ended")
    wire.reconnect()
    answer = wire.post(None)  # the session goes on where it was parked
    assert answer.status == 200, answer.text
    wire.close()


def test_two_records_patched_to_one_new_serial_at_once_get_409_not_500(daemon_factory, pg_url):
    # Each request's look-up found the serial free; the second UPDATE then broke the unique
    # key and the API answered 500 with a traceback (PostgreSQL with several processes
    # writing: one process's writes, and SQLite's, go through one writer)
    from concurrent.futures import ThreadPoolExecutor

    daemon = start_workers(daemon_factory, 2, store={"url": pg_url})
    world = build_world(daemon)
    statuses = []
    for trial in range(12):
        ids = [
            world.api.post("/network/device", device_body(world, "own", f"PGR{trial}{n}")).body[
                "_id"
            ]
            for n in "AB"
        ]
        target = {"serialNumber": f"PGRNEW{trial}"}
        with ThreadPoolExecutor(2) as pool:
            replies = list(pool.map(
                lambda i, t=target: world.api.patch(f"/network/device/{i}", t), ids))  # fmt: skip
        statuses.append(sorted(r.status for r in replies))
        for reply in replies:
            if reply.status == 409:
                assert reply.body["message"] == "serialNumber", reply.body
    assert all(s == [200, 409] for s in statuses), statuses
    assert not daemon.events("api_internal_error")
