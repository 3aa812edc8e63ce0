"""What every resource handler needs: the store, profiles, settings, the caller, audit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from acsd import audit
from acsd.api.answer import json_response
from acsd.api.auth import Caller, authenticate
from acsd.api.errors import request_id
from acsd.api.token_uses import TokenUses
from acsd.cwmp.connreq import ConnectionRequester
from acsd.provisioning.profiles import ProfileSet
from acsd.store.base import AuditRecord, Store


@dataclass(slots=True)
class ApiContext:
    store: Store
    profiles: ProfileSet
    requester: ConnectionRequester | None
    default_interval: int = 300
    grace: int = 60
    #: the base of absolute URLs in answers ([api] public_url); None: the request's own
    public_url: str | None = None
    #: [api] body_timeout: seconds a request's body may take to arrive
    body_timeout: float = 30.0
    #: set at SIGTERM/SIGINT: the CWMP listener turns new sessions away (503) from then on,
    #: so /readyz says not ready while the API still answers during the grace
    stopping: bool = False
    #: where requests note their token's use (None: not noted, as in tests of handlers)
    token_uses: TokenUses | None = None


CONTEXT = web.AppKey("acsd_context", ApiContext)


def context(request: web.Request) -> ApiContext:
    return request.app[CONTEXT]


#: the token a request was made with, for its access line (acsd.api.access)
TOKEN_ID = "acsd.token_id"


async def caller(request: web.Request) -> Caller:
    ctx = context(request)
    who = await authenticate(request, ctx.store)
    request[TOKEN_ID] = who.token.id
    if ctx.token_uses is not None:
        ctx.token_uses.used(who.token.id)
    return who


def audit_record(
    request: web.Request,
    who: Caller,
    action: str,
    resource: str,
    resource_id: str | None,
    *,
    customer: str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditRecord:
    return audit.entry(
        action, resource, resource_id, token_id=who.token.id, token_name=who.token.name,
        role=who.role, customer=customer, before=before, after=after,
        request_id=request_id(request),
    )  # fmt: skip


def created(body: Any, location: str) -> web.Response:
    """201 with the new record, and where to find it (``Location``, RFC 9110 §10.2.2)."""
    return json_response(body, status=201, headers={"Location": location})
