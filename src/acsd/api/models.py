"""``/network/model``: the catalog of router models a device must name."""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from acsd import clock
from acsd.api.answer import json_response, page_response
from acsd.api.body import parse_query, read_model
from acsd.api.context import audit_record, caller, context, created
from acsd.api.errors import ApiError, not_found
from acsd.api.openapi import describe
from acsd.api.paging import PageQuery
from acsd.ids import is_id, normal_id
from acsd.log import peer_text
from acsd.models import DeviceName, ForeignRef, Name, Notes
from acsd.store.base import ModelRecord

# The seed's modelType values and the other kinds of CPE an ACS manages.
ModelType = Literal["ROUTER", "MOBILE_ROUTER", "ONT", "DSL_MODEM", "CABLE_MODEM", "ACCESS_POINT"]


class ModelCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    type: ModelType
    # Joined into every device of the model (modelBrand, modelDescription, modelPicture):
    # held to the rules of the device's own text, no control characters.
    brand: DeviceName | None = None
    description: Notes | None = None
    picture: ForeignRef | None = None
    profile: str | None = Field(
        None,
        description="The acsd profile of the firmware inside: it serves this model's devices "
        "whose routers no profile's [match] takes (a router under an operator's own brand); "
        "one a profile matches gets that one",
    )


class Model(ModelCreate):
    id: str = Field(alias="_id")


class ModelList(BaseModel):
    items: list[Model]
    total: int
    limit: int
    offset: int


def _json(record: ModelRecord) -> dict:
    out = {"_id": record.id, "name": record.name, "type": record.type}
    for key in ("brand", "description", "picture", "profile"):
        value = getattr(record, key)
        if value is not None:
            out[key] = value
    return out


@describe(
    "POST", "/network/model", summary="Add a router model to the catalog", body=ModelCreate,
    response=Model, status=201, roles="ADMIN",
    errors=[(409, "profile", "Not a profile acsd knows")],
)  # fmt: skip
async def create_model(request: web.Request) -> web.Response:
    ctx = context(request)
    who = await caller(request)
    who.require_admin()
    body = await read_model(request, ModelCreate)
    if body.profile is not None and body.profile not in ctx.profiles.names():
        known = ", ".join(sorted(ctx.profiles.names()))
        raise ApiError(409, "profile", f"unknown profile {body.profile!r}; known: {known}")
    now = clock.now()
    record = ModelRecord(id="", created=now, updated=now, **body.model_dump())
    audit = audit_record(request, who, "model.create", "model", None)
    audit.after = body.model_dump()
    stored = await ctx.store.create_model(record, audit=audit)
    return created(_json(stored), f"/network/model/{stored.id}")


@describe(
    "GET", "/network/model/{id}", summary="One router model", response=Model,
    errors=[(404, "not_found", "No such model")],
    roles="any token",
)  # fmt: skip
async def get_model(request: web.Request) -> web.Response:
    ctx = context(request)
    await caller(request)
    model_id = normal_id(request.match_info["id"])
    record = await ctx.store.get_model(model_id) if is_id(model_id) else None
    if record is None:
        raise not_found("not_found", f"no model {peer_text(model_id)}")
    return json_response(_json(record))


@describe(
    "GET", "/network/model", summary="The model catalog", query=PageQuery, response=ModelList,
    errors=[400], roles="any token",
)  # fmt: skip
async def list_models(request: web.Request) -> web.Response:
    ctx = context(request)
    await caller(request)
    query = parse_query(request, PageQuery)
    records, total = await ctx.store.list_models(limit=query.limit, offset=query.offset)
    return page_response([_json(r) for r in records], total, query)


def setup(app: web.Application) -> None:
    app.router.add_post("/network/model", create_model)
    app.router.add_get("/network/model", list_models)
    app.router.add_get("/network/model/{id}", get_model)
