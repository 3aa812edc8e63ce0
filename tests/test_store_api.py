"""SqliteStore additions for the REST API: device queries, customers, tokens, models, and the
audit entry committed in the same transaction as the write it records."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import sqlite3
import string
import unicodedata
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from acsd import clock
from acsd.ids import is_id, new_id
from acsd.store import (
    ConflictError,
    CpeIdentity,
    DeviceRecord,
    SessionResult,
    SqliteStore,
    StoreClosedError,
    open_store,
)
from acsd.store.base import AuditRecord, CustomerRecord, DeviceQuery, ModelRecord, TokenRecord
from conftest import sqlite_only

NOW = 100_000.0
#: what each backend raises for a write that breaks a unique key, or a value out of range
INTEGRITY = (sqlite3.IntegrityError, asyncpg.IntegrityConstraintViolationError)
OUT_OF_RANGE = (OverflowError, asyncpg.DataError)


def session(serial: str, at: float = 1000.0, **kw: Any) -> SessionResult:
    identity = CpeIdentity(oui="00D09E", product_class="HG8245", serial_number=serial)
    return SessionResult(identity=identity, at=at, **kw)


def audit(action: str = "device.update", **kw: Any) -> AuditRecord:
    kw.setdefault("resource", action.split(".")[0])
    return AuditRecord(id=kw.pop("id", ""), at=kw.pop("at", 0.0), action=action, **kw)


async def ids_of(store: SqliteStore, **kw: Any) -> list[str]:
    """Serial numbers of every device the query matches, in the store's order."""
    records, total = await store.query_devices(DeviceQuery(limit=1000, **kw))
    assert total == len(records)
    return [r.serial_number for r in records]


# -- schema ---------------------------------------------------------------------------------


@sqlite_only
async def test_migration_3_tables(store: SqliteStore, tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "acsd.db") as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        indexes = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        fks = db.execute("PRAGMA foreign_key_list(customers)").fetchall()
        audit_columns = [r[1] for r in db.execute("PRAGMA table_info(audit)")]
    assert {"customers", "tokens", "models", "audit"} <= tables
    assert {"customers_reseller", "audit_at"} <= indexes
    assert [(fk[2], fk[3], fk[4]) for fk in fks] == [("customers", "reseller", "id")]
    assert audit_columns[9:11] == ["before", "after"]


# -- connection request credentials ---------------------------------------------------------


async def test_cr_credentials_are_session_owned(store: SqliteStore) -> None:
    dev = await store.save_session(session("CR1", cr_username="acs-u", cr_password="s3cret"))
    rec = await store.get_device(dev)
    assert rec is not None and (rec.cr_username, rec.cr_password) == ("acs-u", "s3cret")

    # a session that did not set them keeps them
    await store.save_session(session("CR1", at=2000.0, device_id=dev))
    rec = await store.get_device(dev)
    assert rec is not None and (rec.cr_username, rec.cr_password) == ("acs-u", "s3cret")

    # operator writes (stale copies without them) keep them too
    await store.upsert_device(DeviceRecord(id=dev, serial_number="CR1", name="a"))
    await store.write_device(DeviceRecord(id=dev, serial_number="CR1", name="b"), audit=audit())
    rec = await store.get_device(dev)
    assert rec is not None and rec.name == "b"
    assert (rec.cr_username, rec.cr_password) == ("acs-u", "s3cret")

    # a new password replaces the old one; the username stays
    await store.save_session(session("CR1", at=3000.0, device_id=dev, cr_password="n3w"))
    rec = await store.get_device(dev)
    assert rec is not None and (rec.cr_username, rec.cr_password) == ("acs-u", "n3w")


# -- query_devices --------------------------------------------------------------------------


async def add(store: SqliteStore, serial: str, **kw: Any) -> DeviceRecord:
    return await store.upsert_device(DeviceRecord(id="", serial_number=serial, **kw))


async def test_query_devices_tenancy_customer_and_state(store: SqliteStore) -> None:
    await add(store, "S1", customer="c1")
    await add(store, "S2", customer="c2", state="SUSPENDED")
    await add(store, "S3", customer="c3")
    await add(store, "S4")  # no customer
    await add(store, "S5", customer="c1", state="SUSPENDED")

    assert await ids_of(store) == ["S1", "S2", "S3", "S4", "S5"]  # creation order (ids)
    assert await ids_of(store, customers={"c1", "c2"}) == ["S1", "S2", "S5"]
    assert await ids_of(store, customers=set()) == []  # a tenancy with no customers
    assert await ids_of(store, customers={"nobody"}) == []
    assert await ids_of(store, customer="c1") == ["S1", "S5"]
    assert await ids_of(store, customers={"c2", "c3"}, customer="c1") == []
    assert await ids_of(store, state="SUSPENDED") == ["S2", "S5"]
    assert await ids_of(store, state="SUSPENDED", customers={"c1"}) == ["S5"]
    assert await ids_of(store, state="DELETING") == []


