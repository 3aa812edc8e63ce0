"""The operator API listener: wires the resources (one module each), the error middleware,
health checks and the OpenAPI description."""

from __future__ import annotations

from aiohttp import web

from acsd.api import audit, customers, devices, models
from acsd.api.context import CONTEXT, ApiContext
from acsd.api.errors import error_middleware
from acsd.api.openapi import add_openapi_routes

MAX_BODY = 1024 * 1024


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    store = request.app[CONTEXT].store
    try:
        ready = await store.ping()
    except Exception:
        ready = False
    return web.json_response({"ready": ready}, status=200 if ready else 503)


def build_api_app(ctx: ApiContext, *, version: str = "0") -> web.Application:
    app = web.Application(client_max_size=MAX_BODY, middlewares=[error_middleware])
    app[CONTEXT] = ctx
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    for resource in (devices, customers, models, audit):
        resource.setup(app)
    add_openapi_routes(app, title="acsd operator API", version=version)
    return app
