"""Which IPv4 addresses a host can have: the one rule for a line's addresses (API), the DNS
servers of a static line (configuration) and those a router reports that a line keeps; and
which addresses count as one client (failed logins, STUN answers, log throttles)."""

from __future__ import annotations

import ipaddress

#: the entry of ``cwmp.connection_request_deny`` that stands for every address of acsd's
#: own host (here, not in acsd.cwmp.crguard: reading the configuration loads no aiohttp)
SELF = "self"


def is_host_address(address: ipaddress.IPv4Address) -> bool:
    """Not 0.0.0.0/8 ("this network"), loopback, link-local, multicast or reserved (240/4,
    the limited broadcast included)."""
    return not (
        address.packed[0] == 0
        or address.is_loopback
        or address.is_multicast
        or address.is_link_local
        or address.is_reserved
    )


def source_key(host: str) -> str | bytes:
    """The address whose requests are counted together: an IPv4 one itself (also seen
    through a dual-stack socket), an IPv6 one by its /64 (one host holds a whole /64)."""
    if ":" not in host:
        return host
    ip = ipaddress.IPv6Address(host.split("%", 1)[0])
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return ip.packed[:8]


def counted_as(address: str) -> str | bytes:
    """:func:`source_key`, or the text itself where it is no address (a Unix socket's)."""
    try:
        return source_key(address)
    except ValueError:
        return address
