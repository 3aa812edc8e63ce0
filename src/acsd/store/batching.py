"""The write queue both backends share: every write is queued, and one task drains the
queue into batches that commit together (see the SQLite backend's docstring for why)."""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from acsd.log import get_logger
from acsd.store.base import (
    ChangedError,
    ConflictError,
    RestartNeededError,
    StaleResultError,
    StateError,
    StoreClosedError,
    StoreError,
    mark_reported,
    store_unavailable,
)
from acsd.store.outages import OTHER, outage
from acsd.store.writes import STOP, Failed, SaveOp, WriterStats

log = get_logger("acsd.store")


@dataclass(slots=True)
class CallOp:
    """Any other write: ``fn(conn)`` runs inside the batch transaction and its return value
    goes to the caller. ``fn`` may run more than once (a batch that fails is retried one
    write at a time), so it must build everything it writes from its inputs, never from
    state left behind by an earlier attempt."""

    kind: str
    fn: Callable[[Any], Awaitable[Any]]
    future: asyncio.Future[Any]
    #: the device records whose rows the call writes (or locks), when it knows them: the
    #: PostgreSQL writer keeps the writes of a row another client holds out of the
    #: others' batches (PgCore._run_batch); SQLite, one writer, has no use for them
    rows: tuple[str, ...] = ()
    #: of ``rows``, those the call writes whenever it commits (the others it locks only
    #: in some cases): only these are known to be free once it has (PgCore._resolve)
    written: tuple[str, ...] = ()


Op = SaveOp | CallOp


def op_kind(op: Op) -> str:
    return op.kind if isinstance(op, CallOp) else "save_session"


def op_rows(op: Op) -> tuple[str, ...]:
    """The device records whose rows ``op`` writes, those known (a new router's session
    result has none yet)."""
    if isinstance(op, CallOp):
        return op.rows
    return (op.device_id,) if op.device_id else ()


def op_written(op: Op) -> tuple[str, ...]:
    """Of :func:`op_rows`, those ``op`` writes whenever it commits."""
    if isinstance(op, CallOp):
        return op.written
    return (op.device_id,) if op.device_id else ()


#: what a write may rightly be refused for: the caller answers it (409, 422, a stale
#: session result), and the warning log is for the database's trouble, not the data's
REFUSALS = (ConflictError, StateError, ChangedError, StaleResultError)


def log_failed(exc: Exception, kind: str) -> None:
    if isinstance(exc, REFUSALS):
        log.debug("store_write_refused", error=repr(exc), kind=kind)
    elif store_unavailable(exc) is not None:
        # the database's trouble fails every write alike: the writer says so once
        # (store_writes_failing), not once per write
        log.debug("store_write_failed", error=repr(exc), kind=kind)
    else:
        log.warning("store_write_failed", error=repr(exc), kind=kind)


