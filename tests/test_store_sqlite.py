"""The store on both backends (SQLite's own parts on it alone): session writes, reads,
operator upserts, batching, failures, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import structlog

from acsd.ids import is_id, new_id
from acsd.store import (
    ConflictError,
    CpeIdentity,
    DeviceRecord,
    ModelRecord,
    RecordDeletedError,
    SessionResult,
    SqliteStore,
    StaleResultError,
    StoreClosedError,
)
from conftest import sqlite_only


def session(serial: str, at: float = 1000.0, **kw: Any) -> SessionResult:
    identity = kw.pop(
        "identity",
        CpeIdentity(
            oui="00D09E",
            product_class="HG8245",
            serial_number=serial,
            manufacturer="Acme",
            model_name="HG8245H",
            software_version="1.0",
            hardware_version="A",
        ),
    )
    return SessionResult(identity=identity, at=at, **kw)


# -- session writes -------------------------------------------------------------------------


async def test_first_session_registers_the_cpe(store: SqliteStore) -> None:
    device_id = await store.save_session(
        session(
            "ABC123",
            at=1000.0,
            remote_ip="203.0.113.7",
            params={"Device.DeviceInfo.UpTime": ["42", "xsd:unsignedInt"]},
            status={"lanIp": "192.168.1.1"},
            mac_address="00:11:22:AA:BB:CC",
            profile="tr181",
            periodic_interval=300,
            connection_request_url="http://203.0.113.1:7547/cr",
            absent_paths=["Device.X_FOO."],
        )
    )
    assert is_id(device_id)
    rec = await store.get_device(device_id)
    assert rec is not None
    assert rec.id == device_id
    assert rec.serial_number == "ABC123"
    assert (rec.oui, rec.product_class, rec.manufacturer) == ("00D09E", "HG8245", "Acme")
    assert (rec.model_name, rec.software_version, rec.hardware_version) == ("HG8245H", "1.0", "A")
    assert (rec.state, rec.revision, rec.jobs) == ("ACTIVE", 0, 0)
    assert rec.created == rec.updated == rec.last_inform == 1000.0
    assert rec.public_ip == "203.0.113.7"
    assert await store.device_params(rec.id) == {
        "Device.DeviceInfo.UpTime": ["42", "xsd:unsignedInt"]
    }
    assert rec.status == {"lanIp": "192.168.1.1"}
    assert rec.mac_address == "001122AABBCC"  # as the seed writes MACs
    assert rec.mac_from_router
    assert rec.profile == "tr181"
    assert rec.periodic_interval == 300
    assert rec.connection_request_url == "http://203.0.113.1:7547/cr"
    assert rec.absent_paths == ["Device.X_FOO."]
    assert rec.wifi is None and rec.dhcp is None
    # Found by serial in any case, and by MAC in any notation.
    assert (await store.get_device("abc123")) == rec
    assert (await store.find_device_for_cpe("aBc123")) == rec
    assert (await store.find_device_for_cpe("OTHER", "00-11-22-aa-bb-cc")) == rec
    assert (await store.find_device_for_cpe("OTHER", "0011.22aa.bbcc")) == rec
    assert (await store.find_device_for_cpe("OTHER", "00:11:22:aa:bb:cd")) is None
    assert (await store.find_device_for_cpe("OTHER")) is None


async def test_second_session_updates_the_same_row(store: SqliteStore) -> None:
    first = await store.save_session(
        session(
            "ABC123",
            at=1000.0,
            remote_ip="203.0.113.7",
            params={"A": ["1", "xsd:string"], "B": ["2", "xsd:string"]},
            status={"lanIp": "192.168.1.1", "upTime": 5},
            mac_address="00:11:22:aa:bb:cc",
            profile="tr181",
            periodic_interval=300,
            absent_paths=["X."],
        )
    )
    # Another case of the same serial, no device id, values that were not reported as None.
    ident = CpeIdentity(oui="00D09F", product_class="HG8245", serial_number="abc123")
    second = await store.save_session(
        session(
            "abc123",
            at=2000.0,
            identity=ident,
            remote_ip="198.51.100.9",
            params={"B": ["3", "xsd:string"], "C": ["4", None]},
            status={"wanIp": "100.64.0.2"},
        )
    )
    assert second == first
    assert await store.count_devices() == 1
    rec = await store.get_device(first)
    assert rec is not None
    assert rec.serial_number == "ABC123"  # kept as first given
    assert rec.oui == "00D09F"  # identity replaced
    assert rec.manufacturer == ""  # replaced (CpeIdentity's default)
    assert (rec.model_name, rec.software_version) == ("HG8245H", "1.0")  # None: kept
    merged = {"A": ["1", "xsd:string"], "B": ["3", "xsd:string"], "C": ["4", None]}
    assert await store.device_params(rec.id) == merged
    assert rec.status == {"wanIp": "100.64.0.2"}  # replaced, not merged
    assert rec.public_ip == "198.51.100.9"
    assert rec.last_inform == 2000.0 and rec.updated == 2000.0 and rec.created == 1000.0
    assert rec.mac_address == "001122AABBCC"
    assert (rec.profile, rec.periodic_interval, rec.absent_paths) == ("tr181", 300, ["X."])

    # Bound by id this time; absent paths replaced when given.
    third = await store.save_session(
        session("ABC123", at=3000.0, device_id=first, absent_paths=["Y."], params={})
    )
    assert third == first
    rec = await store.get_device("ABC123")
    assert rec is not None
    assert rec.absent_paths == ["Y."]
    assert await store.device_params(rec.id) == merged  # empty result params change nothing
    assert rec.last_inform == 3000.0


async def test_bootstrap_resets_params(store: SqliteStore) -> None:
    dev = await store.save_session(
        session("S1", params={"A": ["1", None], "B": ["2", None]}, absent_paths=["X."])
    )
    await store.save_session(
        session("S1", at=2000.0, device_id=dev, events=["0 BOOTSTRAP"], reset_params=True)
    )
    rec = await store.get_device(dev)
    assert rec is not None
    assert await store.device_params(rec.id) == {} and rec.absent_paths == []

    await store.save_session(session("S1", at=3000.0, params={"A": ["1", None]}))
    await store.save_session(
        session("S1", at=4000.0, reset_params=True, params={"C": ["3", None]}, absent_paths=["Z"])
    )
    rec = await store.get_device(dev)
    assert rec is not None
    assert await store.device_params(rec.id) == {"C": ["3", None]}
    assert rec.absent_paths == ["Z"]


async def test_a_result_of_many_values_merges_into_the_stored_tree_as_a_small_one_does(
    store: SqliteStore,
) -> None:
    """Results of many values are merged key by key (json_patch took seconds per 10k
    values over a large tree); what is stored must be what json_patch stored."""
    from acsd.store.writes import MERGE_BY_KEY_FROM

    many = MERGE_BY_KEY_FROM * 2
    odd = {  # names and values that JSON escapes, or that look like JSON themselves
        'X_Q"uote\\d': ['say "hi"\\', "xsd:string"],
        "X_Café.Naïve": ["ü€😀", "xsd:string"],
        "X_Json": ['{"a": [1]}', None],
        "X_Empty": ["", "xsd:boolean"],
    }
    stored = {f"Device.Hosts.Host.{n}.HostName": [f"old{n}", "xsd:string"] for n in range(many)}
    dev = await store.save_session(session("WIDE", params=stored | odd, reset_params=True))
    # half of the result changes stored leaves, half is new; odd leaves change too
    result = {
        f"Device.Hosts.Host.{n}.HostName": [f"new{n}", "xsd:string"]
        for n in range(many // 2, many + many // 2)
    }
    result |= {name: [value + "!", kind] for name, (value, kind) in odd.items()}
    assert len(result) >= MERGE_BY_KEY_FROM
    # another router's large result in the same batch: each merges its own values
    other = await store.save_session(session("WIDE2", params=stored, reset_params=True))
    await asyncio.gather(
        store.save_session(session("WIDE", at=2000.0, device_id=dev, params=result)),
        store.save_session(session("WIDE2", at=2000.0, device_id=other, params=stored | odd)),
    )
    assert store.stats.last_batch == 2
    assert await store.device_params(dev) == stored | odd | result
    assert await store.device_params(other) == stored | odd
    # and a small result over what the large one stored (json_patch)
    small = {"X_Json": ["[]", "xsd:string"], "Device.Hosts.Host.0.HostName": ["x", None]}
    await store.save_session(session("WIDE", at=3000.0, device_id=dev, params=small))
    assert await store.device_params(dev) == stored | odd | result | small


async def test_session_bound_by_mac_keeps_the_operator_record(store: SqliteStore) -> None:
    op = await store.upsert_device(
        DeviceRecord(id="", serial_number="OP-0001", mac_address="00:11:22:33:44:55", name="Shop")
    )
    found = await store.find_device_for_cpe("CPE-SERIAL", "00-11-22-33-44-55")
    assert found is not None and found.id == op.id
    dev = await store.save_session(
        session("CPE-SERIAL", device_id=op.id, params={"A": ["1", None]}, status={"x": 1})
    )
    assert dev == op.id
    assert await store.count_devices() == 1
    rec = await store.get_device(op.id)
    assert rec is not None
    assert (rec.serial_number, rec.name, rec.status) == ("OP-0001", "Shop", {"x": 1})
    assert rec.oui == "00D09E"


async def test_one_mac_two_records_in_one_batch_goes_to_the_first_only(
    store: SqliteStore,
) -> None:
    """Two records the operator made without a MAC, whose routers report the same one
    (a cloned MAC) in sessions the writer commits in one batch: the first fills its
    record in, and for the second the MAC is taken, as when they come apart. The MAC's
    key is written after the upsert (not in its SET): the second must see it at once."""
    one, two = [
        await store.upsert_device(DeviceRecord(id="", serial_number=serial))
        for serial in ("CLONE-1", "CLONE-2")
    ]
    mac = "02:00:5E:10:00:01"
    saved = await asyncio.gather(
        *[
            store.save_session(session(rec.serial_number, device_id=rec.id, mac_address=mac))
            for rec in (one, two)
        ]
    )
    assert saved == [one.id, two.id]
    assert store.stats.last_batch == 2  # one batch: else this test proves nothing
    first, second = [await store.get_device(rec.id) for rec in (one, two)]
    assert first is not None and second is not None
    assert (first.mac_address, first.mac_from_router) == ("02005E100001", True)
    assert (second.mac_address, second.mac_from_router) == (None, False)
    found = await store.find_device_for_cpe("NEITHER", "02-00-5e-10-00-01")
    assert found is not None and found.id == one.id
    # Later sessions of both leave it so: the MAC stays the first record's.
    await store.save_session(session("CLONE-2", device_id=two.id, at=2000.0, mac_address=mac))
    again = await store.get_device(two.id)
    assert again is not None and again.mac_address is None


async def test_session_for_a_vanished_record_registers_by_serial(store: SqliteStore) -> None:
    ghost = new_id()
    dev = await store.save_session(session("NEW1", device_id=ghost))
    assert dev != ghost and is_id(dev)
    assert (await store.get_device("new1")) is not None


async def test_racing_first_informs_land_on_one_row(store: SqliteStore) -> None:
    ids = await asyncio.gather(
        *[store.save_session(session(s, at=1000.0 + i)) for i, s in enumerate(["Z9", "z9", "Z9"])]
    )
    assert len(set(ids)) == 1
    assert await store.count_devices() == 1
    rec = await store.get_device("Z9")
    assert rec is not None and rec.last_inform == 1002.0


async def test_empty_serial_is_refused(store: SqliteStore) -> None:
    with pytest.raises(ValueError, match="serial_number is empty"):
        await store.save_session(session(""))


# -- reads ----------------------------------------------------------------------------------


async def test_list_and_count(store: SqliteStore) -> None:
    for serial in ["c3", "A1", "b2", "D4"]:
        await store.save_session(session(serial))
    assert await store.count_devices() == 4
    listed = await store.list_devices()
    assert [r.serial_number for r in listed] == ["A1", "b2", "c3", "D4"]
    page = await store.list_devices(limit=2, offset=1)
    assert [r.serial_number for r in page] == ["b2", "c3"]
    assert await store.list_devices(limit=10, offset=10) == []
    assert await store.get_device("nope") is None
    assert await store.get_device(new_id()) is None


async def test_get_device_by_hex_serial(store: SqliteStore) -> None:
    serial = "ABCDEF0123456789ABCDEF01"  # looks like an id
    dev = await store.save_session(session(serial))
    rec = await store.get_device(serial.lower())
    assert rec is not None and rec.id == dev


async def test_get_device_by_id_in_any_case(store: SqliteStore) -> None:
    dev = await store.save_session(session("CASE0001"))
    rec = await store.get_device(dev.upper())
    assert rec is not None and rec.id == dev


# -- operator upserts -----------------------------------------------------------------------


async def test_upsert_creates_and_updates_operator_fields(store: SqliteStore) -> None:
    created = await store.upsert_device(
        DeviceRecord(
            id="",
            serial_number="HWTC1234",
            mac_address="AA:BB:CC:00:11:22",
            name="Kiosk",
            customer="c1",
            wifi={"ssid": "Shop", "password": "x"},
            dhcp={"pool_start": "192.168.1.100"},
            state="PROVISIONING",
            revision=1,
        )
    )
    assert is_id(created.id)
    assert created.created > 0 and created.updated == created.created
    assert created.wifi == {"ssid": "Shop", "password": "x"}
    assert created.status == {} and await store.device_params(created.id) == {}

    # The CPE informs, then the operator edits by serial (other case, stale copy).
    await store.save_session(
        session("hwtc1234", device_id=created.id, params={"A": ["1", None]}, status={"up": 1})
    )
    edited = await store.upsert_device(
        DeviceRecord(
            id="",
            serial_number="HWTC1234",
            name="Kiosk 2",
            wifi={"ssid": "Shop2"},
            revision=2,
            status={"stale": True},
            params={},
        )
    )
    assert edited.id == created.id
    assert (edited.name, edited.wifi, edited.revision) == ("Kiosk 2", {"ssid": "Shop2"}, 2)
    assert edited.mac_address is None and edited.dhcp is None  # operator fields replaced
    assert edited.customer is None
    assert edited.status == {"up": 1}  # the CPE's kept
    assert await store.device_params(edited.id) == {"A": ["1", None]}
    assert edited.created == created.created
    assert await store.count_devices() == 1


async def test_upsert_by_id_renames_and_conflicts(store: SqliteStore) -> None:
    a = await store.upsert_device(DeviceRecord(id="", serial_number="A"))
    b = await store.upsert_device(DeviceRecord(id="", serial_number="B"))
    renamed = await store.upsert_device(DeviceRecord(id=a.id, serial_number="A2"))
    assert renamed.id == a.id and renamed.serial_number == "A2"
    assert await store.get_device("a") is None
    with pytest.raises(ConflictError, match="already belongs"):
        await store.upsert_device(DeviceRecord(id=a.id, serial_number="b"))
    assert (await store.get_device(b.id)) == b
    chosen = new_id()
    c = await store.upsert_device(DeviceRecord(id=chosen, serial_number="C"))
    assert c.id == chosen


# -- batching -------------------------------------------------------------------------------


async def test_concurrent_sessions_are_batched(store: SqliteStore) -> None:
    before = store.stats.batches
    ids = await asyncio.gather(
        *[
            store.save_session(session(f"CPE{i:04d}", params={"A": [str(i), None]}))
            for i in range(200)
        ]
    )
    assert len(set(ids)) == 200
    assert await store.count_devices() == 200
    batches = store.stats.batches - before
    assert 1 <= batches <= 5, batches
    assert store.stats.writes == 200
    assert store.stats.largest_batch >= 40
    assert sum(store.stats.batch_sizes.values()) == store.stats.batches
    rec = await store.get_device("cpe0123")
    assert rec is not None and await store.device_params(rec.id) == {"A": ["123", None]}


async def test_batch_size_is_capped(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path / "cap.db", max_batch=10)
    await s.open()
    try:
        await asyncio.gather(*[s.save_session(session(f"S{i}")) for i in range(95)])
        assert s.stats.largest_batch == 10
        assert s.stats.batches >= 10
        assert await s.count_devices() == 95
    finally:
        await s.close()


async def test_unencodable_item_fails_alone(store: SqliteStore) -> None:
    results = await asyncio.gather(
        *[
            store.save_session(session(f"J{i}", params={"A": [object() if i == 7 else "ok", None]}))
            for i in range(20)
        ],
        store.save_session(session("NAN", status={"signal": float("nan")})),
        return_exceptions=True,
    )
    assert isinstance(results[7], TypeError)
    assert isinstance(results[-1], ValueError)
    assert sum(isinstance(r, str) for r in results) == 19
    assert await store.count_devices() == 19


async def test_item_failing_inside_the_transaction_fails_alone(store: SqliteStore) -> None:
    # An integer SQLite cannot hold fails while the batch's statement runs: that save is
    # undone alone (its savepoint) and the rest of the batch commits, not replayed one
    # write at a time.
    results = await asyncio.gather(
        *[
            store.save_session(session(f"O{i}", periodic_interval=2**70 if i == 3 else 60))
            for i in range(30)
        ],
        return_exceptions=True,
    )
    assert isinstance(results[3], (OverflowError, asyncpg.DataError))
    assert all(isinstance(r, str) for i, r in enumerate(results) if i != 3)
    assert await store.count_devices() == 29
    assert store.stats.fallbacks == 0
    assert store.stats.failed == 1


async def test_a_failing_save_fails_alone_and_a_later_result_of_its_cpe_still_counts(
    store: SqliteStore,
) -> None:
    """A save that fails inside the batch's transaction is undone alone (its savepoint):
    the batch is not replayed one write at a time, and a later result of the same CPE in
    that batch is judged against what is stored, not against the save that failed."""
    dev = await store.save_session(session("TWICE", at=1000.0))
    results = await asyncio.gather(
        store.save_session(
            session("TWICE", at=2000.0, device_id=dev, since=1000.0, periodic_interval=2**70)
        ),
        # read the record before the first's commit, as the first did
        store.save_session(session("TWICE", at=3000.0, device_id=dev, since=1000.0)),
        *[store.save_session(session(f"PEER{i}", at=2000.0)) for i in range(10)],
        return_exceptions=True,
    )
    assert isinstance(results[0], (OverflowError, asyncpg.DataError))
    assert results[1] == dev
    assert all(isinstance(r, str) for r in results[2:])
    record = await store.get_device(dev)
    assert record is not None and record.last_inform == 3000.0
    assert await store.count_devices() == 11
    assert store.stats.fallbacks == 0
    assert store.stats.failed == 1


@sqlite_only
async def test_a_tree_that_is_no_json_is_rebuilt_by_its_session(
    store: SqliteStore, tmp_path: Path
) -> None:
    # This test once expected the damaged row's save to fail (and only it): every session
    # of that router then failed for ever, and only an operator with sqlite3 could end it.
    # The stored tree is what the router last reported, so its next session rebuilds it:
    # the save now goes on, merging over an empty tree, with one warning.
    ids = await asyncio.gather(*[store.save_session(session(f"R{i}")) for i in range(5)])
    with sqlite3.connect(tmp_path / "acsd.db", isolation_level=None) as db:
        db.execute("UPDATE devices SET params = '{broken' WHERE id = ?", (ids[2],))
    with structlog.testing.capture_logs() as logs:
        results = await asyncio.gather(
            *[
                store.save_session(
                    session(f"R{i}", at=2000.0, device_id=d, params={"A": ["1", None]})
                )
                for i, d in enumerate(ids)
            ],
            return_exceptions=True,
        )
        assert await store.device_params(ids[2]) == {"A": ["1", None]}
    assert results == ids
    for d in ids:
        rec = await store.get_device(d)
        assert rec is not None and rec.last_inform == 2000.0
    warned = [e for e in logs if e["event"] == "store_column_damaged"]
    assert [(e["record"], e["column"], e["found"]) for e in warned] == [
        (ids[2], "params", "invalid JSON")
    ]
    assert not [e for e in logs if e["event"] == "store_write_failed"]


async def test_cancelled_caller_write_is_still_committed(store: SqliteStore) -> None:
    task = asyncio.create_task(store.save_session(session("CANCEL1")))
    await asyncio.sleep(0)  # queued
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await store.save_session(session("AFTER"))  # FIFO: the cancelled one went first
    assert await store.get_device("cancel1") is not None


# -- shutdown -------------------------------------------------------------------------------


async def test_close_flushes_queued_writes(tmp_path: Path) -> None:
    path = tmp_path / "flush.db"
    s = SqliteStore(path, max_batch=50)
    await s.open()
    tasks = [asyncio.create_task(s.save_session(session(f"F{i}"))) for i in range(700)]
    await asyncio.sleep(0)  # every task has queued its write; none has committed yet
    assert s.queue_depth > 0
    await s.close()
    ids = await asyncio.gather(*tasks)
    assert len(set(ids)) == 700

    again = SqliteStore(path)
    await again.open()
    try:
        assert await again.count_devices() == 700
    finally:
        await again.close()


async def test_writes_after_close_are_refused(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path / "closed.db")
    with pytest.raises(StoreClosedError, match="not open"):
        await s.save_session(session("EARLY"))
    await s.open()
    assert await s.ping()
    await asyncio.gather(s.close(), s.close())
    await s.close()  # idempotent
    assert not await s.ping()
    with pytest.raises(StoreClosedError, match="closed"):
        await s.save_session(session("LATE"))
    with pytest.raises(StoreClosedError):
        await s.upsert_device(DeviceRecord(id="", serial_number="LATE"))
    with pytest.raises(StoreClosedError):
        await s.get_device("LATE")


# -- concurrency with readers and other processes ------------------------------------------


class _Locked:
    """A connection that finds the database locked, as SQLite reports it (with its extended
    code) while another process rebuilds a crashed worker's WAL index: a state no connection
    of this test can cause while the store's own are open."""

    def __init__(self, code: int) -> None:
        self.code = code
        self.calls = 0

    def execute(self, *_args: object) -> None:
        self.calls += 1
        exc = sqlite3.OperationalError("database is locked")
        exc.sqlite_errorcode = self.code
        raise exc

    def close(self) -> None:
        pass


