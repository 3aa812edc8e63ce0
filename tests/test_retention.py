"""The retention prune ([store] audit_retention_days, operations_retention_days): audit
entries and APN operations past their retention go, oldest first and a batch at a time, on
both backends; recent ones and operations still pending stay; a pruned operation's
StatusUrl answers 404 4044, as an unknown one does."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from acsd import clock
from acsd.ids import new_id
from acsd.retention import DAY, RetentionDays, prune_once
from acsd.store import open_store
from acsd.store.base import (
    ApnAccountRecord,
    ApnDeviceRecord,
    ApnOperationRecord,
    AuditRecord,
    CustomerRecord,
)
from acsd.store.retention import PRUNABLE
from acsd.store.sqlite import SqliteStore
from apiclient import Api
from apn_client import ApnApi
from conftest import start_daemon, wait_for, write_config
from test_apn_api import failed, ok

OLD = 10 * DAY  # seconds before now of the rows that go with a retention of a day


async def _audit(store, at: float, action: str = "customer.create") -> str:
    """A customer made with an audit entry stamped ``at``; the entry's id."""
    entry_id = new_id()
    audit = AuditRecord(id=entry_id, at=at, action=action, resource="customer")
    await store.create_customer(CustomerRecord(id="", name=action), audit=audit)
    return entry_id


async def _operation(store, cli: str, *, created: float, done: float | None, state: str) -> str:
    """An APN device of account ACC made with an operation of these times; its id."""
    op = ApnOperationRecord(
        id=new_id(), account="ACC", kind="create", state=state, created=created, done=done
    )
    device = ApnDeviceRecord(
        id="", account="ACC", network="net", cli=cli, cli_key=f"msisdn:{cli}", msisdn=cli
    )
    await store.create_apn_device(device, account=ApnAccountRecord(key="ACC"), operation=op)
    return op.id


async def _fill(store) -> dict[str, list[str]]:
    """Rows on either side of a day's retention: what must go and what must stay."""
    now = clock.now()
    gone_audit = [await _audit(store, now - OLD - i) for i in range(3)]
    kept_audit = [await _audit(store, now - 60)]
    gone_ops = [
        await _operation(store, "4511000001", created=now - OLD, done=now - OLD, state="complete"),
        await _operation(store, "4511000002", created=now - OLD, done=now - OLD, state="failed"),
    ]
    kept_ops = [
        # done long after it was made: aged from when it was done
        await _operation(store, "4511000003", created=now - OLD, done=now - 60, state="complete"),
        # still pending however old: never pruned, whatever its times say
        await _operation(store, "4511000004", created=now - OLD, done=None, state="pending"),
        await _operation(store, "4511000005", created=now - OLD, done=now - OLD, state="pending"),
    ]
    return {"gone_audit": gone_audit, "kept_audit": kept_audit,
            "gone_ops": gone_ops, "kept_ops": kept_ops}  # fmt: skip


async def _audit_ids(store) -> set[str]:
    entries, _ = await store.list_audit(limit=1000)
    return {e.id for e in entries}


async def test_old_rows_go_a_batch_at_a_time_and_recent_or_pending_ones_stay(store) -> None:
    rows = await _fill(store)
    # more than a batch: each call deletes at most its limit, oldest first
    cutoff = clock.now() - DAY
    assert await store.prune("audit", cutoff, 2) == 2
    assert rows["gone_audit"][2] not in await _audit_ids(store)  # the oldest went first
    assert await store.prune("audit", cutoff, 2) == 1
    assert await store.prune("audit", cutoff, 2) == 0
    assert await store.prune("operations", cutoff, 1000) == 2
    assert await store.prune("operations", cutoff, 1000) == 0
    left = await _audit_ids(store)
    assert not left & set(rows["gone_audit"]) and set(rows["kept_audit"]) <= left
    for op_id in rows["gone_ops"]:
        assert await store.get_apn_operation(op_id) is None
    for op_id in rows["kept_ops"]:
        assert await store.get_apn_operation(op_id) is not None


