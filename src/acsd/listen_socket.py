"""The TCP sockets the listeners take connections on, and the client address a request
came from.

``listen = "[::]:7547"`` means every address, IPv4 as well, as an operator reads it: the
socket is dual-stack (IPV6_V6ONLY off). asyncio and aiohttp set IPV6_V6ONLY on every IPv6
listener they make, which turned away every IPv4 router without a word, so acsd binds the
sockets itself. An IPv4 client of a dual-stack socket shows as ``::ffff:a.b.c.d``:
:func:`client_address` gives it back as ``a.b.c.d``, the address an operator knows it by.
"""

from __future__ import annotations

import ipaddress
import socket

from aiohttp import web_response

#: the Server header both listeners answer with: no versions (aiohttp's own names Python's
#: and its own, which a scanner matches against advisories)
SERVER = "acsd"


def answer_as_acsd() -> None:
    """Every answer of both listeners says ``Server: acsd``: the handlers' and aiohttp's
    own (the 400 to a request it cannot parse, before any handler runs, named the versions
    still). aiohttp has no setting for it; its responses take this module global when they
    set none (tests/test_cwmp_protocol.py checks that it still does)."""
    web_response.SERVER_SOFTWARE = SERVER


def dual_stack(host: str) -> bool:
    """Whether a listener on ``host`` takes IPv4 and IPv6 clients alike (``::``)."""
    try:
        return ipaddress.ip_address(host) == ipaddress.IPv6Address("::")
    except ValueError:
        return False


def _addresses(host: str, port: int) -> list[tuple[int, tuple]]:
    """Each address ``host`` stands for (a name may be several: localhost is ::1 and
    127.0.0.1 on most systems), once."""
    info = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    found: list[tuple[int, tuple]] = []
    for family, _kind, _proto, _name, address in info:
        if (family, address) not in found:
            found.append((family, address))
    return found


def bound_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A socket bound to ``host:port`` (its first address; not listening yet). (Only that
    one is bound: binding every address and keeping one left the others open.)"""
    family, address = _addresses(host, port)[0]
    return _bind(family, address, host, reuse_port)


def bound_sockets(host: str, port: int, *, reuse_port: bool = False) -> list[socket.socket]:
    """Sockets bound to every address of ``host`` at ``port`` (not listening yet; port 0:
    the one the first gets, for all): SO_REUSEADDR as servers have it, SO_REUSEPORT for
    ``reuse_port`` (workers sharing the port), dual-stack for ``::``."""
    sockets: list[socket.socket] = []
    try:
        for family, address in _addresses(host, port):
            if sockets and port == 0:
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            sockets.append(_bind(family, address, host, reuse_port))
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _bind(family: int, address: tuple, host: str, reuse_port: bool) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if dual_stack(host) else 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def client_address(remote: str | None) -> str:
    """The client's address as an operator knows it: an IPv4 client of a dual-stack
    listener (``::ffff:192.0.2.7``) as ``192.0.2.7``; anything else as it is."""
    if not remote or not remote.startswith("::ffff:"):
        return remote or ""
    try:
        mapped = ipaddress.IPv6Address(remote).ipv4_mapped
    except ValueError:
        return remote
    return str(mapped) if mapped is not None else remote