@pytest.mark.parametrize(
    "code", [sqlite3.SQLITE_BUSY, 261, sqlite3.SQLITE_LOCKED]
)  # 261: ..._RECOVERY
@sqlite_only
async def test_a_lookup_the_loop_cannot_make_now_goes_through_the_reader(
    store: SqliteStore, code: int
) -> None:
    # Lookups by key are read on the event loop, never waiting for a lock there: a locked
    # database sends them to the reader's thread, which waits (busy_timeout) and answers.
    await store.save_session(session("LOCKED1"))
    await store.create_model(ModelRecord(id="m-locked", name="Locked", type="ROUTER"))
    real, store._lookup = store._lookup, _Locked(code)
    try:
        found = await store.find_device_for_cpe("locked1")
        assert found is not None and found.serial_number == "LOCKED1"
        assert store._lookup.calls == 1
        # so are records by key (a model, an API token by its hash)
        model = await store.get_model("m-locked")
        assert model is not None and model.name == "Locked"
        assert store._lookup.calls == 2
    finally:
        store._lookup = real


async def test_a_store_closing_while_another_process_writes_skips_its_optimize(tmp_path):
    # The workers of a service stop together, and one that met another's write lock warned
    # store_optimize_failed at every stop: best-effort statistics another process keeps.
    path = tmp_path / "busy.db"
    s = SqliteStore(path)
    await s.open()
    for i in range(50):
        await s.save_session(session(f"OPTIMIZE{i}"))
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with structlog.testing.capture_logs() as logged:
            await s.close()
    finally:
        other.execute("ROLLBACK")
        other.close()
    events = {e["event"]: e for e in logged}
    assert "store_optimize_failed" not in events, events
    assert events["store_optimize_skipped"]["log_level"] == "info"


