"""The operator API listener: wires the resources (one module each), the error middleware,
health checks and the OpenAPI description."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Literal

from aiohttp import web
from pydantic import BaseModel, Field

from acsd.api import apn, audit, customers, devices, internet, models
from acsd.api.access import access_middleware
from acsd.api.answer import json_response
from acsd.api.body import BODY_TIMEOUT
from acsd.api.context import CONTEXT, ApiContext
from acsd.api.errors import CAUSES_TEXT, STORE_REFUSED, TOKEN_REFUSED, error_middleware
from acsd.api.openapi import add_openapi_routes, describe
from acsd.api.paths import forgive_paths
from acsd.store.outages import OTHER, outage

if TYPE_CHECKING:
    from acsd.metrics import Metrics

MAX_BODY = 1024 * 1024


class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    ready: bool
    cause: str | None = Field(
        default=None,
        description="Not ready only: why, a short key a script branches on (`draining`, "
        "`store_closed`, `writer_stopped`, `schema_version`, or the database's trouble as "
        f"in a 503's `cause`: {CAUSES_TEXT})",
    )
    description: str | None = Field(
        default=None, description="Not ready only: why, and what to check, for a human"
    )


@describe(summary="Liveness: the process answers", roles=None, response=Health)
async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


#: not ready from SIGTERM/SIGINT on: new Informs get 503, a balancer must send routers
#: elsewhere
DRAINING = (
    "draining",
    "acsd is shutting down: open sessions finish, new ones are turned away; send routers "
    "to another instance",
)


def _not_ready(cause: str, description: str) -> web.Response:
    # (a balancer reads the status only; the body is for whoever asks why)
    body = {"ready": False, "cause": cause, "description": description}
    return json_response(body, status=503)


@describe(
    summary="Readiness: the daemon takes new sessions and its database takes writes",
    roles=None, response=Ready,
    also=[(503, 'Not ready ({"ready": false, "cause": KEY, "description": TEXT}): the '
          "daemon drains, or the database cannot take writes (`cause` says which)")],
)  # fmt: skip
async def readyz(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    if ctx.stopping:
        return _not_ready(*DRAINING)
    try:
        why = await ctx.store.readiness()
    except Exception as exc:  # (a bug of the probe's; it says not ready all the same)
        why = outage(exc) or OTHER
    if why is not None:
        return _not_ready(why.cause, why.text)
    return json_response({"ready": True})


#: what a scrape answers: Prometheus text by default, OpenMetrics when Accept asks for it
_METRICS_TYPES = ("text/plain", "application/openmetrics-text")


def _metrics_page(metrics: Metrics) -> Callable[[web.Request], Awaitable[web.Response]]:
    @describe(
        summary="Prometheus metrics of the daemon (sessions, Informs, RPCs, faults, store)",
        description="The Prometheus text exposition format (text/plain; version=0.0.4), or "
        "OpenMetrics when the Accept header asks for application/openmetrics-text.",
        roles=None, response=str, media_types=_METRICS_TYPES,
    )  # fmt: skip
    async def metrics_page(request: web.Request) -> web.Response:
        return await metrics.handler(request)

    return metrics_page


def build_api_app(
    ctx: ApiContext, *, version: str = "0", metrics: Metrics | None = None
) -> web.Application:
    # (the access line is outermost: it sees the status every error was answered with)
    app = web.Application(
        client_max_size=MAX_BODY, middlewares=[access_middleware(metrics), error_middleware]
    )
    app[CONTEXT] = ctx
    app[BODY_TIMEOUT] = ctx.body_timeout
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    if metrics is not None:
        # Unauthenticated like the health checks: the API listener belongs on loopback
        # or behind a proxy that decides who may scrape.
        app.router.add_get("/metrics", _metrics_page(metrics))
        app[STORE_REFUSED] = functools.partial(metrics.store_refused, "api")
        app[TOKEN_REFUSED] = metrics.api_auth_failures.inc
    for resource in (devices, customers, models, internet, audit, apn):
        resource.setup(app)
    add_openapi_routes(app, title="acsd operator API", version=version)
    # (last: a trailing slash or another case of a route's words names the route)
    forgive_paths(app)
    return app
