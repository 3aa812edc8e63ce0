"""acsd's STUN server, and the UDP Connection Request sent from its socket (TR-069 Annex G,
TR-111 part 2; cwmp-reference §6.2).

A router behind NAT runs a STUN client from its UDP Connection Request port towards this
socket: its Binding Requests learn it the address the NAT gave it (which it reports as
UDPConnectionRequestAddress) and keep that NAT binding open. A UDP Connection Request then
reaches it only if it comes from the address the binding was made with, so it leaves from
this same socket (an address-restricted or port-restricted NAT drops anything else).

The server answers Binding Requests only: classic RFC 3489 ones with MAPPED-ADDRESS, RFC
5389 ones (the magic cookie) with XOR-MAPPED-ADDRESS, and nothing more (no SOURCE- or
CHANGED-ADDRESS: acsd has one address, and every byte of an answer is a byte a spoofed
source could have reflected at a victim). Anything else on the port (a STUN answer, a
truncated or oversized datagram, junk) is counted and dropped: never answered, never an
error in the log, and never more work than one walk over at most :data:`MAX_ATTRIBUTES`
attributes of one datagram of at most :data:`MAX_REQUEST` bytes. A source address gets at
most ``source_rate`` answers a second (``source_burst`` at once; acsd.cwmp.stunlimit): a
request with a victim's address as its source gets that victim no more answers than a
few routers' keepalives would, however fast the requests come; the rest are dropped and
counted (``rate limited``). Workers sharing the port each take their share of that bound
(acsd.cwmp.stunlimit.worker_share).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import secrets
import socket
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import quote

from acsd.cwmp.crguard import DenyList
from acsd.cwmp.stunlimit import SourceLimiter, source_key, worker_share
from acsd.log import get_logger, peer_text

log = get_logger("acsd.stun")

BINDING_REQUEST = 0x0001
BINDING_RESPONSE = 0x0101
#: RFC 5389's magic cookie: a request that carries it gets XOR-MAPPED-ADDRESS
MAGIC_COOKIE = 0x2112A442
MAPPED_ADDRESS = 0x0001
XOR_MAPPED_ADDRESS = 0x0020
#: TR-111's attributes: a router's request from its Connection Request port, and that
#: the NAT's mapping of it changed since its last one
CONNECTION_REQUEST_BINDING = 0xC001
BINDING_CHANGE = 0xC002

HEADER = struct.Struct("!HHI12s")
ATTRIBUTE = struct.Struct("!HH")

#: bytes of the largest request answered: a Binding Request with TR-111's attributes,
#: USERNAME and MESSAGE-INTEGRITY is ~100 bytes; RFC 3489 has requests fit 576-byte
#: datagrams
MAX_REQUEST = 576
#: attributes of one request looked at (bounded work per datagram)
MAX_ATTRIBUTES = 16

#: copies of each UDP Connection Request sent: UDP is lossy (GenieACS sends 3)
UDP_CR_COPIES = 3

#: answers per second to one source address, and at once (config [stun] source_rate,
#: source_burst): a router sends one Binding Request per keepalive period (and a few
#: retries), so 10 a second serves ~300 routers behind one carrier-grade NAT address
SOURCE_RATE = 10.0
SOURCE_BURST = 20


class NotStun(ValueError):
    """A datagram that is no Binding Request acsd answers; its text says why (a counter's
    label: short, fixed words, never the datagram's bytes)."""


@dataclass(frozen=True, slots=True)
class BindingRequest:
    transaction: bytes  # the 16 bytes after type and length (RFC 5389: cookie + 12)
    modern: bool  # RFC 5389 (magic cookie)
    #: TR-111: sent from the router's UDP Connection Request port
    connection_request_binding: bool = False
    binding_change: bool = False


def parse_request(data: bytes) -> BindingRequest:
    """The Binding Request in ``data``; raises :class:`NotStun` for anything else."""
    if len(data) < HEADER.size:
        raise NotStun("short")
    if len(data) > MAX_REQUEST:
        raise NotStun("oversized")
    kind, length, cookie, _ = HEADER.unpack_from(data)
    if kind & 0xC000:  # (the two top bits tell STUN from other protocols on the port)
        raise NotStun("not stun")
    if kind != BINDING_REQUEST:
        # an answer, an error, a Shared Secret Request: answering an answer could loop
        # two servers at each other
        raise NotStun("not a binding request")
    if length != len(data) - HEADER.size:
        raise NotStun("bad length")
    modern = cookie == MAGIC_COOKIE
    crb = change = False
    at = HEADER.size
    for _ in range(MAX_ATTRIBUTES):
        if at >= len(data):
            break
        if at + ATTRIBUTE.size > len(data):
            raise NotStun("bad attribute")
        attr, size = ATTRIBUTE.unpack_from(data, at)
        at += ATTRIBUTE.size
        if at + size > len(data):
            raise NotStun("bad attribute")
        if attr == CONNECTION_REQUEST_BINDING:
            crb = True
        elif attr == BINDING_CHANGE:
            change = True
        # values are padded to 4 bytes (RFC 5389; RFC 3489's attributes are multiples of 4
        # in practice): a last attribute whose padding was left off still counts
        at += size + (-size % 4)
    else:
        if at < len(data):
            raise NotStun("too many attributes")
    return BindingRequest(data[4:20], modern, crb, change)


def _address_value(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int) -> bytes:
    family = 0x01 if ip.version == 4 else 0x02
    return struct.pack("!BBH", 0, family, port) + ip.packed


def binding_response(request: BindingRequest, host: str, port: int) -> bytes:
    """The answer to ``request`` from ``host``:``port``: its mapped address, as the
    request's version of STUN says it, and nothing else."""
    ip = ipaddress.ip_address(host.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # (a dual-stack socket's view of an IPv4 router)
    if request.modern:
        # XOR with the cookie (and, for IPv6, the transaction id): RFC 5389 §15.2
        key = request.transaction[: 4 if ip.version == 4 else 16]
        packed = bytes(a ^ b for a, b in zip(ip.packed, key, strict=True))
        value = struct.pack("!BBH", 0, 0x01 if ip.version == 4 else 0x02, port ^ 0x2112) + packed
        attr = XOR_MAPPED_ADDRESS
    else:
        value = _address_value(ip, port)
        attr = MAPPED_ADDRESS
    body = ATTRIBUTE.pack(attr, len(value)) + value
    return struct.pack("!HH", BINDING_RESPONSE, len(body)) + request.transaction + body


def parse_mapped_address(data: bytes, transaction: bytes) -> tuple[str, int] | None:
    """The mapped address in a Binding Response to ``transaction`` (the simulator's STUN
    client reads its own with this), None when ``data`` is no such answer."""
    if len(data) < HEADER.size or len(data) > MAX_REQUEST:
        return None
    kind, length, _, _ = HEADER.unpack_from(data)
    if kind != BINDING_RESPONSE or data[4:20] != transaction or length != len(data) - 20:
        return None
    at = HEADER.size
    for _ in range(MAX_ATTRIBUTES):
        if at + ATTRIBUTE.size > len(data):
            return None
        attr, size = ATTRIBUTE.unpack_from(data, at)
        value = data[at + 4 : at + 4 + size]
        at += ATTRIBUTE.size + size + (-size % 4)
        if attr not in (MAPPED_ADDRESS, XOR_MAPPED_ADDRESS) or len(value) not in (8, 20):
            continue
        port = struct.unpack_from("!H", value, 2)[0]
        raw = value[4:]
        if attr == XOR_MAPPED_ADDRESS:
            port ^= 0x2112
            raw = bytes(a ^ b for a, b in zip(raw, transaction, strict=False))
        return str(ipaddress.ip_address(raw)), port
    return None


def binding_request(
    *, modern: bool = False, connection_request_binding: bool = True, binding_change: bool = False
) -> bytes:
    """A Binding Request (the simulator's): TR-111's CONNECTION-REQUEST-BINDING when sent
    from a Connection Request port, BINDING-CHANGE when its mapping changed."""
    body = b""
    if connection_request_binding:
        value = b"dslforum.org/TR-111 "
        body = ATTRIBUTE.pack(CONNECTION_REQUEST_BINDING, len(value)) + value
    if binding_change:
        body += ATTRIBUTE.pack(BINDING_CHANGE, 0)
    head = (
        struct.pack("!I", MAGIC_COOKIE) + secrets.token_bytes(12)
        if modern
        else secrets.token_bytes(16)
    )
    return struct.pack("!HH", BINDING_REQUEST, len(body)) + head + body


# -- UDP Connection Request ------------------------------------------------------------------


def signature(password: str, ts: int, mid: int | str, username: str, cnonce: str) -> str:
    """TR-069 Annex G: HMAC-SHA1, keyed with the Connection Request password, over the
    plain concatenation ts + id + un + cn, hex."""
    text = f"{ts}{mid}{username}{cnonce}"
    return hmac.new(password.encode(), text.encode(), hashlib.sha1).hexdigest()


def udp_message(
    host: str, port: int, username: str, password: str, *, now: float | None = None
) -> bytes:
    """One UDP Connection Request: its own ts and a fresh random id and cnonce, so a router
    that ignores a (ts, id) it saw takes each request once and only its copies are
    ignored. The username is percent-encoded only where it holds what would end the
    query (firmware compares ``un`` as it comes); the signature covers it as it is."""
    ts = int(time.time() if now is None else now)
    mid = secrets.randbelow(2**32)
    cnonce = secrets.token_hex(8)
    sig = signature(password, ts, mid, username, cnonce)
    shown = f"[{host}]" if ":" in host else host
    un = quote(username, safe="-._~!$'()*+,;:@")
    line = (
        f"GET http://{shown}:{port}?ts={ts}&id={mid}&un={un}&cn={cnonce}&sig={sig} HTTP/1.1\r\n"
        f"Host: {shown}:{port}\r\n\r\n"
    )
    return line.encode("ascii")


def parse_udp_address(value: str) -> tuple[str, int]:
    """A UDPConnectionRequestAddress (``host:port``, ``[v6]:port``; TR-069 has the port
    optional, 80 then) as (host, port); ValueError for what is none."""
    text = value.strip()
    if not text or len(text) > 256:
        raise ValueError("empty or too long")
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError("no closing ] of an IPv6 address")
        port_text = rest[1:] if rest else ""
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    elif ":" in text:
        host, port_text = text, ""  # an IPv6 address without a port
    else:
        host, port_text = text, ""
    port = 80
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"no port: {port_text[:10]!r}")
        port = int(port_text)
    if not host:
        raise ValueError("no host")
    return host, port


# -- the server ------------------------------------------------------------------------------


@dataclass(slots=True)
class StunStats:
    """Counters for /metrics: answered Binding Requests, datagrams dropped (by reason),
    UDP Connection Requests sent (each counts once, whatever its copies)."""

    answered: int = 0
    dropped: int = 0
    udp_requests: int = 0
    udp_refused: int = 0
    #: reason (NotStun's text) -> datagrams dropped for it
    drop_reasons: dict[str, int] = field(default_factory=dict)


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, server: StunServer) -> None:
        self.server = server

    def datagram_received(self, data: bytes, addr: tuple) -> None:  # type: ignore[type-arg]
        self.server._received(data, addr)

    def error_received(self, exc: Exception) -> None:
        # an ICMP port unreachable of an earlier answer (Linux reports it on the next
        # call): the router went, nothing to do
        log.debug("stun.icmp_error", error=str(exc))