async def test_a_lookup_sees_what_the_writer_committed(store: SqliteStore) -> None:
    # the loop's own connection reads the latest commit, as the reader's thread does
    for i in range(20):
        await store.save_session(session("FRESH1", at=1000.0 + i, remote_ip=f"192.0.2.{i}"))
        found = await store.find_device_for_cpe("FRESH1")
        assert found is not None and found.public_ip == f"192.0.2.{i}"


async def test_readers_run_while_the_writer_commits(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    writer = SqliteStore(path)
    await writer.open()
    other = SqliteStore(path)  # e.g. the operator CLI, with its own connections
    await other.open()

    seen: list[int] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def poll() -> None:
        # A plain sqlite3 reader in another thread: in WAL it reads while the writer
        # commits (the timeout only covers WAL recovery, not ordinary writes).
        try:
            db = sqlite3.connect(path, timeout=5, isolation_level=None)
            while not done.is_set():
                seen.append(db.execute("SELECT count(*) FROM devices").fetchone()[0])
            db.close()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=poll)
    thread.start()
    try:
        counts: list[int] = []
        for round_ in range(10):
            await asyncio.gather(
                *[writer.save_session(session(f"W{round_}-{i}")) for i in range(200)],
                # the second store writes into the same file at the same time
                other.upsert_device(DeviceRecord(id="", serial_number=f"OP{round_}")),
            )
            counts.append(await other.count_devices())
            assert await other.get_device(f"w{round_}-199") is not None
    finally:
        done.set()
        thread.join()
        await other.close()
        await writer.close()
    assert not errors
    assert counts == [201 * (r + 1) for r in range(10)]
    assert seen and seen == sorted(seen)  # never goes back
    assert len(seen) > 10  # the thread really read while writes were going on


