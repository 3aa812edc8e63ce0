"""The retention prune: the daemon deletes audit entries and APN operations older than
``[store] audit_retention_days`` and ``operations_retention_days`` (0: kept for ever).

Once shortly after the start, then once an hour. Each table is pruned oldest first,
:data:`acsd.store.retention.BATCH` rows per write, with a pause between two: a backlog of
millions (the first prune of a database that never had one) takes minutes rather than one
long transaction, and the sessions' saves queued behind each batch wait for a few ms only.
One process of a ``workers = N`` group prunes (worker 0); several PostgreSQL instances may
all prune at once, each taking rows the others do not hold (the store says how).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from acsd import clock
from acsd.config import StoreConfig
from acsd.log import get_logger
from acsd.store.base import Store, StoreClosedError, log_store_failure
from acsd.store.retention import BATCH, PRUNABLE, Group

log = get_logger("acsd.store")

DAY = 86400.0
#: seconds from the start to the first prune: what a restart left to prune goes soon,
#: after the start's own work (migrations, the first sessions' look-ups)
FIRST_DELAY = 5.0
#: seconds between two prunes: an hour's rows are a small batch on any fleet
INTERVAL = 3600.0
#: seconds between two batches of one prune: the writer's queue drains meanwhile
PAUSE = 0.05


@dataclass(frozen=True, slots=True)
class RetentionDays:
    """Days each table group is kept; 0: for ever."""

    audit: float
    operations: float

    @classmethod
    def of(cls, store: StoreConfig) -> RetentionDays:
        return cls(audit=store.audit_retention_days, operations=store.operations_retention_days)

    def days(self, group: Group) -> float:
        return self.audit if group == "audit" else self.operations


async def prune_once(store: Store, retention: RetentionDays) -> dict[Group, int]:
    """Every group's rows past its retention, batch by batch; how many went of each (a
    ``store.pruned`` line says so when any did)."""
    gone: dict[Group, int] = {}
    now = clock.now()
    for group in PRUNABLE:
        days = retention.days(group)
        if days <= 0:
            continue
        before = now - days * DAY
        count = 0
        while True:
            batch = await store.prune(group, before, BATCH)
            count += batch
            if batch < BATCH:
                break
            await asyncio.sleep(PAUSE)
        if count:
            gone[group] = count
    if gone:
        log.info("store.pruned", **gone, **{f"{g}_days": retention.days(g) for g in gone})
    return gone


async def run_pruner(store: Store, retention: RetentionDays) -> None:
    """Prune after :data:`FIRST_DELAY`, then every :data:`INTERVAL`, until cancelled. A
    prune that fails (the database unavailable) is logged and tried again at the next."""
    if retention.audit <= 0 and retention.operations <= 0:
        return  # everything kept for ever
    delay = FIRST_DELAY
    while True:
        await asyncio.sleep(delay)
        delay = INTERVAL
        try:
            await prune_once(store, retention)
        except StoreClosedError:
            return
        except Exception as exc:
            log_store_failure(log, "store.prune_failed", exc)
