"""The OpenAPI description: a 3.1 document built from the routes and models the API really
serves, every reference resolving, and a /docs page that works on a closed network."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import AsyncIterator
from typing import Any, Literal

import aiohttp
import pytest
from aiohttp import web
from pydantic import BaseModel, ConfigDict

from acsd.api.errors import error_middleware
from acsd.api.openapi import add_openapi_routes, build_openapi, describe, docs_html
from acsd.models import Device, DeviceInput

ROLES = "ADMIN, RESELLER, OWNER, MANAGER"


class DeviceQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer: str | None = None
    state: Literal["ACTIVE", "PROVISIONING", "DELETING"] | None = None
    limit: int = 50


@describe(
    summary="Create a network device",
    body=DeviceInput,
    response=Device,
    status=201,
    errors=[
        (403, "access_denied"),
        (404, "customer", "Customer not found"),
        (404, "model"),
        (422, "macAddress", "MAC address is already in use."),
    ],
    roles=ROLES,
)
async def create_device(request: web.Request) -> web.Response:
    return web.Response(status=501)  # only described, never called


@describe(summary="List network devices", response=list[Device], query=DeviceQuery, roles=ROLES)
async def list_devices(request: web.Request) -> web.Response:
    return web.Response(status=501)  # only described, never called


@describe(
    "GET",
    "/network/device/{id}",
    summary="Get a network device",
    response=Device,
    errors=[404],
    roles=ROLES,
    path_params={"id": "The device's id"},
)
@describe("DELETE", "/network/device/{id}", summary="Delete", status=204, roles="ADMIN")
async def device_by_id(request: web.Request) -> web.Response:
    return web.Response(status=501)  # only described, never called


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers.

    Used by the service manager."""
    return web.json_response({"status": "ok"})


class DeviceView(web.View):
    @describe(summary="A class-based view", response=Device, roles="ADMIN")
    async def get(self) -> web.Response:
        return web.Response(status=501)  # only described, never called


def make_app() -> web.Application:
    app = web.Application(middlewares=[error_middleware])
    app.router.add_post("/network/device", create_device)
    app.router.add_get("/network/device", list_devices)
    app.router.add_get(r"/network/device/{id:[0-9a-f]{24}}", device_by_id)
    app.router.add_delete(r"/network/device/{id:[0-9a-f]{24}}", device_by_id)
    app.router.add_get("/healthz", healthz)
    app.router.add_view("/view/{name}", DeviceView)
    add_openapi_routes(app, title="acsd operator API", version="0.1.0")
    return app