async def test_a_session_look_up_leaves_tree_and_status_out_and_reads_the_tree_on_demand(
    store: SqliteStore,
) -> None:
    tree = {"A": ["1", "xsd:string"], "B.C": ["2", None]}
    plan = {"profile": "tr181", "reads": "x", "paths": ["A"], "refs": {}, "at": 1000.0}
    device_id = await store.save_session(
        session(
            "LEAN01",
            params=tree,
            status={"upTime": 5},
            reset_params=True,
            read_plan=plan,
            sim={"imsi": "001"},
        )
    )
    lean = await store.find_device_for_cpe("lean01", for_session=True)
    assert lean is not None and lean.id == device_id
    assert lean.params == {} and lean.status == {}
    assert (lean.read_plan, lean.sim) == (plan, {"imsi": "001"})
    assert await store.device_params(device_id) == tree
    assert await store.device_params("0" * 24) == {}
    # A later session without a plan or SIM numbers keeps the stored ones.
    await store.save_session(session("LEAN01", params={"A": ["3", None]}))
    again = await store.get_device(device_id)
    assert again is not None and (again.read_plan, again.sim) == (plan, {"imsi": "001"})
    assert await store.device_params(device_id) == {"A": ["3", None], "B.C": ["2", None]}


# -- checkpoints -------------------------------------------------------------------------------


