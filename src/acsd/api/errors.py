"""Errors of the operator API: one JSON form, one helper, one middleware.

Every error the API returns is an HTTP status plus
``{"code": <status>, "message": "<short key>", "description": "<text>"}`` (architecture §7).
``message`` is a short key a client can branch on (``access_denied``, ``customer``,
``not_found``, a field path such as ``wifi.enabled``); ``description`` is for humans. A 503
for the database's trouble adds ``cause``, the key of which trouble it is (``disk``...).

Handlers raise :class:`ApiError` (or use the helpers below); :func:`error_middleware` turns it,
aiohttp's own HTTP exceptions (unknown route, wrong method, body too large...) and any
unexpected exception into that form. Every response carries an ``X-Request-Id`` header; a 500
names the id in its description and the traceback goes to the log under the same id, never to
the client.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import structlog
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from acsd.api.answer import json_response
from acsd.log import get_logger, peer_text
from acsd.store import Outage, outage, store_unavailable
from acsd.store.base import reported
from acsd.store.outages import REFUSAL_CAUSES

#: the 503 causes as the documents list them (one list: a cause added is documented)
CAUSES_TEXT = ", ".join(f"`{cause}`" for cause in REFUSAL_CAUSES)

log = get_logger("acsd.api")

REQUEST_ID_HEADER = "X-Request-Id"
#: Where the middleware keeps the request id on the request (``request[REQUEST_ID_KEY]``);
#: :func:`request_id` is the way to read it.
REQUEST_ID_KEY: Any = (
    web.RequestKey("acsd_request_id", str) if hasattr(web, "RequestKey") else "acsd.request_id"
)

# A client-supplied id is kept only when it is short and harmless in a header and a log line.
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}\Z")


class Error(BaseModel):
    """The body of every error response (documented in the OpenAPI description)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "code": 404,
                    "message": "customer",
                    "description": "Customer not found",
                }
            ]
        },
    )

    code: int
    message: str
    description: str
    #: acsd's addition to the seeds' form, on a 503 only (message "unavailable")
    cause: str | None = Field(
        default=None,
        description="503 only: which of the database's troubles it is, a short key a "
        f"client branches on ({CAUSES_TEXT})",
    )


