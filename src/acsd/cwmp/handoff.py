"""Sessions moving between worker processes (``workers`` > 1) through the store.

A worker parks an open session whose CPE closed its connection (the CPE's next request
may reach another worker); the worker that gets the CPE's next request takes it over by
its cookie or (a CPE that keeps no cookies) its address. Sessions parked longer than
session_timeout, and those a new Inform of their CPE replaces, are claimed and ended, so
what they learned is committed; so is what an earlier run left parked when acsd runs as
one process.

:class:`SessionHandoff` is a collaborator the :class:`~acsd.cwmp.server.CwmpServer`
holds, not a base class of it: it shares the server's session table, its set of busy
sessions, its stats and its way to close a session, and nothing else of the listener.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

from acsd.cwmp.session import CwmpSession, ParkError, SessionDriver
from acsd.cwmp.session_table import SessionTable
from acsd.log import exchange, get_logger, log_failure, session_ref

if TYPE_CHECKING:
    from acsd.cwmp.server import ServerSettings

log = get_logger("acsd.cwmp")


class Parking(Protocol):
    """Where sessions wait between workers (the store)."""

    async def park_session(
        self,
        session_id: str,
        state: bytes,
        remote_ip: str | None = None,
        serial: str | None = None,
    ) -> None:
        """Park a session, stamped with the store's clock: instances sharing a database
        agree on how long a session has waited only on one clock, the database's."""
        ...

    async def claim_session(self, session_id: str) -> bytes | None: ...

    async def claim_session_from(self, remote_ip: str) -> bytes | None: ...

    async def parked_sessions(self, older_than: float | None = None) -> list[str]:
        """Sessions parked at least ``older_than`` seconds ago on the store's clock (all
        of them with None), oldest first."""
        ...

    async def restamp_parked(self) -> int:
        """Stamp sessions parked "later than now" (the store's clock went back) now."""
        ...

    async def parked_of(self, serial: str) -> list[str]: ...

    def unavailable(self, exc: BaseException) -> str | None:
        """Why the store cannot be used right now, when that is what ``exc`` says."""
        ...

    async def touch_parked(
        self, *, session_id: str | None = None, remote_ip: str | None = None
    ) -> bool: ...