async def test_query_devices_online(store: SqliteStore) -> None:
    # online: last Inform >= now - (2 x interval + grace); default interval 300, grace 60
    await store.save_session(session("ON", at=NOW - 100, periodic_interval=300))
    await store.save_session(session("EDGE", at=NOW - 660, periodic_interval=300))
    await store.save_session(session("LATE", at=NOW - 661, periodic_interval=300))
    await store.save_session(session("SLOW", at=NOW - 3000, periodic_interval=3600))
    await store.save_session(session("NOINT", at=NOW - 700))  # interval unknown: default
    await store.save_session(session("ZERO", at=NOW - 700, periodic_interval=0))  # = default
    await add(store, "NEVER")  # never informed: offline

    online = await ids_of(store, online=True, now=NOW)
    assert online == ["ON", "EDGE", "SLOW"]
    offline = await ids_of(store, online=False, now=NOW)
    assert offline == ["LATE", "NOINT", "ZERO", "NEVER"]
    # a longer default interval and grace
    assert await ids_of(store, online=True, now=NOW, default_interval=600) == [
        "ON",
        "EDGE",
        "SLOW",
        "NOINT",
        "ZERO",
    ]
    assert await ids_of(store, online=True, now=NOW, grace=80) == ["ON", "EDGE", "LATE", "SLOW"]
    # the filter agrees with the online flag that device_view shows
    from acsd.provisioning.status import is_online

    records, _ = await store.query_devices(DeviceQuery())
    for rec in records:
        flag = is_online(
            rec.last_inform, rec.periodic_interval, NOW, default_interval=300, grace=60
        )
        assert flag == (rec.serial_number in online), rec.serial_number


