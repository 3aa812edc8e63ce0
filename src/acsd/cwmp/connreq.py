"""Connection Request: ask a CPE to open a session now (TR-069 §3.2.2).

An HTTP GET to the ConnectionRequestURL the CPE reported, answered 200/204 (any 2xx) when
the CPE accepts; the CPE authenticates acsd with HTTP Digest using its ConnectionRequestUsername
and Password. 503 means the CPE is busy (already in a session, which read its settings before
the change that asked for this request) or rate-limiting: the request is sent again at
doubling intervals for as long as a session may last, before the work waits for the next
Inform.

A router behind NAT (its ConnectionRequestURL a private address no request reaches) is
asked over UDP instead when it reported a UDPConnectionRequestAddress and acsd runs its
STUN server (acsd.cwmp.stun): the signed datagram leaves from the STUN socket, through the
NAT binding the router's keepalives hold open. UDP says nothing back, so where the
ConnectionRequestURL is a public address the HTTP request goes too (the router opens one
session for both); to a private one it does not: it cannot arrive, and it would reach
whatever host has that address on acsd's own network.

Requests are fire-and-forget for the caller: an operator's write never waits for a router.
One request per device at a time, and at most one per device every ``min_interval``
seconds, so a burst of API writes cannot hammer a CPE. Where several processes send them
(workers, instances on one database), a claim in the store they share holds the interval
across them all.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
from aiohttp import hdrs
from yarl import URL

from acsd import __version__, httpdigest
from acsd.cwmp.crguard import DeniedAddress, DenyList, GuardedResolver
from acsd.log import get_logger, peer_text, url_without_userinfo

log = get_logger("acsd.connreq")

#: what a Connection Request says it comes from
USER_AGENT = f"acsd/{__version__}"


@dataclass(slots=True)
class CrResult:
    ok: bool
    status: int | None = None
    reason: str = ""


async def connection_request(
    session: aiohttp.ClientSession,
    url: str,
    username: str | None,
    password: str | None,
    *,
    timeout: float = 5.0,
    deny: DenyList | None = None,
    allow_basic: bool = False,
) -> CrResult:
    """One Connection Request; never raises for network trouble. ``deny``: addresses it is
    never sent to; a host name is checked by the session's resolver (GuardedResolver)."""
    try:
        # Parsed as aiohttp will connect: yarl folds full-width digits and ideographic full
        # stops (IDNA), so "127" in full-width digits is checked as the 127 it reaches.
        # It raises for "http://[::1", a port that is no number or out of range.
        target = URL(url)
        host = target.host
        # credentials the firmware wrote into the URL are not acsd's to send (aiohttp
        # would send them as Basic, and refuse them beside acsd's own Authorization)
        if target.user is not None or target.password is not None:
            target = target.with_user(None)
    except (ValueError, UnicodeError):  # what a CPE reports is not checked before
        return CrResult(False, reason=f"not a URL: {shown_url(url, 200)!r}")
    # TR-069 allows only plain HTTP here; anything else is a CPE misreport.
    if target.scheme != "http" or not host:
        return CrResult(False, reason=f"not an http URL: {shown_url(url, 200)!r}")
    if target.port == 0:  # (else aiohttp's 'cannot connect ... ssl:default' said nothing)
        return CrResult(
            False, reason=f"not a URL a router listens on (port 0): {shown_url(url, 200)!r}"
        )
    try:
        refusal = deny.refusal(host) if deny is not None else None
    except ValueError:
        refusal = None  # a host name: resolved, and checked, by the session's resolver
    if refusal is not None:
        return CrResult(False, reason=refusal)
    try:
        # One timeout for the whole exchange, the challenge and the answer to it.
        async with asyncio.timeout(timeout):
            status, challenges = await _get(session, target)
            # The challenge answered, and once more when the CPE calls the nonce answered
            # stale (it ran out, or was bound to the connection the first 401 closed).
            for tries in range(2):
                if status != 401 or not username or (tries and not _stale(challenges)):
                    break
                answer = answer_challenge(
                    challenges, target, username, password or "", allow_basic=allow_basic
                )
                if answer is None:
                    return CrResult(False, 401, _unanswerable(challenges))
                status, challenges = await _get(session, target, answer)
            if status == 401 and username:  # (no secret: the serial number, mostly)
                # the username the router reported holding, maybe: its text, bounded
                shown = peer_text(username)
                return CrResult(False, 401, f"the router refused the credentials of '{shown}'")
        # TR-069 names 200 and 204; a CPE that says 202 Accepted has accepted too.
        if 200 <= status < 300:
            return CrResult(True, status)
        if status == 401:
            return CrResult(False, 401, "the router asks for credentials acsd has none of")
        reason = "CPE busy or rate-limiting" if status == 503 else "refused"
        return CrResult(False, status, reason)
    except aiohttp.ClientConnectorError as exc:
        if isinstance(exc.os_error, DeniedAddress):
            return CrResult(False, reason=exc.os_error.strerror)
        return CrResult(False, reason=_unreachable(exc))
    except TimeoutError:  # (its text is empty: say what happened instead)
        return CrResult(False, reason=f"unreachable: no answer within {timeout:g} s")
    except (aiohttp.ClientError, OSError) as exc:
        return CrResult(False, reason=_unreachable(exc))
    except ValueError as exc:  # e.g. credentials a header cannot carry (UnicodeEncodeError)
        return CrResult(False, reason=f"not sendable: {peer_text(str(exc), _SHOWN)}")


