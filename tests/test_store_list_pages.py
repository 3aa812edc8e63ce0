"""The device list's pages and totals (GET /network/device, ``acsd device list``) on both
backends: every filter, offset (past the end too), limit and ``after`` gives the records,
order and total that the records themselves say. On PostgreSQL the total is counted apart
from the page, and a page reads the full rows of the records it shows only: a list of 100k
devices took 0.3-1 s while ``count(*) OVER ()`` read every matching row."""

from __future__ import annotations

import json
import random
from typing import Any

import asyncpg
import pytest

from acsd.store.base import DeviceQuery, DeviceRecord
from acsd.store.records import search_fold

NOW = 100_000.0
#: online: a session within 2 x 300 s + 60 s (DeviceQuery's defaults)
ONLINE_SINCE = NOW - 660


def _memory(revision: int, state: str) -> dict[str, Any]:
    return {"appliedRevision": revision, "job": {"revision": revision, "state": state}}


async def _fill(store) -> list[DeviceRecord]:
    """Devices over customers, states, Informs, jobs and searchable text; in id order."""
    rng = random.Random(32)
    made = []
    for n in range(40):
        record = DeviceRecord(
            id="",
            serial_number=f"PAGE{n:03d}",
            customer=rng.choice(("c1", "c2", "c3", None)),
            state=rng.choice(("ACTIVE", "ACTIVE", "PROVISIONING")),
            revision=1,
            provisioning=_memory(1, rng.choice(("PENDING", "DONE", "FAILED"))),
            name=rng.choice(("roof", "Café Nord", None)),
            # a search that only the notes answer (no index holds them)
            notes=rng.choice(("", "behind the ROOF hatch", "spare")),
            mac_address=f"00:11:22:33:44:{n:02x}",
            last_inform=rng.choice((None, NOW - 100, NOW - 5000)),
            periodic_interval=300,
        )
        made.append(await store.upsert_device(record))
    return sorted(made, key=lambda r: r.id)


def _matches(record: DeviceRecord, query: DeviceQuery) -> bool:
    online = record.last_inform is not None and record.last_inform >= ONLINE_SINCE
    job = record.provisioning["job"]["state"]
    q = search_fold(query.q) if query.q else None
    text = [search_fold(v) for v in (record.name or "", record.serial_number, record.notes)]
    return (
        (query.customers is None or record.customer in query.customers)
        and (query.customer is None or record.customer == query.customer)
        and (query.state is None or record.state == query.state)
        and (query.online is None or online == query.online)
        and (query.job is None or job == query.job)
        and (q is None or any(q in t for t in text) or q in (record.mac_address or ""))
    )


QUERIES: list[dict[str, Any]] = [
    {},
    {"customer": "c2"},
    {"customers": {"c1", "c3"}},
    {"state": "PROVISIONING"},
    {"online": True},
    {"online": False},
    {"job": "FAILED"},
    {"q": "roof"},  # names and notes, in any case
    {"q": "café"},  # not ASCII
    {"q": "44:0"},  # part of a MAC address
    {"q": "nothing like it"},
    {"customer": "c1", "online": True, "q": "ROOF"},
]


async def test_pages_and_totals_are_the_records_own(store) -> None:
    made = await _fill(store)
    for filters in QUERIES:
        expected = [r.id for r in made if _matches(r, DeviceQuery(**filters))]
        assert 0 < len(expected) < len(made) or filters.get("q") == "nothing like it" or not filters
        for limit, offset in ((100, 0), (7, 0), (7, 7), (3, len(expected) - 2), (5, 40), (1, 99)):
            page, total = await store.query_devices(
                DeviceQuery(limit=limit, offset=max(0, offset), now=NOW, **filters)
            )
            # (an empty page past the end still counts every match)
            assert total == len(expected), (filters, limit, offset)
            start = max(0, offset)
            assert [r.id for r in page] == expected[start : start + limit], (filters, offset)
        # walked by after=, 4 at a time, from every point on
        for after in (made[0].id, made[17].id, made[-1].id):
            walked, total = await store.query_devices(
                DeviceQuery(limit=1000, after=after, now=NOW, **filters)
            )
            assert [r.id for r in walked] == [i for i in expected if i > after], filters
            assert total == len(expected)
            page, _ = await store.query_devices(
                DeviceQuery(limit=4, offset=2, after=after, now=NOW, **filters)
            )
            assert [r.id for r in page] == [r.id for r in walked][2:6], filters


def _scans(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found = [plan] if plan.get("Relation Name") == "devices" else []
    for child in plan.get("Plans", []):
        found += _scans(child)
    return found


async def _full_rows_read(store, store_url: str, query: DeviceQuery) -> tuple[int, int]:
    """How many full rows (the status column, with the rest of the record) the list's
    statement reads from the table, and how many records its page holds."""
    ran: list[tuple[str, tuple[Any, ...]]] = []
    reading = store._reading

    async def recorded(method: str, sql: str, *args: Any) -> Any:
        ran.append((sql, args))
        return await reading(method, sql, *args)

    store._reading = recorded
    try:
        page, _ = await store.query_devices(query)
    finally:
        store._reading = reading
    assert len(ran) == 1  # page and total in one statement: one snapshot
    sql, args = ran[0]
    conn = await asyncpg.connect(store_url)
    try:
        # a small table is scanned whatever its indexes: the plans of a large one
        await conn.execute("SET enable_seqscan = off")
        text = await conn.fetchval(f"EXPLAIN (ANALYZE, VERBOSE, FORMAT JSON) {sql}", *args)
    finally:
        await conn.close()
    plan = json.loads(text)[0]["Plan"]
    read = sum(
        scan["Actual Rows"] * scan["Actual Loops"]
        for scan in _scans(plan)
        if any(c.split(".")[-1] == "status" for c in scan.get("Output", []))
    )
    return read, len(page)


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_a_postgresql_page_reads_the_rows_it_shows_only(store, store_url) -> None:
    await _fill(store)
    for filters in ({}, {"customer": "c2"}, {"q": "roof"}, {"online": False}):
        for offset in (0, 10):
            query = DeviceQuery(limit=5, offset=offset, now=NOW, **filters)
            read, shown = await _full_rows_read(store, store_url, query)
            assert shown > 0 and read == shown, (filters, offset, read, shown)