class SessionHandoff:
    """Parks, takes over and ends the sessions that move between workers."""

    def __init__(
        self,
        settings: ServerSettings,
        driver_factory: Callable[[], SessionDriver],
        parking: Parking | None,
        *,
        sessions: SessionTable,
        busy: set[str],
        stats: dict[str, int],
        close: Callable[[CwmpSession, str], Awaitable[None]],
    ) -> None:
        self.settings = settings
        self.driver_factory = driver_factory
        self.parking = parking if settings.handoff else None
        #: the store of parked sessions, also for one process alone: what an earlier run
        #: with several workers left parked is ended at start
        self.store = parking
        self.sessions = sessions
        #: the server's sessions with a request being handled right now: never parked
        self._busy = busy
        self.stats = stats
        self._close = close

    async def park(self, session: CwmpSession) -> None:
        """Hand an open session to the store for whichever worker the CPE reaches next."""
        assert self.parking is not None
        # A CPE that never sent the cookie back can only be found again by its address.
        cookieless = session.id not in self.sessions.cookie_seen and bool(session.remote_ip)
        self.sessions.remove(session)
        try:
            await self.parking.park_session(
                session.id,
                session.freeze(),
                session.remote_ip if cookieless else None,
                session.serial or None,
            )
        except Exception as exc:
            log_failure(
                log, "cwmp.park_failed", self.parking.unavailable(exc), serial=session.serial
            )
            with exchange(session_ref(session.id), session.serial):
                await session.abandon("could not park the session for another worker")
            return
        self.stats["sessions_parked"] += 1
        log.debug("cwmp.session_parked", serial=session.serial)

    async def take_over(self, cookie: str) -> CwmpSession | None:
        """The session a cookie names, parked by a worker. A worker's cookie is waited for
        a little: the worker that has the session now (not always the one that opened it)
        may not have seen the connection close yet."""
        assert self.parking is not None
        patient = cookie[:1] == "w" and "." in cookie
        wait = self.settings.handoff_wait if patient else 0.0
        return await self._claim(lambda parking: parking.claim_session(cookie), wait)

    async def take_over_from(self, remote_ip: str) -> CwmpSession | None:
        """The parked session of a cookieless CPE at this address, waited for as a worker's
        cookie is. Only unambiguous: one session parked from the address, of a CPE that
        never sent a cookie back."""
        wait = self.settings.handoff_wait
        return await self._claim(lambda parking: parking.claim_session_from(remote_ip), wait)

    async def _claim(
        self, claim: Callable[[Parking], Awaitable[bytes | None]], wait: float
    ) -> CwmpSession | None:
        store = self.store
        assert store is not None
        deadline = time.monotonic() + wait
        while True:
            try:
                data = await claim(store)
            except Exception as exc:
                parking_failed(store, exc)
                return None
            if data is not None:
                break
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(0.05)
        try:
            session = CwmpSession.thaw(data, self.driver_factory())
        except ParkError as exc:
            log.warning("cwmp.take_over_refused", reason=str(exc))
            return None
        except Exception:  # a state this process's driver cannot take (a profile reload)
            log.exception("cwmp.take_over_failed")
            return None
        self.stats["sessions_taken_over"] += 1
        log.debug("cwmp.session_taken_over", serial=session.serial)
        return session

    async def park_idle(self) -> None:
        """Park sessions whose CPE closed its connection while acsd waited for its next
        request: that request will come on a new connection, maybe to another worker."""
        if self.parking is None:
            return
        for session in list(self.sessions.by_id.values()):
            if session.id in self._busy or session.finished:
                continue
            conns = self.sessions.conns(session)
            if conns and all(getattr(c, "transport", None) is None for c in conns):
                await self.park(session)

    async def reap_parked(self) -> None:
        """Sessions parked longer than session_timeout: their CPE is not coming back. One
        worker claims each and ends it, so what it learned is committed. On a store other
        instances share, a process that parks none reaps too: what one of them left when
        it stopped is ended so. (Alone on its SQLite file, it has nothing to reap: what an
        earlier run left was ended at start, and two queries every few seconds are saved.)"""
        parking = self.store if self.settings.shared_store else self.parking
        if parking is None:
            return
        # Parked "later than now": the clock was set back since. Counted from now, they
        # are reaped after session_timeout, not after the clock has caught up again.
        await parking.restamp_parked()
        for session_id in await parking.parked_sessions(self.settings.session_timeout):
            data = await parking.claim_session(session_id)
            if data is None:
                continue  # another worker got there first
            try:
                session = CwmpSession.thaw(data, self.driver_factory())
            except ParkError as exc:
                log.warning("cwmp.take_over_refused", reason=str(exc))
                continue
            log.info(
                "cwmp.session_timeout",
                serial=session.serial,
                session=session_ref(session.id),
                parked=True,
            )
            await self._close(session, "timed out waiting for the CPE")

    async def end_parked_of(self, serial_no: str) -> None:
        """End the CPE's session another worker parked (its connection closed, the CPE
        came back with a new Inform instead): left parked, it blocks the address of a
        cookieless CPE and commits older values at its timeout."""
        assert self.parking is not None
        try:
            parked = await self.parking.parked_of(serial_no)
        except Exception as exc:
            parking_failed(self.parking, exc)
            return
        await self._end_parked_ones(parked, "CPE started a new session")

    async def _end_parked_ones(self, session_ids: list[str], reason: str) -> None:
        """Claim and end these parked sessions (one another worker took meanwhile is its)."""
        for session_id in session_ids:
            session = await self._claim(lambda p, i=session_id: p.claim_session(i), 0.0)
            if session is not None:
                log.info("cwmp.parked_ended", serial=session.serial, reason=reason)
                await self._close(session, reason)

    async def end_parked(self, reason: str) -> None:
        """End every parked session (the service stops, or it runs as one process now):
        what each learned is committed. Workers racing for one: the store's claim decides."""
        store = self.store
        if store is None:
            return
        try:
            parked = await store.parked_sessions()
        except Exception as exc:
            parking_failed(store, exc)
            return
        await self._end_parked_ones(parked, reason)


def parking_failed(store: Parking, exc: BaseException) -> None:
    """Log a parked-session call that failed, from its ``except`` block (a warning while
    the store says the database is unavailable: see acsd.log.log_failure)."""
    log_failure(log, "cwmp.take_over_failed", store.unavailable(exc))