async def test_query_devices_online_defaults_to_the_clock(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.save_session(session("RECENT", at=NOW - 10))
    monkeypatch.setattr(clock, "now", lambda: NOW)
    assert await ids_of(store, online=True) == ["RECENT"]
    monkeypatch.setattr(clock, "now", lambda: NOW + 1000)
    assert await ids_of(store, online=True) == []


async def test_pages_after_an_id_skip_nothing_that_stays(store: SqliteStore) -> None:
    # a walk by `after` (the last id of the page before): deleting records already passed
    # moves no later record out of the next page, as it does under an offset
    made = [await add(store, f"W{n:03d}", customer="c1" if n % 3 else "c2") for n in range(30)]
    mine = [r.id for r in made if r.customer == "c1"]
    seen: list[str] = []
    after = None
    while True:
        page, total = await store.query_devices(
            DeviceQuery(customers={"c1"}, q="w", limit=4, after=after)
        )
        assert total == len(mine)  # every match, not just those past `after`
        seen += [r.id for r in page]
        if len(page) < 4:
            break
        after = page[-1].id
        gone = mine.pop(0)  # one already seen goes, and a new one comes
        assert await store.delete_device(gone)
        mine.append((await add(store, f"W{len(made) + len(seen)}", customer="c1")).id)
    assert len(seen) == len(set(seen)) and set(mine) <= set(seen)
    # past the last one: an empty page, and still the total
    assert await store.query_devices(DeviceQuery(customers={"c1"}, after=mine[-1])) == (
        [],
        len(mine),
    )
    customers = [
        await store.create_customer(
            CustomerRecord(id="", name=f"C{n}", type="CUSTOMER", created=NOW, updated=NOW)
        )
        for n in range(5)
    ]
    ids = {c.id for c in customers[1:]}
    page, total = await store.list_customers(ids=ids, limit=2, after=customers[1].id)
    assert [c.id for c in page] == [c.id for c in customers[2:4]] and total == 4


async def test_query_devices_search(store: SqliteStore) -> None:
    await add(store, "HWTC0001", name="Kiosk Lobby", mac_address="AA:BB:CC:00:11:22")
    await add(store, "ZTEG0002", notes="behind the BAR counter", mac_address="aa-bb-cd-00-11-33")
    await add(store, "NOKA0003", name="École Sainte-Anne", mac_address="001122334455")
    await add(store, "TPLK0004", name="100% fibre_box", notes=None)
    await add(store, "MIXED0005", name="Café", mac_address="not a mac")

    async def q(text: str) -> list[str]:
        return await ids_of(store, q=text)

    assert await q("kiosk") == ["HWTC0001"]
    assert await q("LOBBY") == ["HWTC0001"]
    assert await q("hwtc") == ["HWTC0001"]  # serial, any case
    assert await q("0002") == ["ZTEG0002"]
    assert await q("bar count") == ["ZTEG0002"]  # notes
    assert await q("  kiosk ") == ["HWTC0001"]  # surrounding blanks ignored
    assert await q("") == await q("   ") == await ids_of(store)
    # MAC with any separators, any case, whole or in part
    assert await q("AA:BB:CC:00:11:22") == ["HWTC0001"]
    assert await q("aabbcc001122") == ["HWTC0001"]
    assert await q("aa-bb-c") == ["HWTC0001", "ZTEG0002"]
    assert await q("AABB.CD") == ["ZTEG0002"]
    assert await q("00 11 33") == ["ZTEG0002"]
    assert await q("33:44:55") == ["NOKA0003"]
    assert await q("00:11") == ["HWTC0001", "ZTEG0002", "NOKA0003"]
    # LIKE wildcards are plain characters
    assert await q("100%") == ["TPLK0004"]
    assert await q("e_b") == ["TPLK0004"]
    assert await q("%") == ["TPLK0004"]
    assert await q("_") == ["TPLK0004"]
    # case folding beyond ASCII
    assert await q("école") == ["NOKA0003"]
    assert await q("ÉCOLE") == ["NOKA0003"]
    assert await q("CAFÉ") == ["MIXED0005"]
    assert await q("nothing like it") == []
    # an accent composed (é) or decomposed (e + U+0301) is one text, in the search and in
    # what it looks in; Greek capitals find the final sigma (escaped: ruff reads Greek
    # letters as look-alikes of Latin ones)
    omega_nfd = "\u03a9\u03bc\u03b5\u0301\u03b3\u03b1"  # "Omega" in Greek, decomposed
    await add(store, "NFD00006", name=f"Cafe\u0301 {omega_nfd}")
    assert await q("CAFÉ") == await q("cafe\u0301") == ["MIXED0005", "NFD00006"]
    assert await q(unicodedata.normalize("NFC", omega_nfd.upper())) == ["NFD00006"]
    router = "\u0394\u03c1\u03bf\u03bc\u03bf\u03bb\u03bf\u03b3\u03b7\u03c4\u03ae\u03c2"
    await add(store, "GREEK0007", name=router)  # "router", ending in a final sigma
    assert await q(router.upper()) == await q(router[5:]) == ["GREEK0007"]
    # the sharp s is "ss" folded, as casefold() has it, whichever way it is written
    await add(store, "GERMAN008", name="Hauptstra\u00dfe 1")
    assert await q("hauptstra\u00dfe") == await q("HAUPTSTRA\u1e9eE") == ["GERMAN008"]
    assert await q("HAUPTSTRASSE") == ["GERMAN008"]  # (an ASCII text is folded there too)
    # search and other filters combine
    assert await ids_of(store, q="aa:bb", customer="c1") == []


async def test_notes_of_any_length_are_stored_and_searched(store: SqliteStore) -> None:
    # Free text as long as a request body allows: more than an index entry holds on
    # PostgreSQL (~2.7 KB compressed), where every write of such a device failed.
    notes = "".join(secrets.choice(string.ascii_letters) for _ in range(20_000)) + " SPARE ROOM"
    made = await add(store, "LONGNOTES1", notes=notes, name="n" * 200)
    assert (await store.get_device(made.id)).notes == notes
    assert await ids_of(store, q="spare room") == ["LONGNOTES1"]
    changed = dataclasses.replace(made, notes=notes[::-1])
    assert (await store.write_device(changed, expect=made, mac="keep")).notes == notes[::-1]


async def test_query_devices_paging(store: SqliteStore) -> None:
    made = [await add(store, f"P{i:02d}", customer="c1" if i % 2 else "c2") for i in range(7)]
    assert [m.id for m in made] == sorted(m.id for m in made)

    records, total = await store.query_devices(DeviceQuery(limit=3))
    assert total == 7 and [r.serial_number for r in records] == ["P00", "P01", "P02"]
    records, total = await store.query_devices(DeviceQuery(limit=3, offset=6))
    assert total == 7 and [r.serial_number for r in records] == ["P06"]
    records, total = await store.query_devices(DeviceQuery(limit=3, offset=7))
    assert (records, total) == ([], 7)  # past the end: still the total
    records, total = await store.query_devices(DeviceQuery(limit=0))
    assert (records, total) == ([], 7)  # count only
    records, total = await store.query_devices(DeviceQuery(customer="c1", limit=2, offset=1))
    assert total == 3 and [r.serial_number for r in records] == ["P03", "P05"]
    records, total = await store.query_devices(DeviceQuery(customer="nobody"))
    assert (records, total) == ([], 0)
    # records come back whole
    records, _ = await store.query_devices(DeviceQuery(limit=1))
    assert records[0] == await store.get_device(made[0].id)


async def test_query_devices_by_the_state_of_the_job_shown(store: SqliteStore) -> None:
    """``job``: the state of the job a device shows (its record's revision's, from the
    provisioning memory), so that FAILED devices, ACTIVE with jobs 0 like DONE ones, can be
    listed without reading every record."""
    from acsd.device_view import device_view

    def job(revision: int, state: str) -> dict[str, Any]:
        return {"job": {"revision": revision, "state": state, "faults": []}}

    await add(store, "FAILED1", customer="c1", revision=2, provisioning=job(2, "FAILED"))
    await add(store, "DONE1", customer="c1", revision=1, provisioning=job(1, "DONE"))
    await add(store, "PENDING1", revision=1, state="PROVISIONING", jobs=1,
              provisioning=job(1, "PENDING"))  # fmt: skip
    # the operator changed the settings since: the failed job is not the device's now, the
    # change waiting for the router is
    await add(store, "CHANGED1", revision=3, state="PROVISIONING", jobs=1,
              provisioning=job(2, "FAILED"))  # fmt: skip
    await add(store, "NOREV1", provisioning=job(0, "FAILED"))  # no operator settings
    await add(store, "NOJOB1", revision=1, provisioning={"appliedRevision": None})
    await add(store, "ODD1", revision=1, provisioning={"job": "FAILED"})  # a hand-made row
    await add(store, "FAILED2", customer="c2", revision=1, state="DELETING",
              provisioning=job(1, "FAILED"))  # fmt: skip

    assert await ids_of(store, job="FAILED") == ["FAILED1", "FAILED2"]
    assert await ids_of(store, job="DONE") == ["DONE1"]
    # and a change no session has taken up yet is pending (device_view.waiting_job)
    assert await ids_of(store, job="PENDING") == ["PENDING1", "CHANGED1"]
    assert await ids_of(store, job="FAILED", customers={"c1"}) == ["FAILED1"]
    assert await ids_of(store, job="FAILED", customer="c2", state="DELETING") == ["FAILED2"]
    assert await ids_of(store, job="FAILED", online=True, now=NOW) == []
    assert await ids_of(store, job="FAILED", q="failed2") == ["FAILED2"]
    records, total = await store.query_devices(DeviceQuery(job="FAILED", limit=1, offset=1))
    assert total == 2 and [r.serial_number for r in records] == ["FAILED2"]
    # the filter agrees with the job object the API shows
    records, _ = await store.query_devices(DeviceQuery(limit=1000))
    for rec in records:
        if rec.serial_number == "ODD1":
            continue  # (device_view cannot show that row)
        shown = device_view(rec, default_interval=300, grace=60).job
        for state in ("PENDING", "DONE", "FAILED"):
            matched = rec.serial_number in await ids_of(store, job=state)
            assert matched == (shown is not None and shown.state == state), rec.serial_number


@pytest.fixture
async def language_store(backend: str, request: pytest.FixtureRequest, tmp_path: Path):
    """As ``store``, but the PostgreSQL database's default collation is a language's (ICU
    en-US, as a database created under an operator's locale has), not one of bytes."""
    if backend == "postgresql":
        url = request.getfixturevalue("pg_cluster").new_database(icu_locale="en-US")
    else:
        url = f"sqlite:///{tmp_path / 'acsd.db'}"
    opened = open_store(url)
    await opened.open()
    yield opened
    await opened.close()


async def test_list_devices_orders_serials_alike_on_both_backends(language_store) -> None:
    """`acsd device list` pages through the serial numbers (case-insensitive) in the order
    of their characters' code points on both backends, whatever the database's locale: in
    en-US "_" would come before "-" and "ab_1" before "ab-10"."""
    for serial in ["ab_1", "AB-2", "ab.3", "Ab1", "ab 4", "ab-10", "abC"]:
        await add(language_store, serial)
    listed = [r.serial_number for r in await language_store.list_devices()]
    assert listed == ["ab 4", "ab-10", "AB-2", "ab.3", "Ab1", "ab_1", "abC"]
    page = await language_store.list_devices(limit=3, offset=2)
    assert [r.serial_number for r in page] == ["AB-2", "ab.3", "Ab1"]


async def test_a_postgresql_database_that_folds_ascii_only_is_told_at_start(pg_cluster) -> None:
    from structlog.testing import capture_logs

    for ctype, told in (("C", True), ("C.UTF-8", False)):
        opened = open_store(pg_cluster.new_database(ctype=ctype))
        with capture_logs() as logs:
            await opened.open()
        await opened.close()
        said = [e for e in logs if e["event"] == "store_case_folding_ascii_only"]
        assert bool(said) is told, (ctype, logs)
        if told:
            assert said[0]["lc_ctype"] == "C" and said[0]["log_level"] == "warning"
    # a LATIN1 database (which yesterday's acsd served) opens, and is told of
    opened = open_store(pg_cluster.new_database(ctype="C-LATIN1"))
    with capture_logs() as logs:
        await opened.open()
    try:
        [said] = [e for e in logs if e["event"] == "store_encoding_not_utf8"]
        assert said["server_encoding"] == "LATIN1"
        # and its device search works as it did (the Unicode fold's Greek sigmas, bound
        # as parameters, made every search a 500 there)
        await add(opened, "LATIN0001", name="K\u00f8kken")
        assert await ids_of(opened, q="latin0001") == ["LATIN0001"]
        assert await ids_of(opened, q="k\u00f8kken") == ["LATIN0001"]
    finally:
        await opened.close()


async def test_find_device_by_mac(store: SqliteStore) -> None:
    first = await add(store, "M1", mac_address="00:11:22:AA:BB:CC")
    await add(store, "M2", mac_address="00-11-22-aa-bb-cc")  # same MAC, newer
    for mac in ("00:11:22:aa:bb:cc", "0011.22AA.BBCC", "001122aabbcc", " 00-11-22-AA-BB-CC "):
        found = await store.find_device_by_mac(mac)
        assert found is not None and found.id == first.id, mac
    assert await store.find_device_by_mac("00:11:22:aa:bb:cd") is None
    assert await store.find_device_by_mac("not a mac") is None
    assert await store.find_device_by_mac("") is None


# -- device writes with audit ---------------------------------------------------------------


async def audit_rows(store: SqliteStore) -> list[AuditRecord]:
    records, total = await store.list_audit(limit=1000)
    assert total == len(records)
    return records


async def test_write_device_with_audit(store: SqliteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "now", lambda: NOW)
    created = await store.write_device(
        DeviceRecord(id="", serial_number="W1", name="Shop", wifi={"ssid": "S"}),
        audit=audit(
            "device.create",
            token_id="t1",
            token_name="ops",
            role="ADMIN",
            customer="c1",
            after={"serialNumber": "W1", "wifi": {"ssid": "S", "password": "***"}},
            request_id="req-1",
        ),
    )
    assert is_id(created.id) and created.created == NOW
    assert created == await store.get_device("w1")
    [entry] = await audit_rows(store)
    assert is_id(entry.id)
    assert entry.at == NOW  # at 0: the commit time
    assert (entry.action, entry.resource, entry.resource_id) == (
        "device.create",
        "device",
        created.id,
    )
    assert (entry.token_id, entry.token_name, entry.role, entry.customer) == (
        "t1",
        "ops",
        "ADMIN",
        "c1",
    )
    assert entry.before is None
    assert entry.after == {"serialNumber": "W1", "wifi": {"ssid": "S", "password": "***"}}
    assert entry.request_id == "req-1"

    # an update (by serial, another case) keeps the given resource id and time
    updated = await store.write_device(
        DeviceRecord(id="", serial_number="w1", name="Shop 2"),
        audit=audit("device.update", at=NOW + 5, resource_id="given", before={"name": "Shop"}),
    )
    assert updated.id == created.id and updated.name == "Shop 2"
    assert updated.serial_number == "w1"
    newest, oldest = await audit_rows(store)
    assert (newest.action, newest.at, newest.resource_id) == ("device.update", NOW + 5, "given")
    assert newest.before == {"name": "Shop"} and oldest.id == entry.id

    # without an audit entry it is upsert_device
    await store.write_device(DeviceRecord(id=created.id, serial_number="W1", name="Shop 3"))
    assert len(await audit_rows(store)) == 2


async def test_write_device_conflict_writes_no_audit(store: SqliteStore) -> None:
    a = await add(store, "A")
    b = await add(store, "B")
    with pytest.raises(ConflictError, match="already belongs"):
        await store.write_device(DeviceRecord(id=a.id, serial_number="b"), audit=audit())
    assert await audit_rows(store) == []
    assert await store.get_device(a.id) == a and await store.get_device(b.id) == b


async def test_unencodable_audit_fails_the_write(store: SqliteStore) -> None:
    with pytest.raises(TypeError):
        await store.write_device(
            DeviceRecord(id="", serial_number="BAD1"), audit=audit(before={"x": object()})
        )
    with pytest.raises(ValueError):
        await store.write_device(
            DeviceRecord(id="", serial_number="BAD2"), audit=audit(after={"x": float("nan")})
        )
    assert await store.count_devices() == 0
    assert await audit_rows(store) == []


async def test_audit_failing_in_the_transaction_rolls_back_the_write(store: SqliteStore) -> None:
    dev = await store.write_device(
        DeviceRecord(id="", serial_number="T1", name="before"), audit=audit(id="a" * 24)
    )
    # The audit insert fails inside the transaction (its id exists), after the device write
    # ran: the write is undone with it, and only this caller fails, while sessions queued
    # in the same batch commit.
    results = await asyncio.gather(
        *[store.save_session(session(f"BATCH{i}")) for i in range(10)],
        store.write_device(
            DeviceRecord(id=dev.id, serial_number="T1", name="after"), audit=audit(id="a" * 24)
        ),
        store.write_device(DeviceRecord(id="", serial_number="T2"), audit=audit(id="a" * 24)),
        *[store.save_session(session(f"BATCH{i}")) for i in range(10, 20)],
        return_exceptions=True,
    )
    assert isinstance(results[10], INTEGRITY)
    assert isinstance(results[11], INTEGRITY)
    assert all(isinstance(r, str) for i, r in enumerate(results) if i not in (10, 11))
    rec = await store.get_device(dev.id)
    assert rec is not None and rec.name == "before"
    assert await store.get_device("T2") is None
    assert await store.count_devices() == 21
    assert len(await audit_rows(store)) == 1
    # the failed writes were undone alone: no batch had to be retried write by write
    assert store.stats.fallbacks == 0
    assert store.stats.failed == 2


async def test_operator_writes_commit_beside_a_failing_save(store: SqliteStore) -> None:
    # A session failing inside the transaction is undone alone (its savepoint): the batch
    # is not retried one write at a time, and its operator writes commit once, with one
    # audit entry each.
    results = await asyncio.gather(
        store.create_customer(CustomerRecord(id="", name="Acme"), audit=audit("customer.create")),
        store.write_device(DeviceRecord(id="", serial_number="R1"), audit=audit("device.create")),
        store.save_session(session("BAD", periodic_interval=2**70)),
        store.save_session(session("GOOD")),
        return_exceptions=True,
    )
    assert isinstance(results[2], OUT_OF_RANGE) and isinstance(results[3], str)
    assert store.stats.fallbacks == 0
    customer, device = results[0], results[1]
    assert isinstance(customer, CustomerRecord) and isinstance(device, DeviceRecord)
    assert await store.get_customer(customer.id) == customer
    assert await store.get_device(device.id) == device
    entries = await audit_rows(store)
    assert sorted((e.action, e.resource_id) for e in entries) == [
        ("customer.create", customer.id),
        ("device.create", device.id),
    ]


async def test_delete_device(store: SqliteStore) -> None:
    dev = await add(store, "D1", customer="c1")
    keep = await add(store, "D2")
    # what a session checks before it sends the record's settings
    assert await store.device_holder(dev.id) == (dev.state, "D1")
    assert await store.delete_device(dev.id, audit=audit("device.delete", before={"id": dev.id}))
    assert await store.device_holder(dev.id) is None
    assert await store.device_holder(keep.id) == (keep.state, "D2")
    assert await store.get_device(dev.id) is None
    assert await store.get_device(keep.id) == keep
    [entry] = await audit_rows(store)
    assert (entry.action, entry.resource_id, entry.before) == (
        "device.delete",
        dev.id,
        {"id": dev.id},
    )
    # nothing to delete: False, and nothing audited
    assert not await store.delete_device(dev.id, audit=audit("device.delete"))
    assert not await store.delete_device(new_id())
    assert len(await audit_rows(store)) == 1
    # a CPE of a deleted record registers afresh
    again = await store.save_session(session("D1", device_id=dev.id))
    assert again != dev.id


# -- customers ------------------------------------------------------------------------------


async def test_customers(store: SqliteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "now", lambda: NOW)
    reseller = await store.create_customer(
        CustomerRecord(id="", name="Reseller", type="RESELLER"),
        audit=audit("customer.create", after={"name": "Reseller"}),
    )
    assert is_id(reseller.id)
    assert (reseller.created, reseller.updated, reseller.reseller) == (NOW, NOW, None)
    assert await store.get_customer(reseller.id) == reseller
    assert await store.get_customer("nope") is None
    chosen = await store.create_customer(
        CustomerRecord(id="cust-1", name="Shop", reseller=reseller.id, created=5.0)
    )
    assert (chosen.id, chosen.created, chosen.updated) == ("cust-1", 5.0, 5.0)
    assert chosen.type == "CUSTOMER"
    [entry] = await audit_rows(store)
    assert (entry.resource, entry.resource_id) == ("customer", reseller.id)

    with pytest.raises(ConflictError, match="cust-1"):
        await store.create_customer(CustomerRecord(id="cust-1", name="Twice"))
    with pytest.raises(ConflictError, match="reseller 'ghost' does not exist"):
        await store.create_customer(CustomerRecord(id="", name="Orphan", reseller="ghost"))
    with pytest.raises(ValueError, match="own reseller"):
        await store.create_customer(CustomerRecord(id="me", name="Loop", reseller="me"))
    assert len(await audit_rows(store)) == 1

    for i in range(5):
        await store.create_customer(CustomerRecord(id=f"x{i}", name=f"X{i}"))
    records, total = await store.list_customers()
    assert total == 7
    assert [r.id for r in records] == sorted(r.id for r in records)
    records, total = await store.list_customers(limit=2, offset=1)
    assert total == 7 and [r.id for r in records] == ["cust-1", "x0"]  # after the hex id
    records, total = await store.list_customers(ids={"x3", "cust-1", "ghost"})
    assert total == 2 and [r.id for r in records] == ["cust-1", "x3"]
    assert await store.list_customers(ids=set()) == ([], 0)
    assert await store.list_customers(offset=50) == ([], 7)


async def test_customer_tree(store: SqliteStore) -> None:
    # R1 -> C1, R2 -> (C2, R3 -> (C3, C4)); R9 -> C9 elsewhere
    async def make(cid: str, reseller: str | None = None, kind: str = "CUSTOMER") -> None:
        await store.create_customer(CustomerRecord(id=cid, name=cid, type=kind, reseller=reseller))

    await make("R1", kind="RESELLER")
    await make("C1", "R1")
    await make("R2", "R1", "RESELLER")
    await make("C2", "R2")
    await make("R3", "R2", "RESELLER")
    await make("C3", "R3")
    await make("C4", "R3")
    await make("R9", kind="RESELLER")
    await make("C9", "R9")

    assert await store.customer_tree("R1") == {"R1", "C1", "R2", "C2", "R3", "C3", "C4"}
    assert await store.customer_tree("R2") == {"R2", "C2", "R3", "C3", "C4"}
    assert await store.customer_tree("R3") == {"R3", "C3", "C4"}
    assert await store.customer_tree("C3") == {"C3"}
    assert await store.customer_tree("R9") == {"R9", "C9"}
    # a customer without a record is still itself (devices may name it)
    assert await store.customer_tree("unknown") == {"unknown"}

    # the tree is the tenancy of a reseller's devices
    await add(store, "DEV-C3", customer="C3")
    await add(store, "DEV-C9", customer="C9")
    await add(store, "DEV-R2", customer="R2")
    tenancy = await store.customer_tree("R2")
    assert await ids_of(store, customers=tenancy) == ["DEV-C3", "DEV-R2"]


# -- tokens ---------------------------------------------------------------------------------


async def test_tokens(store: SqliteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "now", lambda: NOW)
    admin = await store.create_token(
        TokenRecord(id="", hash="h" * 64, role="ADMIN", name="root"),
        audit=audit("token.create"),
    )
    assert is_id(admin.id) and admin.created == NOW and admin.revoked is None
    owner = await store.create_token(
        TokenRecord(id="tok-2", hash="0" * 64, role="OWNER", customer="c1", created=7.0)
    )
    assert (owner.id, owner.created, owner.customer) == ("tok-2", 7.0, "c1")

    assert await store.find_token("h" * 64) == admin
    assert await store.find_token("0" * 64) == owner
    assert await store.find_token("1" * 64) is None
    assert await store.list_tokens() == sorted([admin, owner], key=lambda t: t.id)

    with pytest.raises(ConflictError):
        await store.create_token(TokenRecord(id="", hash="h" * 64, role="ADMIN"))
    with pytest.raises(ValueError, match="hash is empty"):
        await store.create_token(TokenRecord(id="", hash="", role="ADMIN"))

    monkeypatch.setattr(clock, "now", lambda: NOW + 60)
    assert await store.revoke_token(owner.id, audit=audit("token.revoke"))
    assert await store.find_token("0" * 64) is None
    listed = {t.id: t for t in await store.list_tokens()}
    assert listed[owner.id].revoked == NOW + 60 and listed[admin.id].revoked is None
    # revoking again or an unknown token: False, the first revocation time stays
    monkeypatch.setattr(clock, "now", lambda: NOW + 120)
    assert not await store.revoke_token(owner.id, audit=audit("token.revoke"))
    assert not await store.revoke_token("nope")
    assert {t.id: t for t in await store.list_tokens()}[owner.id].revoked == NOW + 60
    entries = await audit_rows(store)
    assert [(e.action, e.resource_id) for e in entries] == [
        ("token.revoke", owner.id),
        ("token.create", admin.id),
    ]


async def test_token_uses_keep_the_latest_time(store: SqliteStore) -> None:
    """Processes sharing a database (workers, PostgreSQL instances) write the last uses
    they noted in any order: an earlier time never replaces a later one."""
    made = await store.create_token(
        TokenRecord(id="", hash="e" * 64, role="ADMIN", created=NOW, expires=NOW + 3600)
    )
    other = await store.create_token(TokenRecord(id="", hash="f" * 64, role="ADMIN"))
    assert (made.expires, made.last_used) == (NOW + 3600, None)
    assert (await store.find_token("e" * 64)) == made
    await store.note_token_uses({made.id: NOW + 10, "no-such-token": NOW})
    await store.note_token_uses({made.id: NOW + 5})  # another process's, older
    listed = {t.id: t for t in await store.list_tokens()}
    assert listed[made.id].last_used == NOW + 10 and listed[made.id].expires == NOW + 3600
    assert listed[other.id].last_used is None
    await store.note_token_uses({made.id: NOW + 70, other.id: NOW + 71})
    listed = {t.id: t for t in await store.list_tokens()}
    assert (listed[made.id].last_used, listed[other.id].last_used) == (NOW + 70, NOW + 71)


# -- models ---------------------------------------------------------------------------------


async def test_models(store: SqliteStore) -> None:
    first = await store.create_model(
        ModelRecord(
            id="",
            name="HG8245H",
            type="ONT",
            brand="Huawei",
            description="GPON ONT",
            picture="https://example.net/hg.png",
            profile="huawei",
        ),
        audit=audit("model.create"),
    )
    assert is_id(first.id) and first.created > 0 and first.updated == first.created
    assert await store.get_model(first.id) == first
    assert await store.get_model("nope") is None
    for i in range(3):
        await store.create_model(ModelRecord(id=f"m{i}", name=f"M{i}", type="ROUTER"))
    with pytest.raises(ConflictError):
        await store.create_model(ModelRecord(id="m0", name="again", type="ROUTER"))
    records, total = await store.list_models(limit=2)
    assert total == 4 and [r.id for r in records] == [first.id, "m0"]
    records, total = await store.list_models(limit=2, offset=2)
    assert total == 4 and [r.id for r in records] == ["m1", "m2"]
    [entry] = await audit_rows(store)
    assert (entry.resource, entry.resource_id) == ("model", first.id)


# -- audit log ------------------------------------------------------------------------------


async def test_list_audit_newest_first_with_paging(store: SqliteStore) -> None:
    made = [
        await store.write_device(
            DeviceRecord(id="", serial_number=f"A{i}"), audit=audit("device.create", at=100.0 + i)
        )
        for i in range(5)
    ]
    # the same time: the later entry (its id is greater) comes first
    await store.delete_device(made[0].id, audit=audit("device.delete", at=104.0))
    records, total = await store.list_audit(limit=3)
    assert total == 6
    assert [(r.action, r.at) for r in records] == [
        ("device.delete", 104.0),
        ("device.create", 104.0),
        ("device.create", 103.0),
    ]
    records, total = await store.list_audit(limit=3, offset=3)
    assert total == 6 and [r.at for r in records] == [102.0, 101.0, 100.0]
    assert await store.list_audit(offset=10) == ([], 6)


async def test_list_audit_before_an_entry_while_new_ones_come(store: SqliteStore) -> None:
    async def entry(n: int, at: float) -> None:
        await store.write_device(
            DeviceRecord(id="", serial_number=f"B{n}"), audit=audit("device.create", at=at)
        )

    for n in range(7):
        await entry(n, 100.0 + n // 2)  # pairs at the same time: ordered by id there
    everything, _ = await store.list_audit(limit=1000)
    seen: list[str] = []
    before = None
    while True:
        page, total = await store.list_audit(limit=3, before=before)
        assert total == 7 + len(seen) // 3  # every entry, the new ones too
        seen += [r.id for r in page]
        if len(page) < 3:
            break
        before = seen[-1]
        await entry(len(seen) + 100, 200.0)  # a write meanwhile: it comes first
    # under an offset each new entry pushes one seen already into the next page
    assert seen == [r.id for r in everything]
    with pytest.raises(LookupError):
        await store.list_audit(before=new_id())


# -- lifecycle ------------------------------------------------------------------------------


async def test_new_writes_are_refused_when_closed(store_url: str) -> None:
    s = open_store(store_url)
    await s.open()
    await s.close()
    with pytest.raises(StoreClosedError):
        await s.create_customer(CustomerRecord(id="", name="late"))
    with pytest.raises(StoreClosedError):
        await s.write_device(DeviceRecord(id="", serial_number="late"), audit=audit())
    with pytest.raises(StoreClosedError):
        await s.query_devices(DeviceQuery())


# -- a MAC a router reported against operators' writes read earlier -------------------------


async def _macs(store: SqliteStore) -> dict[str, str | None]:
    records, _ = await store.query_devices(DeviceQuery(limit=1000))
    return {r.serial_number: r.mac_address for r in records}


async def test_a_write_read_before_an_operator_took_the_routers_mac_does_not_put_it_back(
    store_url: str,
) -> None:
    """`acsd device apply` in another process reads a router's record, the API takes the
    MAC the router reported for a device, then the apply writes: the MAC stays with the
    device, not on both records."""
    cli, api = open_store(store_url), open_store(store_url)
    await cli.open()
    await api.open()
    try:
        await api.save_session(session("ROUTER", mac_address="02:00:00:00:00:09"))
        stale = await cli.find_device_for_cpe("ROUTER")
        assert stale is not None and stale.mac_from_router
        await api.write_device(
            DeviceRecord(id="", serial_number="D1", customer="c1", mac_address="020000000009"),
            mac="set",
        )
        assert await _macs(api) == {"ROUTER": None, "D1": "020000000009"}
        stale.name = "claimed"
        await cli.upsert_device(stale)
        assert await _macs(api) == {"ROUTER": None, "D1": "020000000009"}
        # ...and one read before the router reported its MAC does not wipe it out
        await api.save_session(session("LATE", at=1000.0))
        early = await cli.find_device_for_cpe("LATE")
        assert early is not None and early.mac_address is None
        await api.save_session(
            session("LATE", at=2000.0, since=1000.0, mac_address="02:00:00:00:00:0A")
        )
        early.name = "named"
        await cli.upsert_device(early)
        assert (await _macs(api))["LATE"] == "02000000000A"
    finally:
        await cli.close()
        await api.close()


async def test_a_swap_takes_the_new_routers_mac_as_it_is_at_the_write(store: SqliteStore) -> None:
    """The new router's unclaimed record reported a MAC; a device takes that MAC before the
    swap is written: the swapped record does not get it too."""
    old_id = await store.save_session(session("OLD", mac_address="02:00:00:00:00:01"))
    await store.save_session(session("NEW", mac_address="02:00:00:00:00:02"))
    record = await store.get_device(old_id)
    assert record is not None
    record.customer = "c1"
    record = await store.write_device(record)
    await store.write_device(
        DeviceRecord(id="", serial_number="E1", customer="c1", mac_address="020000000002"),
        mac="set",
    )
    record.serial_number, record.mac_address, record.mac_from_router = "NEW", None, False
    swapped = await store.write_device(record, new_router=True)
    assert swapped.mac_address is None
    assert await _macs(store) == {"NEW": None, "E1": "020000000002"}
    # without the device in between, the swap takes the MAC the new router reported
    other_id = await store.save_session(session("OTHER-OLD", mac_address="02:00:00:00:00:03"))
    await store.save_session(session("OTHER-NEW", mac_address="02:00:00:00:00:04"))
    other = await store.get_device(other_id)
    assert other is not None
    other.customer = "c1"
    other.serial_number, other.mac_address, other.mac_from_router = "OTHER-NEW", None, False
    swapped = await store.write_device(other, new_router=True)
    assert (swapped.mac_address, swapped.mac_from_router) == ("020000000004", True)
    assert (await _macs(store))["OTHER-NEW"] == "020000000004"


async def test_an_apply_of_a_serial_a_router_registered_meanwhile_keeps_its_mac(
    store: SqliteStore,
) -> None:
    """`acsd device apply` finds no record for the serial (id ""), the router calls in and
    reports its MAC, then the apply writes: the MAC the router reported stays, whether the
    write says to keep it or (as a record without a MAC does) to remove the operator's."""
    for serial, mac in (("R1", None), ("R2", "remove")):
        await store.save_session(session(serial, mac_address="02:00:00:00:00:2" + serial[1]))
        written = await store.upsert_device(
            DeviceRecord(id="", serial_number=serial, name="named"), mac=mac
        )
        assert (written.name, written.mac_from_router) == ("named", True)
        assert written.mac_address == "02000000002" + serial[1]
    # an operator's MAC: kept when the write leaves it alone, gone when it removes it
    await store.upsert_device(
        DeviceRecord(id="", serial_number="R3", customer="c1", mac_address="020000000033")
    )
    kept = await store.upsert_device(DeviceRecord(id="", serial_number="R3"), mac="keep")
    assert kept.mac_address == "020000000033"
    gone = await store.upsert_device(DeviceRecord(id="", serial_number="R3"))
    assert gone.mac_address is None


async def test_a_swap_audits_the_mac_as_written(store: SqliteStore) -> None:
    """The audit entry of a swap shows the MAC the record got in the write (the new router's
    report), not the one the caller had before it."""
    old_id = await store.save_session(session("A-OLD", mac_address="02:00:00:00:00:41"))
    await store.save_session(session("A-NEW", mac_address="02:00:00:00:00:42"))
    record = await store.get_device(old_id)
    assert record is not None
    record.customer = "c1"
    record = await store.write_device(record)
    record.serial_number = "A-NEW"
    swapped = await store.write_device(
        record,
        audit=audit(id="SWAP-ENTRY"),
        audit_after=lambda r: {"macAddress": r.mac_address},
        mac="keep",
        new_router=True,
    )
    assert swapped.mac_address == "020000000042"
    [logged] = [e for e in (await store.list_audit())[0] if e.id == "SWAP-ENTRY"]
    assert logged.after == {"macAddress": "020000000042"}


async def test_list_devices_after_a_serial_number(store: SqliteStore) -> None:
    """``acsd device list --after``: the list by serial number (code point order on both
    backends) from past a serial number on, in any case, of a device or of none (the last
    one shown may have been deleted since)."""
    for serial in ("ab_1", "AB-2", "Z9", "b0", "AB-10"):
        await add(store, serial)
    ordered = ["AB-10", "AB-2", "ab_1", "b0", "Z9"]
    assert [r.serial_number for r in await store.list_devices()] == ordered
    walked, after = [], None
    while page := await store.list_devices(limit=2, after=after):
        walked += [r.serial_number for r in page]
        after = page[-1].serial_number.swapcase()  # any case
    assert walked == ordered
    assert [r.serial_number for r in await store.list_devices(after="AB-2", offset=1)] == [
        "b0",
        "Z9",
    ]
    gone = await store.get_device("ab_1")
    assert gone is not None
    await store.delete_device(gone.id)
    assert [r.serial_number for r in await store.list_devices(after="AB_1")] == ["b0", "Z9"]
    assert await store.list_devices(after="z9") == []