@pytest.fixture
async def served() -> AsyncIterator[tuple[aiohttp.ClientSession, str]]:
    runner = web.AppRunner(make_app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        async with aiohttp.ClientSession() as session:
            yield session, f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def doc(served) -> dict[str, Any]:
    session, base = served
    async with session.get(base + "/openapi.json") as resp:
        assert resp.status == 200
        assert resp.content_type == "application/json"
        assert resp.headers["X-Request-Id"]
        return await resp.json()


def refs(node: Any) -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                found.append(value)
            else:
                found += refs(value)
    elif isinstance(node, list):
        for item in node:
            found += refs(item)
    return found


def resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"{ref} does not resolve"
        node = node[part]
    return node


async def test_the_document_has_the_openapi_31_shape(doc):
    assert doc["openapi"] == "3.1.0"
    assert doc["info"] == {"title": "acsd operator API", "version": "0.1.0"}
    assert set(doc) <= {"openapi", "info", "paths", "components", "security", "servers", "tags"}
    assert doc["components"]["securitySchemes"]["bearerAuth"]["type"] == "http"
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    for path, item in doc["paths"].items():
        assert path.startswith("/")
        for method, op in item.items():
            assert method in {"get", "put", "post", "delete", "patch", "options", "head", "trace"}
            assert op["summary"]
            assert op["responses"], (method, path)
            for status, resp in op["responses"].items():
                assert re.fullmatch(r"[1-5][0-9][0-9]|default", status)
                assert resp["description"]
            for param in op.get("parameters", []):
                assert param["in"] in {"path", "query", "header", "cookie"}
                assert "schema" in param
                if param["in"] == "path":
                    assert param["required"] is True
                    assert "{" + param["name"] + "}" in path
    op_ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(op_ids) == len(set(op_ids))


async def test_every_ref_resolves_within_the_document(doc):
    all_refs = refs(doc)
    assert "#/components/schemas/DeviceInput" in all_refs
    for ref in all_refs:
        assert ref.startswith("#/components/schemas/"), ref
        resolve(doc, ref)
    assert "$defs" not in str(doc)


async def test_components_hold_every_model_and_the_error(doc):
    schemas = doc["components"]["schemas"]
    for name in ("DeviceInput", "Device", "Error"):
        assert name in schemas, name
    # A reservation's enable is taken as text too, and answered as a boolean only; an SSID
    # or a pool address is checked when taken, never when shown: the models that hold them
    # are described once as taken and once as answered.
    for name in ("Wifi", "Dhcp", "ReservedClient"):
        assert {f"{name}-Input", f"{name}-Output"} <= set(schemas), name
    error = schemas["Error"]
    assert error["type"] == "object"
    assert set(error["required"]) == {"code", "message", "description"}
    assert error["properties"]["code"]["type"] == "integer"
    assert schemas["DeviceInput"]["additionalProperties"] is False
    assert "serialNumber" in schemas["DeviceInput"]["required"]
    # The seed's spelling and the alias of the response model.
    assert "ssSingnalStrength" in schemas["DeviceStatus"]["properties"]
    assert "_id" in schemas["Device"]["properties"]
    # A query model is spelt out as parameters, not as a schema of its own.
    assert "DeviceQuery" not in schemas


async def test_the_registered_operations_are_described(doc):
    paths = doc["paths"]
    create = paths["/network/device"]["post"]
    assert create["summary"] == "Create a network device"
    assert create["x-roles"] == ROLES
    assert ROLES in create["description"]
    assert create["security"] == [{"bearerAuth": []}]
    body = create["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/DeviceInput"}
    assert create["requestBody"]["required"] is True
    ok = create["responses"]["201"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/Device"}
    for status in ("400", "401", "403", "404", "413", "415", "422", "500"):
        err = create["responses"][status]["content"]["application/json"]["schema"]
        assert err == {"$ref": "#/components/schemas/Error"}, status
    assert "`customer`: Customer not found" in create["responses"]["404"]["description"]
    assert "`model`" in create["responses"]["404"]["description"]
    assert "`macAddress`" in create["responses"]["422"]["description"]
    assert "`invalid_json`" in create["responses"]["400"]["description"]

    listing = paths["/network/device"]["get"]
    schema = listing["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema == {"type": "array", "items": {"$ref": "#/components/schemas/Device"}}
    params = {p["name"]: p for p in listing["parameters"]}
    assert set(params) == {"customer", "state", "limit"}
    assert all(p["in"] == "query" and p["required"] is False for p in params.values())
    assert "requestBody" not in listing

    # "{id:[0-9a-f]{24}}" in the router is "{id}" in the document; one handler, two routes.
    item = paths["/network/device/{id}"]
    assert item["get"]["summary"] == "Get a network device"
    assert item["get"]["parameters"] == [
        {
            "name": "id",
            "in": "path",
            "required": True,
            "schema": {"type": "string"},
            "description": "The device's id",
        }
    ]
    assert item["delete"]["summary"] == "Delete"
    assert "204" in item["delete"]["responses"]
    assert "content" not in item["delete"]["responses"]["204"]
    assert "head" not in item

    assert paths["/view/{name}"]["get"]["summary"] == "A class-based view"


async def test_undescribed_routes_appear_with_their_docstring(doc):
    health = doc["paths"]["/healthz"]["get"]
    assert health["summary"] == "Liveness: the process answers."
    assert health["x-undescribed"] is True


async def test_the_docs_routes_are_public_and_described(doc):
    for path in ("/openapi.json", "/docs"):
        op = doc["paths"][path]["get"]
        assert op["security"] == []
        assert "401" not in op["responses"]


def test_build_without_a_server_and_without_undescribed_routes():
    app = make_app()
    doc = build_openapi(app, title="t", version="1", include_undescribed=False)
    assert "/healthz" not in doc["paths"]
    assert "/network/device" in doc["paths"]


def test_a_description_that_disagrees_with_the_router_is_an_error():
    @describe("POST", "/network/device", summary="x", roles=None)
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=501)  # only described, never called

    app = web.Application()
    app.router.add_put("/network/device", handler)
    with pytest.raises(ValueError, match="served at PUT /network/device"):
        build_openapi(app, title="t", version="1")


def test_sub_applications_are_walked_with_their_prefix():
    sub = web.Application()
    sub.router.add_post("/device", create_device)
    app = web.Application()
    app.add_subapp("/network", sub)
    doc = build_openapi(app, title="t", version="1")
    assert doc["paths"]["/network/device"]["post"]["summary"] == "Create a network device"


async def test_docs_is_a_self_contained_page_reading_the_description(served):
    session, base = served
    async with session.get(base + "/docs") as resp:
        assert resp.status == 200
        assert resp.content_type == "text/html"
        assert resp.headers["X-Request-Id"]
        csp = resp.headers["Content-Security-Policy"]
        page = await resp.text()
    assert "/openapi.json" in page
    assert "fetch(" in page
    # Nothing from elsewhere: no external URL at all, no script or stylesheet files.
    assert "http://" not in page and "https://" not in page
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert not re.search(r"<script[^>]*\ssrc\s*=", page, re.I)
    assert not re.search(r"<link[^>]*stylesheet", page, re.I)
    assert "@import" not in page
    # The browser runs the page's own inline script and style, and nothing else.
    script = re.search(r"<script>(.*?)</script>", page, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in csp
    assert "default-src 'none'" in csp
    assert "connect-src 'self'" in csp
    # It renders every operation, roles and schemas from the document.
    for word in ("x-roles", "requestBody", "responses", "components", "summary"):
        assert word in page


def test_the_page_ships_in_the_package_and_names_the_spec_url():
    page = docs_html("/api/openapi.json")
    assert 'content="/api/openapi.json"' in page
    assert "__OPENAPI_URL__" not in page
    assert 'content="&lt;x&gt;"' in docs_html("<x>")


@pytest.mark.parametrize("nested", [False, True])
def test_a_stricter_form_documented_too_is_offered_by_reference(nested):
    # DocumentedToo took the model's core schema "ref", which a model that refers to
    # other models (or to itself) does not have at its top: building the document raised
    # KeyError for any such model.
    from typing import Annotated

    from acsd.api.openapi import DocumentedToo

    class Contact(BaseModel):
        email: str

    class Strict(BaseModel):
        day: int
        if nested:
            contact: Contact
            again: Strict | None = None

    Strict.model_rebuild()

    class Loose(BaseModel):
        day: int | None = None

    class Body(BaseModel):
        hints: Annotated[Loose, DocumentedToo(Strict, "Strict when it creates")]

    schema = Body.model_json_schema()
    hints = schema["properties"]["hints"]
    assert hints["description"] == "Strict when it creates"
    assert hints["anyOf"][0] == {"$ref": "#/$defs/Strict"}
    assert hints["anyOf"][1] == {"$ref": "#/$defs/Loose"}
    assert ("Contact" in schema["$defs"]) is nested
