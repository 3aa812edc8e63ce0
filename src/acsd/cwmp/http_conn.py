"""The CWMP listener's connections: aiohttp's low-level server, with two things of old
embedded HTTP clients handled as they need.

- A request with bare-LF line endings gets a 400 that says so (see acsd.cwmp.line_endings).
- A client that half-closes its connection once its request is sent (``shutdown(SHUT_WR)``,
  as minimal HTTP/1.0 clients do to mark the request's end) gets its answer. aiohttp's
  handler returns nothing from ``eof_received``, so asyncio closed the connection at the
  client's FIN: the request was handled (an Inform started a session) and the answer
  dropped. The connection now closes once the request being handled is answered.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage
from aiohttp.web_protocol import RequestHandler

from acsd.cwmp.line_endings import BARE_LF, bare_lf


class _Handler(RequestHandler):
    __slots__ = ()

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status == 400 and bare_lf(exc):
            # (the log line, client_request_unreadable, takes its reason from exc)
            exc = BadHttpMessage(BARE_LF)
            message = BARE_LF
        return super().handle_error(request, status, exc, message)

    def eof_received(self) -> bool:
        waiter = self._waiter
        if not self._messages and (
            not self._request_count or (waiter is not None and not waiter.done())
        ):
            # No request read (none, or its headers in part), or every one answered and
            # the next awaited: nothing to answer, closed at once as ever. (A session's
            # next worker waits for this close to park it: workers = N.) Otherwise a
            # request is queued or being handled (waiter None: the handler took it up;
            # it then closes once it has answered, seeing close()).
            return False
        # A request read and not answered yet: answer it, then close. (One whose body
        # the client had not sent all of meets cwmp.body_timeout, 408, as when a client
        # stalls. Over TLS asyncio closes at the peer's close_notify whatever this says.)
        self.close()
        return True


class Server(web.Server):
    """aiohttp's low-level server, with the connection handler above."""

    def __call__(self) -> RequestHandler:
        handler = super().__call__()
        if type(handler) is RequestHandler:
            # (its class only: aiohttp builds the handler, with whatever it takes)
            handler.__class__ = _Handler
        return handler
