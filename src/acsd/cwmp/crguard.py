"""Which addresses acsd sends Connection Requests to.

A ConnectionRequestURL is whatever a CPE reported: a misconfigured or hostile one can
name the ACS host itself or its cloud's metadata service (169.254.169.254), and acsd would
send it HTTP requests with Digest credentials. Requests to the networks listed in
``cwmp.connection_request_deny`` are not sent, whether the URL names the address or a host
name that resolves to it (checked after resolving, so a name cannot point elsewhere later).
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Sequence

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

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


def _addresses(ip: Address) -> list[Address]:
    """``ip`` and the IPv4 address it may carry to: IPv4-mapped (::ffff:a.b.c.d), 6to4
    (2002:AABB:CCDD::), NAT64 (well-known or local-use prefix, /96), SIIT."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return [ip]
    if ip.ipv4_mapped is not None:
        return [ip.ipv4_mapped]
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


class DeniedAddress(OSError):
    """Every address of a Connection Request's host is in a denied network."""

    def __init__(self, message: str) -> None:
        super().__init__(errno.EACCES, message)  # strerror: what aiohttp's error shows


class GuardedResolver(AbstractResolver):
    """The default resolver, with the addresses in denied networks left out."""

    def __init__(self, deny: Sequence[Network]) -> None:
        self._deny = tuple(deny)
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        kept = [r for r in found if denied_by(r["host"], self._deny) is None]
        if not kept:
            first = found[0]["host"] if found else "nothing"
            raise DeniedAddress(f"{host} resolves to {first}, in cwmp.connection_request_deny")
        return kept

    async def close(self) -> None:
        await self._inner.close()
