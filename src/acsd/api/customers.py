"""``/customer``: customers and resellers, each token seeing only its own tenancy."""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from acsd import clock
from acsd.api.answer import json_response, page_response
from acsd.api.body import parse_query, read_model
from acsd.api.context import audit_record, caller, context, created
from acsd.api.errors import ApiError, access_denied, not_found
from acsd.api.openapi import describe
from acsd.api.paging import IdPageQuery
from acsd.ids import is_id, normal_id
from acsd.log import peer_text
from acsd.models import Name, RecordRef
from acsd.store.base import CustomerRecord


class CustomerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    #: null as left out, as every other optional field of a body takes it (clients
    #: generated from a schema send null for what they were not given)
    type: Literal["CUSTOMER", "RESELLER"] | None = Field(
        "CUSTOMER", description="CUSTOMER (also when left out or null) or RESELLER"
    )
    reseller: RecordRef | None = None


class Customer(BaseModel):
    id: str = Field(alias="_id")
    name: str
    type: Literal["CUSTOMER", "RESELLER"]
    reseller: str | None = None


class CustomerList(BaseModel):
    items: list[Customer]
    total: int
    limit: int
    offset: int


def _json(record: CustomerRecord) -> dict:
    out = {"_id": record.id, "name": record.name, "type": record.type}
    if record.reseller:
        out["reseller"] = record.reseller
    return out


@describe(
    "POST", "/customer", summary="Create a customer or a sub-reseller", body=CustomerCreate,
    response=Customer, status=201,
    errors=[(404, "customer", "The reseller is not found"),
            (409, "reseller", "The reseller is not a RESELLER")],
    roles="ADMIN; RESELLER under itself",
)  # fmt: skip
async def create_customer(request: web.Request) -> web.Response:
    ctx = context(request)
    who = await caller(request)
    # Before the body: a role that may never create customers learns that, not a body error.
    if who.role in ("OWNER", "MANAGER"):
        raise access_denied()
    body = await read_model(request, CustomerCreate)
    reseller = None
    if body.reseller is not None:
        # first: nothing is told of a customer outside the tenancy
        reseller = await who.customer(ctx.store, body.reseller)
        if reseller.type != "RESELLER":
            raise ApiError(409, "reseller", f"customer {reseller.id} is not a RESELLER")
    elif not who.is_admin:
        # A reseller's customers hang below it; only ADMIN creates top-level customers.
        raise access_denied("Insufficient access level: give reseller")
    now = clock.now()
    body.type = body.type or "CUSTOMER"
    record = CustomerRecord(
        id="", name=body.name, type=body.type, reseller=body.reseller, created=now, updated=now
    )
    audit = audit_record(request, who, "customer.create", "customer", None, customer=body.reseller)
    audit.after = body.model_dump()
    stored = await ctx.store.create_customer(record, audit=audit)
    return created(_json(stored), f"/customer/{stored.id}")


@describe(
    "GET", "/customer/{id}", summary="One customer", response=Customer,
    errors=[(404, "not_found", "No such customer")],
    roles="any token within its tenancy",
)  # fmt: skip
async def get_customer(request: web.Request) -> web.Response:
    ctx = context(request)
    who = await caller(request)
    customer_id = normal_id(request.match_info["id"])
    record = await ctx.store.get_customer(customer_id) if is_id(customer_id) else None
    if record is None or not who.may_see(record.id):  # (another tenant's: as devices')
        raise not_found("not_found", f"no customer {peer_text(customer_id)}")
    return json_response(_json(record))


@describe(
    "GET", "/customer", summary="Customers within the caller's tenancy", query=IdPageQuery,
    response=CustomerList, roles="any token",
)  # fmt: skip
async def list_customers(request: web.Request) -> web.Response:
    ctx = context(request)
    who = await caller(request)
    query = parse_query(request, IdPageQuery)
    records, total = await ctx.store.list_customers(
        ids=who.tenancy, limit=query.limit, offset=query.offset, after=query.after
    )
    return page_response([_json(r) for r in records], total, query)


def setup(app: web.Application) -> None:
    app.router.add_post("/customer", create_customer)
    app.router.add_get("/customer", list_customers)
    app.router.add_get("/customer/{id}", get_customer)