#: characters of what a CPE sent that a reason shows (aiohttp's error for a malformed
#: answer quotes the whole line, a header's 8 KB)
_SHOWN = 200


def _unreachable(exc: BaseException) -> str:
    return f"unreachable: {exc.__class__.__name__}: {peer_text(str(exc), _SHOWN)}"


#: a URL a router reported, for a log line or an operator (its credentials masked)
shown_url = url_without_userinfo


async def _get(
    session: aiohttp.ClientSession, target: URL, answer: Answer | None = None
) -> tuple[int, list[tuple[str, dict[str, str]]]]:
    """One GET: its status and the challenges of a 401. ``answer`` makes its Authorization
    each time the request goes out: aiohttp sends a GET again, on a new connection, when
    the CPE closes the one it went on without answering (RFC 9112 9.3.1.1: a keep-alive
    connection the CPE closed after its 401 is a race no request can avoid), and a Digest
    answer sent twice with the same nc is a replay to a CPE that counts them (it may
    refuse it, or count a failed login). Each send is answered afresh: the next nc, a
    new cnonce."""

    async def authorize(
        request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
    ) -> aiohttp.ClientResponse:
        assert answer is not None
        request.headers[hdrs.AUTHORIZATION] = answer()
        return await handler(request)

    middlewares = (authorize,) if answer is not None else None
    try:
        async with session.get(target, allow_redirects=False, middlewares=middlewares) as response:
            if response.status != 401:
                # The answer is its status: a body that trickles in must not turn a CPE's
                # "200, I will call" into a timeout (nor one that never ends fill memory).
                if not response.content.at_eof():
                    response.close()
                return response.status, []
            await _drain(response)
            challenges = response.headers.getall(hdrs.WWW_AUTHENTICATE, [])
            return 401, httpdigest.parse_challenges(challenges)
    except aiohttp.ServerDisconnectedError as exc:
        head = _head_cut_short(exc)
        if head is None:
            raise
        status, headers = head
        challenges = headers.getall(hdrs.WWW_AUTHENTICATE, []) if status == 401 else []
        return status, httpdigest.parse_challenges(challenges)


def _head_cut_short(exc: aiohttp.ServerDisconnectedError) -> tuple[int, Any] | None:
    """The status and headers of an answer whose head the CPE ended by closing the
    connection, without the empty line that ends it: easycwmp's 401 (its src/http.c
    writes the WWW-Authenticate line and closes; genieacs/genieacs#64, #91), the Orange
    tr069agent's (genieacs/genieacs#280). The status and challenge are all there, and
    the answer to the challenge goes on a new connection anyway. None for a connection
    closed before a status line came. (aiohttp hands the head it parsed over in the
    exception; its C and Python parsers have RawResponseMessage types of their own.)"""
    head = exc.message
    code = getattr(head, "code", None)
    headers = getattr(head, "headers", None)
    if not isinstance(code, int) or headers is None:
        return None
    return code, headers


