"""Routers whose static line waits for DNS servers, woken once the configuration has some.

A static line that would leave a router without a resolver, where it reaches acsd by host
name, is not sent: its job is FAILED with a ``wan.static.dns`` fault naming ``[provisioning]
static_wan_dns`` (acsd.provisioning.apply_phase). A FAILED job is not retried on its own,
and the router's next periodic Inform may be a day away: when the operator sets
``static_wan_dns`` (a reload, or a start with it set), those routers are asked to connect
now, and their sessions send the line with the configured servers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from acsd.log import get_logger
from acsd.provisioning.jobs import FAILED
from acsd.store.base import (
    DeviceQuery,
    DeviceRecord,
    Store,
    StoreClosedError,
    log_store_failure,
)

log = get_logger("acsd.internet")

#: the setting whose fault holds the line
HELD_SETTING = "wan.static.dns"
#: records read per page of the FAILED jobs
PAGE = 500


def held_for_dns(record: DeviceRecord) -> bool:
    """The record's current job gave up on the line for want of DNS servers (or on the
    servers themselves: new ones are worth a try too)."""
    job: Any = record.provisioning.get("job") if isinstance(record.provisioning, dict) else None
    if not isinstance(job, dict) or job.get("state") != FAILED:
        return False
    if job.get("revision") != record.revision or record.state == "DELETING":
        return False
    faults = job.get("faults")
    return isinstance(faults, list) and any(
        isinstance(f, dict) and f.get("setting") == HELD_SETTING for f in faults
    )


async def held_lines(store: Store, page: int = PAGE) -> AsyncIterator[DeviceRecord]:
    """The records :func:`held_for_dns` takes, by pages of FAILED jobs (an index answers
    those on both backends), in id order."""
    after: str | None = None
    while True:
        records, _ = await store.query_devices(DeviceQuery(job=FAILED, limit=page, after=after))
        for record in records:
            if held_for_dns(record):
                yield record
        if len(records) < page:
            return
        after = records[-1].id


async def wake_held_lines(store: Store, wake: Callable[[DeviceRecord], None]) -> int:
    """Ask every router whose line is held for DNS servers to connect (``wake``: the
    Connection Request client's poke, which bounds the requests in flight and spaces
    those to one router); how many were asked. A store that fails leaves the rest to
    their next Inform, as before."""
    count = 0
    try:
        async for record in held_lines(store):
            wake(record)
            count += 1
    except StoreClosedError:
        return count
    except Exception as exc:
        log_store_failure(log, "internet.held_lines_failed", exc, woken=count)
        return count
    log.info("internet.held_lines_woken", routers=count)
    return count
