"""The CWMP listener: HTTP in, envelopes to sessions, envelopes or 204 out.

Accept what real CPEs send (any path, any SOAP prefix, empty POSTs with or without
Content-Length, chunked or gzip bodies, no cookies); send what every CPE accepts
(``text/xml; charset="utf-8"``, Content-Length always, a session cookie, 204 to end).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from acsd.cwmp import rpc
from acsd.cwmp.session import CwmpSession, Limits, Reply, SessionDriver
from acsd.cwmp.soap import Envelope, SoapError, parse_envelope, render_envelope
from acsd.log import get_logger

log = get_logger("acsd.cwmp")

COOKIE = "acsd_session"
CONTENT_TYPE = 'text/xml; charset="utf-8"'
# Real CPE stacks label SOAP in many ways (curl-based ones even send form encoding); what
# is refused is only what is clearly something else.
_ACCEPTED_TYPES = {
    "",
    "text/xml",
    "application/xml",
    "application/soap+xml",
    "text/plain",
    "application/octet-stream",
    "application/x-www-form-urlencoded",
}


@dataclass(slots=True)
class ServerSettings:
    max_body: int = 1024 * 1024
    max_sessions: int = 2000
    session_timeout: float = 30.0
    retry_after: int = 60
    trust_forwarded: bool = False
    limits: Limits = field(default_factory=Limits)


class SessionTable:
    """Open sessions, found by cookie, by TCP connection, or (cookieless CPEs that
    reconnect) by remote address when exactly one session from it is open."""

    def __init__(self) -> None:
        self.by_id: dict[str, CwmpSession] = {}
        self.by_conn: dict[object, CwmpSession] = {}
        self._conns: dict[str, list[object]] = {}
        #: sessions whose CPE has sent our cookie back: never matched by address alone
        self.cookie_seen: set[str] = set()

    def __len__(self) -> int:
        return len(self.by_id)

    def add(self, session: CwmpSession, conn: object) -> None:
        self.by_id[session.id] = session
        self.bind(session, conn)

    def bind(self, session: CwmpSession, conn: object) -> None:
        """Remember that this TCP connection carries ``session`` (it may change midway)."""
        if self.by_conn.get(conn) is not session:
            self.by_conn[conn] = session
            self._conns.setdefault(session.id, []).append(conn)

    def find(self, cookie: str | None, conn: object, remote_ip: str) -> CwmpSession | None:
        if cookie and (session := self.by_id.get(cookie)) is not None:
            self.cookie_seen.add(session.id)
            return session
        if (session := self.by_conn.get(conn)) is not None and not session.finished:
            return session
        if cookie:
            return None  # a stale cookie: this CPE keeps cookies, so its session is gone
        # Last resort for CPEs that keep no cookies and reconnect mid-session. Only
        # unambiguous, and never a session whose CPE is known to keep cookies.
        candidates = [
            s
            for s in self.by_id.values()
            if s.remote_ip == remote_ip and s.id not in self.cookie_seen
        ]
        return candidates[0] if len(candidates) == 1 else None

    def remove(self, session: CwmpSession) -> None:
        self.by_id.pop(session.id, None)
        self.cookie_seen.discard(session.id)
        for conn in self._conns.pop(session.id, ()):
            if self.by_conn.get(conn) is session:
                del self.by_conn[conn]


class CwmpServer:
    def __init__(
        self, settings: ServerSettings, driver_factory: Callable[[], SessionDriver]
    ) -> None:
        self.settings = settings
        self.driver_factory = driver_factory
        self.sessions = SessionTable()
        self.accepting = True
        self._reaper: asyncio.Task[None] | None = None
        self.stats = {"sessions_total": 0, "refused_overload": 0, "bad_requests": 0}

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.settings.max_body)
        app.router.add_route("POST", "/{tail:.*}", self.handle)
        app.router.add_route("*", "/{tail:.*}", self._not_post)
        app.on_startup.append(self._start_reaper)
        app.on_shutdown.append(self._stop)
        return app

    # --- HTTP ----------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        remote_ip = self._remote_ip(request)
        try:
            data = await self._read_body(request)
        except _HttpError as exc:
            return self._refuse(request, exc.status, exc.reason, remote_ip)

        env: Envelope | None = None
        if data.strip():
            try:
                env = parse_envelope(data)
            except SoapError as exc:
                return self._soap_error(request, exc, remote_ip)

        cookie = request.cookies.get(COOKIE)
        conn = request.protocol
        if env is not None and isinstance(env.body, rpc.Inform):
            previous = self.sessions.find(cookie, conn, remote_ip) if cookie else None
            if previous is None:
                previous = self.sessions.by_conn.get(conn)
            if previous is not None:
                await self._close(previous, "CPE started a new session")
            if not self.accepting or len(self.sessions) >= self.settings.max_sessions:
                return self._overloaded(remote_ip)
            session = CwmpSession(
                driver=self.driver_factory(), remote_ip=remote_ip, limits=self.settings.limits
            )
            self.sessions.add(session, conn)
            self.stats["sessions_total"] += 1
            new_cookie = True
        else:
            found = self.sessions.find(cookie, conn, remote_ip)
            if found is None:
                return self._refuse(
                    request,
                    400,
                    "no open CWMP session for this request; send an Inform first",
                    remote_ip,
                )
            session = found
            self.sessions.bind(session, conn)
            new_cookie = False

        try:
            reply = await session.handle(env)
        except Exception:
            log.exception("cwmp.session_error", serial=session.serial, remote=remote_ip)
            await self._close(session, "internal error")
            reply = Reply(500, close=True, reason="internal error")

        if session.finished:
            self.sessions.remove(session)
        return self._respond(reply, session, new_cookie)

    async def _not_post(self, request: web.Request) -> web.StreamResponse:
        return web.Response(
            status=405, text="CWMP endpoint: POST SOAP envelopes here\n", headers={"Allow": "POST"}
        )

    async def _read_body(self, request: web.Request) -> bytes:
        ctype = request.content_type.lower() if request.headers.get("Content-Type") else ""
        if ctype not in _ACCEPTED_TYPES:
            raise _HttpError(415, f"unsupported Content-Type {ctype!r}; send text/xml")
        encoding = request.headers.get("Content-Encoding", "").strip().lower()
        if encoding not in ("", "identity", "gzip", "x-gzip", "deflate"):
            raise _HttpError(415, f"unsupported Content-Encoding {encoding!r}")
        length = request.content_length
        if length is not None and length > self.settings.max_body:
            raise _HttpError(413, f"body of {length} bytes exceeds max_body")
        # aiohttp inflates gzip/deflate bodies itself and applies client_max_size to the
        # inflated size, which is what stops a zip bomb.
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise _HttpError(413, "body exceeds max_body") from None

    def _remote_ip(self, request: web.Request) -> str:
        if self.settings.trust_forwarded:
            forwarded = request.headers.get("X-Forwarded-For")
            if forwarded:
                return forwarded.split(",")[0].strip()
        return request.remote or ""

    # --- replies -------------------------------------------------------------------------

    def _respond(self, reply: Reply, session: CwmpSession, new_cookie: bool) -> web.Response:
        if reply.status >= 400:
            log.warning(
                "cwmp.http_error", status=reply.status, reason=reply.reason, serial=session.serial
            )
            return self._plain(reply.status, reply.reason, close=reply.close)
        if reply.status == 204:
            response = web.Response(status=204)
        else:
            response = web.Response(status=200, body=reply.body)
            response.headers["Content-Type"] = CONTENT_TYPE
        if new_cookie:
            response.set_cookie(COOKIE, session.id, path="/", httponly=True)
        return response

    def _refuse(
        self, request: web.Request, status: int, reason: str, remote_ip: str
    ) -> web.Response:
        self.stats["bad_requests"] += 1
        log.warning("cwmp.refused", status=status, reason=reason, remote=remote_ip)
        return self._plain(status, reason, close=True)

    def _soap_error(self, request: web.Request, exc: SoapError, remote_ip: str) -> web.Response:
        self.stats["bad_requests"] += 1
        log.warning("cwmp.bad_envelope", reason=exc.reason, remote=remote_ip)
        if exc.fault_code is None:
            return self._plain(400, exc.reason, close=True)
        # A parseable but invalid CWMP message gets a SOAP fault the CPE can log.
        body = render_envelope(
            Envelope(
                body=rpc.acs_fault(exc.fault_code, exc.reason),
                cwmp_ns=exc.cwmp_ns or rpc.DEFAULT_NAMESPACE,
                id=exc.cwmp_id,
            )
        )
        return web.Response(
            status=200, body=body, headers={"Content-Type": CONTENT_TYPE, "Connection": "close"}
        )

    def _overloaded(self, remote_ip: str) -> web.Response:
        self.stats["refused_overload"] += 1
        # Jitter spreads the retries of a boot storm instead of bunching them up again.
        retry = int(self.settings.retry_after * random.uniform(0.5, 1.5))
        log.info("cwmp.overloaded", remote=remote_ip, retry_after=retry)
        return web.Response(
            status=503,
            text="overloaded, retry later\n",
            headers={"Retry-After": str(retry), "Connection": "close"},
        )

    @staticmethod
    def _plain(status: int, reason: str, *, close: bool) -> web.Response:
        headers = {"Connection": "close"} if close else {}
        return web.Response(status=status, text=reason + "\n", headers=headers)

    # --- lifecycle -----------------------------------------------------------------------

    async def _close(self, session: CwmpSession, reason: str) -> None:
        self.sessions.remove(session)
        try:
            await session.abandon(reason)
        except Exception:
            log.exception("cwmp.finish_failed", serial=session.serial)

    async def _start_reaper(self, app: web.Application) -> None:
        self._reaper = asyncio.create_task(self._reap_forever())

    async def _reap_forever(self) -> None:
        interval = max(0.5, min(5.0, self.settings.session_timeout / 4))
        while True:
            await asyncio.sleep(interval)
            await self.reap()

    async def reap(self) -> None:
        """Abandon sessions whose CPE went silent: what they learned is still committed."""
        deadline = time.monotonic() - self.settings.session_timeout
        for session in [s for s in self.sessions.by_id.values() if s.last_active < deadline]:
            log.info("cwmp.session_timeout", serial=session.serial)
            await self._close(session, "timed out waiting for the CPE")

    async def drain(self, grace: float) -> None:
        """Stop taking new sessions; give open ones ``grace`` seconds, then abandon them."""
        self.accepting = False
        deadline = time.monotonic() + grace
        while len(self.sessions) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for session in list(self.sessions.by_id.values()):
            await self._close(session, "daemon shutting down")

    async def _stop(self, app: web.Application) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        for session in list(self.sessions.by_id.values()):
            await self._close(session, "daemon shutting down")


class _HttpError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
