"""One line and one count per API request: who changed what, and what was refused.

The audit log keeps the writes that were made; this is the rest of the story an operator
asks for when a billing system's imports go missing: each write and each refusal is a
log line (``api.request``), and every request is counted by route and status, with its
time (``acsd_api_requests_total``, ``acsd_api_request_duration_seconds``). Reads that
succeed are only counted: a dashboard polling the list would fill the log.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from acsd.api.context import TOKEN_ID
from acsd.api.errors import request_id
from acsd.log import get_logger
from acsd.metrics import Metrics

log = get_logger("acsd.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_READS = frozenset({"GET", "HEAD", "OPTIONS"})


def route_of(request: web.Request) -> str:
    """The path pattern the request matched (no ids or keys: a bounded label)."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def access_middleware(metrics: Metrics | None) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def access(request: web.Request, handler: Handler) -> web.StreamResponse:
        start = time.monotonic()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:  # (what error_middleware passes on: redirects)
            status = exc.status
            raise
        finally:
            took = time.monotonic() - start
            route = route_of(request)
            if metrics is not None:
                metrics.api_requests.labels(request.method, route, str(status)).inc()
                metrics.api_duration.labels(request.method, route).observe(took)
            if status >= 400 or request.method not in _READS:
                # (the path names the record; the query is left out: it may hold a
                # search an operator typed, which is no business of the log)
                log.info(
                    "api.request", method=request.method, path=request.path, route=route,
                    status=status, ms=round(took * 1000, 1), token_id=request.get(TOKEN_ID),
                    request_id=request_id(request),
                )  # fmt: skip

    return access
