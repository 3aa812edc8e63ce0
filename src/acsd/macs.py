"""MAC addresses as acsd compares them: by their twelve hex digits, whatever the case and
separators a router, an operator or a search wrote them with."""

from __future__ import annotations

import re

#: what routers and operators put between the digits (``00:11``, ``00-11``, ``0011.2233``)
MAC_SEPARATORS = re.compile(r"[\s:.\-]")
_MAC_HEX = re.compile(r"^[0-9a-f]{12}\Z")
_MAC_QUERY = re.compile(r"^[0-9a-fA-F\s:.\-]+\Z")


def mac_key(mac: str | None) -> str | None:
    """``00:11:22:AA:BB:CC``, ``0011.22aa.bbcc``, ``00-11-22-aa-bb-cc`` -> ``001122aabbcc``;
    None when it is not a MAC address (then it can never match another)."""
    if not mac:
        return None
    digits = MAC_SEPARATORS.sub("", mac).lower()
    return digits if _MAC_HEX.match(digits) else None


def mac_digits(value: str) -> str:
    """A MAC's hex digits, in small letters, whatever its separators; unlike
    :func:`mac_key` any text has a form (rows keyed by a malformed MAC still match alike)."""
    return MAC_SEPARATORS.sub("", value).lower()


def mac_fragment(q: str) -> str | None:
    """The hex digits of a search that looks like (part of) a MAC address, e.g. ``aa:bb``,
    ``AA-BB-CC``, ``0011.22``, ``001122``; None otherwise."""
    if not _MAC_QUERY.match(q):
        return None
    digits = MAC_SEPARATORS.sub("", q).lower()
    return digits if 2 <= len(digits) <= 12 else None
