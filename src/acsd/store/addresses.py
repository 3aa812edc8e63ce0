"""Whether a line's addresses clash with other confirmed lines (seed 002: 409): checked in
the confirm's own transaction, so two confirms cannot both take the same addresses.

The exact WAN address is unique by index among routers; here the rest: a line's address
inside another line's additional range, and ranges that hold another line's address or
overlap another range. A line's gateway is the provider's address, which no line may
take as its own (nor hold in its range), and its gateway is none of another line's
addresses (a router given another customer's router as its way out loses it); lines may
share a gateway. Lines of the same router never clash: a newer line (an upgrade) starts
after them, takes over the router and may keep the customer's addresses.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def _range(net: Any, mask: Any) -> ipaddress.IPv4Network | None:
    try:
        return ipaddress.IPv4Network(f"{net}/{mask}", strict=False) if net and mask else None
    except ValueError:
        return None


def _address(text: Any) -> ipaddress.IPv4Address | None:
    try:
        return ipaddress.IPv4Address(str(text)) if text else None
    except ValueError:
        return None


def address_clash(
    ip: str,
    net: Mapping[str, Any],
    device: str | None,
    others: Iterable[Sequence[Any]],
) -> tuple[str, str] | None:
    """(field, message) of the first clash of this line with ``others`` (rows of id,
    ip_address, device, lanNet, lanSubnet and, where given, gateway), or None."""
    address = ipaddress.IPv4Address(ip)
    gateway = _address(net.get("gateway"))
    lan = _range(net.get("lanNet"), net.get("lanSubnet"))
    for row in others:
        other_id, other_ip, other_device, other_net, other_mask = row[:5]
        if device is not None and other_device == device:
            continue
        other_lan = _range(other_net, other_mask)
        other_address = _address(other_ip)
        other_gateway = _address(row[5]) if len(row) > 5 else None
        if other_lan is not None and address in other_lan:
            return "net.ipAddress", (
                f"{address} is in {other_lan}, the additional range of internet account {other_id}"
            )
        if address == other_gateway:
            return "net.ipAddress", (
                f"{address} is the gateway of internet account {other_id}: the provider's address"
            )
        if gateway is not None and gateway == other_address:
            return "net.gateway", (
                f"{gateway} is the address of internet account {other_id}, not a gateway"
            )
        if gateway is not None and other_lan is not None and gateway in other_lan:
            return "net.gateway", (
                f"{gateway} is in {other_lan}, the additional range of internet account {other_id}"
            )
        if lan is None:
            continue
        if other_address is not None and other_address in lan:
            return "net.lanNet", (
                f"{lan} holds {other_ip}, the address of internet account {other_id}"
            )
        if other_gateway is not None and other_gateway in lan:
            return "net.lanNet", (
                f"{lan} holds {other_gateway}, the gateway of internet account {other_id}"
            )
        if other_lan is not None and lan.overlaps(other_lan):
            return "net.lanNet", (
                f"{lan} overlaps {other_lan}, the additional range of internet account {other_id}"
            )
    return None
