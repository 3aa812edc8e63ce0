"""Whether a line's addresses clash with other confirmed lines (seed 002: 409): checked in
the confirm's own transaction, so two confirms cannot both take the same addresses.

The exact WAN address is unique by index among routers; here the rest: a line's address
inside another line's additional range, and ranges that hold another line's address or
overlap another range. Lines of the same router never clash: a newer line (an upgrade)
starts after them, takes over the router and may keep the customer's addresses.
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


def address_clash(
    ip: str,
    net: Mapping[str, Any],
    device: str | None,
    others: Iterable[Sequence[Any]],
) -> tuple[str, str] | None:
    """(field, message) of the first clash of this line with ``others`` (rows of id,
    ip_address, device, lanNet, lanSubnet), or None."""
    address = ipaddress.IPv4Address(ip)
    lan = _range(net.get("lanNet"), net.get("lanSubnet"))
    for other_id, other_ip, other_device, other_net, other_mask in others:
        if device is not None and other_device == device:
            continue
        other_lan = _range(other_net, other_mask)
        if other_lan is not None and address in other_lan:
            return "net.ipAddress", (
                f"{address} is in {other_lan}, the additional range of internet account {other_id}"
            )
        if lan is None:
            continue
        try:
            held = ipaddress.IPv4Address(other_ip) in lan
        except ValueError:
            held = False
        if held:
            return "net.lanNet", (
                f"{lan} holds {other_ip}, the address of internet account {other_id}"
            )
        if other_lan is not None and lan.overlaps(other_lan):
            return "net.lanNet", (
                f"{lan} overlaps {other_lan}, the additional range of internet account {other_id}"
            )
    return None
