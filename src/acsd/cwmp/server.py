"""The CWMP listener: HTTP in, envelopes to sessions, envelopes or 204 out.

Accept what real CPEs send (any path, any SOAP prefix, empty POSTs with or without
Content-Length, chunked or gzip bodies, no cookies); send what every CPE accepts
(``text/xml; charset="utf-8"``, Content-Length on every body, a session cookie, 204 and
``Connection: close`` to end).

What the listener leans on has modules of its own: :mod:`~acsd.cwmp.session_table` (the
open sessions and how a request finds its own), :mod:`~acsd.cwmp.request_body` (reading
and decoding a body) and :mod:`~acsd.cwmp.handoff` (sessions moving between worker
processes through the store).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import re
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from acsd.cwmp import http_conn, rpc
from acsd.cwmp.auth import AuthResult, CpeAuthenticator, usernames_of
from acsd.cwmp.forwarded import forwarded_for, forwarded_https
from acsd.cwmp.handoff import Parking, SessionHandoff
from acsd.cwmp.looplag import MOST, LoopLag
from acsd.cwmp.request_body import (
    ACCEPTED_TYPES,
    body_held_back,
    comma_content_type,
    declared_charset,
    read_past,
)
from acsd.cwmp.session import (
    ROTATE_TO,
    CwmpSession,
    Limits,
    Reply,
    RetryLater,
    SessionDriver,
)
from acsd.cwmp.session_table import SessionTable
from acsd.cwmp.soap import (
    EmptyEnvelope,
    Envelope,
    SoapError,
    is_empty_body,
    parse_envelope,
    render_envelope,
)
from acsd.hostaddr import counted_as
from acsd.inflate import InflateError, content_encoding, inflate
from acsd.listen_socket import client_address
from acsd.log import (
    bind_exchange,
    exchange,
    get_logger,
    log_failure,
    peer_text,
    session_ref,
    unbind_exchange,
)
from acsd.throttle import Throttle

log = get_logger("acsd.cwmp")
#: seconds between two cwmp.auth_rate_limited lines of one username and address
RATE_LIMITED_LOG_INTERVAL = 10.0
#: seconds between two lines of one refusal (event and status) of one source: a client that
#: repeats a refused request at will (a router's firmware in a loop, a scanner) must not
#: flood the journal, which rate-limits the whole service and drops its other lines
REFUSED_LOG_INTERVAL = 10.0
#: what a refusal's reason quotes of the request (a detail after ": ", a quoted value, a
#: number): left out of the kind the throttle counts by, else a client that varies it
#: (Content-Type, Content-Length, a tag name in broken XML) is a new kind each time
_REASON_DETAIL = re.compile(r":\s.*|'[^']*'|\"[^\"]*\"|\d+", re.DOTALL)

COOKIE = "acsd_session"
#: session.context key: the username that opened the session (with [cwmp.auth] on)
AUTH_USER = "acsd.auth.username"
CONTENT_TYPE = 'text/xml; charset="utf-8"'


@dataclass(slots=True)
class ServerSettings:
    max_body: int = 1024 * 1024
    max_sessions: int = 2000
    #: new Informs get 503 while the event loop runs this many seconds late (0 = never)
    max_loop_lag: float = 0.25
    session_timeout: float = 30.0
    #: seconds a body may stall (nothing of it arriving) before 408; see config.py
    body_timeout: float = 10.0
    retry_after: int = 60
    trust_forwarded: bool = False
    limits: Limits = field(default_factory=Limits)
    #: None = CPEs are not authenticated ([cwmp.auth] scheme = "none")
    auth: CpeAuthenticator | None = None
    #: this process's index under ``workers = N`` (None: a single process)
    worker: int | None = None
    #: sessions move between worker processes through the store (``workers`` > 1)
    handoff: bool = False
    #: seconds a worker waits for another worker to park the session a cookie names
    handoff_wait: float = 2.0
    #: the store may serve other acsd instances too (PostgreSQL): the parked sessions in
    #: it are not all this service's, and none is ended in bulk at start or stop
    shared_store: bool = False


#: seconds a new Inform waits for the same CPE's session to finish the request it is
#: handling (two Informs of one CPE at once) before it is answered 503
_BUSY_WAIT = 5.0


class CwmpServer:
    def __init__(
        self,
        settings: ServerSettings,
        driver_factory: Callable[[], SessionDriver],
        *,
        parking: Parking | None = None,
    ) -> None:
        self.settings = settings
        self.driver_factory = driver_factory
        self.sessions = SessionTable()
        #: sessions with a request being handled right now: never parked under it
        self._busy: set[str] = set()
        self.accepting = True
        self._reaper: asyncio.Task[None] | None = None
        # (a probe counts for at most 4 thresholds: a limit past MOST must stay reachable)
        self.loop_lag = LoopLag(most=max(MOST, 4 * settings.max_loop_lag))
        self.stats = {"sessions_total": 0, "refused_overload": 0, "bad_requests": 0}
        self.stats.update(refused_loop_lag=0, auth_challenges=0, auth_failures=0)
        self.stats.update(auth_rate_limited=0, auth_previous_password=0)
        self.stats.update(sessions_parked=0, sessions_taken_over=0)
        #: parks, takes over and ends the sessions that move between workers
        self.handoff = SessionHandoff(
            settings,
            driver_factory,
            parking,
            sessions=self.sessions,
            busy=self._busy,
            stats=self.stats,
            close=self._close,
        )
        #: the store sessions move through (None unless ``handoff``), tested on each request
        self.parking = self.handoff.parking
        #: TCP connections (their transports) that authenticated, and as whom
        self._conn_auth: weakref.WeakKeyDictionary[object, AuthResult] = weakref.WeakKeyDictionary()
        #: (username, address) -> when cwmp.auth_rate_limited was last written
        self._rate_limited_told = Throttle(RATE_LIMITED_LOG_INTERVAL)
        #: (event, status, kind of reason, source, serial) -> when a refusal was last written
        self._refusals_told = Throttle(REFUSED_LOG_INTERVAL)
        #: whether a request without a usable X-Forwarded-For was logged (trust_forwarded)
        self._told_unforwarded = False

    def http_server(self, **handler_options: Any) -> web.Server:
        """The listener's HTTP server (``handler_options`` go to aiohttp's connection
        handler). aiohttp's low-level server, not an Application: every path takes the same
        POST, so routing, middlewares and the Request's app context would be work for
        nothing on each of a session's exchanges. Call :meth:`start` once it is set up and
        :meth:`stop` before it is cleaned up."""
        # (http_conn.Server: bare-LF line endings told so, half-closing clients answered)
        return http_conn.Server(self._dispatch, **handler_options)

    async def _dispatch(self, request: web.BaseRequest) -> web.StreamResponse:
        # (Server: acsd, not aiohttp's versions: listen_socket.answer_as_acsd)
        return await self.handle(request) if request.method == "POST" else self._not_post()

    # --- HTTP ----------------------------------------------------------------------------

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        remote_ip = self._remote_ip(request)
        identity: AuthResult | None = None
        if self.settings.auth is not None:
            # Before the body is read or parsed: nothing of an unauthenticated request is used.
            checked = await self._authenticate(request, self.settings.auth, remote_ip)
            if isinstance(checked, web.StreamResponse):
                return checked
            identity = checked
        try:
            data = await self._read_body(request, remote_ip)
        except _HttpError as exc:
            return await self._refuse_body(request, exc, remote_ip)

        env: Envelope | None = None
        if not is_empty_body(data):
            try:
                env = parse_envelope(data)
            except EmptyEnvelope:
                # <Body/>, or a Header and no Body, where TR-069 has an empty POST: answered
                # with a fault, the CPE could never end its requests or a session.
                pass
            except SoapError as exc:
                answer = self._soap_error(request, exc, remote_ip)
                await self._end_after_bad_message(request, exc.reason)
                return answer

        cookie = session_cookie(request)
        conn = request.protocol
        if env is not None and isinstance(env.body, rpc.Inform):
            if identity is not None and (
                wrong := self._wrong_device(identity, env.body.device_id, remote_ip, request)
            ):
                return wrong
            # A new Inform ends the CPE's open session, wherever it came from (a CPE that
            # rebooted mid-session reconnects): left open, its commit at the timeout
            # would write older values over this session's. A session of another CPE
            # on the same connection (a proxy's) goes on.
            serial_no = env.body.device_id.serial_number.lower()
            informing = env.body.device_id.serial_number
            if not await self._end_previous(cookie, conn, remote_ip, serial_no):
                return self._overloaded(remote_ip, "busy", informing, retry_after=int(_BUSY_WAIT))
            if not self.accepting:
                return self._overloaded(remote_ip, "stopping", informing)
            if len(self.sessions) >= self.settings.max_sessions:
                return self._overloaded(remote_ip, "sessions", informing)
            if self.loop_lag.above(self.settings.max_loop_lag):
                # The CPU is the limit: another session would slow every open one down.
                self.stats["refused_loop_lag"] += 1
                return self._overloaded(remote_ip, "loop_lag", informing)
            session = CwmpSession(
                driver=self.driver_factory(), remote_ip=remote_ip, limits=self.settings.limits
            )
            if self.settings.worker is not None:
                # Which worker opened it: another worker that gets the cookie knows to wait
                # for this one to park the session rather than call the cookie stale.
                session.id = f"w{self.settings.worker}.{session.id}"
            if identity is not None:
                session.context[AUTH_USER] = identity.username
                if identity.previous:
                    self._rotate(session)
            self.sessions.add(session, conn)
            # Indexed before the first await: a second Inform of this CPE arriving while
            # this one is handled must find it (and wait for it), not run alongside.
            self.sessions.note_serial(session, serial_no)
            self.stats["sessions_total"] += 1
            new_cookie = True
        else:
            found, by_address = self.sessions.lookup(cookie, conn, remote_ip)
            if found is None and self.parking is not None:
                if cookie:
                    found = await self.handoff.take_over(cookie)
                elif remote_ip:  # a CPE that keeps no cookies, back on a new connection
                    found = await self.handoff.take_over_from(remote_ip)
                    by_address = found is not None
                if found is not None:
                    self.sessions.add(found, None if by_address else conn)
                    self.sessions.note_serial(found)
                    if cookie:
                        self.sessions.cookie_seen.add(found.id)
            if found is None:
                return self._refuse(
                    request,
                    400,
                    "no open CWMP session for this request; send an Inform first",
                    remote_ip,
                )
            if by_address and (stranger := self._stranger(found, env)):
                # Found by address alone, so maybe another router behind the same NAT: a
                # message its session cannot have asked for stays out of it.
                return self._refuse(
                    request,
                    400,
                    f"no open CWMP session for this request ({stranger}); send an Inform "
                    "first, and keep the session cookie",
                    remote_ip,
                    event="cwmp.address_match_refused",
                    serial=found.serial,
                )
            if identity is not None and (wrong := self._wrong_user(identity, found, remote_ip)):
                return wrong
            session = found
            self.sessions.bind(session, conn)
            new_cookie = False

        serial = session.serial
        if not serial and env is not None and isinstance(env.body, rpc.Inform):
            serial = env.body.device_id.serial_number
        # Every log line of this exchange, wherever it is written, names the session.
        tokens = bind_exchange(session_ref(session.id), serial)
        self._busy.add(session.id)
        try:
            if env is not None:
                # Logged once the session is known, so that the line names the router
                # (whose answer a mended one is, its own bytes do not say).
                if env.repaired_utf8:
                    log.info("cwmp.bad_utf8", remote=remote_ip, message=env.body.METHOD)
                if env.repaired_chars:
                    log.info("cwmp.bad_xml_chars", remote=remote_ip, message=env.body.METHOD)
            try:
                reply = await session.handle(env)
            except RetryLater as exc:
                # Trouble that passes (the database): the CPE comes back, as after a 503.
                # (info: the lookup's or the store's own line says why, as a warning)
                log.info("cwmp.retry_later", serial=session.serial, reason=exc.reason)
                await self._close(session, exc.reason)
                return _closed(
                    web.Response(
                        status=503,
                        text=f"{exc.text}\n",
                        headers={"Retry-After": str(exc.retry_after)},
                    )
                )
            except Exception:
                log.exception("cwmp.session_error", serial=session.serial, remote=remote_ip)
                await self._close(session, "internal error")
                reply = Reply(500, close=True, reason="internal error")

            if session.finished:
                self.sessions.remove(session)
            else:
                if self.parking is not None and not request.keep_alive and reply.status < 400:
                    # This connection closes after the reply, and the CPE's next one may
                    # reach another worker: park before the CPE can ask.
                    await self.handoff.park(session)
            return self._respond(reply, session, new_cookie)
        finally:
            self._busy.discard(session.id)
            unbind_exchange(tokens)

    async def _end_previous(
        self, cookie: str | None, conn: object, remote_ip: str, serial_no: str
    ) -> bool:
        """End what a new Inform replaces: the CPE's open session, wherever it came from (a
        CPE that rebooted mid-session reconnects; left open, its commit at the timeout would
        write older values over the new session's). A session of another CPE on the same
        connection (a proxy's) goes on. One whose request is being handled right now (two
        Informs of one CPE at once) is waited for, briefly: False if it is still busy."""
        deadline = time.monotonic() + _BUSY_WAIT
        while True:
            previous = next(
                (
                    candidate
                    for candidate in (
                        self.sessions.find(cookie, conn) if cookie else None,
                        self.sessions.by_conn.get(conn),
                        self.sessions.of_cpe(serial_no),
                    )
                    if candidate is not None
                    and (not candidate.serial or candidate.serial.lower() == serial_no)
                ),
                None,
            )
            if previous is None:
                if self.parking is not None:
                    await self.handoff.end_parked_of(serial_no)
                return True
            if previous.id in self._busy:
                if time.monotonic() >= deadline:
                    return False
                await asyncio.sleep(0.02)
                continue
            await self._close(previous, "CPE started a new session")

    def _rotate(self, session: CwmpSession) -> None:
        """A session opened with the previous shared password: the driver gives the router
        the current one (ManagementServer.Password), and it is counted."""
        self.stats["auth_previous_password"] += 1
        auth = self.settings.auth
        # (None: a reload removed the previous password since the check: nothing to give)
        if auth is not None and auth.rotate_to is not None:
            session.context[ROTATE_TO] = auth.rotate_to

    def _stranger(self, session: CwmpSession, env: Envelope | None) -> str | None:
        """Why a message that reached ``session`` by its address alone cannot be its CPE's,
        or None if it can."""
        if session.id in self._busy:
            return "the session at this address is handling another request"
        return session.foreign(env)

    async def _authenticate(
        self, request: web.BaseRequest, auth: CpeAuthenticator, remote_ip: str
    ) -> AuthResult | web.Response:
        """Who sent this request, or the answer that refuses it.

        A CPE authenticates every request of a session, but many only answer a challenge:
        once a TCP connection has authenticated, its later requests pass as the same user
        (a new connection authenticates again). Not behind a proxy (trust_forwarded),
        whose one upstream connection may carry many CPEs.
        """
        transport = None if self.settings.trust_forwarded else request.transport
        if transport is not None:
            try:
                cached = self._conn_auth.get(transport)
            except TypeError:  # a transport without weak references: no caching
                transport, cached = None, None
            # A request that brings credentials of another user is checked on its own: a
            # proxy's connection (trust_forwarded off) may carry the next router's session.
            if cached is not None and auth.claimed_username(request) in (None, cached.username):
                return cached
        result = await auth.check(request, remote=remote_ip, secure=self._secure(request))
        if result.ok:
            log.debug(
                "cwmp.auth_ok",
                username=result.username,
                method=result.method,
                remote=remote_ip,
                previous=result.previous,
            )
            if transport is not None:
                self._conn_auth[transport] = result
            return result
        fields = {
            "reason": result.reason,
            "remote": remote_ip,
            "username": peer_text(result.username),
        }
        if result.status == 429:
            self.stats["auth_rate_limited"] += 1
            # a client locked out may go on asking at will: one line per username and
            # address a while, saying how many the ones in between were (an IPv6 one by
            # its /64, as it is locked out: else each of its addresses got a line)
            key = (fields["username"], counted_as(remote_ip))
            self._rate_limited_told.tell(
                key, log, "warning", "cwmp.auth_rate_limited", retry_after=result.retry_after,
                **fields,
            )  # fmt: skip
            response = web.Response(
                status=429,
                text="too many failed authentication attempts, retry later\n",
                headers={"Retry-After": str(result.retry_after), "Connection": "close"},
            )
            response.force_close()
            return response
        if result.status == 403:
            self.stats["auth_failures"] += 1
            log.warning("cwmp.auth_refused", **fields)
            return self._closing(403, result.reason)
        if result.failure:
            self.stats["auth_failures"] += 1
            log.warning("cwmp.auth_failed", method=result.method, **fields)
        else:  # no credentials yet (a CPE's usual first request) or a stale nonce
            self.stats["auth_challenges"] += 1
            log.debug("cwmp.auth_challenge", stale=result.stale, **fields)
        # An empty 401; kept alive for the CPE's answer on the same connection, unless a
        # check failed (then Connection: close, cwmp-reference 10.3).
        response = _challenge(auth, remote_ip, stale=result.stale)
        if result.failure or body_held_back(request):
            response.headers["Connection"] = "close"
            response.force_close()
        return response

    def _secure(self, request: web.BaseRequest) -> bool:
        if request.secure:
            return True
        if self.settings.trust_forwarded:  # TLS ended at the trusted proxy
            return forwarded_https(request.headers.getall("X-Forwarded-Proto", ()))
        return False

    def _wrong_device(
        self, identity: AuthResult, device: rpc.DeviceId, remote_ip: str, request: web.BaseRequest
    ) -> web.Response | None:
        """403 for an Inform whose serial is not the one the credentials belong to: one
        router's password must not let it register or speak for another."""
        serial = device.serial_number
        auth = self.settings.auth
        if identity.shared and auth is not None and auth.has_own_entry(device):
            # A router with an entry of its own is opened by that entry only: the shared
            # password under another name of it ("OUI-Serial", which no entry is keyed
            # by) must not open it, else whoever read the fleet's password out of one
            # router logs in as one that was given its own.
            return self._auth_mismatch(
                "this router has credentials of its own", identity, remote_ip, serial
            )
        if identity.serial is None or identity.serial.lower() in usernames_of(device):
            return None
        if "Authorization" not in request.headers and self.settings.auth is not None:
            # Another router's session on a connection an earlier router authenticated (a
            # proxy's, trust_forwarded off), sent without credentials as a CPE's first
            # request is: it is challenged, as on a connection of its own, and nothing
            # counts against the earlier router.
            with contextlib.suppress(KeyError, TypeError):
                del self._conn_auth[request.transport]
            self.stats["auth_challenges"] += 1
            return _challenge(self.settings.auth, remote_ip)
        return self._auth_mismatch(
            f"authenticated as {identity.serial[:64]!r}, but the Inform is from another serial",
            identity,
            remote_ip,
            serial,
        )

    def _wrong_user(
        self, identity: AuthResult, session: CwmpSession, remote_ip: str
    ) -> web.Response | None:
        """403 for a request that continues a session opened by other credentials."""
        opened_by = session.context.get(AUTH_USER)
        if opened_by is None or opened_by == identity.username:
            return None
        return self._auth_mismatch(
            "this session was opened with other credentials", identity, remote_ip, session.serial
        )

    def _auth_mismatch(
        self, reason: str, identity: AuthResult, remote_ip: str, serial: str
    ) -> web.Response:
        """403 for credentials of another router; the line names the serial the request
        is for (the one an operator looks for), beside the username it came with."""
        assert self.settings.auth is not None
        self.settings.auth.record_failure(remote_ip, identity.username)
        self.stats["auth_failures"] += 1
        log.warning(
            "cwmp.auth_refused",
            reason=reason,
            remote=remote_ip,
            serial=peer_text(serial),
            username=peer_text(identity.username),
        )
        return self._closing(403, reason)

    @staticmethod
    def _closing(status: int, reason: str) -> web.Response:
        response = web.Response(status=status, text=reason + "\n")
        response.force_close()  # sends Connection: close, and closes our end too
        return response

    @staticmethod
    def _not_post() -> web.StreamResponse:
        return web.Response(
            status=405, text="CWMP endpoint: POST SOAP envelopes here\n", headers={"Allow": "POST"}
        )

    async def _uploading(self, request: web.BaseRequest, remote_ip: str) -> None:
        """The CPE has begun its next message: the session it belongs to must not time out
        under a slow upload (the reaper would end it, and the answer, once in, would find
        no session); the read has a deadline of its own. Found as the message itself will
        be: by cookie, connection or (a CPE that keeps no cookies, back on a new
        connection) address, or parked by a worker. By address it may be a neighbour's
        behind the same NAT: that one then lives at most one upload longer."""
        cookie = session_cookie(request)
        session, _ = self.sessions.lookup(cookie, request.protocol, remote_ip)
        if session is not None:
            if not session.finished:
                session.last_active = time.monotonic()
            return
        if self.parking is None or not (cookie or remote_ip):
            return
        try:
            if cookie:
                await self.parking.touch_parked(session_id=cookie)
            else:
                await self.parking.touch_parked(remote_ip=remote_ip)
        except Exception:
            # Only the timeout is at stake: the message is still read and handled.
            log.exception("cwmp.touch_parked_failed")

    async def _read_body(self, request: web.BaseRequest, remote_ip: str) -> bytes:
        ctype = request.content_type.lower() if request.headers.get("Content-Type") else ""
        charset = request.charset
        if ctype not in ACCEPTED_TYPES:
            comma = comma_content_type(request.headers.get("Content-Type", ""))
            if comma is None or comma[0] not in ACCEPTED_TYPES:
                raise _HttpError(
                    415, f"unsupported Content-Type '{peer_text(ctype)}'; send text/xml"
                )
            ctype, charset = comma
        try:
            encoding = content_encoding(request.headers)
        except InflateError as exc:
            raise _HttpError(exc.status, exc.reason) from None
        length = request.content_length
        if length is not None and length > self.settings.max_body:
            raise _HttpError(413, f"body of {length} bytes exceeds max_body")
        content = request.content
        expect = request.headers.get("Expect", "").strip()
        if expect and request.version >= (1, 1):  # an empty Expect names no expectation
            # The Application's router answers Expect for its handlers; this low-level
            # server must itself, or a libcurl-based CPE waits a second before every POST
            # over 1 KiB (RFC 9110 10.1.1: a server that will read the body says so).
            if expect.lower() != "100-continue":
                raise _HttpError(417, f"unknown Expect: {expect[:40]!r}")
            if not content.is_eof():
                await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        # Not request.read(): aiohttp keeps what that returns on the request, and keeps the
        # last request of a connection until the next one arrives, so every session held
        # open would carry a copy of its Inform. The limit applies to the body as sent and
        # again to what it inflates to, which is what stops a zip bomb.
        limit = self.settings.max_body
        stall, deadline = self.settings.body_timeout, math.inf
        try:
            if content.is_eof():
                # The whole body is in (it usually comes with the headers): nothing to wait
                # for, so no timer to set and cancel.
                data = content.read_nowait(-1)
            else:
                await self._uploading(request, remote_ip)
                # A client that sends its headers and then no body (or half of it) would
                # hold the connection for ever: aiohttp only times out idle connections.
                # A router whose Content-Length is larger than its body has sent all it
                # will: it hears 408 after body_timeout, not the whole session_timeout.
                deadline = asyncio.get_running_loop().time() + self.settings.session_timeout
                data = await read_past(content, limit, stall, deadline)
        except TimeoutError:
            if asyncio.get_running_loop().time() >= deadline:
                raise _HttpError(408, "request body not received within session_timeout") from None
            raise _HttpError(
                408, f"request body stopped: nothing of it for {stall:g} s (body_timeout)"
            ) from None
        except RequestPayloadError as exc:  # e.g. Content-Encoding: gzip on a body that is not
            raise _HttpError(400, f"body could not be read: {exc}") from None
        if len(data) > limit:
            raise _HttpError(413, "body exceeds max_body")
        try:
            data = inflate(data, encoding, limit)
        except InflateError as exc:
            too_large = exc.status == 413
            raise _HttpError(
                exc.status, "body exceeds max_body once inflated" if too_large else exc.reason
            ) from None
        return declared_charset(data, charset)

    def _remote_ip(self, request: web.BaseRequest) -> str:
        if self.settings.trust_forwarded:
            forwarded = forwarded_for(request.headers.getall("X-Forwarded-For", ()))
            if forwarded:
                return forwarded
            if not self._told_unforwarded:
                # Every router then has the proxy's address (its publicIp, one failed-login
                # count and one cookie-less session key for all): a proxy set up wrong.
                self._told_unforwarded = True
                log.warning(
                    "cwmp.forwarded_missing",
                    remote=client_address(request.remote),
                    header=peer_text(request.headers.get("X-Forwarded-For", ""), 80),
                )
        return client_address(request.remote)

    # --- replies -------------------------------------------------------------------------

    def _respond(self, reply: Reply, session: CwmpSession, new_cookie: bool) -> web.Response:
        if reply.status >= 400:
            log.warning(
                "cwmp.http_error", status=reply.status, reason=reply.reason, serial=session.serial
            )
            return self._plain(reply.status, reply.reason, close=reply.close)
        if reply.status == 204:
            # The session is over, and so is the connection (as GenieACS and FreeACS do):
            # a 204 carries no Content-Length (RFC 9110 8.6), and an embedded HTTP client
            # that reads a body without one until the connection closes would otherwise
            # wait out the keep-alive timeout and take the session for failed. The CPE's
            # next session opens a connection of its own.
            response = _closed(web.Response(status=204))
        else:
            response = web.Response(status=200, body=reply.body)
            response.headers["Content-Type"] = CONTENT_TYPE
        if new_cookie:
            # As set_cookie() writes it, without building a cookie jar for every session.
            response.headers["Set-Cookie"] = f"{COOKIE}={session.id}; HttpOnly; Path=/"
        return response

    def _refuse(
        self,
        request: web.BaseRequest,
        status: int,
        reason: str,
        remote_ip: str,
        *,
        event: str = "cwmp.refused",
        **fields: Any,
    ) -> web.Response:
        """Answer ``status`` and close; one warning line ``event`` with ``fields`` (see
        :meth:`_tell`)."""
        self.stats["bad_requests"] += 1
        self._tell(event, status, reason, remote_ip, status=status, remote=remote_ip, **fields)
        return self._plain(status, reason, close=True)

    def _tell(
        self, event: str, http_status: int, reason: str, remote_ip: str, **fields: Any
    ) -> None:
        """Write this refusal's line ``event`` with ``fields`` (and ``reason``) if it is
        the first of its kind (event, status and reason) from a source (and router, where
        known: one behind the same NAT as a looping one is still heard), then one per
        REFUSED_LOG_INTERVAL saying how many were held back in between, and a closing line
        once they stop (acsd.throttle; every refusal is counted in bad_requests all the
        same). Another reason is another line: what a client gets wrong is always told
        (the reason's kind: its words, not what it quotes of the request, see refusal_kind)."""
        kind = refusal_kind(reason)
        key = (event, http_status, kind, counted_as(remote_ip), fields.get("serial"))
        self._refusals_told.tell(key, log, "warning", event, reason=reason, **fields)

    def _soap_error(self, request: web.BaseRequest, exc: SoapError, remote_ip: str) -> web.Response:
        self.stats["bad_requests"] += 1
        # the router whose session it was, where there is one: the address alone named none
        session, _ = self.sessions.lookup(session_cookie(request), request.protocol, remote_ip)
        which = {"serial": session.serial} if session is not None and session.serial else {}
        self._tell("cwmp.bad_envelope", 400, exc.reason, remote_ip, remote=remote_ip, **which)
        if exc.fault_code is None:
            return self._plain(400, exc.reason, close=True)
        # A parseable but invalid CWMP message gets a SOAP fault the CPE can log, in the
        # namespace it speaks: the envelope's if it got that far, else its session's.
        ns = exc.cwmp_ns
        if ns is None:
            ns = session.cwmp_ns if session is not None else rpc.DEFAULT_NAMESPACE
        body = render_envelope(
            Envelope(body=rpc.acs_fault(exc.fault_code, exc.reason), cwmp_ns=ns, id=exc.cwmp_id)
        )
        return _closed(web.Response(status=200, body=body, headers={"Content-Type": CONTENT_TYPE}))

    async def _refuse_body(
        self, request: web.BaseRequest, exc: _HttpError, remote_ip: str
    ) -> web.Response:
        """A body acsd will not read (too large, not XML, never sent) ends the session it
        belongs to, as a malformed one does; the log names the CPE and what it was answering
        (a GetParameterValues answer over max_body: the driver asks for fewer names at a
        time from then on)."""
        session = self._own_session(request)
        fields: dict[str, Any] = {}
        if session is not None:
            fields["serial"] = session.serial
            if session.outstanding is not None:
                fields["answering"] = session.outstanding[1].METHOD
        answer = self._refuse(request, exc.status, exc.reason, remote_ip, **fields)
        if session is not None:
            if exc.status == 413:
                session.answer_too_large()
            await self._close(session, f"request refused: {exc.reason}")
        return answer

    async def _end_after_bad_message(self, request: web.BaseRequest, reason: str) -> None:
        """The session a malformed message belongs to ends with it: the answer closes the
        connection, which ends a CWMP session for the CPE, and what the session learned is
        committed now instead of at its timeout."""
        session = self._own_session(request)
        if session is not None:
            await self._close(session, f"malformed message from the CPE: {reason}")

    def _own_session(self, request: web.BaseRequest) -> CwmpSession | None:
        """The open session a request surely belongs to: named by its cookie or carried by
        its connection (by address alone it could be another CPE's behind the same NAT), and
        not handling another request right now."""
        cookie = session_cookie(request)
        session = self.sessions.find(cookie, request.protocol)
        if session is None or session.id in self._busy or session.finished:
            return None
        return session

    def _overloaded(
        self, remote_ip: str, cause: str, serial: str, *, retry_after: int | None = None
    ) -> web.Response:
        """503 for an Inform; the line names its serial, as the operator of a router that
        keeps getting 503 searches for it."""
        self.stats["refused_overload"] += 1
        # Jitter spreads the retries of a boot storm instead of bunching them up again.
        base = self.settings.retry_after if retry_after is None else retry_after
        retry = max(1, int(base * random.uniform(0.5, 1.5)))
        log.info(
            "cwmp.overloaded",
            remote=remote_ip,
            serial=peer_text(serial),
            retry_after=retry,
            cause=cause,
        )
        return _closed(
            web.Response(
                status=503, text="overloaded, retry later\n", headers={"Retry-After": str(retry)}
            )
        )

    @staticmethod
    def _plain(status: int, reason: str, *, close: bool) -> web.Response:
        response = web.Response(status=status, text=reason + "\n")
        return _closed(response) if close else response

    # --- lifecycle -----------------------------------------------------------------------

    async def _close(self, session: CwmpSession, reason: str) -> None:
        self.sessions.remove(session)
        try:
            with exchange(session_ref(session.id), session.serial):
                await session.abandon(reason)
        except Exception:
            log.exception("cwmp.finish_failed", serial=session.serial)

    async def start(self) -> None:
        """Start the reaper of silent sessions and the loop-lag probe."""
        if (
            self.parking is None
            and self.handoff.store is not None
            and not self.settings.shared_store
        ):
            # Nobody else will take these: end them, so that what they learned is committed.
            # (A store other instances share holds theirs too, in sessions still under
            # way: what an earlier run left is reaped at its timeout, as theirs are.)
            await self.handoff.end_parked("left parked by an earlier run")
        self._reaper = asyncio.create_task(self._reap_forever())
        self.loop_lag.start()

    async def _reap_forever(self) -> None:
        interval = max(0.5, min(5.0, self.settings.session_timeout / 4))
        # With workers, a closed connection is noticed within 0.1 s, so the worker the CPE
        # reconnects to seldom waits for the session.
        tick = 0.1 if self.parking is not None else interval
        last_reap = time.monotonic()
        while True:
            await asyncio.sleep(tick)
            try:
                await self.handoff.park_idle()
                if time.monotonic() - last_reap >= interval:
                    last_reap = time.monotonic()
                    await self.reap()
                    await self.handoff.reap_parked()
            except Exception as exc:
                # (the database down: a warning, as every call fails alike meanwhile)
                store = self.handoff.store
                log_failure(log, "cwmp.reaper_failed", store.unavailable(exc) if store else None)

    async def reap(self) -> None:
        """Abandon sessions whose CPE went silent: what they learned is still committed."""
        deadline = time.monotonic() - self.settings.session_timeout
        for session in [s for s in self.sessions.by_id.values() if s.last_active < deadline]:
            log.info("cwmp.session_timeout", serial=session.serial, session=session_ref(session.id))
            await self._close(session, "timed out waiting for the CPE")

    async def drain(self, grace: float, *, hurry: asyncio.Event | None = None) -> None:
        """Stop taking new sessions (Informs get 503 + Retry-After); give open ones ``grace``
        seconds (less if ``hurry`` is set), then abandon them: what they learned is still
        committed."""
        self.accepting = False
        deadline = time.monotonic() + grace
        while len(self.sessions) and time.monotonic() < deadline:
            if hurry is not None and hurry.is_set():
                break
            await asyncio.sleep(0.05)
        left = list(self.sessions.by_id.values())
        if left:
            log.info("cwmp.drain_abandon", sessions=len(left))
        for session in left:
            await self._close(session, "daemon shutting down")
        if self.parking is not None and not self.settings.shared_store:
            # The other workers serve out their grace too, and a CPE that reconnects may
            # still reach one of them and go on: parked sessions are left to be taken over
            # until the grace is over, then ended (the service stops; nobody else will).
            # On a store other instances share, they go on there, or are reaped at their
            # timeout by whichever instance runs (the others' are not this one's to end).
            while time.monotonic() < deadline and not (hurry is not None and hurry.is_set()):
                try:
                    if not await self.parking.parked_sessions():
                        break
                except Exception:
                    break
                await asyncio.sleep(0.2)
            await self.handoff.end_parked("daemon shutting down")

    async def stop(self) -> None:
        """Stop the reaper and close what sessions are left (after :meth:`drain`)."""
        if self._reaper is not None:
            self._reaper.cancel()
        await self.loop_lag.stop()
        for session in list(self.sessions.by_id.values()):
            await self._close(session, "daemon shutting down")


