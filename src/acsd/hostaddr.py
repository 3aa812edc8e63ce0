"""Which IPv4 addresses a host can have: the one rule for a line's addresses (API), the DNS
servers of a static line (configuration) and those a router reports that a line keeps."""

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
