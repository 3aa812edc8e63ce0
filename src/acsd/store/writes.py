"""What both backends' writers share: a queued session result (:class:`SaveOp`) and the
parameters of the upsert that writes it, a write that failed alone in a batch
(:class:`Failed`), the writer's stop marker and its counters (:class:`WriterStats`)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from acsd.store.base import SessionResult
from acsd.store.records import dumps, dumps_params, mac_key

# The parameters of each backend's upsert of a session result (one statement that inserts a
# new row or, when the serial key exists, updates that row), bound positionally:
#  1 id for a new row     2 serial_number   3 serial_key (the conflict target)
#  4 mac_address          5 mac_key (both: as reported; dropped if any device has it)
#                                            6 oui   7 product_class   8 manufacturer
#  9 model_name          10 software_version  11 hardware_version   12 profile
# 13 status (JSON)       14 public_ip        15 at                   16 periodic_interval
# 17 params (JSON)       18 absent_paths (JSON or NULL)              19 connection_request_url
# 20 reset_params (0/1)
# 21 provisioning (JSON or NULL)  22 state or NULL  23 jobs or NULL  24 revision or NULL
# 25 dhcp (JSON or NULL)
# 26 cr_username or NULL   27 cr_password or NULL (NULL keeps the stored value)
# 28 read_plan (JSON or NULL: NULL keeps the stored one)   29 sim (JSON or NULL: keeps)
# 30 merge params key by key (1) rather than with json_patch (0): see MERGE_BY_KEY_FROM

#: on SQLite, results with this many values are merged into the stored tree key by key. json_patch
#: looks each of the result's keys up by walking the stored tree: 50k values over a 100k-leaf
#: tree held the one writer (and every other session's commit) for 12-80 s. The merge by
#: key costs the same per stored leaf whatever the result's size; json_patch is cheaper
#: below ~150-200 values, whatever the tree's size (measured with benchmarks/params_merge.py).
#: PostgreSQL's jsonb || needs no such choice and leaves parameter 30 out.
MERGE_BY_KEY_FROM = 200

#: the slice of SaveOp.args the session decided about its record's job: provisioning,
#: state, jobs, revision, dhcp (?21 .. ?25)
JOB_ARGS = slice(20, 25)


@dataclass(slots=True)
class SaveOp:
    #: the parameters of the backend's upsert (save_args); the writer fills in [0] and [2]
    args: list[Any]
    serial_key: str
    device_id: str | None
    future: asyncio.Future[Any]
    #: SessionResult.at and .since: the result is stale unless the record's last_inform
    #: is still ``since``, and once written it is ``at``
    at: float = 0.0
    since: float | None = None
    #: SessionResult.bound_serial as a serial key: stale when the record's differs
    bound_key: str | None = None


@dataclass(slots=True)
class Failed:
    """The outcome of a write that failed alone inside a batch that commits."""

    error: Exception


def save_args(result: SessionResult) -> list[Any]:
    """The upsert's parameters (see above); [0] and [2] are left to the writer."""
    ident = result.identity
    # A router's MAC is written as the seed writes MACs ("123456789012"), whatever the
    # firmware's notation; one that is no MAC address is not written at all.
    mac = mac_key(result.mac_address)
    return [
        None,
        ident.serial_number,
        None,
        None if mac is None else mac.upper(),
        mac,
        ident.oui,
        ident.product_class,
        ident.manufacturer,
        ident.model_name,
        ident.software_version,
        ident.hardware_version,
        result.profile,
        dumps(result.status),
        result.remote_ip,
        result.at,
        result.periodic_interval,
        dumps_params(result.params),
        None if result.absent_paths is None else dumps(result.absent_paths),
        result.connection_request_url,
        1 if result.reset_params else 0,
        None if result.provisioning is None else dumps(result.provisioning),
        result.state,
        result.jobs,
        result.revision,
        None if result.dhcp is None else dumps(result.dhcp),
        result.cr_username,
        result.cr_password,
        None if result.read_plan is None else dumps(result.read_plan),
        None if result.sim is None else dumps(result.sim),
        1 if len(result.params) >= MERGE_BY_KEY_FROM else 0,
    ]


#: queued to stop the writer task
STOP = object()

#: upper bounds of the batch-size histogram in :class:`WriterStats` (the last catches all)
BATCH_BUCKETS: tuple[float, ...] = (1, 2, 5, 10, 20, 50, 100, 200, 500, float("inf"))


@dataclass(slots=True)
class WriterStats:
    """Counters of the writer task (for /metrics and tests). Monotonic except ``last_batch``
    and ``queue_depth``."""

    #: committed transactions
    batches: int = 0
    #: writes (sessions and operator writes) committed
    writes: int = 0
    #: writes whose caller got an exception
    failed: int = 0
    #: batches rolled back whole (an operator write or session save fails alone, in its
    #: savepoint; this is for what undoes the transaction: disk full, I/O), then retried
    #: one write at a time
    fallbacks: int = 0
    #: session results not written: a later session of the CPE had committed first
    stale: int = 0
    largest_batch: int = 0
    last_batch: int = 0
    #: wall time spent inside write transactions (BEGIN .. COMMIT), seconds
    busy_seconds: float = 0.0
    #: batch-size histogram: upper bound (BATCH_BUCKETS) -> number of committed batches
    batch_sizes: dict[float, int] = field(default_factory=lambda: dict.fromkeys(BATCH_BUCKETS, 0))
    queue_depth: int = 0
    #: the database's own error (read-only, I/O, locked) that failed the last writes, until
    #: a write succeeds again: the store is then not ready (/readyz)
    write_error: str | None = None

    def _record_batch(self, size: int, seconds: float) -> None:
        self.write_error = None
        self.batches += 1
        self.writes += size
        self.last_batch = size
        self.largest_batch = max(self.largest_batch, size)
        self.busy_seconds += seconds
        for bound in BATCH_BUCKETS:
            if size <= bound:
                self.batch_sizes[bound] += 1
                break
