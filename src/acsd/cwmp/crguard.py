"""Which addresses acsd sends Connection Requests to.

A ConnectionRequestURL is whatever a CPE reported: a misconfigured or hostile one can
name the ACS host itself or its cloud's metadata service (169.254.169.254), and acsd would
send it HTTP requests with Digest credentials. Requests to the networks listed in
``cwmp.connection_request_deny`` are not sent, whether the URL names the address or a host
name that resolves to it (checked after resolving, so a name cannot point elsewhere later).
The list's entry ``"self"`` stands for every address of acsd's own host: its LAN or
public address reaches the services listening there (a database, the API, a metrics
exporter) as surely as loopback does, and which addresses a host has is not known when
the configuration is written (DHCP, containers, cloud instances).
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Sequence

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from acsd.hostaddr import SELF

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


#: prefixes whose last 32 bits an address translator delivers to: RFC 6052's well-known
#: NAT64 prefix (64:ff9b::a.b.c.d), RFC 8215's local-use one as a /96 (the usual NAT64
#: prefix length; RFC 6052's shorter layouts put the address elsewhere and cannot be told
#: apart from it without the operator's prefix) and SIIT's IPv4-translated addresses
_LAST_32 = (
    ipaddress.IPv6Network("64:ff9b::/96"),
    ipaddress.IPv6Network("64:ff9b:1::/48"),
    ipaddress.IPv6Network("::ffff:0:0:0/96"),
)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

_SELF_ENTRY = '"self" in cwmp.connection_request_deny'


def _addresses(ip: Address) -> list[Address]:
    """``ip`` and the IPv4 address it may carry to: IPv4-mapped (::ffff:a.b.c.d), 6to4
    (2002:AABB:CCDD::), NAT64 (well-known or local-use prefix, /96), SIIT."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return [ip]
    if ip.ipv4_mapped is not None:
        # (and itself: a list entry written in the mapped form, ::ffff:198.51.100.0/120)
        return [ip, ip.ipv4_mapped]
    if ip.sixtofour is not None:
        return [ip, ip.sixtofour]
    if (embedded := int(ip) & 0xFFFFFFFF) and any(ip in prefix for prefix in _LAST_32):
        # (0.0.0.0 is no address: a local-use prefix of another layout, left as it is)
        return [ip, ipaddress.IPv4Address(embedded)]
    return [ip]


def denied_by(address: str, deny: Sequence[Network]) -> Network | None:
    """The listed network ``address`` is in (an IPv6 address that carries an IPv4 one is
    checked as that address too), or None."""
    for ip in _addresses(ipaddress.ip_address(address.split("%", 1)[0])):
        for network in deny:
            if ip.version == network.version and ip in network:
                return network
    return None


def is_own_address(ip: Address) -> bool:
    """Whether ``ip`` is delivered to this host. The kernel knows, today: connecting a UDP
    socket sends nothing, and the source address it picks for one of the host's own
    addresses is that address (loopback ones other than 127.0.0.1 get 127.0.0.1)."""
    if ip.is_loopback:
        return True
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect((str(ip), 9))
            source = probe.getsockname()[0]
    except OSError:  # no route (or no IPv6): not an address of this host
        return False
    return ipaddress.ip_address(source.split("%", 1)[0]) == ip


class DenyList:
    """``cwmp.connection_request_deny``: networks, and ``"self"`` for the host's addresses."""

    def __init__(self, entries: Sequence[str]) -> None:
        self.own = SELF in entries
        self.networks: tuple[Network, ...] = tuple(
            ipaddress.ip_network(entry) for entry in entries if entry != SELF
        )

    def refusal(self, address: str) -> str | None:
        """Why a Connection Request is not sent to ``address`` (an IP address), or None."""
        network = denied_by(address, self.networks)
        if network is not None:
            return f"{address} is in {network} (cwmp.connection_request_deny)"
        if self.own:
            for ip in _addresses(ipaddress.ip_address(address.split("%", 1)[0])):
                if is_own_address(ip):
                    return f"{address} is an address of acsd's host ({_SELF_ENTRY})"
        return None


class DeniedAddress(OSError):
    """Every address of a Connection Request's host is in a denied network."""

    def __init__(self, message: str) -> None:
        super().__init__(errno.EACCES, message)  # strerror: what aiohttp's error shows


class GuardedResolver(AbstractResolver):
    """The default resolver, with the denied addresses left out."""

    def __init__(self, deny: DenyList) -> None:
        self._deny = deny
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        refusals = [self._deny.refusal(r["host"]) for r in found]
        kept = [r for r, refusal in zip(found, refusals, strict=True) if refusal is None]
        if not kept:
            raise DeniedAddress(f"{host}: {refusals[0] if refusals else 'no address'}")
        return kept

    async def close(self) -> None:
        await self._inner.close()
