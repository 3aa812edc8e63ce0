"""One Connection Request per router per interval across every process on a database
(workers on one SQLite file, instances on one PostgreSQL database): the claim in the store
(``cr_claims``) and the requester that asks for it before it sends."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import sqlite3
import time
from collections.abc import Callable

import asyncpg
import pytest
import structlog

from acsd import clock
from acsd.cwmp.connreq import ConnectionRequester, Target
from acsd.sim.cpe import Cpe
from acsd.sim.runner import Simulation
from acsd.store import DeviceRecord, StoreError, open_store
from api_world import build_world, device_body
from apiclient import Api, Reply
from conftest import DENY_BUT_LOOPBACK, Daemon, wait_for
from test_connection_request_guard import endpoint
from test_workers import start_workers


async def _device(store, serial: str) -> str:
    return (await store.upsert_device(DeviceRecord(id="", serial_number=serial))).id


async def _claim_rows(store_url: str) -> int:
    if store_url.startswith("sqlite:///"):
        with sqlite3.connect(store_url.removeprefix("sqlite:///")) as db:
            return db.execute("SELECT count(*) FROM cr_claims").fetchone()[0]
    conn = await asyncpg.connect(store_url)
    try:
        return await conn.fetchval("SELECT count(*) FROM cr_claims")
    finally:
        await conn.close()


# -- the store ------------------------------------------------------------------------------


async def test_a_claim_is_held_for_its_seconds_then_taken_again(store) -> None:
    one, other = await _device(store, "CLM1"), await _device(store, "CLM2")
    assert await store.claim_connection_request(one, 0.5)
    assert not await store.claim_connection_request(one, 0.5)  # held
    assert await store.claim_connection_request(other, 0.5)  # another device's is its own
    await asyncio.sleep(0.6)
    assert await store.claim_connection_request(one, 30)  # run out: taken again
    assert not await store.claim_connection_request(one, 30)


async def test_a_claim_taken_before_the_clock_went_back_is_void(store, store_url: str) -> None:
    # An hour's step back made a claim of 30 s hold for an hour and 30 s: the router's
    # Connection Requests waited that long, logged as "another process's request".
    device = await _device(store, "CLM5")
    assert await store.claim_connection_request(device, 30)
    shift = "UPDATE cr_claims SET until = until + 3600"  # (as the clock's step back reads)
    if store_url.startswith("sqlite:///"):
        with sqlite3.connect(store_url.removeprefix("sqlite:///")) as db:
            db.execute(shift)
    else:
        conn = await asyncpg.connect(store_url)
        try:
            await conn.execute(shift)
        finally:
            await conn.close()
    assert await store.claim_connection_request(device, 30)
    assert not await store.claim_connection_request(device, 30)  # and held as any


async def test_a_claim_is_timed_by_the_database_not_by_the_process(
    store, monkeypatch: pytest.MonkeyPatch
) -> None:
    device = await _device(store, "CLM3")
    assert await store.claim_connection_request(device, 30)
    # a process whose clock is a day ahead (or set forward) does not end the claim early
    monkeypatch.setattr(clock, "now", lambda: 1e12)
    assert not await store.claim_connection_request(device, 30)


async def test_no_claim_for_a_device_that_is_not_there_and_none_left_by_a_deleted_one(
    store, store_url: str
) -> None:
    assert not await store.claim_connection_request("0" * 24, 30)
    device = await _device(store, "CLM4")
    assert await store.claim_connection_request(device, 30)
    assert await _claim_rows(store_url) == 1
    assert await store.delete_device(device)
    assert await _claim_rows(store_url) == 0


async def test_a_claim_lasts_some_time(store) -> None:
    device = await _device(store, "CLM5")
    for seconds in (0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="more than 0 seconds"):
            await store.claim_connection_request(device, seconds)


async def test_of_two_processes_claiming_at_once_exactly_one_gets_each_claim(
    store, store_url: str
) -> None:
    devices = [await _device(store, f"RACE{n}") for n in range(20)]
    other = open_store(store_url)
    await other.open()
    try:

        async def both() -> list[tuple[bool, bool]]:
            won = await asyncio.gather(
                *(s.claim_connection_request(d, 30) for d in devices for s in (store, other))
            )
            return [(won[i], won[i + 1]) for i in range(0, len(won), 2)]

        first = await both()
        assert all(a != b for a, b in first), first  # one of the two, never both, not none
        assert await both() == [(False, False)] * len(devices)  # held, whoever asks
    finally:
        await other.close()


# -- the requester --------------------------------------------------------------------------


async def _until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def test_two_processes_poked_at_once_send_one_request_and_the_later_one_after_it(
    store, store_url: str
) -> None:
    """Two changes of one router landing on two processes within the interval: the
    router is asked once, then once more when the interval is over (the second change
    may have come after its session read the first), to the URL stored by then."""
    device = await _device(store, "CRP1")
    other = open_store(store_url)
    await other.open()
    async with endpoint() as (port, hits):
        base = f"http://127.0.0.1:{port}"
        times: list[float] = []

        async def lookup(device_id: str) -> Target:
            return f"{base}/moved", "u", "p"

        requesters = [
            ConnectionRequester(
                deny=DENY_BUT_LOOPBACK, min_interval=0.8, lookup=lookup,
                claim=s.claim_connection_request,
            )
            for s in (store, other)
        ]  # fmt: skip
        for requester in requesters:
            await requester.start()
        try:
            first, second = (r.poke(device, f"{base}/cr", "u", "p") for r in requesters)
            results = await asyncio.gather(first, second)
            times.append(time.monotonic())
            assert sorted(r.ok for r in results) == [False, True]
            assert hits == ["/cr"]
            await _until(lambda: len(hits) == 2)
            assert time.monotonic() - times[0] >= 0.6
            assert hits == ["/cr", "/moved"]
            await asyncio.sleep(1.0)
            assert len(hits) == 2  # and no more
            assert sum(r.stats["skipped"] for r in requesters) == 1
        finally:
            for requester in requesters:
                await requester.close()
            await other.close()


async def test_a_change_soon_after_the_last_request_goes_one_interval_after_it(store) -> None:
    """The process that holds the claim times its next request by its own clock: that
    one must not find its own claim still held, and wait another whole interval."""
    device = await _device(store, "CRP2")
    async with endpoint() as (port, hits):
        url = f"http://127.0.0.1:{port}/cr"
        requester = ConnectionRequester(
            deny=DENY_BUT_LOOPBACK, min_interval=0.6, claim=store.claim_connection_request
        )
        await requester.start()
        try:
            first = requester.poke(device, url, "u", "p")
            assert first is not None and (await first).ok
            sent = time.monotonic()
            assert requester.poke(device, url, "u", "p") is None  # too soon: deferred
            await _until(lambda: len(hits) == 2)
            assert 0.5 <= time.monotonic() - sent < 1.0
            assert requester.stats["skipped"] == 1
        finally:
            await requester.close()


@pytest.mark.parametrize("trouble", ["fails", "hangs"])
async def test_a_store_that_cannot_claim_does_not_hold_the_request_back(trouble: str) -> None:
    """A request too many is better than a change that waits for the router's next
    periodic Inform (a day, on some networks)."""

    async def claim(device_id: str, seconds: float) -> bool:
        if trouble == "hangs":
            await asyncio.sleep(60)
        raise StoreError("database is locked")

    async with endpoint() as (port, hits):
        requester = ConnectionRequester(
            deny=DENY_BUT_LOOPBACK, min_interval=10, claim=claim, timeout=0.3
        )
        await requester.start()
        try:
            with structlog.testing.capture_logs() as logged:
                task = requester.poke("dev1", f"http://127.0.0.1:{port}/cr", "u", "p")
                assert task is not None and (await task).ok
        finally:
            await requester.close()
    assert hits == ["/cr"]
    [warning] = [e for e in logged if e["event"] == "connreq.claim_failed"]
    assert warning["log_level"] == "warning" and warning["device"] == "dev1"


# -- end to end -----------------------------------------------------------------------------

#: seconds between two Connection Requests to one router in the end-to-end tests
INTERVAL = 2.0


def _record_requests(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """When each Connection Request reached a simulated router (past its Digest check)."""
    times: list[float] = []
    original = Cpe.request_connection

    def request_connection(cpe: Cpe) -> bool:
        times.append(time.monotonic())
        return original(cpe)

    monkeypatch.setattr(Cpe, "request_connection", request_connection)
    return times


async def _changes_on_two_processes(
    monkeypatch: pytest.MonkeyPatch,
    first: Daemon,
    patch_other: Callable[[str, dict], Reply],
    world,
    mark: Callable[[], None] = lambda: None,
) -> tuple[list[float], float]:
    """A provisioned router, then two changes of it within the interval: one through
    ``first``, the other through ``patch_other(path, body)`` (another process); ``mark``
    is called just before them. The times its Connection Requests came from then on, and
    when the two changes were made."""
    times = _record_requests(monkeypatch)
    sim = Simulation(
        first.cwmp_url, ["tplink-tr181"], 1, serial_prefix="ONECR", interval=3600,
        cr_listen="127.0.0.1:0", ramp=0.01,
    )  # fmt: skip
    serial = sim.routers[0].serial
    router = sim.router(serial)
    # made before the router first calls in: provisioned in that session, with no
    # Connection Request (whose interval the changes would have to wait out)
    made = await asyncio.to_thread(
        world.api.post, "/network/device", device_body(world, "own", serial)
    )
    assert made.status == 201, made.body
    path = f"/network/device/{made.body['_id']}"

    def active() -> bool:
        return world.api.get(path).body["state"] == "ACTIVE"

    running = asyncio.create_task(sim.run(duration=60))
    try:
        await asyncio.to_thread(wait_for, active, 20)
        before = len(times)
        mark()
        changed = time.monotonic()
        one = await asyncio.to_thread(world.api.patch, path, {"wifi": {"ssid": "FirstChange"}})
        assert one.status == 200, one.body
        two = await asyncio.to_thread(patch_other, path, {"wifi": {"ssid": "SecondChange"}})
        assert two.status == 200, two.body
        assert time.monotonic() - changed < INTERVAL / 2  # (both within the interval)

        def applied() -> bool:
            return router.tree.flat()["Device.WiFi.SSID.1.SSID"] == "SecondChange"

        # The process that took the second change defers its request; once the interval
        # is over it sends it, unless the first's session applied both changes meanwhile
        # (the record is ACTIVE again: connreq.dropped).
        await asyncio.to_thread(wait_for, lambda: applied() and active(), 20)
        await asyncio.sleep(INTERVAL + 0.5)
    finally:
        sim.stop()
        await running
    return times[before:], changed


def _one_per_interval(times: list[float], changed: float) -> None:
    # one request in the interval the changes came in; the deferred one once it is over
    # (if the router still had a change to take then)
    assert len(times) >= 1, times
    assert times[0] - changed < INTERVAL / 2, times
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert all(gap >= INTERVAL - 0.3 for gap in gaps), gaps


async def test_changes_on_two_instances_within_the_interval_send_the_router_one_request(
    daemon_factory, pg_cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = pg_cluster.new_database()
    config = {"store": {"url": url}, "cwmp": {"connection_request_interval": INTERVAL}}
    first, second = daemon_factory(**config), daemon_factory(**config)
    world = build_world(first)
    other = Api(second.api_url, world.api.token)
    times, changed = await _changes_on_two_processes(monkeypatch, first, other.patch, world)
    _one_per_interval(times, changed)
    elsewhere = [e for e in second.events("connreq.deferred") if e.get("after")]
    assert elsewhere and elsewhere[0]["after"] == "another process's request"


async def test_changes_on_two_workers_within_the_interval_send_the_router_one_request(
    daemon_factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # (a short shutdown_grace: the test is not about stopping, and its stop at the end
    # took most of the default 2 s)
    daemon = start_workers(
        daemon_factory,
        top={"shutdown_grace": 0.5},
        cwmp={"connection_request_interval": INTERVAL},
    )
    world = build_world(daemon)
    since = [0]

    def mark() -> None:
        since[0] = len(daemon.lines)

    def workers_asked() -> set[int]:
        """The workers that took a change since ``mark``: each one's first Connection
        Request of it is sent (connreq.done) or deferred (connreq.deferred)."""
        asked = set()
        for line in daemon.lines[since[0] :]:
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if entry.get("event") in ("connreq.done", "connreq.deferred"):
                    asked.add(entry.get("worker"))
        return asked

    def patch_on_the_other_worker(path: str, body: dict) -> Reply:
        # The kernel hands each new connection to either worker: the same change again
        # until both workers have taken one.
        for _ in range(30):
            reply = world.api.patch(path, body)
            if workers_asked() == {0, 1}:
                return reply
        wait_for(lambda: workers_asked() == {0, 1}, 0.5)
        return reply

    times, changed = await _changes_on_two_processes(
        monkeypatch, daemon, patch_on_the_other_worker, world, mark
    )
    _one_per_interval(times, changed)
