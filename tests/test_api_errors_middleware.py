"""The error middleware of the operator API: every error in one JSON form, a request id on
every response, and an unexpected exception answered with 500 and the id while its traceback
goes to the log (never to the client)."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
import structlog
from aiohttp import web
from structlog.testing import capture_logs

from acsd.api.errors import (
    ApiError,
    access_denied,
    conflict,
    error_middleware,
    error_response,
    not_found,
    request_id,
    unauthorized,
    unprocessable,
)

SECRET = "JohnConner-secret-in-the-exception"


async def ok(request: web.Request) -> web.Response:
    return web.json_response({"requestId": request_id(request)})


async def boom(request: web.Request) -> web.Response:
    await request.read()
    raise RuntimeError(f"database exploded: password={SECRET}")


async def http_500(request: web.Request) -> web.Response:
    raise web.HTTPInternalServerError(text=f"internal detail {SECRET}")


async def customer(request: web.Request) -> web.Response:
    raise not_found("customer", "Customer not found")


async def model(request: web.Request) -> web.Response:
    raise not_found("model", "Model not found")


async def denied(request: web.Request) -> web.Response:
    raise access_denied()


async def mac_in_use(request: web.Request) -> web.Response:
    raise unprocessable("macAddress", "MAC address is already in use.")


async def profile(request: web.Request) -> web.Response:
    raise conflict("profile", "The profile does not fit the device")


async def needs_token(request: web.Request) -> web.Response:
    raise unauthorized("Missing or invalid bearer token")


async def custom(request: web.Request) -> web.Response:
    raise ApiError(409, "state", "Device is DELETING", headers={"Retry-After": "5"})


async def aiohttp_bad_request(request: web.Request) -> web.Response:
    raise web.HTTPBadRequest(text="the handler's own words")


async def aiohttp_conflict(request: web.Request) -> web.Response:
    raise web.HTTPConflict()


async def redirect(request: web.Request) -> web.Response:
    raise web.HTTPFound("/ok")


async def streamed(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse()
    resp.headers["X-Request-Id"] = request_id(request)
    await resp.prepare(request)
    await resp.write(b"chunk")
    await resp.write_eof()
    return resp


@pytest.fixture
async def api() -> AsyncIterator[tuple[aiohttp.ClientSession, str]]:
    app = web.Application(middlewares=[error_middleware], client_max_size=4096)
    app.router.add_get("/ok", ok)
    app.router.add_post("/boom", boom)
    app.router.add_get("/boom", boom)
    app.router.add_get("/http-500", http_500)
    app.router.add_get("/customer/{id}", customer)
    app.router.add_get("/model/{id}", model)
    app.router.add_get("/denied", denied)
    app.router.add_get("/mac", mac_in_use)
    app.router.add_get("/profile", profile)
    app.router.add_get("/token", needs_token)
    app.router.add_get("/custom", custom)
    app.router.add_get("/aiohttp-400", aiohttp_bad_request)
    app.router.add_get("/aiohttp-409", aiohttp_conflict)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/stream", streamed)
    app.router.add_post("/upload", boom)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        async with aiohttp.ClientSession() as session:
            yield session, f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def call(api, method: str, path: str, **kwargs) -> tuple[int, bytes, dict]:
    session, base = api
    kwargs.setdefault("allow_redirects", False)
    async with session.request(method, base + path, **kwargs) as resp:
        return resp.status, await resp.read(), resp.headers


def error_of(status: int, raw: bytes, headers, code: int, message: str) -> str:
    assert status == code, raw
    assert headers["Content-Type"].startswith("application/json")
    body = json.loads(raw)
    assert body == {"code": code, "message": message, "description": body["description"]}
    assert isinstance(body["description"], str) and body["description"]
    assert headers["X-Request-Id"]
    return body["description"]


@pytest.mark.parametrize(
    ("path", "code", "message", "description"),
    [
        ("/customer/1", 404, "customer", "Customer not found"),
        ("/model/1", 404, "model", "Model not found"),
        ("/denied", 403, "access_denied", "Insufficient access level"),
        ("/mac", 422, "macAddress", "MAC address is already in use."),
        ("/profile", 409, "profile", "The profile does not fit the device"),
        ("/token", 401, "unauthorized", "Missing or invalid bearer token"),
        ("/custom", 409, "state", "Device is DELETING"),
        ("/aiohttp-400", 400, "bad_request", "the handler's own words"),
        ("/aiohttp-409", 409, "conflict", "Conflict"),
    ],
)
async def test_handler_errors_in_the_json_form(api, path, code, message, description):
    status, raw, headers = await call(api, "GET", path)
    assert error_of(status, raw, headers, code, message) == description


async def test_api_error_headers_reach_the_client(api):
    _, _, headers = await call(api, "GET", "/custom")
    assert headers["Retry-After"] == "5"
    _, _, headers = await call(api, "GET", "/token")
    assert headers["WWW-Authenticate"] == 'Bearer realm="acsd"'


async def test_an_unknown_route_is_404_not_found(api):
    status, raw, headers = await call(api, "GET", "/no/such/thing")
    assert "/no/such/thing" in error_of(status, raw, headers, 404, "not_found")


async def test_a_wrong_method_is_405_with_allow(api):
    status, raw, headers = await call(api, "DELETE", "/ok")
    text = error_of(status, raw, headers, 405, "method_not_allowed")
    assert "DELETE" in text and "GET" in text
    assert set(headers["Allow"].split(",")) == {"GET", "HEAD"}


async def test_a_body_beyond_client_max_size_read_by_a_handler_is_413(api):
    status, raw, headers = await call(api, "POST", "/upload", data=b"x" * 10_000)
    assert "4096" in error_of(status, raw, headers, 413, "too_large")


async def test_the_request_id_is_on_every_response(api):
    status, raw, headers = await call(api, "GET", "/ok")
    assert status == 200
    assert json.loads(raw)["requestId"] == headers["X-Request-Id"]
    assert len(headers["X-Request-Id"]) == 32

    status, _, headers = await call(api, "GET", "/redirect")
    assert status == 302
    assert headers["Location"] == "/ok"
    assert headers["X-Request-Id"]

    status, raw, headers = await call(api, "GET", "/stream")
    assert (status, raw) == (200, b"chunk")
    assert headers["X-Request-Id"]


async def test_two_requests_get_two_ids(api):
    ids = {(await call(api, "GET", "/ok"))[2]["X-Request-Id"] for _ in range(3)}
    assert len(ids) == 3


async def test_the_clients_request_id_is_kept(api):
    status, raw, headers = await call(api, "GET", "/ok", headers={"X-Request-Id": "abc-123"})
    assert status == 200
    assert headers["X-Request-Id"] == "abc-123"
    assert json.loads(raw)["requestId"] == "abc-123"
    status, raw, headers = await call(api, "GET", "/denied", headers={"X-Request-Id": "lb.77"})
    assert headers["X-Request-Id"] == "lb.77"


@pytest.mark.parametrize("given", ["has space", "x" * 200, 'quote"d', "semi;colon", ""])
async def test_a_hostile_request_id_is_replaced(api, given):
    _, _, headers = await call(api, "GET", "/ok", headers={"X-Request-Id": given})
    assert headers["X-Request-Id"] != given
    assert len(headers["X-Request-Id"]) == 32


async def test_an_unexpected_exception_is_500_with_the_id_and_no_traceback(api):
    with capture_logs() as logs:
        status, raw, headers = await call(
            api, "POST", "/boom", json={"password": "hunter2"}, params={"token": "tok-9"}
        )
    rid = headers["X-Request-Id"]
    text = error_of(status, raw, headers, 500, "internal_error")
    assert rid in text
    for leak in ("Traceback", "RuntimeError", "exploded", SECRET, "hunter2", 'File "'):
        assert leak not in raw.decode()

    entries = [e for e in logs if e["event"] == "api_internal_error"]
    assert len(entries) == 1
    entry = entries[0]
    assert entry["request_id"] == rid
    assert entry["method"] == "POST"
    assert entry["path"] == "/boom"
    assert entry["log_level"] == "error"
    assert entry.get("exc_info") is True
    # Neither the body nor the query string is logged.
    assert "hunter2" not in repr(entry)
    assert "tok-9" not in repr(entry)


async def test_the_log_line_of_a_500_carries_the_traceback_and_the_id(api):
    stream = io.StringIO()
    old = structlog.get_config()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    try:
        status, raw, headers = await call(api, "GET", "/boom", headers={"X-Request-Id": "r-42"})
    finally:
        structlog.configure(**old)
    assert status == 500
    assert headers["X-Request-Id"] == "r-42"
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    entry = next(e for e in lines if e["event"] == "api_internal_error")
    assert entry["request_id"] == "r-42"
    assert "Traceback" in entry["exception"]
    assert "RuntimeError: database exploded" in entry["exception"]
    assert "r-42" in json.loads(raw)["description"]


async def test_an_aiohttp_500_is_an_internal_error_too(api):
    with capture_logs() as logs:
        status, raw, headers = await call(api, "GET", "/http-500")
    text = error_of(status, raw, headers, 500, "internal_error")
    assert SECRET not in raw.decode()
    assert headers["X-Request-Id"] in text
    assert [e["request_id"] for e in logs if e["event"] == "api_internal_error"] == [
        headers["X-Request-Id"]
    ]


def test_error_response_is_the_one_json_form():
    resp = error_response(404, "customer", "Customer not found", request_id="id-1")
    assert resp.status == 404
    assert resp.content_type == "application/json"
    assert json.loads(resp.text) == {
        "code": 404,
        "message": "customer",
        "description": "Customer not found",
    }
    assert resp.headers["X-Request-Id"] == "id-1"
    assert "X-Request-Id" not in error_response(400, "a", "b").headers


def test_api_error_carries_its_parts():
    err = not_found("customer", "Customer not found")
    assert (err.status, err.message, err.description) == (404, "customer", "Customer not found")
    assert err.to_json() == {
        "code": 404,
        "message": "customer",
        "description": "Customer not found",
    }
    assert unauthorized("x", error="invalid_token").headers == {
        "WWW-Authenticate": 'Bearer realm="acsd", error="invalid_token"'
    }