def _in_database_file(path: Path, serial: str) -> bool:
    """Whether the row is in the database file itself, not just in its WAL: ``immutable``
    makes SQLite read the file alone."""
    db = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        row = db.execute("SELECT 1 FROM devices WHERE serial_number = ?", (serial,)).fetchone()
    except sqlite3.DatabaseError:  # not even the schema yet, or caught mid-checkpoint
        return False
    finally:
        db.close()
    return row is not None


async def test_commits_reach_the_database_file_without_the_writer_checkpointing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ckpt.db"
    s = SqliteStore(path, checkpoint_interval=0.05)
    await s.open()
    try:
        # The writer never checkpoints itself: that would stall the sessions waiting for
        # its commit while it copies and fsyncs pages.
        conn = sqlite3.connect(path)
        assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000  # a new one's
        conn.close()
        writer_setting = await s._writer_conn.execute_fetchall("PRAGMA wal_autocheckpoint")
        assert next(iter(writer_setting))[0] == 0

        await s.save_session(session("CKPT1"))
        assert (tmp_path / "ckpt.db-wal").stat().st_size > 0
        for _ in range(100):
            if _in_database_file(path, "CKPT1"):
                break
            await asyncio.sleep(0.05)
        assert _in_database_file(path, "CKPT1"), "the background checkpoint never ran"
    finally:
        await s.close()
    assert not (tmp_path / "ckpt.db-wal").exists()  # closing checkpoints the rest


async def test_the_wal_stays_bounded_under_writes_that_never_pause(tmp_path: Path) -> None:
    # A passive checkpoint never finds the WAL idle while sessions keep committing, and
    # SQLite only starts the file over after one did: without a restart now and then the
    # WAL grew by gigabytes under the steady benchmark.
    path = tmp_path / "busy.db"
    s = SqliteStore(path, checkpoint_interval=0.05, wal_limit=256 * 1024)
    await s.open()
    tree = {f"Device.X.{i}.Value": ["v" * 50, "xsd:string"] for i in range(100)}
    stop = asyncio.get_running_loop().time() + 3.0
    largest = 0

    async def writer(k: int) -> None:
        n = 0
        while asyncio.get_running_loop().time() < stop:
            await s.save_session(session(f"BUSY{k}-{n % 20}", params=tree, reset_params=True))
            n += 1

    async def watch() -> None:
        nonlocal largest
        wal = tmp_path / "busy.db-wal"
        while asyncio.get_running_loop().time() < stop:
            await asyncio.sleep(0.02)
            if wal.exists():
                largest = max(largest, wal.stat().st_size)

    try:
        await asyncio.gather(watch(), *(writer(k) for k in range(16)))
        assert s.stats.writes > 1000
        assert 0 < largest < 24 * 1024 * 1024, f"the WAL grew to {largest} bytes"
    finally:
        await s.close()


def _thread_nice() -> dict[int, int]:
    """This process's threads and their nice values (Linux keeps one per thread)."""
    out = {}
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(FileNotFoundError):  # a thread that just ended
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            out[int(task.name)] = int(fields[16])
    return out


@pytest.mark.parametrize("nicer", [10, 0])
async def test_the_writer_and_checkpointer_threads_give_way_to_the_event_loop(
    tmp_path: Path, nicer: int
) -> None:
    before = _thread_nice()
    mine = before[threading.get_native_id()]
    s = SqliteStore(tmp_path / "nice.db", background_nice=nicer)
    await s.open()
    try:
        new = {tid: nice for tid, nice in _thread_nice().items() if tid not in before}
        # three connections, a thread each: the writer and the checkpointer are niced, the
        # reader (a session's look-up waits for it) and the event loop's thread are not
        assert sorted(new.values()) == sorted([mine, mine + nicer, mine + nicer])
        assert _thread_nice()[threading.get_native_id()] == mine
        await s.save_session(session("NICE1"))  # and it still writes
        assert (await s.find_device_for_cpe("NICE1")) is not None
    finally:
        await s.close()