class BatchWriter(ABC):
    """The write queue and the task that drains it. A backend adds the transaction
    (:meth:`_run_batch`), a call isolated inside a batch (:meth:`_apply_isolated`) and the
    session saves' upsert (:meth:`_apply_saves`)."""

    _queue: asyncio.Queue[Any]
    _accepting: bool
    _closing: asyncio.Task[None] | None
    stats: WriterStats
    max_batch: int
    #: the cause of the writes' failures that store_writes_failing named, until a write
    #: commits again; and how many writes failed meanwhile
    _failing: str | None = None
    _failing_writes: int = 0
    #: why every write is refused from now on (the database's files were replaced
    #: underneath the store), or None
    _refused: str | None = None
    #: a batch is being written now
    _busy: bool = False

    def _fail_queued(self, exc: BaseException) -> None:
        while True:
            try:
                op = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            if op is not STOP and not op.future.done():
                op.future.set_exception(exc)
                self.stats.failed += 1

    def _submit(self, op: Op) -> None:
        if not self._accepting:
            state = "closed" if self._closing is not None else "not open"
            raise StoreClosedError(f"{self!r} is {state}; write refused")
        if self._refused is not None:  # (the caller gets it from the op's future)
            self._fail([op], RestartNeededError(self._refused))
            return
        self._queue.put_nowait(op)

    async def _call(
        self,
        kind: str,
        fn: Callable[[Any], Awaitable[Any]],
        *,
        rows: Iterable[str | None] = (),
        may_lock: Iterable[str | None] = (),
    ) -> Any:
        """Queue ``fn`` behind the writes before it; its result once its transaction commits.
        ``rows``: the device records it writes whenever it commits, ``may_lock`` those it
        writes or locks only in some cases (see CallOp.rows); empty ids left out."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        written = tuple(dict.fromkeys(row for row in rows if row))
        named = tuple(dict.fromkeys([*written, *(row for row in may_lock if row)]))
        self._submit(CallOp(kind, fn, future, named, written))
        return await future

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()

    def unavailable(self, exc: BaseException) -> str | None:
        """What makes this store unavailable right now, when ``exc`` is that (see
        :func:`store_unavailable`); for callers that may not import store/ (cwmp/)."""
        return store_unavailable(exc)

    async def _writer(self) -> None:
        stopping = False
        batch: list[Op] = []
        try:
            while not stopping:
                first = await self._queue.get()
                if first is STOP:
                    break
                batch = [first]
                while len(batch) < self.max_batch:
                    try:
                        op = self._queue.get_nowait()
                    except asyncio.QueueEmpty:
                        break
                    if op is STOP:
                        stopping = True
                        break
                    batch.append(op)
                self.stats.queue_depth = self._queue.qsize()
                if self._refused is not None:  # (queued before the refusal began)
                    self._fail(batch, RestartNeededError(self._refused))
                else:
                    self._busy = True
                    try:
                        await self._run_batch(batch)
                    finally:
                        self._busy = False
                batch = []
        except BaseException as exc:
            # Never leave a caller waiting forever on a dead writer.
            self._accepting = False
            error = StoreError(f"store writer stopped: {exc!r}")
            for op in batch:
                if not op.future.done():
                    op.future.set_exception(error)
            self._fail_queued(error)
            if not isinstance(exc, asyncio.CancelledError):
                log.error("store_writer_crashed", error=repr(exc))
            raise

    def _committed(self, batch: list[Op], results: list[Any], started: float) -> None:
        """After the commit of ``batch`` (begun at ``started``, perf_counter): count it,
        unless every write in it failed alone, and answer each write's caller."""
        failed = sum(isinstance(value, Failed) for value in results)
        if failed < len(batch):
            self.stats._record_batch(len(batch) - failed, time.perf_counter() - started)
            if self._failing is not None:
                log.info("store_writes_resumed", failed=self._failing_writes)
                self._failing, self._failing_writes = None, 0
        for op, value in zip(batch, results, strict=True):
            self._resolve(op, value)

    def _resolve(self, op: Op, value: Any) -> None:
        if isinstance(value, Failed):
            if isinstance(value.error, StaleResultError):  # not the store's failure
                self.stats.stale += 1
                if not op.future.done():
                    op.future.set_exception(value.error)
            else:
                self._fail([op], value.error)
        elif not op.future.done():  # the caller may have been cancelled
            op.future.set_result(value)

    async def _batch_failed(
        self, batch: list[Any], exc: Exception, retry: Callable[[list[Any]], Awaitable[None]]
    ) -> None:
        """After a rolled-back batch (what a savepoint could not undo: the database rolled
        the transaction back itself): fail its one write, or retry each of its writes in a
        transaction of its own (which one broke the batch is unknown), so that one bad
        write fails only its own caller."""
        if len(batch) == 1:
            log_failed(exc, op_kind(batch[0]))
            self._fail(batch, exc)
            return
        self.stats.fallbacks += 1
        if store_unavailable(exc) is None:
            log.warning("store_batch_failed", error=repr(exc), writes=len(batch))
        else:  # (its writes, one at a time, will tell whether the trouble lasts)
            log.debug("store_batch_failed", error=repr(exc), writes=len(batch))
        for op in batch:
            await retry([op])

    def _failed_with(self, exc: BaseException) -> None:
        """A backend's look at the database's trouble that failed a batch (SQLite's
        damaged file); none by default."""
        del exc

    def _fail(self, batch: list[Op], exc: BaseException) -> None:
        if (why := store_unavailable(exc)) is not None:  # the database's trouble, not the data's
            self._failed_with(exc)
            self.stats.write_error = why
            self._failing_writes += len(batch)
            if why != self._failing:
                # Once per cause: on a full disk every session's and operator's write
                # fails alike, and a warning each (journald on the same disk) buried it.
                # (cause: the key of the 503s' body, /readyz and the refusals metric)
                cause = (outage(exc) or OTHER).cause
                log.warning("store_writes_failing", cause=cause, error=why, kind=op_kind(batch[0]))
                self._failing = why
            mark_reported(exc)
        for op in batch:
            # A write the records refused (a conflict, a record changed or deleted
            # meanwhile: an API 409, a session outrun) is an answer, not a failure: counted,
            # an operator alerting on acsd_store_write_failures_total was paged by 409s.
            if not isinstance(exc, REFUSALS):
                self.stats.failed += 1
            if not op.future.done():
                op.future.set_exception(exc)

    async def _apply(self, conn: Any, batch: list[Op]) -> list[Any]:
        """Apply the batch in order inside the open transaction; one result per op (a
        :class:`Failed` for a call that failed alone)."""
        results: list[Any] = []
        start = 0
        while start < len(batch):
            op = batch[start]
            if isinstance(op, CallOp):
                if len(batch) == 1:
                    results.append(await op.fn(conn))
                else:
                    results.append(await self._apply_isolated(conn, op))
                start += 1
                continue
            end = start + 1
            while end < len(batch) and isinstance(batch[end], SaveOp):
                end += 1
            saves: list[SaveOp] = batch[start:end]  # type: ignore[assignment]
            results.extend(await self._apply_saves(conn, saves))
            start = end
        return results

    @abstractmethod
    async def _run_batch(self, batch: list[Op]) -> None:
        """Commit the batch in one transaction (:meth:`_apply`) and :meth:`_resolve` each
        op, or after a rollback, :meth:`_batch_failed`."""

    @abstractmethod
    async def _apply_isolated(self, conn: Any, op: CallOp) -> Any:
        """Run a call of a larger batch so that when it fails only its own writes are
        undone (a :class:`Failed` then) and the rest of the batch still commits."""

    @abstractmethod
    async def _apply_saves(self, conn: Any, saves: list[SaveOp]) -> list[str | Failed]:
        """Upsert a run of session saves inside the open transaction; the device id each
        wrote, or a :class:`Failed` for one that failed alone or a later session overtook."""
