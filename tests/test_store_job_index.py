"""The device list's ``job=`` filter (GET /network/device?job=, ``acsd device list --job``)
is answered from the index devices_job_state (schema version 20) on both backends: the
rows it returns and their order are those of the job each device shows, with every other
filter and with ``after`` paging, on a database upgraded in place as on a new one."""

from __future__ import annotations

import random
import sqlite3
from typing import Any

import asyncpg

from acsd.device_view import device_view
from acsd.store import open_store, sqlite_path
from acsd.store.base import DeviceQuery, DeviceRecord

NOW = 100_000.0
STATES = ("PENDING", "DONE", "FAILED")
#: text that is no JSON, written behind the store's back (a hand edit, a half restore), in
#: the memory of a device with operator settings
DAMAGED = "UPDATE devices SET provisioning = '{bad' WHERE serial_number = 'JOB001'"


def _job(revision: int, state: str) -> dict[str, Any]:
    return {"appliedRevision": revision, "job": {"revision": revision, "state": state}}


async def _fill(store) -> dict[str, DeviceRecord]:
    """Devices of every kind of job a row can hold, over customers, states and Informs;
    by serial number."""
    rng = random.Random(20)
    made = {}
    for n in range(60):
        revision = rng.choice((0, 1, 2, 3))
        memory: dict[str, Any] = rng.choice(
            (
                _job(revision, rng.choice(STATES)),
                _job(revision, rng.choice(STATES)),
                _job(max(0, revision - 1), "FAILED"),  # settings changed since
                {"appliedRevision": revision},  # no job yet
                {"job": "FAILED"},  # a hand-made row of another shape
            )
        )
        record = DeviceRecord(
            id="",
            serial_number=f"JOB{n:03d}",
            customer=rng.choice(("c1", "c2", "c3", None)),
            state=rng.choice(("ACTIVE", "PROVISIONING", "DELETING")),
            revision=revision,
            provisioning=memory,
            name=rng.choice(("roof", "cellar", None)),
            last_inform=rng.choice((None, NOW - 100, NOW - 5000)),
            periodic_interval=300,
        )
        made[record.serial_number] = await store.upsert_device(record)
    return made


def _shown_job(record: DeviceRecord) -> str | None:
    job = device_view(record, default_interval=300, grace=60).job
    return None if job is None else job.state


def _expected(made: dict[str, DeviceRecord], query: DeviceQuery) -> list[str]:
    """What the list must hold, from the job each record shows (acsd.device_view)."""
    out = []
    for record in sorted(made.values(), key=lambda r: r.id):
        online = record.last_inform is not None and record.last_inform >= NOW - 660
        if (
            (query.job is None or _shown_job(record) == query.job)
            and (query.customers is None or record.customer in query.customers)
            and (query.customer is None or record.customer == query.customer)
            and (query.state is None or record.state == query.state)
            and (query.online is None or online == query.online)
            and (query.q is None or query.q in (record.name or ""))
        ):
            out.append(record.serial_number)
    return out


QUERIES = [
    {"customers": {"c1", "c2"}},
    {"customer": "c3"},
    {"state": "PROVISIONING"},
    {"online": True},
    {"online": False, "customers": {"c1"}},
    {"q": "roof"},
    {"customer": "c2", "state": "ACTIVE", "online": False, "q": "cellar"},
    {},
]


async def _walk(store, query: dict[str, Any]) -> tuple[list[str], list[str], int]:
    """One page of it all, the same walked by ``after`` 3 at a time, and the total."""
    whole, total = await store.query_devices(DeviceQuery(limit=1000, now=NOW, **query))
    walked: list[str] = []
    after = None
    while True:
        page, page_total = await store.query_devices(
            DeviceQuery(limit=3, after=after, now=NOW, **query)
        )
        assert page_total == total  # every page counts every match
        walked += [r.serial_number for r in page]
        if len(page) < 3:
            break
        after = page[-1].id
    return [r.serial_number for r in whole], walked, total


async def _check_lists(store, made: dict[str, DeviceRecord]) -> None:
    for job in STATES:
        for extra in QUERIES:
            query = {"job": job, **extra}
            whole, walked, total = await _walk(store, query)
            expected = _expected(made, DeviceQuery(now=NOW, **query))
            assert whole == expected, query
            assert walked == expected and total == len(expected), query
    # the data covers what the filter decides: each state matches some and misses some
    for job in STATES:
        assert 0 < len(_expected(made, DeviceQuery(job=job))) < len(made)


