"""What both backends' writers share: a queued session result (:class:`SaveOp`) and the
parameters of the upsert that writes it, a write that failed alone in a batch
(:class:`Failed`), the writer's stop marker and its counters (:class:`WriterStats`)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from acsd.ids import new_id
from acsd.macs import mac_key
from acsd.store.base import RecordDeletedError, SessionResult, StaleResultError
from acsd.store.records import dumps, dumps_params, dumps_plan, serial_key

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
# 30 reported_cr_username: the username the result's params report (NULL: none; keeps
#    the stored one unless the result replaces the tree)
# 31 merge params key by key (1) rather than with json_patch (0): see MERGE_BY_KEY_FROM
# 32 udp_connection_request_address (NULL keeps the stored one); PostgreSQL's $31, as it
#    has no 31

#: on SQLite, results with this many values are merged into the stored tree key by key. json_patch
#: looks each of the result's keys up by walking the stored tree: 50k values over a 100k-leaf
#: tree held the one writer (and every other session's commit) for 12-80 s. The merge by
#: key costs the same per stored leaf whatever the result's size; json_patch is cheaper
#: below ~150-200 values, whatever the tree's size (measured with benchmarks/params_merge.py).
#: PostgreSQL's jsonb || needs no such choice and leaves parameter 31 out.
MERGE_BY_KEY_FROM = 200

#: the slice of SaveOp.args the session decided about its record's job: provisioning,
#: state, jobs, revision, dhcp (?21 .. ?25)
JOB_ARGS = slice(20, 25)
#: the revision the session worked from (?24)
REVISION_ARG = 23
#: the reported MAC's key (?5; None: the result reports no MAC address)
MAC_KEY_ARG = 4
#: the parameters up to it (?1 .. ?5), what a statement about the MAC alone binds
UP_TO_MAC = slice(0, 5)


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
    #: set when written: the record's revision was no longer the one the session worked
    #: from (SessionResult.revision_moved)
    revision_moved: bool = False


@dataclass(slots=True)
class Failed:
    """The outcome of a write that failed alone inside a batch that commits."""

    error: Exception


#: where a router reports the Connection Request username it holds: TR-098's first, as
#: migration 18 reads a tree that holds both (a gateway may carry a Device. tree too)
USERNAME_PATHS = tuple(
    root + "ManagementServer.ConnectionRequestUsername"
    for root in ("InternetGatewayDevice.", "Device.")
)


def reported_username(params: dict[str, list[Any]]) -> str | None:
    """The Connection Request username among a result's values (the first that is not
    empty; "" when all are), None when they hold none: two dict look-ups, so a session's
    save costs the same."""
    found = None
    for path in USERNAME_PATHS:
        entry = params.get(path)
        if entry and isinstance(entry[0], str):
            if entry[0]:
                return entry[0]
            found = ""
    return found


def claim_seconds(seconds: float) -> float:
    """A Connection Request claim's length (Store.claim_connection_request), checked: a
    claim of no time (0, negative, NaN) would hold nothing, an endless one every request
    of the device for good."""
    if not 0 < seconds < math.inf:
        raise ValueError(f"a claim lasts a finite time of more than 0 seconds, not {seconds!r}")
    return float(seconds)


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
        None if result.read_plan is None else dumps_plan(result.read_plan),
        None if result.sim is None else dumps(result.sim),
        reported_username(result.params),
        1 if len(result.params) >= MERGE_BY_KEY_FROM else 0,
        result.udp_connection_request_address,
    ]


def save_op(result: SessionResult) -> SaveOp:
    """The queued save of a session's result, its parameters encoded now: a value that is
    not JSON fails this caller alone, at once, and later changes to the caller's dicts
    cannot leak into the write."""
    serial = result.identity.serial_number
    if not serial:
        # An empty serial key would merge every such CPE into one record.
        raise ValueError("SessionResult.identity.serial_number is empty")
    args = save_args(result)
    future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    bound = None if result.bound_serial is None else serial_key(result.bound_serial)
    return SaveOp(
        args, serial_key(serial), result.device_id, future, result.at, result.since, bound
    )


# -- "first session wins" -----------------------------------------------------------------

#: what a batch reads of each record its saves name by id: (serial key, last_inform,
#: revision)
Bound = tuple[str, float | None, int]


def miskeyed(rows: Sequence[Sequence[Any]]) -> list[tuple[str, str]]:
    """(id, its own key) of the records among ``rows`` (serial_key, last_inform, id,
    serial_number) whose stored key is another serial number's (edited by hand): a save
    of that serial would update the wrong record. A cheap check, made for new CPEs only."""
    return [
        (row[2], serial_key(row[3]))
        for row in rows
        if isinstance(row[3], str) and serial_key(row[3]) != row[0]
    ]


def unbound_keys(saves: list[SaveOp], bound: dict[str, Bound]) -> set[str]:
    """The serial keys of the saves with no record to update: a CPE's first session, or
    one whose record was deleted meanwhile (its id is not in ``bound``)."""
    return {op.serial_key for op in saves if not op.device_id or op.device_id not in bound}


def check_save(
    op: SaveOp,
    bound: dict[str, Bound],
    heard: dict[str, float | None],
) -> str | Failed | None:
    """Whether one save of a batch is written, by the rules both backends keep: ``bound``
    is the stored (serial key, last_inform) of the records the saves name by id, ``heard``
    the stored last_inform of the :func:`unbound_keys` (both as :func:`saved` left them
    for the saves before it). Its outcome: a :class:`Failed` with
    :class:`StaleResultError` when a later session overtook it, else its device id, or
    None for a record to be found by serial key once written; a save to write gets its
    new row id (args[0]) and conflict target (args[2])."""
    device_id = op.device_id
    found = bound.get(device_id) if device_id else None
    if found is None:
        # New CPE, or its record was deleted meanwhile: find or create by serial. A
        # session that began without a record (a CPE's first) is overtaken when a
        # record of its serial heard from the CPE later: cut and committed at its
        # timeout, it must not write older values over the session after it.
        last = heard.get(op.serial_key)
        if last is not None and last > op.at:
            return Failed(StaleResultError(f"{op.serial_key}: a later session committed first"))
        if device_id and op.bound_key is not None and op.serial_key not in heard:
            # The record the session read was deleted during the session, and none of its
            # serial made since: the operator's DELETE holds (a router never seen goes at
            # once, as the API says); the router's next Inform registers it afresh.
            return Failed(RecordDeletedError(f"device {device_id} was deleted during the session"))
        key, done = op.serial_key, None
        if device_id:
            # The record the session worked on was deleted meanwhile: what it decided
            # about that record's job (its revision guard included) means nothing for
            # a record of the serial made since, whose revision counter starts over;
            # only what the CPE reported is written.
            op.args[JOB_ARGS] = [None] * len(op.args[JOB_ARGS])
    else:
        key, informed, revision = found
        # A session that read the record (bound_key) checks its last_inform even when
        # that was None: a record the operator made, before its router's first session.
        checked = op.since is not None or op.bound_key is not None
        if checked and informed != op.since:
            return Failed(StaleResultError(f"device {device_id}: a later session committed first"))
        if op.bound_key is not None and key != op.bound_key:
            return Failed(StaleResultError(
                f"device {device_id} was moved to another router during the session"
            ))  # fmt: skip
        done = device_id
        # The operator changed the record during the session (a PATCH, a DELETE), which
        # applied the revision before: the caller asks the router to call again, as the
        # Connection Request that the change sent may have come while it was in this
        # session, and many CPEs answer such a one and then forget it.
        session_revision = op.args[REVISION_ARG]
        op.revision_moved = session_revision is not None and session_revision != revision
    op.args[0] = new_id()
    op.args[2] = key
    return done


def saved(
    op: SaveOp,
    done: str | None,
    bound: dict[str, Bound],
    heard: dict[str, float | None],
) -> None:
    """A save that :func:`check_save` let through is written (or will be, with the batch):
    in queue order, of two results of one CPE in a batch the second sees the first's
    last_inform (the first's that was written: not one that failed alone)."""
    if done is None:
        heard[op.serial_key] = op.at
    else:
        bound[done] = (op.args[2], op.at, bound[done][2])


def settle_saves(
    saves: list[SaveOp],
    bound: dict[str, Bound],
    heard: dict[str, float | None],
) -> tuple[list[str | Failed | None], list[SaveOp]]:
    """Which saves of a batch are written, all together (:func:`check_save` for each, in
    queue order): one outcome per save and the saves to write."""
    # a device id, a Failed, or None: found by serial key once written
    out: list[str | Failed | None] = []
    live: list[SaveOp] = []
    for op in saves:
        done = check_save(op, bound, heard)
        if not isinstance(done, Failed):
            saved(op, done, bound, heard)
            live.append(op)
        out.append(done)
    return out, live


def created_keys(saves: list[SaveOp], out: list[str | Failed | None]) -> list[str]:
    """The serial keys of the records :func:`settle_saves` left to find once written."""
    return sorted({op.serial_key for op, done in zip(saves, out, strict=True) if done is None})


def with_ids(
    saves: list[SaveOp], out: list[str | Failed | None], ids_by_key: dict[str, str]
) -> list[str | Failed]:
    """``out`` with each record found by serial key (:func:`created_keys`) given its id."""
    return [
        ids_by_key[op.serial_key] if done is None else done
        for op, done in zip(saves, out, strict=True)
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