class StunServer:
    """The UDP socket: answers Binding Requests and sends UDP Connection Requests."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        deny: Sequence[str] = (),
        reuse_port: bool = False,
        source_rate: float = SOURCE_RATE,
        source_burst: int = SOURCE_BURST,
        workers: int = 1,
    ) -> None:
        self.host = host
        self.port = port
        #: workers share the port (SO_REUSEPORT): any of them sends from the same address
        self.reuse_port = reuse_port
        #: processes that share the port, each with buckets of its own
        self.workers = workers
        self.deny = DenyList(deny)
        #: a source's answers, bounded: its address may be a spoofed victim's
        self.limiter = SourceLimiter(*worker_share(source_rate, source_burst, workers))
        self.stats = StunStats()
        self._transport: asyncio.DatagramTransport | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(self),
            local_addr=(self.host, self.port),
            family=family,
            reuse_port=self.reuse_port or None,
        )
        self._transport = transport
        self.port = transport.get_extra_info("sockname")[1]

    def bound_sources(self, source_rate: float, source_burst: int) -> None:
        """New per-source bounds (``[stun] source_rate``, ``source_burst``, on reload)."""
        self.limiter.retune(*worker_share(source_rate, source_burst, self.workers))

    @property
    def bound(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def _received(self, data: bytes, addr: tuple) -> None:  # type: ignore[type-arg]
        host, port = addr[0], addr[1]
        try:
            if not port:
                raise NotStun("source port 0")  # (an answer to it goes nowhere)
            request = parse_request(data)
            answer = binding_response(request, host, port)
            if not self.limiter.allow(source_key(host)):
                raise NotStun("rate limited")
        except (NotStun, ValueError) as exc:
            reason = str(exc) if isinstance(exc, NotStun) else "bad source"
            self.stats.dropped += 1
            self.stats.drop_reasons[reason] = self.stats.drop_reasons.get(reason, 0) + 1
            return
        assert self._transport is not None
        self._transport.sendto(answer, addr)
        self.stats.answered += 1
        if request.binding_change:
            shown = f"[{host}]" if ":" in host else host  # (an IPv6 address's port apart)
            log.info("stun.binding_change", source=f"{shown}:{port}")

    def send_connection_request(
        self, address: str, username: str | None, password: str | None
    ) -> str | None:
        """Send a UDP Connection Request to a UDPConnectionRequestAddress, three times;
        None when sent, else why not (the deny list applies as to HTTP requests). Only an
        address is taken, never a name: what a router reports from behind NAT is its
        mapping, and resolving names here would let a report send datagrams anywhere."""
        if self._transport is None:
            return "the STUN socket is not open"
        try:
            host, port = parse_udp_address(address)
            ip = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError as exc:
            self.stats.udp_refused += 1
            return f"not an address:port: {peer_text(address, 100)!r} ({exc})"
        refusal = self.deny.refusal(str(ip))
        if refusal is not None:
            self.stats.udp_refused += 1
            return refusal
        if not username:
            self.stats.udp_refused += 1
            return "no Connection Request username to sign with"
        target: tuple[str, int] = (str(ip), port)
        if self._family() == socket.AF_INET6 and ip.version == 4:
            target = (f"::ffff:{ip}", port)
        elif self._family() == socket.AF_INET and ip.version == 6:
            self.stats.udp_refused += 1
            return f"{ip} is IPv6 and the STUN socket IPv4 ({self.bound})"
        message = udp_message(str(ip), port, username, password or "")
        for _ in range(UDP_CR_COPIES):
            self._transport.sendto(message, target)
        self.stats.udp_requests += 1
        return None

    def _family(self) -> int:
        assert self._transport is not None
        return self._transport.get_extra_info("socket").family