async def test_a_retention_of_0_keeps_everything(store) -> None:
    rows = await _fill(store)
    assert await prune_once(store, RetentionDays(audit=0, operations=0)) == {}
    assert await prune_once(store, RetentionDays(audit=0, operations=1)) == {"operations": 2}
    assert set(rows["gone_audit"]) <= await _audit_ids(store)
    assert await prune_once(store, RetentionDays(audit=1, operations=1)) == {"audit": 3}


async def test_instances_pruning_at_once_each_delete_other_rows(store_url: str) -> None:
    # Several PostgreSQL instances (or workers, on SQLite) prune the same rows at the same
    # moment: none fails, and every old row goes exactly once.
    first, second = open_store(store_url), open_store(store_url)
    await first.open()
    await second.open()
    try:
        now = clock.now()
        for i in range(60):
            await _audit(first, now - OLD - i)
        counts = await asyncio.gather(
            *(s.prune("audit", now - DAY, 7) for s in (first, second, first, second) * 5)
        )
        assert sum(counts) == 60
        assert await first.prune("audit", now - DAY, 7) == 0
    finally:
        await first.close()
        await second.close()


async def test_the_prunes_look_rows_up_through_an_index(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "acsd.db")
    await store.open()
    await store.close()
    with sqlite3.connect(tmp_path / "acsd.db") as db:
        for rows in PRUNABLE.values():
            plan = db.execute(
                f"EXPLAIN QUERY PLAN SELECT id FROM {rows.table} WHERE {rows.where('?1')}"
                f" ORDER BY {rows.column} LIMIT 1000",
                (0.0,),
            ).fetchall()
            details = " ".join(row[-1] for row in plan)
            assert "USING INDEX" in details and "TEMP B-TREE" not in details, details


async def test_the_prunes_can_use_an_index_on_postgresql(pg_url: str) -> None:
    import asyncpg

    store = open_store(pg_url)
    await store.open()
    await store.close()
    conn = await asyncpg.connect(pg_url)
    try:
        # (tables this small are read whole: the planner is told to use an index it can)
        await conn.execute("SET enable_seqscan = off")
        await conn.execute("SET enable_bitmapscan = off")
        for rows, index in zip(PRUNABLE.values(), ("audit_at", "apn_operations_done"), strict=True):
            plan = await conn.fetch(
                f"EXPLAIN SELECT id FROM {rows.table} WHERE {rows.where('$1')}"
                f" ORDER BY {rows.column} LIMIT 1000",
                0.0,
            )
            text = "\n".join(row[0] for row in plan)
            assert f"Index Scan using {index}" in text and "Sort" not in text, text
    finally:
        await conn.close()


async def test_the_daemon_prunes_soon_after_its_start(tmp_path: Path) -> None:
    db = tmp_path / "acsd.db"
    store = SqliteStore(db)
    await store.open()
    try:
        rows = await _fill(store)
    finally:
        await store.close()
    config = write_config(
        tmp_path, store={"audit_retention_days": 1, "operations_retention_days": 1.0}
    )
    started = time.monotonic()
    daemon = await asyncio.to_thread(start_daemon, config, db)
    try:
        admin = Api(daemon.api_url, daemon.cli("token", "create", "--role", "ADMIN").stdout.strip())
        [pruned] = await asyncio.to_thread(wait_for, lambda: daemon.events("store.pruned"), 30)
        assert time.monotonic() - started < 25
        assert (pruned["audit"], pruned["operations"]) == (3, 2), pruned
        assert pruned["level"] == "info"
        apn = ApnApi(admin, "json")
        for op_id in rows["gone_ops"]:
            failed(apn.get(f"/v1/operations/{op_id}"), 404, 4044)
        for op_id in rows["kept_ops"]:
            ok(apn.get(f"/v1/operations/{op_id}"))
        listed = {e["_id"] for e in admin.get("/audit", query={"limit": 1000}).body["items"]}
        assert not listed & set(rows["gone_audit"]) and set(rows["kept_audit"]) <= listed
    finally:
        assert daemon.stop() == 0
    assert "store.prune_failed" not in daemon.log_text()