#: body bytes of a CPE's answer read (to reuse the connection); TR-069's answer has none
_MAX_BODY = 65536


async def _drain(response: aiohttp.ClientResponse) -> None:
    """Read a short body so the connection can carry the next request; a longer one (a
    hostile CPE's endless or inflating answer) is left unread and the connection closed:
    only the status and headers count, and acsd's memory is not the CPE's to fill."""
    if not _framed(response):
        # No Content-Length and not chunked: the body ends only when the CPE closes the
        # connection, and embedded servers that send a bare 401 this way keep it open for
        # the next request. Waiting for the end would wait out the whole timeout; the
        # connection cannot carry another request anyway, so the answer goes on a new one.
        response.close()
        return
    left = _MAX_BODY
    while left > 0:
        chunk = await response.content.read(left)
        if not chunk:
            return
        left -= len(chunk)
    if not response.content.at_eof():
        response.close()


def _unanswerable(challenges: list[tuple[str, dict[str, str]]]) -> str:
    """Why acsd did not answer a 401's challenges."""
    schemes = sorted({scheme for scheme, _ in challenges})
    if schemes == ["basic"]:
        return "the router offers only Basic (cwmp.connection_request_allow_basic)"
    return f"no challenge acsd can answer ({peer_text(', '.join(schemes), 80) or 'none'})"


def _stale(challenges: list[tuple[str, dict[str, str]]]) -> bool:
    """Whether a 401 to acsd's answer says only its nonce is stale (RFC 7616 §3.3)."""
    return any(
        scheme == "digest" and params.get("stale", "").lower() == "true"
        for scheme, params in challenges
    )


def _framed(response: aiohttp.ClientResponse) -> bool:
    """Whether a 401 says where its body ends (RFC 9112 §6.3): a length, or chunked."""
    if response.content_length is not None:
        return True
    coding = response.headers.get(hdrs.TRANSFER_ENCODING, "")
    return coding.rsplit(",", 1)[-1].strip().lower() == "chunked"


#: makes the Authorization header for one send of a request (see _get)
Answer = Callable[[], str]


def answer_challenge(
    challenges: list[tuple[str, dict[str, str]]],
    target: URL,
    username: str,
    password: str,
    *,
    allow_basic: bool = False,
) -> Answer | None:
    """What makes the Authorization header for the CPE's challenges, None when acsd can
    answer none: Digest where offered (TR-069 asks for it; qop "auth" even when "auth-int"
    is offered too, as firmware that offers both often implements only "auth"), whichever
    order the CPE sent them in, its nc one higher at each send; else Basic if
    ``allow_basic`` (older CPEs: the password readable)."""
    for scheme, params in challenges:
        if scheme == "digest" and httpdigest.supported(params.get("algorithm", "MD5")):
            uri = target.raw_path_qs or "/"
            sent = itertools.count(1)
            # (a GET's body is empty: an "auth-int" answer hashes that)
            return lambda: httpdigest.authorization(
                params, "GET", uri, username, password, next(sent), b""
            )
    if allow_basic and any(scheme == "basic" for scheme, _ in challenges):
        header = httpdigest.basic(username, password)
        return lambda: header
    return None


#: Connection Requests out at once; the rest wait their turn before their timeout starts
#: (in the HTTP client's pool they would time out unsent behind routers that never answer)
MAX_CONCURRENT = 100

#: seconds a claim in the store runs out before the interval it claims: the process that
#: took it times its next request by its own clock, which must find it run out (the
#: database's clock counts milliseconds; each clock rounds its own way)
CLAIM_SLACK = 0.05

#: devices remembered for the interval between requests before old entries are dropped
_PRUNE_AT = 4096

#: where and how to ask a router to connect: (ConnectionRequestURL, username, password,
#: UDPConnectionRequestAddress); at least one of the URL and the address is set
Target = tuple[str | None, str | None, str | None, str | None]


class UdpSender(Protocol):
    """What sends UDP Connection Requests (acsd.cwmp.stun.StunServer): None when sent,
    else why not."""

    def send_connection_request(
        self, address: str, username: str | None, password: str | None
    ) -> str | None: ...


