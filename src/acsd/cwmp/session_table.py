"""The open sessions of one CWMP listener, found by cookie, by TCP connection, by remote
address (cookieless CPEs that reconnect) or by the CPE's serial number."""

from __future__ import annotations

from acsd.cwmp.session import CwmpSession


class SessionTable:
    """Open sessions, found by cookie, by TCP connection, or (cookieless CPEs that
    reconnect) by remote address when exactly one session from it is open."""

    def __init__(self) -> None:
        self.by_id: dict[str, CwmpSession] = {}
        self.by_conn: dict[object, CwmpSession] = {}
        #: by the CPE's serial number (lower case), once its Inform is in
        self.by_serial: dict[str, CwmpSession] = {}
        self._conns: dict[str, list[object]] = {}
        self._serial_of: dict[str, str] = {}
        #: sessions whose CPE has sent our cookie back: never matched by address alone
        self.cookie_seen: set[str] = set()

    def __len__(self) -> int:
        return len(self.by_id)

    def add(self, session: CwmpSession, conn: object | None) -> None:
        self.by_id[session.id] = session
        if conn is not None:
            self.bind(session, conn)

    def bind(self, session: CwmpSession, conn: object) -> None:
        """Remember that this TCP connection carries ``session`` (it may change midway)."""
        if self.by_conn.get(conn) is not session:
            self.by_conn[conn] = session
            self._conns.setdefault(session.id, []).append(conn)

    def conns(self, session: CwmpSession) -> list[object]:
        """The TCP connections (aiohttp protocols) that carried this session."""
        return self._conns.get(session.id, [])

    def find(self, cookie: str | None, conn: object) -> CwmpSession | None:
        """The session the cookie names, else the one this connection carries; never by
        address (see :meth:`at_address`)."""
        if cookie and (session := self.by_id.get(cookie)) is not None:
            self.cookie_seen.add(session.id)
            return session
        session = self.by_conn.get(conn)
        # The session this connection carries, unless the request names another one: CPEs
        # behind a proxy share its connections, and a CPE that sent this session's cookie
        # before would send it again.
        named_other = cookie and session is not None and session.id in self.cookie_seen
        if session is not None and not session.finished and not named_other:
            return session
        return None

    def lookup(
        self, cookie: str | None, conn: object, remote_ip: str
    ) -> tuple[CwmpSession | None, bool]:
        """:meth:`find`, else (for a request without a cookie) :meth:`at_address`; and
        whether the session was found by address alone."""
        found = self.find(cookie, conn)
        if found is None and not cookie:
            found = self.at_address(remote_ip)
            return found, found is not None
        return found, False

    def at_address(self, remote_ip: str) -> CwmpSession | None:
        """Last resort for CPEs that keep no cookies and reconnect mid-session: the one open
        session from this address, never one whose CPE is known to keep cookies. Behind a
        NAT it may be another router's: see :meth:`CwmpSession.foreign`."""
        candidates = [
            s
            for s in self.by_id.values()
            if s.remote_ip == remote_ip and s.id not in self.cookie_seen
        ]
        return candidates[0] if len(candidates) == 1 else None

    def note_serial(self, session: CwmpSession, serial: str | None = None) -> None:
        """Index ``session`` by its CPE's serial number: the Inform's, or ``serial`` for a
        session whose Inform is still being handled (so that a second Inform of the same
        CPE finds it at once)."""
        key = (serial or session.serial).lower()
        if key:
            self.by_serial[key] = session
            self._serial_of[session.id] = key

    def of_cpe(self, serial: str) -> CwmpSession | None:
        """The open session of the CPE with this serial number, if any."""
        return self.by_serial.get(serial.lower())

    def remove(self, session: CwmpSession) -> None:
        self.by_id.pop(session.id, None)
        key = self._serial_of.pop(session.id, None)
        if key is not None and self.by_serial.get(key) is session:
            del self.by_serial[key]
        self.cookie_seen.discard(session.id)
        for conn in self._conns.pop(session.id, ()):
            if self.by_conn.get(conn) is session:
                del self.by_conn[conn]
