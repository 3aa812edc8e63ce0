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
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from acsd.api.body import BODY_TIMEOUT
from acsd.api.context import TOKEN_ID
from acsd.api.errors import request_id
from acsd.listen_socket import client_address
from acsd.log import Throttle, get_logger, peer_text
from acsd.metrics import Metrics

log = get_logger("acsd.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_READS = frozenset({"GET", "HEAD", "OPTIONS"})
#: one api.send_timeout line per client address per this many seconds
_SEND_TIMEOUT_TOLD = Throttle(10.0)


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _logged(method: str, route: str, status: int) -> bool:
    """Writes and refusals, but not what anyone can send again and again without a token
    or a route: a 401 (api.auth_failed says so, once per address every 10 s) or a path
    nothing serves (a scanner's); those are counted only."""
    if status == 401 or route == "unmatched":
        return False
    return status >= 400 or method not in _READS


class _SendDeadline:
    """Closes the connection of a request whose answer stops leaving it: checked every
    ``seconds``, the bytes still buffered must have gone down since the last check."""

    __slots__ = ("_done", "_left", "_request", "_seconds", "_transport")

    def __init__(self, request: web.Request, seconds: float) -> None:
        self._request, self._seconds = request, seconds
        self._transport = request.transport
        self._left: int | None = None
        self._done = False
        if self._transport is not None:
            asyncio.get_running_loop().call_later(seconds, self._check)

    def done(self) -> None:
        """The handler returned: once nothing is left to send, the watch ends."""
        self._done = True

    def _check(self) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        left = transport.get_write_buffer_size()
        if left == 0 and self._done:
            return
        if left and self._left is not None and left >= self._left:
            remote = client_address(self._request.remote or "")
            held = _SEND_TIMEOUT_TOLD.due(remote, time.monotonic())
            if held is not None:
                log.info(
                    "api.send_timeout", remote=remote, path=self._request.path, left=left,
                    seconds=self._seconds, since_last=held,
                )  # fmt: skip
            transport.abort()
            return
        self._left = left
        asyncio.get_running_loop().call_later(self._seconds, self._check)


def route_of(request: web.Request) -> str:
    """The path pattern the request matched (no ids or keys: a bounded label)."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def access_middleware(metrics: Metrics | None) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def access(request: web.Request, handler: Handler) -> web.StreamResponse:
        start = time.monotonic()
        status = 500
        deadline = _SendDeadline(request, request.config_dict.get(BODY_TIMEOUT, 30.0))
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
            deadline.done()
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