#: claims the right to send a device's router a Connection Request for some seconds, on
#: the store every process shares: (device id, seconds) -> whether this process got it
#: (Store.claim_connection_request)
Claim = Callable[[str, float], Awaitable[bool]]


class CrRecord(Protocol):
    """What :func:`target_of` reads of a device record (cwmp/ names no store type)."""

    connection_request_url: str | None
    udp_connection_request_address: str | None
    reported_cr_username: str | None
    cr_username: str | None
    cr_password: str | None


def target_of(record: CrRecord) -> Target | None:
    """The Connection Request a record's router takes, None when it reported neither a URL
    nor a UDP address: the username the router last reported holding (a router that
    refused acsd's username keeps its own; the store keeps it in a column, so records read
    without their parameter tree have it), else the one acsd chose, and acsd's password
    (some CPEs accept any password, or none)."""
    udp = record.udp_connection_request_address or None
    if not record.connection_request_url and not udp:
        return None
    username = record.reported_cr_username or record.cr_username
    return record.connection_request_url or None, username, record.cr_password, udp


#: where a router's ConnectionRequestURL points when it sits behind NAT: private networks
#: (RFC 1918, RFC 4193), carrier-grade NAT's shared space (RFC 6598), loopback, link-local
_BEHIND_NAT = tuple(
    ipaddress.ip_network(n)
    for n in (
        "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "127.0.0.0/8",
        "169.254.0.0/16", "fc00::/7", "fe80::/10", "::1/128",
    )
)  # fmt: skip


def http_reaches(url: str) -> bool:
    """Whether an HTTP request to ``url`` may reach the router beside a UDP one: not when
    its host is an address behind NAT (:data:`_BEHIND_NAT`), which no request from the
    Internet reaches. A name may resolve to anything: it is tried."""
    try:
        host = URL(url).host or ""
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return True
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not any(ip.version == net.version and ip in net for net in _BEHIND_NAT)


