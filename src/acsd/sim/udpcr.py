"""A router's STUN client and UDP Connection Request listener (TR-069 Annex G, TR-111 part
2), as icwmp runs them: one UDP socket per router, from which its Binding Requests go to the
STUNServerAddress:STUNServerPort the ACS set, at the keepalive period; the mapped address
they learn becomes UDPConnectionRequestAddress. A UDP Connection Request on that socket is
taken when its ``ts`` is newer than the last one taken, its ``id`` another, its ``un`` the
router's ConnectionRequestUsername and its ``sig`` the HMAC-SHA1 of ts+id+un+cn keyed with
the router's ConnectionRequestPassword; then the router opens a session with "6
CONNECTION REQUEST". Anything else is counted and ignored.

Off unless the simulation is asked for it (``udp_cr``): routers on one host would each
hold a socket, and acsd's tests of HTTP Connection Requests want none of that traffic."""

from __future__ import annotations

import asyncio
import hmac
import logging
import socket
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from acsd.cwmp.stun import binding_request, parse_mapped_address, signature
from acsd.sim.cpe import Cpe

log = logging.getLogger(__name__)

#: seconds between Binding Requests when the router's tree says no keepalive period
DEFAULT_KEEPALIVE = 30.0
#: seconds a Binding Request waits for its answer before the next try
ANSWER_WAIT = 1.0


@dataclass(slots=True)
class UdpStats:
    bindings: int = 0  # Binding Responses read
    accepted: int = 0  # UDP Connection Requests taken
    rejected: int = 0  # datagrams ignored (bad signature, replay, junk)


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, owner: UdpRouter) -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: tuple) -> None:  # type: ignore[type-arg]
        self.owner._received(data, addr)


class UdpRouter:
    """One router's UDP socket: STUN client and Connection Request listener."""

    def __init__(self, cpe: Cpe, host: str = "127.0.0.1") -> None:
        self.cpe = cpe
        self.host = host
        self.stats = UdpStats()
        self._transport: asyncio.DatagramTransport | None = None
        self._pending: tuple[bytes, asyncio.Future[tuple[str, int]]] | None = None
        self._last: tuple[int, str] | None = None  # (ts, id) of the last request taken
        self._task: asyncio.Task[None] | None = None
        #: the socket was bound anew (rebind): the next Binding Request says BINDING-CHANGE
        self._changed = False

    @property
    def _ms(self) -> str:
        return self.cpe.template.root + "ManagementServer."

    def _value(self, leaf: str) -> str:
        tree = self.cpe.tree
        return tree.get(self._ms + leaf) if self._ms + leaf in tree else ""

    async def start(self) -> None:
        self._transport = await self._open()
        self._task = asyncio.create_task(self._keepalive())

    async def _open(self) -> asyncio.DatagramTransport:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(self), local_addr=(self.host, 0), family=socket.AF_INET
        )
        return transport

    @property
    def address(self) -> tuple[str, int]:
        """The socket's address: on 127.0.0.1 (no NAT) the mapping STUN tells it."""
        assert self._transport is not None
        host, port = self._transport.get_extra_info("sockname")[:2]
        return host, port

    async def rebind(self) -> None:
        """The NAT's mapping changes (a NAT reboot, a carrier rebinding), played as the
        socket bound anew to another port: the STUN client asks again at once, its
        request says BINDING-CHANGE, and the new mapping becomes its
        UDPConnectionRequestAddress (a VALUE CHANGE Inform when notified)."""
        await self._stop_keepalive()
        old, self._transport = self._transport, await self._open()
        if old is not None:
            old.close()
        self._changed = True
        self._task = asyncio.create_task(self._keepalive())

    async def _stop_keepalive(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def stop(self) -> None:
        await self._stop_keepalive()
        if self._transport is not None:
            self._transport.close()

    async def _keepalive(self) -> None:
        """Binding Requests while STUNEnable is on, one per keepalive period."""
        while True:
            wait = DEFAULT_KEEPALIVE
            if self._value("STUNEnable") in ("1", "true") and self._value("STUNServerAddress"):
                try:
                    mapped = await self._bind()
                except (TimeoutError, OSError, ValueError) as exc:
                    log.info("%s: STUN: %s", self.cpe.serial, exc or "no answer")
                    wait = ANSWER_WAIT
                else:
                    self._mapped(mapped)
                    wait = self._period()
            else:
                wait = ANSWER_WAIT  # (the ACS may turn it on in the next session)
            await asyncio.sleep(wait)

    def _period(self) -> float:
        for leaf in ("STUNMinimumKeepAlivePeriod", "STUNMaximumKeepAlivePeriod"):
            try:
                seconds = float(self._value(leaf))
            except ValueError:
                continue
            if seconds > 0:
                return seconds
        return DEFAULT_KEEPALIVE

    async def _bind(self) -> tuple[str, int]:
        assert self._transport is not None
        host = self._value("STUNServerAddress")
        try:
            port = int(self._value("STUNServerPort") or 3478)
        except ValueError:
            port = 3478
        request = binding_request(binding_change=self._changed)
        future: asyncio.Future[tuple[str, int]] = asyncio.get_running_loop().create_future()
        self._pending = (request[4:20], future)
        self._transport.sendto(request, (host, port))
        async with asyncio.timeout(ANSWER_WAIT):
            return await future

    def _mapped(self, mapped: tuple[str, int]) -> None:
        address = f"{mapped[0]}:{mapped[1]}"
        self.stats.bindings += 1
        self._changed = False
        path = self._ms + "UDPConnectionRequestAddress"
        if path in self.cpe.tree and self._value("UDPConnectionRequestAddress") != address:
            # the router's own change: an Inform with "4 VALUE CHANGE" if notified
            self.cpe.set_local(path, address)

    def _received(self, data: bytes, addr: tuple) -> None:  # type: ignore[type-arg]
        pending = self._pending
        if pending is not None and not pending[1].done():
            mapped = parse_mapped_address(data, pending[0])
            if mapped is not None:
                pending[1].set_result(mapped)
                return
        if self._accept(data):
            self.stats.accepted += 1
            self.cpe.request_connection()
        else:
            self.stats.rejected += 1

    def _accept(self, data: bytes) -> bool:
        """Whether ``data`` is a UDP Connection Request this router takes (icwmp's checks)."""
        try:
            line = data.split(b"\r\n", 1)[0].decode("ascii")
            method, url, _ = line.split(" ")
            query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
            ts, mid = int(query["ts"]), query["id"]
            un, cn, sig = query["un"], query["cn"], query["sig"]
        except (ValueError, KeyError, UnicodeDecodeError):
            return False
        if method != "GET":
            return False
        if self._last is not None and (ts <= self._last[0] or mid == self._last[1]):
            return False  # a copy, or a replay
        username = self._value("ConnectionRequestUsername")
        if not username or un != username:
            return False
        expected = signature(self._value("ConnectionRequestPassword"), ts, mid, un, cn)
        if not hmac.compare_digest(expected, sig.lower()):
            return False
        self._last = (ts, mid)
        return True
