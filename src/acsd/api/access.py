"""One line and one count per API request, and a deadline for its answer to leave.

The audit log keeps the writes that were made; this is the rest of the story an operator
asks for when a billing system's imports go missing: each write and each refusal is a
log line (``api.request``), and every request is counted by route and status, with its
time (``acsd_api_requests_total``, ``acsd_api_request_duration_seconds``). Reads that
succeed are only counted: a dashboard polling the list would fill the log.

An answer the client does not read stays in the connection's buffer: aiohttp has no send
timeout, and the keep-alive timer does not run while an answer is being written, so 2,000
connections asking for ``/openapi.json`` (no token needed) and never reading held ~500 MB
for as long as they liked. An answer that makes no progress for ``[api] body_timeout``
(the time a client has to send a body, given to take an answer too) closes its connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import struct
import termios
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from acsd.api.body import BODY_TIMEOUT
from acsd.api.context import TOKEN_ID
from acsd.api.errors import request_id
from acsd.listen_socket import client_address
from acsd.log import get_logger, peer_text
from acsd.metrics import Metrics
from acsd.throttle import Throttle

log = get_logger("acsd.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_READS = frozenset({"GET", "HEAD", "OPTIONS"})
#: one api.send_timeout line per client address per this many seconds
_SEND_TIMEOUT_TOLD = Throttle(10.0)


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _logged(method: str, route: str, status: int) -> bool:
    """Writes and refusals, but not what anyone can send again and again without a token
    or a route: a 401 (api.auth_failed says so, once per address every 10 s), a path
    nothing serves or a method it does not (a scanner's); those are counted only."""
    if status in (401, 405) or route == "unmatched":
        return False
    return status >= 400 or method not in _READS


def _unsent(transport: asyncio.Transport) -> int:
    """Bytes of answers not yet taken by the client: in the transport's buffer, and in
    the kernel's send queue (which drains a slow reader's answer long before the
    transport's buffer shrinks: 4 MB of it at 16 KB/s is minutes)."""
    left = transport.get_write_buffer_size()
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError, ValueError):
            left += struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0]
    return left


class _SendWatch:
    """One per connection with an answer in flight: every ``seconds`` the bytes still
    unsent must have gone down since the last look, or the connection is closed. It ends
    once its requests are answered and everything has left (on a keep-alive connection,
    the next request starts another), so there are never more than connections."""

    __slots__ = ("_left", "_remote", "_seconds", "_transport", "busy", "path")

    def __init__(self, transport: asyncio.Transport, seconds: float, remote: str) -> None:
        self._transport, self._seconds, self._remote = transport, seconds, remote
        self._left: int | None = None
        self.busy = 0
        self.path = ""
        asyncio.get_running_loop().call_later(seconds, self._check)

    def _check(self) -> None:
        transport = self._transport
        if transport.is_closing():
            _WATCHES.pop(id(transport), None)
            return
        left = _unsent(transport)
        if left == 0 and not self.busy:
            _WATCHES.pop(id(transport), None)
            return
        if left and self._left is not None and left >= self._left:
            _SEND_TIMEOUT_TOLD.tell(
                self._remote, log, "info", "api.send_timeout", remote=self._remote,
                path=self.path, left=left, seconds=self._seconds,
            )  # fmt: skip
            _WATCHES.pop(id(transport), None)
            transport.abort()
            return
        self._left = left
        asyncio.get_running_loop().call_later(self._seconds, self._check)


#: the watches of this process's connections, by id() of their transport
_WATCHES: dict[int, _SendWatch] = {}


def _watch(request: web.Request, seconds: float) -> _SendWatch | None:
    transport = request.transport
    if transport is None:
        return None
    watch = _WATCHES.get(id(transport))
    if watch is None or watch._transport is not transport:
        watch = _WATCHES[id(transport)] = _SendWatch(
            transport, seconds, client_address(request.remote or "")
        )
    else:
        # (a new answer adds bytes: measured against the last one's, a keep-alive client
        # that read all of it would look stalled)
        watch._left = None
    watch.busy += 1
    watch.path = peer_text(request.path, 120)
    return watch


def route_of(request: web.Request) -> str:
    """The path pattern the request matched (no ids or keys: a bounded label)."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def access_middleware(metrics: Metrics | None) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def access(request: web.Request, handler: Handler) -> web.StreamResponse:
        start = time.monotonic()
        status = 500
        watch = _watch(request, request.config_dict.get(BODY_TIMEOUT, 30.0))
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:  # (what error_middleware passes on: redirects)
            status = exc.status
            raise
        except asyncio.CancelledError:
            status = 499  # (the client went before its answer: nginx's word for it)
            raise
        finally:
            if watch is not None:
                watch.busy -= 1
            took = time.monotonic() - start
            route = route_of(request)
            # (a bounded label: the pure-Python HTTP parser takes any token for a method)
            method = request.method if request.method in _METHODS else "other"
            if metrics is not None:
                metrics.api_requests.labels(method, route, str(status)).inc()
                metrics.api_duration.labels(method, route).observe(took)
            if _logged(request.method, route, status):
                # (the path names the record, cut as a peer's text is; the query is left
                # out: it may hold a search an operator typed, no business of the log)
                log.info(
                    "api.request", method=method, path=peer_text(request.path, 120),
                    route=route, status=status, ms=round(took * 1000, 1),
                    token_id=request.get(TOKEN_ID), request_id=request_id(request),
                )  # fmt: skip

    return access