async def test_a_result_older_than_the_last_committed_session_is_dropped(store: SqliteStore):
    device_id = await store.save_session(session("REBOOT1", at=1000.0, status={"upTime": 5}))
    # Two sessions read the record (last_inform 1000): the first, cut by a reboot, ends
    # at its timeout after the second (the one after the reboot) committed.
    newer = session("REBOOT1", at=1100.0, device_id=device_id, since=1000.0,
                    status={"upTime": 30})  # fmt: skip
    older = session("REBOOT1", at=1160.0, device_id=device_id, since=1000.0,
                    status={"upTime": 99999})  # fmt: skip
    assert await store.save_session(newer) == device_id
    with pytest.raises(StaleResultError):
        await store.save_session(older)
    record = await store.get_device(device_id)
    assert record is not None and record.status == {"upTime": 30}
    assert record.last_inform == 1100.0
    # In one batch the same: the first in the queue wins, the other sees its commit.
    again = [
        session("REBOOT1", at=1200.0 + n, device_id=device_id, since=1100.0, status={"upTime": n})
        for n in (1, 2)
    ]
    results = await asyncio.gather(*(store.save_session(r) for r in again),
                                   return_exceptions=True)  # fmt: skip
    assert results[0] == device_id and isinstance(results[1], StaleResultError)
    record = await store.get_device(device_id)
    assert record is not None and record.status == {"upTime": 1} and record.last_inform == 1201.0
    # Not a failure of the store: counted apart.
    assert store.stats.failed == 0 and store.stats.stale == 2


async def test_a_parked_session_is_claimed_by_address_only_when_it_is_the_only_one(
    store: SqliteStore,
) -> None:
    await store.park_session("w0.a", b"A", "192.0.2.10")
    await store.park_session("w0.k", b"K")  # a CPE that keeps cookies: no address
    assert await store.claim_session_from("192.0.2.99") is None
    assert await store.claim_session_from("192.0.2.10") == b"A"
    assert await store.claim_session_from("192.0.2.10") is None  # taken
    # Two CPEs behind one address: neither is handed out by address, both by cookie.
    await store.park_session("w1.b", b"B", "198.51.100.7")
    await store.park_session("w1.c", b"C", "198.51.100.7")
    assert await store.claim_session_from("198.51.100.7") is None
    assert await store.claim_session("w1.b") == b"B"
    assert await store.claim_session_from("198.51.100.7") == b"C"
    assert await store.claim_session("w0.k") == b"K"


