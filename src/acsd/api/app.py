"""The operator API listener: wires the resources (one module each), the error middleware,
health checks and the OpenAPI description."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Literal

from aiohttp import web
from pydantic import BaseModel

from acsd.api import apn, audit, customers, devices, internet, models
from acsd.api.answer import json_response
from acsd.api.body import BODY_TIMEOUT
from acsd.api.context import CONTEXT, ApiContext
from acsd.api.errors import error_middleware
from acsd.api.openapi import add_openapi_routes, describe

if TYPE_CHECKING:
    from acsd.metrics import Metrics

MAX_BODY = 1024 * 1024


class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    ready: bool


@describe(summary="Liveness: the process answers", roles=None, response=Health)
async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


@describe(
    summary="Readiness: the daemon takes new sessions and its database takes writes",
    roles=None, response=Ready,
    also=[(503, 'Not ready ({"ready": false}): the daemon drains, or the database cannot '
          "take writes")],
)  # fmt: skip
async def readyz(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    if ctx.stopping:  # new Informs get 503 now: a balancer must send routers elsewhere
        return json_response({"ready": False}, status=503)
    store = ctx.store
    try:
        ready = await store.ping()
    except Exception:
        ready = False
    return json_response({"ready": ready}, status=200 if ready else 503)


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
    app = web.Application(client_max_size=MAX_BODY, middlewares=[error_middleware])
    app[CONTEXT] = ctx
    app[BODY_TIMEOUT] = ctx.body_timeout
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    if metrics is not None:
        # Unauthenticated like the health checks: the API listener belongs on loopback
        # or behind a proxy that decides who may scrape.
        app.router.add_get("/metrics", _metrics_page(metrics))
    for resource in (devices, customers, models, internet, audit, apn):
        resource.setup(app)
    add_openapi_routes(app, title="acsd operator API", version=version)
    return app