class ApiError(Exception):
    """An error the API reports to its client as-is.

    ``status`` is the HTTP status, ``message`` the short key, ``description`` the text.
    ``headers`` are added to the response (e.g. ``Allow`` on a 405).
    """

    def __init__(
        self,
        status: int,
        message: str,
        description: str,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {message}: {description}")
        self.status = status
        self.message = message
        self.description = description
        self.headers = dict(headers or {})

    def to_json(self) -> dict[str, Any]:
        return {"code": self.status, "message": self.message, "description": self.description}


# --- the helpers handlers use -------------------------------------------------------------


def not_found(key: str, description: str) -> ApiError:
    """404 under the seeds' key for what is missing (``customer``, or ``not_found`` for the
    resource the path names)."""
    return ApiError(404, key, description)


def access_denied(description: str = "Insufficient access level") -> ApiError:
    return ApiError(403, "access_denied", description)


def unauthorized(description: str, *, error: str | None = None) -> ApiError:
    """401 with the challenge RFC 6750 asks for; ``error="invalid_token"`` when a token was
    sent but is unknown, revoked or expired."""
    challenge = 'Bearer realm="acsd"' + (f', error="{error}"' if error else "")
    return ApiError(401, "unauthorized", description, headers={"WWW-Authenticate": challenge})


def field_error(path: str, description: str, *, status: int = 400) -> ApiError:
    """An error about one input field; ``path`` is its dotted path (``wifi.enabled``)."""
    return ApiError(status, path or "body", description)


def not_permitted(path: str, permitted: Iterable[Any]) -> ApiError:
    """409: the value of ``path`` is outside its permitted set."""
    values = ", ".join(str(v) for v in permitted)
    return ApiError(409, path or "body", f"Value is not one of the permitted values: {values}")


def conflict(message: str, description: str) -> ApiError:
    """409 with a key of the caller's choosing (``profile``, ``state``...)."""
    return ApiError(409, message, description)


def unprocessable(message: str, description: str) -> ApiError:
    """422, e.g. ``unprocessable("macAddress", "MAC address is already in use.")``."""
    return ApiError(422, message, description)


def invalid_json(description: str) -> ApiError:
    return ApiError(400, "invalid_json", description)


def missing_body(description: str = "Request body is required: a JSON object") -> ApiError:
    return ApiError(400, "missing_body", description)


def too_large(limit: int | None = None) -> ApiError:
    text = "Request body is too large"
    if limit:
        text = f"Request body exceeds the limit of {limit} bytes"
    return ApiError(413, "too_large", text)


def media_type_hint(got: str | None) -> str:
    """What to change, for the usual ways a client sends JSON as something else: curl's
    ``-d`` (and PHP's curl, a jQuery form post) label it a form, and HTTP libraries send a
    body given as text or bytes with no Content-Type, or as application/octet-stream."""
    media = (got or "").split(";", 1)[0].strip().lower()
    if media == "application/x-www-form-urlencoded":
        return "; curl -d sends that by default: add -H 'Content-Type: application/json'"
    if media in ("", "application/octet-stream"):
        return "; send the header Content-Type: application/json with the body"
    return ""


def unsupported_media_type(got: str | None) -> ApiError:
    shown = peer_text(got) if got else "none"
    return ApiError(
        415,
        "unsupported_media_type",
        f"Content-Type must be application/json (got {shown}){media_type_hint(got)}",
    )


# --- the one JSON error helper ------------------------------------------------------------


def error_response(
    status: int,
    message: str,
    description: str,
    *,
    request_id: str | None = None,
    headers: dict[str, str] | None = None,
    cause: str | None = None,
) -> web.Response:
    """The JSON error response; every error of the API is made here. ``cause``: a 503's
    (the database's trouble, a key of acsd.store.outages)."""
    body: dict[str, Any] = {"code": status, "message": message, "description": description}
    if cause is not None:
        body["cause"] = cause
    resp = json_response(body, status=status, headers=headers)
    resp.headers["Cache-Control"] = "no-store"
    if request_id:
        resp.headers[REQUEST_ID_HEADER] = request_id
    return resp


def request_id(request: web.Request) -> str:
    """The id of this request (assigned by the middleware; a fresh one without it)."""
    rid = request.get(REQUEST_ID_KEY)
    if rid is None:
        rid = _incoming_or_new(request)
        request[REQUEST_ID_KEY] = rid
    return rid


def _incoming_or_new(request: web.Request) -> str:
    given = request.headers.get(REQUEST_ID_HEADER, "").strip()
    if _CLIENT_ID.match(given):
        return given
    return uuid.uuid4().hex


# --- aiohttp's exceptions in the JSON form ------------------------------------------------

_KEYS = {
    400: "bad_request",
    401: "unauthorized",
    403: "access_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    408: "request_timeout",
    409: "conflict",
    411: "length_required",
    413: "too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    422: "unprocessable",
    429: "too_many_requests",
    500: "internal_error",
    501: "not_implemented",
    503: "unavailable",
}

# Headers of an aiohttp exception that describe its own (text) body, not the error.
_BODY_HEADERS = {"content-type", "content-length", "content-encoding", "transfer-encoding"}


def _key_for(status: int, reason: str) -> str:
    return _KEYS.get(status) or re.sub(r"[^a-z0-9]+", "_", reason.lower()).strip("_") or "error"


def _describe_http_exception(request: web.Request, exc: web.HTTPException) -> str:
    status = exc.status
    if status == 404:
        return f"No resource at {request.path}"
    if status == 405:
        allowed = getattr(exc, "allowed_methods", None) or ()
        text = f"Method {request.method} is not allowed on {request.path}"
        if allowed:
            text += f"; allowed: {', '.join(sorted(allowed))}"
        return text
    if status == 413:
        return too_large(request.client_max_size).description
    if status == 415:
        return unsupported_media_type(request.content_type).description
    # A handler may raise e.g. web.HTTPBadRequest(text="..."): keep its text, not the default.
    text = exc.text or ""
    if text and text != f"{status}: {exc.reason}" and exc.content_type == "text/plain":
        return text
    return exc.reason or "Error"


def _from_http_exception(request: web.Request, exc: web.HTTPException, rid: str) -> web.Response:
    headers = {k: v for k, v in exc.headers.items() if k.lower() not in _BODY_HEADERS}
    return error_response(
        exc.status,
        _key_for(exc.status, exc.reason or ""),
        _describe_http_exception(request, exc),
        request_id=rid,
        headers=headers,
    )


def _internal_error(request: web.Request, rid: str) -> web.Response:
    # The traceback goes to the log (format_exc_info), never to the client. Method and path
    # only: the body and the query string may hold passwords.
    log.exception("api_internal_error", request_id=rid, method=request.method, path=request.path)
    return error_response(
        500,
        "internal_error",
        f"Internal error; the server log has the details under request id {rid}",
        request_id=rid,
    )


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


#: what the listener calls with an outage's ``cause`` for each request it answers 503
#: (the refusals metric); unset, nothing is counted
STORE_REFUSED = web.AppKey("acsd_store_refused", Callable[[str], None])
#: what the listener calls for each request refused 401 for its token (the metric)
TOKEN_REFUSED = web.AppKey("acsd_token_refused", Callable[[], None])


def come_back_later(exc: Exception, request: web.Request) -> Outage | None:
    """For an error that is the database's own trouble (locked by another process,
    read-only, full, its server down, its files replaced): logged, counted, and which
    trouble it is (acsd.store.outages): the 503's ``cause``, its text and when to come back,
    rather than report a bug. None for any other error."""
    why = store_unavailable(exc)
    found = outage(exc)
    if why is None or found is None:
        return None
    # a write's: the writer named the cause once (store_writes_failing); a line per
    # request at warning level would bury it
    level = log.info if reported(exc) else log.warning
    level("api_store_unavailable", request_id=request_id(request), error=why, cause=found.cause)
    count = request.config_dict.get(STORE_REFUSED)
    if count is not None:
        count(found.cause)
    return found


def retry_after(found: Outage) -> dict[str, str]:
    return {"Retry-After": str(found.retry_after)}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Request id on every response; every error in the JSON form; no traceback leaks."""
    rid = request_id(request)
    with structlog.contextvars.bound_contextvars(request_id=rid):
        try:
            resp = await handler(request)
        except ApiError as exc:
            return error_response(
                exc.status, exc.message, exc.description, request_id=rid, headers=exc.headers
            )
        except web.HTTPException as exc:
            if exc.status == 500:
                return _internal_error(request, rid)
            if exc.status < 400:
                # Redirects and the like are not errors: pass them on, with the id.
                exc.headers[REQUEST_ID_HEADER] = rid
                raise
            return _from_http_exception(request, exc, rid)
        except Exception as exc:
            if (found := come_back_later(exc, request)) is not None:
                return error_response(
                    503, "unavailable", found.text, request_id=rid,
                    headers=retry_after(found), cause=found.cause,
                )  # fmt: skip
            return _internal_error(request, rid)
    if not resp.prepared:
        resp.headers[REQUEST_ID_HEADER] = rid
        # Answers hold wifi passwords and customers' data: no proxy or browser keeps them.
        resp.headers.setdefault("Cache-Control", "no-store")
    return resp
