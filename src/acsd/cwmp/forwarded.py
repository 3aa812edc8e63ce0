"""The router's address as a trusted reverse proxy in front of acsd reports it."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable


def _last_entry(values: Iterable[str]) -> str:
    """The last non-empty entry of a comma-list header over all its lines: the one the
    proxy in front of acsd added (nginx ``$proxy_add_x_forwarded_for``, HAProxy ``option
    forwardfor``). Every entry before it is whatever the client sent."""
    last = ""
    for value in values:
        for entry in value.split(","):
            if entry := entry.strip():
                last = entry
    return last


def forwarded_for(values: Iterable[str]) -> str | None:
    """The address in the last entry of the ``X-Forwarded-For`` header(s), or None.

    Taking an earlier entry would let a router claim another's address (its parked
    session, its failed-login count). An entry that is no address ("unknown", an
    obfuscated id) gives None.
    """
    last = _last_entry(values)
    if last.startswith("["):  # "[2001:db8::1]:4711" or "[2001:db8::1]"
        last, closed, _port = last[1:].partition("]")
        if not closed:
            return None
    elif last.count(":") == 1:  # "198.51.100.7:4711" (Azure, some load balancers)
        last = last.partition(":")[0]
    try:
        address = ipaddress.ip_address(last)
    except ValueError:  # (also the empty text of no entry at all)
        return None
    # "::ffff:198.51.100.7" (a dual-stack proxy) is the IPv4 address the socket would give
    mapped = getattr(address, "ipv4_mapped", None)
    return str(mapped or address)


def forwarded_https(values: Iterable[str]) -> bool:
    """Whether the last entry of the ``X-Forwarded-Proto`` header(s) says TLS ended at the
    proxy (a router's own "https" before the proxy's "http" does not count)."""
    return _last_entry(values).lower() == "https"