def _challenge(auth: CpeAuthenticator, remote_ip: str, *, stale: bool = False) -> web.Response:
    """An empty 401 with the authenticator's challenges (a fresh nonce for ``remote_ip``)."""
    response = web.Response(status=401)
    for name, value in auth.challenge_headers(stale=stale, address=remote_ip):
        response.headers.add(name, value)
    return response


def refusal_kind(reason: str) -> str:
    """``reason`` without what it quotes of the request: ``unsupported Content-Type
    'text/plain'; send text/xml`` and ``... 'x-1' ...`` are one kind of refusal."""
    return _REASON_DETAIL.sub("…", reason)


def _closed(response: web.Response) -> web.Response:
    """``response`` with ``Connection: close``, and the connection closed after it: the
    header alone left aiohttp serving further requests on the connection, which RFC 9112
    9.6 forbids once "close" is sent."""
    response.force_close()
    return response


def session_cookie(request: web.BaseRequest) -> str | None:
    """The value of acsd's session cookie, if the request carries it. aiohttp's
    ``request.cookies`` runs the full RFC 6265 parser for every request (~4 % of a steady
    session); a CPE echoes back the one cookie acsd set, whose value is a plain token.

    Unlike that parser, it reads every Cookie header (some CPE HTTP clients send one per
    cookie) and takes "," between cookies as RFC 2965 and 2109 do, the cookies TR-069 had
    CWMP 1.0 and 1.1 CPEs implement (``$Version="1"; lb="x", acsd_session="..."``): with
    a load balancer's cookie before acsd's, the session was not found. No cookie value
    holds a comma (RFC 6265 4.1.1), acsd's least of all."""
    headers = request.headers.getall("Cookie", ())
    if not headers:
        return None
    header = headers[0] if len(headers) == 1 else ";".join(headers)
    if "," in header:
        header = header.replace(",", ";")
    found = None
    for part in header.split(";"):
        name, sep, value = part.partition("=")
        if sep and name.strip() == COOKIE:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]  # some CPEs quote what they echo
            found = value  # the last one wins, as in aiohttp's parser
    return found


class _HttpError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