@sqlite_only
async def test_a_parked_session_is_touched_as_it_would_be_claimed(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from acsd import clock

    monkeypatch.setattr(clock, "now", lambda: 1000.0)
    await store.park_session("w0.a", b"A", "192.0.2.10")
    await store.park_session("w1.b", b"B", "198.51.100.7")
    await store.park_session("w1.c", b"C", "198.51.100.7")
    monkeypatch.setattr(clock, "now", lambda: 1004.0)
    assert await store.touch_parked(session_id="w1.b")
    assert await store.touch_parked(remote_ip="192.0.2.10")
    # Two CPEs behind one address: an upload from it could be either's.
    assert not await store.touch_parked(remote_ip="198.51.100.7")
    assert not await store.touch_parked(session_id="stale")
    monkeypatch.setattr(clock, "now", lambda: 1005.0)
    assert await store.parked_sessions(older_than=3.0) == ["w1.c"]
    assert sorted(await store.parked_sessions()) == ["w0.a", "w1.b", "w1.c"]


async def test_a_session_of_the_router_a_record_was_moved_from_is_dropped(
    store: SqliteStore,
) -> None:
    """PATCH serialNumber while the old router is in its first session on the record (so
    no last_inform to tell it by): its report must not land on the moved record, or acsd
    would send the new router's Connection Requests to the old one."""
    record = await store.upsert_device(
        DeviceRecord(id="", serial_number="OLD1", customer="c" * 24, name="shop")
    )
    in_flight = session(
        "OLD1", at=2000.0, device_id=record.id, since=record.last_inform,
        bound_serial=record.serial_number, connection_request_url="http://198.51.100.9/cr",
    )  # fmt: skip
    moved = await store.get_device(record.id)
    assert moved is not None
    moved.serial_number = "NEW1"
    await store.write_device(moved, expect=record, new_router=True)
    with pytest.raises(StaleResultError, match="moved to another router"):
        await store.save_session(in_flight)
    after = await store.get_device(record.id)
    assert after is not None
    assert (after.serial_number, after.connection_request_url) == ("NEW1", None)


async def test_a_store_whose_writer_is_gone_is_not_ready(tmp_path: Path) -> None:
    # Every write would be refused: /readyz (ping) must say so, whatever reads still do.
    s = SqliteStore(tmp_path / "writerless.db")
    await s.open()
    try:
        assert await s.ping()
        assert s._writer_task is not None
        s._writer_task.cancel()
        await asyncio.gather(s._writer_task, return_exceptions=True)
        assert not await s.ping()
    finally:
        await s.close()


async def test_a_save_says_when_the_operator_changed_the_record_during_the_session(
    store: SqliteStore,
) -> None:
    """A result for a revision the record no longer has is written (the CPE's report) and
    says so, so that the session's end asks the router to call in for the newer one; a
    result for the record's revision, or of a session without a record, says nothing."""
    record = await store.upsert_device(
        DeviceRecord(id="", serial_number="MOVED1", customer="c" * 24,
                     wifi={"ssid": "one"}, revision=1, state="PROVISIONING", jobs=1)
    )  # fmt: skip

    def result(at: float, since: float | None) -> SessionResult:
        return session(
            "MOVED1", at=at, device_id=record.id, since=since,
            bound_serial=record.serial_number, revision=1, state="ACTIVE", jobs=0,
        )  # fmt: skip

    held = result(1000.0, None)
    assert await store.save_session(held) == record.id
    assert held.revision_moved is False
    record.wifi, record.revision = {"ssid": "two"}, 2
    await store.upsert_device(record)
    late = result(1100.0, 1000.0)
    assert await store.save_session(late) == record.id
    assert late.revision_moved is True
    after = await store.get_device(record.id)
    assert after is not None and (after.state, after.revision) == ("PROVISIONING", 2)
    first = session("MOVED2", at=1000.0)
    await store.save_session(first)
    assert first.revision_moved is False


async def test_a_result_of_a_deleted_record_does_not_mark_a_new_records_settings_applied(
    store: SqliteStore,
) -> None:
    """The operator deletes a record during its router's first session (never seen: it
    goes at once) and creates the serial again with other settings. The session's result,
    for the record that is gone, must not settle the new record's job: its revision
    guard was for the old record's counter, which the new one restarts."""
    old = await store.upsert_device(
        DeviceRecord(id="", serial_number="GONE1", customer="c" * 24,
                     wifi={"ssid": "old"}, revision=1, state="PROVISIONING", jobs=1)
    )  # fmt: skip
    in_flight = session(
        "GONE1", at=3000.0, device_id=old.id, since=old.last_inform,
        bound_serial=old.serial_number, revision=1, state="ACTIVE", jobs=0,
        provisioning={"appliedRevision": 1},
    )  # fmt: skip
    assert await store.delete_device(old.id)
    new = await store.upsert_device(
        DeviceRecord(id="", serial_number="GONE1", customer="d" * 24,
                     wifi={"ssid": "new"}, revision=1, state="PROVISIONING", jobs=1)
    )  # fmt: skip
    with contextlib.suppress(StaleResultError):
        await store.save_session(in_flight)
    after = await store.get_device(new.id)
    assert after is not None
    assert (after.state, after.jobs, after.revision) == ("PROVISIONING", 1, 1)
    assert after.provisioning.get("appliedRevision") != 1


async def test_a_result_of_a_record_deleted_during_its_session_does_not_make_it_again(
    store: SqliteStore,
) -> None:
    """The operator deletes a record during its router's first session (never seen: it
    goes at once) and makes none of its serial again: the session's result is dropped,
    not written as a record of the serial (a later Inform registers the router)."""
    old = await store.upsert_device(
        DeviceRecord(id="", serial_number="GONE2", customer="c" * 24,
                     wifi={"ssid": "old"}, revision=1, state="PROVISIONING", jobs=1)
    )  # fmt: skip
    in_flight = session(
        "GONE2", at=3000.0, device_id=old.id, since=old.last_inform,
        bound_serial=old.serial_number, revision=1, state="ACTIVE", jobs=0,
    )  # fmt: skip
    assert await store.delete_device(old.id)
    with pytest.raises(RecordDeletedError):
        await store.save_session(in_flight)
    assert await store.get_device("GONE2") is None
    # the router's next session, which reads no record, registers it
    assert await store.save_session(session("GONE2", at=3100.0))
    assert await store.get_device("GONE2") is not None


async def test_a_cut_first_session_of_an_operator_record_does_not_write_over_the_next(
    store: SqliteStore,
) -> None:
    """A record the operator made has no last_inform before its router's first session.
    Two sessions read it so (the first cut by a reboot, ending at its timeout after the
    second committed): the older result must be dropped as for a record seen before."""
    record = await store.upsert_device(
        DeviceRecord(id="", serial_number="FIRST1", customer="c" * 24, name="shop")
    )
    assert record.last_inform is None
    newer = session("FIRST1", at=1100.0, device_id=record.id, since=record.last_inform,
                    bound_serial=record.serial_number, status={"upTime": 30})  # fmt: skip
    older = session("FIRST1", at=1060.0, device_id=record.id, since=record.last_inform,
                    bound_serial=record.serial_number, status={"upTime": 99999})  # fmt: skip
    assert await store.save_session(newer) == record.id
    with pytest.raises(StaleResultError):
        await store.save_session(older)
    after = await store.get_device(record.id)
    assert after is not None
    assert after.status == {"upTime": 30} and after.last_inform == 1100.0


async def test_a_session_parked_before_the_clock_was_set_back_is_still_reaped(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parked at wall-clock time T, then the clock is set back an hour (NTP, an operator):
    the reaper must still end it after session_timeout, not an hour later, or what the
    session learned waits that long to be committed (and any Inform of a cookieless CPE
    with no serial never ends it)."""
    from acsd import clock
    from acsd.cwmp.server import CwmpServer, ServerSettings

    real_now = clock.now
    monkeypatch.setattr(clock, "now", lambda: real_now() + 3600.0)
    await store.park_session("w1.lost", b"not a session", "192.0.2.44")
    monkeypatch.setattr(clock, "now", real_now)  # the clock goes back an hour
    server = CwmpServer(
        ServerSettings(handoff=True, session_timeout=0.05),
        lambda: None,  # type: ignore[arg-type,return-value]
        parking=store,
    )
    await server.handoff.reap_parked()  # a reaper round after the jump
    await asyncio.sleep(0.1)  # then longer than session_timeout
    await server.handoff.reap_parked()
    assert await store.parked_sessions() == []


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_instances_whose_clocks_differ_agree_on_a_parked_sessions_age(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Instances sharing PostgreSQL: one whose clock runs 40 s ahead reaped the others'
    fresh sessions (session_timeout 30 s), and one behind restamped them into its past.
    The database's clock is the one they agree on."""
    from acsd import clock

    real_now = clock.now
    await store.park_session("w0.fresh", b"F", "192.0.2.45", "Fresh1")
    monkeypatch.setattr(clock, "now", lambda: real_now() + 40.0)
    assert await store.parked_sessions(older_than=30.0) == []
    monkeypatch.setattr(clock, "now", lambda: real_now() - 40.0)
    assert await store.restamp_parked() == 0
    monkeypatch.setattr(clock, "now", real_now)
    await asyncio.sleep(0.05)
    assert await store.parked_sessions(older_than=0.01) == ["w0.fresh"]


async def test_a_page_of_the_device_list_leaves_the_parameter_trees_out(
    store: SqliteStore,
) -> None:
    """The list shows no tree; decoding one of 100k parameters for each of up to 1000
    routers of a page took GBs and seconds of the event loop."""
    from acsd.store.base import DeviceQuery

    tree = {f"Device.Hosts.Host.{i}.HostName": [f"h{i}", "xsd:string"] for i in range(2000)}
    device_id = await store.save_session(
        session("TREE1", params=tree, reset_params=True, status={"lanIp": "192.0.2.1"})
    )
    for query in (DeviceQuery(), DeviceQuery(q="tree1")):
        records, total = await store.query_devices(query)
        assert total == 1 and records[0].id == device_id
        assert records[0].params == {}
        assert records[0].status == {"lanIp": "192.0.2.1"}
    assert await store.device_params(device_id) == tree


async def test_the_list_behind_acsd_device_list_leaves_the_parameter_trees_out(
    store: SqliteStore,
) -> None:
    """`acsd device list` shows no tree, and lists 1000 routers by default."""
    tree = {f"Device.Hosts.Host.{i}.HostName": [f"h{i}", "xsd:string"] for i in range(50)}
    await store.save_session(session("TREE2", params=tree, reset_params=True, status={"upTime": 7}))
    (listed,) = await store.list_devices()
    assert listed.serial_number == "TREE2" and listed.params == {}
    assert listed.status == {"upTime": 7}


async def test_a_device_look_up_leaves_the_tree_out_and_reads_only_the_values_asked(
    store: SqliteStore,
) -> None:
    """The API's GET, PATCH and DELETE of a device read it without its tree: decoding a
    router's 100k parameters held the event loop ~140 ms. The few values a caller needs
    (the Connection Request username the router holds) are read by path."""
    username = "Device.ManagementServer.ConnectionRequestUsername"
    tree = {f"Device.Hosts.Host.{i}.HostName": [f"h{i}", "xsd:string"] for i in range(2000)}
    tree[username] = ["cpeadmin", "xsd:string"]
    tree["Device.Odd'Name.%_"] = ["x", None]
    device_id = await store.save_session(
        session("LOOKUP1", params=tree, reset_params=True, mac_address="00:11:22:33:44:55")
    )
    looked_up = [
        await store.get_device(device_id),
        await store.get_device("lookup1"),
        await store.find_device_for_cpe("LOOKUP1"),
        await store.find_device_by_mac("001122334455"),
    ]
    for record in looked_up:
        assert record is not None and record.id == device_id
        assert record.params == {} and record.oui == "00D09E"
    stored = looked_up[0]
    assert stored is not None
    stored.name = "Shop"
    written = await store.write_device(stored, expect=looked_up[1])
    assert written.name == "Shop" and written.params == {}
    assert await store.device_params(device_id) == tree  # the write kept the tree

    wanted = [username, "InternetGatewayDevice.ManagementServer.ConnectionRequestUsername"]
    assert await store.device_values(device_id, wanted) == {username: ["cpeadmin", "xsd:string"]}
    odd = ["Device.Odd'Name.%_", "Device.Hosts.Host.7.HostName", "Device.Hosts.Host."]
    assert await store.device_values(device_id, odd) == {
        "Device.Odd'Name.%_": ["x", None],
        "Device.Hosts.Host.7.HostName": ["h7", "xsd:string"],
    }
    assert await store.device_values(device_id, []) == {}
    assert await store.device_values("0" * 24, wanted) == {}
    with pytest.raises(ValueError, match="not a parameter path"):
        await store.device_values(device_id, ['Device."'])


def test_a_store_failure_while_the_database_is_unavailable_is_a_warning_without_traceback():
    # During an outage every background task's call fails alike: an error with a traceback
    # each (internet activation, the APN update after a session) drowned the one useful line.
    from acsd.log import get_logger
    from acsd.store.base import StoreUnavailableError, log_store_failure

    log = get_logger("test")
    with structlog.testing.capture_logs() as logged:
        for exc in (StoreUnavailableError("the PostgreSQL server did not answer in time"),
                    ValueError("a bug")):  # fmt: skip
            try:
                raise exc
            except Exception as caught:
                log_store_failure(log, "x.failed", caught, serial="S1")
    outage, bug = logged
    assert outage["log_level"] == "warning" and "exc_info" not in outage
    assert outage["error"] == "the PostgreSQL server did not answer in time"
    assert bug["log_level"] == "error" and bug["exc_info"] is True and bug["serial"] == "S1"


def test_an_outage_failing_every_call_alike_is_one_line_a_while_and_a_bug_every_time():
    # On a large network every Inform's look-up failed alike in an outage: hundreds of
    # warnings a second, and journald's rate limit then dropped the line saying it ended.
    from acsd.log import get_logger
    from acsd.store.base import StoreUnavailableError, log_store_failure

    log = get_logger("test")
    down = StoreUnavailableError("connection refused (test of the throttle)")
    other = StoreUnavailableError("the PostgreSQL server did not answer in time (throttle)")
    with structlog.testing.capture_logs() as logged:
        for exc in (down, down, down, ValueError("a bug"), ValueError("a bug"), down, other):
            try:
                raise exc
            except Exception as caught:
                log_store_failure(log, "x.throttled", caught, serial="S1")
    assert [(e["log_level"], e.get("error"), e.get("since_last")) for e in logged] == [
        ("warning", str(down), 0),
        ("error", None, None),
        ("error", None, None),
        ("warning", str(other), 0),
    ]
    assert all(e["exc_info"] for e in logged if e["log_level"] == "error")


async def test_the_cwmp_server_asks_the_store_whether_a_parked_session_call_met_an_outage(
    tmp_path,
):
    # cwmp/ may not import store/ (architecture.md): it asks the store it was given, and
    # logs a warning with the reason rather than a traceback per Inform during an outage.
    from acsd.cwmp.handoff import parking_failed

    store = SqliteStore(tmp_path / "outage.db")
    busy = sqlite3.OperationalError("database is locked")
    busy.sqlite_errorcode, busy.sqlite_errorname = sqlite3.SQLITE_BUSY, "SQLITE_BUSY"
    assert store.unavailable(busy) == "database is locked"
    assert store.unavailable(ValueError("a bug")) is None
    with structlog.testing.capture_logs() as logged:
        for exc in (busy, ValueError("a bug")):
            try:
                raise exc
            except Exception as caught:
                parking_failed(store, caught)
    outage, bug = logged
    assert (outage["event"], outage["log_level"], outage["error"]) == (
        "cwmp.take_over_failed",
        "warning",
        "database is locked",
    )
    assert "exc_info" not in outage and bug["log_level"] == "error" and bug["exc_info"]


async def test_a_new_database_is_readable_by_its_owner_alone(tmp_path: Path) -> None:
    # It holds the routers' Connection Request passwords, wifi passwords and token
    # hashes: outside systemd (UMask=0077) the usual umask made it, and its -wal and -shm
    # files, readable by every user of the machine. One that exists keeps its mode.
    import os
    import stat

    path = tmp_path / "acsd.db"
    store = SqliteStore(path)
    await store.open()
    try:
        await store.save_session(session("PRIV000001"))
        for name in ("acsd.db", "acsd.db-wal", "acsd.db-shm"):
            mode = stat.S_IMODE(os.stat(tmp_path / name).st_mode)
            assert mode == 0o600, (name, oct(mode))
    finally:
        await store.close()
    shared = tmp_path / "shared.db"
    shared.touch(mode=0o640)
    os.chmod(shared, 0o640)
    other = SqliteStore(shared)
    await other.open()
    await other.close()
    assert stat.S_IMODE(os.stat(shared).st_mode) == 0o640
