"""``/audit``: every write, who made it, and what changed (secrets masked). ADMIN only."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field

from acsd import clock
from acsd.api.answer import page_response
from acsd.api.body import parse_query
from acsd.api.context import caller, context
from acsd.api.errors import field_error
from acsd.api.openapi import describe
from acsd.api.paging import PageQuery
from acsd.models import IdFilter
from acsd.store.base import AuditRecord


class AuditEntry(BaseModel):
    #: ``_id`` as every other record of the API (seed 000)
    id: str = Field(alias="_id")
    at: str
    action: str
    resource: str
    resourceId: str | None = None
    tokenId: str | None = None
    tokenName: str | None = None
    role: str | None = None
    customer: str | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    requestId: str | None = None


class AuditListQuery(PageQuery):
    before: IdFilter | None = Field(
        None,
        description="Only the entries older than this one (give the previous page's last"
        " _id): new entries come first, so a walk by offset sees one entry again for each"
        " write made meanwhile; a walk by before sees each once. total still counts all.",
    )


class AuditList(BaseModel):
    items: list[AuditEntry]
    total: int
    limit: int
    offset: int


def _json(r: AuditRecord) -> dict[str, Any]:
    return AuditEntry(
        _id=r.id,
        at=clock.iso(r.at),
        action=r.action,
        resource=r.resource,
        resourceId=r.resource_id,
        tokenId=r.token_id,
        tokenName=r.token_name,
        role=r.role,
        customer=r.customer,
        before=r.before,
        after=r.after,
        requestId=r.request_id,
    ).model_dump(exclude_none=True, by_alias=True)


@describe(
    "GET", "/audit", summary="The audit log, newest first", query=AuditListQuery,
    response=AuditList, errors=[400, 403], roles="ADMIN",
)  # fmt: skip
async def list_audit(request: web.Request) -> web.Response:
    ctx = context(request)
    who = await caller(request)
    who.require_admin()
    query = parse_query(request, AuditListQuery)
    try:
        records, total = await ctx.store.list_audit(
            limit=query.limit, offset=query.offset, before=query.before
        )
    except LookupError:
        raise field_error("before", f"no audit entry {query.before}") from None
    return page_response([_json(r) for r in records], total, query)


def setup(app: web.Application) -> None:
    app.router.add_get("/audit", list_audit)