async def _plan(store_url: str, backend: str, job: str = "FAILED") -> str:
    """The plan of a job= page (and its count) as the store runs it."""
    if backend == "sqlite":
        from acsd.store.sqlite.filters import device_filters

        where, params = device_filters(DeviceQuery(job=job, customers={"c1"}))
        sql = (
            f"SELECT id, (SELECT count(*) FROM devices WHERE {where}) FROM devices"
            f" WHERE {where} ORDER BY id LIMIT 100"
        )
        with sqlite3.connect(sqlite_path(store_url)) as db:
            return "\n".join(r[3] for r in db.execute(f"EXPLAIN QUERY PLAN {sql}", params))
    from acsd.store.postgres.rows import Args, device_filters

    args = Args()
    where = device_filters(DeviceQuery(job=job), args)
    conn = await asyncpg.connect(store_url)
    try:
        # a small table is scanned whatever its indexes: ask for the plan with an index
        await conn.execute("SET enable_seqscan = off")
        rows = await conn.fetch(
            f"EXPLAIN SELECT id FROM devices WHERE {where} ORDER BY id LIMIT 100", *args.values
        )
    finally:
        await conn.close()
    return "\n".join(r[0] for r in rows)


async def test_job_lists_come_from_the_index_with_every_filter_and_after(
    store, store_url, backend
) -> None:
    made = await _fill(store)
    # a memory that is no JSON has no job, and fails no list (SQLite's json_extract did)
    assert made["JOB001"].revision > 0  # (a job to show, but for the damage)
    await _raw(store_url, backend, DAMAGED)
    made["JOB001"].provisioning = {}  # (as the store reads it)
    await _check_lists(store, made)
    assert "devices_job_state" in await _plan(store_url, backend)
    # A change no session has taken up yet is a PENDING job too (device_view.waiting_job),
    # listed from the same index: the data holds such devices, and the list finds them.
    waiting = [
        r.serial_number
        for r in made.values()
        if r.state == "PROVISIONING"
        and r.revision > 0
        and not (
            isinstance(job := r.provisioning.get("job"), dict) and job.get("revision") == r.revision
        )
    ]
    assert waiting and all(_shown_job(made[s]) == "PENDING" for s in waiting)
    pending, _, _ = await _walk(store, {"job": "PENDING"})
    assert set(waiting) <= set(pending)
    plan = await _plan(store_url, backend, "PENDING")
    # (both halves of the OR from the index: no scan of the table)
    assert "devices_job_state" in plan and "SCAN devices" not in plan and "Seq Scan" not in plan


async def _raw(store_url: str, backend: str, *statements: str) -> None:
    if backend == "sqlite":
        with sqlite3.connect(sqlite_path(store_url)) as db:
            for sql in statements:
                db.execute(sql)
        return
    conn = await asyncpg.connect(store_url)
    try:
        for sql in statements:
            await conn.execute(sql)
    finally:
        await conn.close()


async def test_the_upgrade_indexes_the_jobs_of_the_devices_there_are(store_url, backend) -> None:
    """A database at schema version 19 with devices (a damaged memory among them) gets the
    index at the upgrade, and lists what the jobs its devices show say."""
    store = open_store(store_url)
    await store.open()
    try:
        made = await _fill(store)
    finally:
        await store.close()
    undo = ["DROP INDEX devices_job_state", "DELETE FROM schema_migrations WHERE version = 20"]
    if backend == "postgresql":
        undo.append("DROP FUNCTION acsd_job_state")
        # PostgreSQL builds the index of a large table in parallel workers, which cannot
        # run the function's EXCEPTION block (the upgrade failed at 100k devices): as large
        undo.append("ALTER TABLE devices SET (parallel_workers = 2)")
    await _raw(store_url, backend, *undo, DAMAGED)
    made["JOB001"].provisioning = {}  # (as the store reads it: no job)

    store = open_store(store_url)
    await store.open()
    try:
        assert store.migrations_applied == [20]
        await _check_lists(store, made)
    finally:
        await store.close()
    assert "devices_job_state" in await _plan(store_url, backend)