class ConnectionRequester:
    """Owns the HTTP client; :meth:`poke` schedules a request in the background."""

    def __init__(
        self,
        *,
        timeout: float = 5.0,
        min_interval: float = 10.0,
        deny: Sequence[str] = (),
        lookup: Callable[[str], Awaitable[Target | None]] | None = None,
        claim: Claim | None = None,
        allow_basic: bool = False,
        busy_for: float = 600.0,
        udp: UdpSender | None = None,
    ) -> None:
        self.timeout = timeout
        #: the STUN server's socket, when acsd runs one: routers that reported a UDP
        #: address are asked through it
        self.udp = udp
        #: how long a CPE that answers 503 is asked again (in a session, which it does not
        #: preempt, or rate-limiting): the change came after that session read its
        #: settings, and the next periodic Inform may be a day away. The session lasts at
        #: most cwmp.max_session_seconds; the requests go min_interval, then twice as long
        #: apart, so a long session is not polled every few seconds.
        self.busy_for = busy_for
        self.allow_basic = allow_basic
        #: reads a device's target again when its deferred request goes: a session in
        #: between may have set new credentials on the router (None: the device is gone,
        #: or nothing waits for its router any more: the request is dropped)
        self.lookup = lookup
        #: the interval's claim in the store shared with other processes (workers,
        #: instances), taken before each request: None when no other process sends any
        self.claim = claim
        self.min_interval = min_interval
        self.deny = DenyList(deny)
        #: the resolver every request's client shares (None: not started)
        self._resolver: GuardedResolver | None = None
        self._busy: set[str] = set()
        self._last: dict[str, float] = {}
        self._pruned = -1e9  # when _last was last pruned
        #: device -> the latest Target of a poke that came too soon
        self._later: dict[str, Target] = {}
        #: device -> (requests it answered 503 in a row, when the first of them was answered),
        #: only while one is to be sent again
        self._retries: dict[str, tuple[int, float]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._slots = asyncio.Semaphore(MAX_CONCURRENT)
        self.stats = {"sent": 0, "ok": 0, "failed": 0, "skipped": 0}
        #: requests by the way they went: "http", "udp", "udp+http"
        self.ways: dict[str, int] = {}

    async def start(self) -> None:
        if self._resolver is None:
            self._resolver = GuardedResolver(self.deny)

    def _client(self) -> aiohttp.ClientSession:
        """An HTTP client for one request, closed with its connections once the CPE has
        answered. A request is one exchange, and the next to that router an interval
        away: a connection kept in a shared pool would hold a listener that serves one
        connection at a time (many firmwares' do) from another worker's request, and a
        descriptor of acsd's for each router a bulk change pokes."""
        assert self._resolver is not None
        return aiohttp.ClientSession(
            # acsd's name, not aiohttp's default, which tells every CPE on the path the
            # Python and aiohttp versions (and so their known flaws)
            headers={"User-Agent": USER_AGENT},
            cookie_jar=aiohttp.DummyCookieJar(),
            # the body is not needed: a small gzip answer must not inflate to gigabytes
            auto_decompress=False,
            # no pool limit: _slots bounds the requests, outside their timeout
            connector=aiohttp.TCPConnector(resolver=self._resolver, limit=0),
        )

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._resolver is not None:
            await self._resolver.close()
            self._resolver = None

    def poke(
        self,
        device_id: str,
        url: str | None,
        username: str | None,
        password: str | None,
        udp: str | None = None,
    ) -> asyncio.Task[CrResult] | None:
        """Ask the CPE to connect; None when not now (no URL nor UDP address it can be
        reached at; one in flight or too soon: then it is sent once the interval is over,
        with the latest arguments)."""
        self._retries.pop(device_id, None)  # a new change: a busy CPE is asked again
        return self._poke(device_id, url, username, password, udp)

    def _poke(
        self,
        device_id: str,
        url: str | None,
        username: str | None,
        password: str | None,
        udp: str | None = None,
    ) -> asyncio.Task[CrResult] | None:
        now = time.monotonic()
        if self.udp is None:
            udp = None  # (no STUN server: no binding through the router's NAT to use)
        if (not url and not udp) or self._resolver is None:
            return None
        if len(self._last) > _PRUNE_AT and now - self._pruned >= self.min_interval:
            # at most once an interval: a bulk change poking thousands of routers within
            # one interval must not rebuild the table at every poke
            self._pruned = now
            self._last = {k: t for k, t in self._last.items() if now - t < self.min_interval}
        wait = self._wait(device_id, now)
        if device_id in self._busy or wait > 0:
            # A second change soon after the first (the router may be in the session the
            # first one started, reading the older revision): not dropped, or it would wait
            # for the router's next periodic Inform.
            self.stats["skipped"] += 1
            first = device_id not in self._later
            self._later[device_id] = (url, username, password, udp)
            if first and device_id in self._busy:
                # sent when the one in flight is over (see _run), not polled for
                log.info("connreq.deferred", device=device_id, after="request in flight")
            elif first:
                self._later_in(device_id, wait)
            return None
        self._busy.add(device_id)
        self._last[device_id] = now
        task = asyncio.create_task(self._run(device_id, url, username, password, udp))
        self._track(task)
        return task

    def _wait(self, device_id: str, now: float) -> float:
        """Seconds until the device may get its next request (<= 0: now)."""
        return self._last.get(device_id, -1e9) + self.min_interval - now

    def _later_in(self, device_id: str, delay: float, after: str | None = None) -> None:
        self._track(asyncio.create_task(self._deferred(device_id, delay)))
        if after is None:
            log.info("connreq.deferred", device=device_id, seconds=round(delay, 1))
        else:
            log.info("connreq.deferred", device=device_id, seconds=round(delay, 1), after=after)

    def _track(self, task: asyncio.Task[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deferred(self, device_id: str, delay: float) -> None:
        await asyncio.sleep(delay)
        args = self._later.pop(device_id, None)
        if args is not None and self.lookup is not None:
            try:
                args = await self.lookup(device_id)
            except Exception as exc:  # the store is unreachable: what was given stays good
                log.warning("connreq.lookup_failed", device=device_id, error=str(exc))
        if args is not None:
            self._poke(device_id, *args)  # (deferred again if still too soon)
        else:
            self._retries.pop(device_id, None)  # the device is gone, or has its change
            log.info("connreq.dropped", device=device_id, reason="nothing waits for the router")

    async def _claimed(self, device_id: str) -> bool:
        """Whether this process may send the request: it took the interval's claim, or
        there is none to take. A store that fails or does not answer in time is no "no":
        a request too many is better than a change that waits a day for the next Inform."""
        if self.claim is None or self.min_interval <= 0:
            return True
        try:
            async with asyncio.timeout(self.timeout):
                return await self.claim(device_id, max(self.min_interval - CLAIM_SLACK, 0.001))
        except Exception as exc:
            log.warning("connreq.claim_failed", device=device_id, error=str(exc) or repr(exc))
            return True

    async def _run(
        self,
        device_id: str,
        url: str | None,
        username: str | None,
        password: str | None,
        udp: str | None = None,
    ) -> CrResult:
        elsewhere = False
        try:
            if not await self._claimed(device_id):
                # Another process sent one within the interval: as a poke too soon here,
                # sent when the interval is over (the change may have come after the
                # other's request, whose session then read the older revision). The
                # interval counts from now: the other's claim was taken before this
                # answer came, so an interval from now it has run out.
                elsewhere = True
                self.stats["skipped"] += 1
                self._last[device_id] = time.monotonic()
                self._later.setdefault(device_id, (url, username, password, udp))
                return CrResult(False, reason="sent by another process within the interval")
            if self.claim is not None:
                # This process's interval too counts from when the claim was answered
                # (the claim was taken before that): its next request must not come
                # before its own claim has run out, and find it held.
                self._last[device_id] = time.monotonic()
            self.stats["sent"] += 1
            way, result = await self._send(url, username, password, udp)
        finally:
            self._busy.discard(device_id)
            if device_id in self._later:  # a poke that came while this one was out
                wait = max(0.0, self._wait(device_id, time.monotonic()))
                self._later_in(device_id, wait, "another process's request" if elsewhere else None)
        self.stats["ok" if result.ok else "failed"] += 1
        if result.status != 503:
            self._retries.pop(device_id, None)
        elif device_id not in self._later:  # (a later poke is sent anyway)
            now = time.monotonic()
            tries, since = self._retries.get(device_id, (0, now))
            left = self.busy_for - (now - since)
            if left > 0:
                self._retries[device_id] = (tries + 1, since)
                self._later[device_id] = (url, username, password, udp)
                delay = min(left, max(self.min_interval, 0.001) * 2**tries)
                self._later_in(device_id, max(delay, self._wait(device_id, now)))
            else:
                self._retries.pop(device_id, None)  # it waits for its next Inform
        self.ways[way] = self.ways.get(way, 0) + 1
        log.info(
            "connreq.done",
            device=device_id,
            way=way,
            ok=result.ok,
            status=result.status,
            reason=result.reason,
        )
        return result

    async def _send(
        self, url: str | None, username: str | None, password: str | None, udp: str | None
    ) -> tuple[str, CrResult]:
        """The request by the ways the router takes: UDP (when acsd's STUN server runs and
        the router reported its address), HTTP (unless UDP went and the URL is one no
        request reaches, see :func:`http_reaches`). Its way and result: UDP's is "sent"
        (nothing comes back), HTTP's the router's answer."""
        sent_udp: CrResult | None = None
        if udp and self.udp is not None:
            refusal = self.udp.send_connection_request(udp, username, password)
            sent_udp = (
                CrResult(True, reason="sent over UDP (3 copies)")
                if refusal is None
                else CrResult(False, reason=f"UDP: {refusal}")
            )
            if not url or (sent_udp.ok and not http_reaches(url)):
                return "udp", sent_udp
        assert url is not None
        async with self._slots, self._client() as client:
            result = await connection_request(
                client,
                url,
                username,
                password,
                timeout=self.timeout,
                deny=self.deny,
                allow_basic=self.allow_basic,
            )
        if sent_udp is None or not sent_udp.ok:
            if sent_udp is not None and not result.ok:
                result.reason = f"{sent_udp.reason}; HTTP: {result.reason}"
            return "http", result
        if not result.ok and result.status != 503:
            # the UDP request may well have reached it: what HTTP says is noted, no failure
            return "udp+http", CrResult(True, result.status, f"UDP sent; HTTP: {result.reason}")
        return "udp+http", result
