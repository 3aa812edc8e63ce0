"""sd_notify(3) without libsystemd: one datagram to ``$NOTIFY_SOCKET``.

Under ``Type=notify`` systemd waits for ``READY=1`` before it calls the service started,
so ``systemctl start acsd`` returns once both listeners are bound (and fails if they
cannot be). Outside systemd (no ``NOTIFY_SOCKET``) every call is a no-op.
"""

from __future__ import annotations

import os
import socket

from acsd.log import get_logger

log = get_logger("acsd.sdnotify")


def notify(*states: str) -> bool:
    """Send ``states`` (``READY=1``, ``STATUS=...``, ``STOPPING=1``) to the service
    manager. True when sent; False when not under systemd or the send failed (logged)."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # abstract namespace
    elif not address.startswith("/"):
        log.warning("sdnotify_unsupported_socket", socket=address)
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall("\n".join(states).encode())
    except OSError as exc:
        log.warning("sdnotify_failed", error=str(exc))
        return False
    return True
