"""The operator API listener. This issue serves health checks; the REST resources of the
seeds are wired here as they are built (one module per resource)."""

from __future__ import annotations

from aiohttp import web

from acsd.store.base import Store

STORE_KEY = web.AppKey("store", Store)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    try:
        ready = await store.ping()
    except Exception:
        ready = False
    return web.json_response({"ready": ready}, status=200 if ready else 503)


def build_api_app(store: Store) -> web.Application:
    app = web.Application(client_max_size=1024 * 1024)
    app[STORE_KEY] = store
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app
