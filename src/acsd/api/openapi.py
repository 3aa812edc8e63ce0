"""The OpenAPI 3.1 description of the operator API, generated from the handlers themselves.

A handler says what it takes and gives with :func:`describe`; the description is built from
the application's router, so a path or a method in the document is always one the API really
serves, and the schemas are the same pydantic models the handlers validate with::

    @describe(
        summary="Create a network device",
        body=DeviceInput,
        response=Device,
        status=201,
        errors=[(403, "access_denied"), (404, "customer"), (404, "model"), (422, "macAddress")],
        roles="ADMIN, RESELLER, OWNER, MANAGER",
    )
    async def create_device(request: web.Request) -> web.Response: ...

    app.router.add_post("/network/device", create_device)

:func:`add_openapi_routes` serves the document at ``GET /openapi.json`` and a self-contained
reader at ``GET /docs`` (one HTML file, no external scripts: the operator's network may be
closed).
"""

from __future__ import annotations

import base64
import hashlib
import html
import importlib.resources
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import hdrs, web
from pydantic import BaseModel, GetJsonSchemaHandler, TypeAdapter
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema
from pydantic_core import core_schema as cs

from acsd.api.errors import Error

OPENAPI_VERSION = "3.1.0"
_ATTR = "__acsd_openapi__"
_REF = "#/components/schemas/{model}"

H = TypeVar("H")

#: An entry of ``errors``: a status, or (status, key), or (status, key, description).
ErrorSpec = int | tuple[int, str] | tuple[int, str, str]
#: A path parameter's description, or (description, JSON schema) when it is not any string.
PathParam = str | tuple[str, dict[str, Any]]

_STATUS_TEXT = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No content",
    400: "Bad request",
    401: "Not authenticated",
    403: "Access denied",
    404: "Not found",
    405: "Method not allowed",
    408: "Request timeout",
    409: "Conflict",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Unprocessable",
    500: "Internal error",
    503: "Unavailable",
}

# Errors every operation of a kind can answer, with their keys (see acsd.api.errors).
_BODY_ERRORS: list[ErrorSpec] = [
    (400, "invalid_json", "Malformed JSON, with line, column and character offset"),
    (400, "missing_body", "No request body"),
    (400, "<field path>", "A field missing, of the wrong type, invalid or unknown"),
    (409, "<field path>", "Value is not one of the permitted values"),
    (400, "body_incomplete", "The connection closed before the whole body arrived"),
    (408, "request_timeout", "The body did not arrive within the server's body timeout"),
    (413, "too_large", "Request body beyond the server's limit"),
    (415, "unsupported_media_type", "Request body that is not application/json"),
]
_QUERY_ERRORS: list[ErrorSpec] = [
    (400, "<parameter>", "A query parameter unknown, repeated or invalid"),
]
_AUTH_ERRORS: list[ErrorSpec] = [
    (401, "unauthorized", "Missing or invalid bearer token"),
    (403, "access_denied", "Insufficient access level"),
    (
        503,
        "unavailable",
        "The database cannot take the request now: retry after Retry-After "
        "(`cause` names the trouble: disk, read_only, busy, ...)",
    ),
]
_ALWAYS_ERRORS: list[ErrorSpec] = [
    (500, "internal_error", "Unexpected error; the description names the request id"),
]


@dataclass(frozen=True)
class Operation:
    """What :func:`describe` records about one operation of a handler."""

    summary: str
    roles: str | None
    method: str | None = None
    path: str | None = None
    description: str | None = None
    body: Any = None
    response: Any = None
    status: int = 200
    query: type[BaseModel] | None = None
    errors: tuple[ErrorSpec, ...] = ()
    tags: tuple[str, ...] = ()
    operation_id: str | None = None
    deprecated: bool = False
    path_params: dict[str, PathParam] = field(default_factory=dict)
    error_body: Any = None
    media_types: tuple[str, ...] = ("application/json",)
    also: tuple[tuple[int, str], ...] = ()

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (
            self.path is None or self.path == path
        )


def describe(
    method: str | None = None,
    path: str | None = None,
    *,
    summary: str,
    roles: str | Sequence[str] | None,
    description: str | None = None,
    body: Any = None,
    response: Any = None,
    status: int = 200,
    query: type[BaseModel] | None = None,
    errors: Iterable[ErrorSpec] = (),
    tags: Iterable[str] = (),
    operation_id: str | None = None,
    deprecated: bool = False,
    path_params: dict[str, str] | None = None,
    error_body: Any = None,
    media_types: Sequence[str] = ("application/json",),
    also: Iterable[tuple[int, str]] = (),
) -> Callable[[H], H]:
    """Record the OpenAPI description of a handler (a decorator; returns the handler).

    ``method`` and ``path`` are optional: the router says where the handler is served. Given,
    they must agree with the router (checked when the document is built), and they let one
    handler served at several routes have one description per route (stack the decorator).

    ``body`` and ``response`` are pydantic models or any type pydantic can describe
    (``list[Device]``); ``response=None`` means no body (e.g. ``status=204``). ``query`` is a
    model whose fields are the query parameters. ``roles`` is who may call it
    ("ADMIN, RESELLER, OWNER, MANAGER"); ``None`` means no authentication at all.
    ``errors`` lists the answers beyond the usual ones (401/403 when authenticated, 400/413/415
    with a body, 500): ``404``, ``(404, "customer")`` or ``(422, "macAddress", "MAC address is
    already in use.")``.

    ``error_body`` is the type of the error answers of an operation that does not answer in
    acsd's error form (the APN API's wrapper); its ``errors`` are then all the errors it has
    (the usual ones name acsd's keys). ``media_types`` are the formats of its bodies; the
    schemas describe the JSON ones (an XML contract is no JSON schema: XML types are listed
    without one); acsd's own errors are JSON whatever they are. ``also`` lists other
    answers that carry the response's body: ``[(200, "Already removed: the device as it
    is")]``. ``path_params`` describes the path's parameters: ``{"id": "The device's id"}``,
    or with the schema of the values the API takes,
    ``{"key": ("The account", {"type": "string", "maxLength": 128})}``.
    """
    if roles is not None and not isinstance(roles, str):
        roles = ", ".join(roles)
    op = Operation(
        summary=summary,
        roles=roles,
        method=method.upper() if method else None,
        path=path,
        description=description,
        body=body,
        response=response,
        status=status,
        query=query,
        errors=tuple(errors),
        tags=tuple(tags),
        operation_id=operation_id,
        deprecated=deprecated,
        path_params=dict(path_params or {}),
        error_body=error_body,
        media_types=tuple(media_types),
        also=tuple(also),
    )

    def mark(handler: H) -> H:
        ops = list(getattr(handler, _ATTR, ()))
        ops.insert(0, op)  # decorators apply bottom-up: keep the written order
        setattr(handler, _ATTR, ops)
        return handler

    return mark


def operations_of(handler: Any) -> list[Operation]:
    """The descriptions recorded on a handler (empty when it has none)."""
    return list(getattr(handler, _ATTR, ()))


class DocumentedAs:
    """An annotation: the document describes the field as ``model`` while the handler takes
    it as it is (a PATCH section it merges into what is stored, then checks as ``model``)::

        wifi: Annotated[dict[str, Any], DocumentedAs(Wifi)] | None = None
    """

    def __init__(self, model: type[BaseModel]) -> None:
        self.model = model

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return handler(self.model.__pydantic_core_schema__)


class DocumentedToo(DocumentedAs):
    """An annotation: the document offers ``model`` beside the field's own schema (anyOf),
    for a stricter form the handler holds the value to in a case it cannot see in the
    body (Hints that create an account), the case told by ``description``."""

    def __init__(self, model: type[BaseModel], description: str) -> None:
        super().__init__(model)
        self.description = description

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        own = handler(core_schema)
        if handler.mode != "validation":
            return own
        # Through a reference, so that the model is a component of its own, by its name. A
        # model that refers to others (or to itself) is already a definitions wrapper
        # around such a reference; a plain one is wrapped here.
        model = self.model.__pydantic_core_schema__
        if model["type"] != "definitions":
            model = cs.definitions_schema(cs.definition_reference_schema(model["ref"]), [model])
        stricter = handler(model)
        return {"anyOf": [stricter, own], "description": self.description}


# --- walking the router -------------------------------------------------------------------


@dataclass
class _Found:
    method: str
    path: str
    handler: Any
    op: Operation | None


_PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")


def _canonical(resource: web.AbstractResource) -> str:
    # "{id:\d+}" in a route is "{id}" in OpenAPI.
    return _PARAM.sub(lambda m: "{" + m.group(1) + "}", resource.canonical)


def _walk(router: web.UrlDispatcher) -> Iterable[_Found]:
    for resource in router.resources():
        if isinstance(resource, web.PrefixedSubAppResource):
            # add_subapp() has already put the prefix on the sub-application's resources.
            yield from _walk(resource.get_info()["app"].router)
            continue
        if isinstance(resource, web.StaticResource):
            continue
        path = _canonical(resource)
        routes = list(resource)
        methods = {route.method for route in routes}
        for route in routes:
            method = route.method
            handler = route.handler
            if method == hdrs.METH_HEAD and hdrs.METH_GET in methods:
                continue
            if method == hdrs.METH_ANY:
                if isinstance(handler, type) and issubclass(handler, web.View):
                    for meth in sorted(hdrs.METH_ALL - {hdrs.METH_HEAD}):
                        fn = getattr(handler, meth.lower(), None)
                        if fn is not None:
                            yield _Found(meth, path, fn, _pick(fn, meth, path))
                continue
            yield _Found(method, path, handler, _pick(handler, method, path))


def _pick(handler: Any, method: str, path: str) -> Operation | None:
    ops = operations_of(handler)
    if not ops:
        return None
    for op in ops:
        if op.matches(method, path):
            return op
    where = ", ".join(f"{op.method or '*'} {op.path or '*'}" for op in ops)
    name = getattr(handler, "__qualname__", repr(handler))
    raise ValueError(f"{name} is served at {method} {path} but described for {where}")


# --- the document -------------------------------------------------------------------------


class _Schemas:
    """Collects every type to describe, then makes all schemas in one pass (one namespace:
    two models of the same name cannot silently overwrite each other)."""

    def __init__(self) -> None:
        self._inputs: list[tuple[int, str, TypeAdapter[Any]]] = []
        self.result: dict[int, dict[str, Any]] = {}
        self.components: dict[str, Any] = {}

    def add(self, tp: Any, mode: str) -> int:
        key = len(self._inputs)
        self._inputs.append((key, mode, TypeAdapter(tp)))
        return key

    def build(self) -> None:
        mapping, defs = TypeAdapter.json_schemas(self._inputs, ref_template=_REF, by_alias=True)
        self.result = {key: schema for (key, _mode), schema in mapping.items()}
        self.components = dict(defs.get("$defs", {}))


def _doc_of(handler: Any) -> tuple[str, str | None]:
    text = (getattr(handler, "__doc__", None) or "").strip()
    if not text:
        return getattr(handler, "__name__", "operation"), None
    first, _, rest = text.partition("\n\n")
    return " ".join(first.split()), rest.strip() or None


def _content(schema: dict[str, Any], media_types: Iterable[str]) -> dict[str, Any]:
    return {
        media: {"schema": schema} if media.split("/")[-1].endswith("json") else {}
        for media in media_types
    }


def _error_responses(
    specs: Iterable[ErrorSpec], error_schema: dict[str, Any], media_types: Iterable[str]
) -> dict[str, Any]:
    by_status: dict[int, list[str]] = {}
    for spec in specs:
        if isinstance(spec, int):
            status, key, text = spec, None, None
        else:
            status, key, text = spec[0], spec[1], spec[2] if len(spec) > 2 else None
        lines = by_status.setdefault(status, [])
        line = f"`{key}`" if key else _STATUS_TEXT.get(status, "Error")
        if text:
            line += f": {text}"
        if line not in lines:
            lines.append(line)
    out: dict[str, Any] = {}
    for status in sorted(by_status):
        lines = by_status[status]
        head = _STATUS_TEXT.get(status, "Error")
        out[str(status)] = {
            "description": head + "".join(f"\n- {line}" for line in lines),
            "content": _content(error_schema, media_types),
        }
    return out


def _operation(
    found: _Found, schemas: _Schemas, keys: dict[str, int], error_schema: dict[str, Any]
) -> dict[str, Any]:
    op = found.op
    if op is None:
        summary, description = _doc_of(found.handler)
        return {
            "summary": summary,
            **({"description": description} if description else {}),
            "parameters": _path_parameters(found.path, {}),
            "responses": {"200": {"description": "OK"}},
            "x-undescribed": True,
        }
    out: dict[str, Any] = {"summary": op.summary}
    text = op.description
    if op.roles is not None:
        roles_line = f"Roles: {op.roles}."
        text = f"{text}\n\n{roles_line}" if text else roles_line
        out["security"] = [{"bearerAuth": []}]
        out["x-roles"] = op.roles
    else:
        out["security"] = []
    if text:
        out["description"] = text
    if op.tags:
        out["tags"] = list(op.tags)
    params = _path_parameters(found.path, op.path_params)
    if op.query is not None:
        params += _query_parameters(schemas, keys["query"])
    if params:
        out["parameters"] = params
    media = op.media_types
    if op.body is not None:
        out["requestBody"] = {
            "required": True,
            "content": _content(schemas.result[keys["body"]], media),
        }

    def success(status: int, text: str) -> dict[str, Any]:
        answer: dict[str, Any] = {"description": text}
        if op.response is not None:
            answer["content"] = _content(schemas.result[keys["response"]], media)
        return answer

    successes = {str(op.status): success(op.status, _STATUS_TEXT.get(op.status, "Success"))}
    for status, text in op.also:
        successes[str(status)] = success(status, text)
    errors: list[ErrorSpec] = []
    # acsd's own error form is JSON whatever the operation answers when it succeeds (the
    # middleware writes it): a /metrics 500 is no Prometheus text
    error_media: tuple[str, ...] = ("application/json",)
    if op.error_body is not None:
        error_schema = schemas.result[keys["error"]]
        error_media = media
    else:
        if op.body is not None:
            errors += _BODY_ERRORS
        if op.query is not None:
            errors += _QUERY_ERRORS
        if op.roles is not None:
            errors += _AUTH_ERRORS
    errors += list(op.errors)
    if op.error_body is None:
        errors += _ALWAYS_ERRORS
    out["responses"] = {**successes, **_error_responses(errors, error_schema, error_media)}
    if op.deprecated:
        out["deprecated"] = True
    return out


def _path_parameters(path: str, described: dict[str, PathParam]) -> list[dict[str, Any]]:
    params = []
    for name in _PARAM.findall(path):
        param: dict[str, Any] = {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string"},
        }
        if name in described:
            text = described[name]
            if isinstance(text, tuple):
                text, param["schema"] = text[0], dict(text[1])
            param["description"] = text
        params.append(param)
    return params


def _query_parameters(schemas: _Schemas, key: int) -> list[dict[str, Any]]:
    ref = schemas.result[key].get("$ref", "")
    model = schemas.components.get(ref.rsplit("/", 1)[-1], schemas.result[key])
    required = set(model.get("required", ()))
    params = []
    for name, prop in model.get("properties", {}).items():
        param: dict[str, Any] = {"name": name, "in": "query", "required": name in required}
        if "description" in prop:
            param["description"] = prop["description"]
        param["schema"] = _without_null(prop)
        params.append(param)
    return params


def _without_null(prop: dict[str, Any]) -> dict[str, Any]:
    # A query string has no null: an optional parameter's None is its absence. Left in, the
    # schema tells clients ?online=null is a value, which the API refuses (400).
    options = prop.get("anyOf")
    if not options:
        return prop
    kept = [option for option in options if option != {"type": "null"}]
    rest = {k: v for k, v in prop.items() if k != "anyOf" and not (k == "default" and v is None)}
    if len(kept) == 1:
        return {**rest, **kept[0]}
    return {**rest, "anyOf": kept}


def build_openapi(
    app: web.Application,
    *,
    title: str,
    version: str,
    description: str | None = None,
    include_undescribed: bool = True,
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route of ``app`` (and of its sub-applications).

    Routes without :func:`describe` appear with their docstring as summary (flagged
    ``x-undescribed``) unless ``include_undescribed`` is false.
    """
    found = [f for f in _walk(app.router) if f.op is not None or include_undescribed]
    schemas = _Schemas()
    error_key = schemas.add(Error, "serialization")
    plans: list[tuple[_Found, dict[str, int]]] = []
    query_keys: set[int] = set()
    for f in found:
        keys: dict[str, int] = {}
        if f.op is not None:
            if f.op.body is not None:
                keys["body"] = schemas.add(f.op.body, "validation")
            if f.op.response is not None:
                keys["response"] = schemas.add(f.op.response, "serialization")
            if f.op.query is not None:
                keys["query"] = schemas.add(f.op.query, "validation")
                query_keys.add(keys["query"])
            if f.op.error_body is not None:
                keys["error"] = schemas.add(f.op.error_body, "serialization")
        plans.append((f, keys))
    schemas.build()
    error_schema = schemas.result[error_key]

    paths: dict[str, dict[str, Any]] = {}
    used_ids: set[str] = set()
    for f, keys in plans:
        operation = _operation(f, schemas, keys, error_schema)
        base = (f.op.operation_id if f.op else None) or getattr(f.handler, "__name__", "op")
        op_id, n = base, 1
        while op_id in used_ids:
            n += 1
            op_id = f"{base}_{n}"
        used_ids.add(op_id)
        operation["operationId"] = op_id
        paths.setdefault(f.path, {})[f.method.lower()] = operation

    info: dict[str, Any] = {"title": title, "version": version}
    if description:
        info["description"] = description
    doc: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": info,
        "paths": paths,
        "components": {
            "schemas": schemas.components,
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API token: `acsd token create`",
                }
            },
        },
        "security": [{"bearerAuth": []}],
    }
    _drop_unreferenced_query_models(doc, schemas, query_keys)
    return doc


def _drop_unreferenced_query_models(
    doc: dict[str, Any], schemas: _Schemas, query_keys: set[int]
) -> None:
    # A query model is spelt out as parameters; its component is noise unless used elsewhere.
    components = doc["components"]["schemas"]
    for key in query_keys:
        ref = schemas.result[key].get("$ref")
        if not ref:
            continue
        name = ref.rsplit("/", 1)[-1]
        if name not in components:
            continue
        others = {k: v for k, v in components.items() if k != name}
        text = json.dumps([doc["paths"], others])
        if json.dumps(ref) not in text:
            del components[name]


# --- serving it ---------------------------------------------------------------------------


def docs_html(spec_url: str = "/openapi.json") -> str:
    """The reader page (shipped in the package), pointed at ``spec_url``."""
    page = importlib.resources.files("acsd.api").joinpath("docs.html").read_text("utf-8")
    return page.replace("__OPENAPI_URL__", html.escape(spec_url, quote=True))


def _csp(page: str) -> str:
    # Only the page's own inline script and style may run; it may fetch only from this origin.
    def hashes(tag: str) -> str:
        blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", page, flags=re.S)
        return " ".join(
            "'sha256-" + base64.b64encode(hashlib.sha256(b.encode()).digest()).decode() + "'"
            for b in blocks
        )

    return (
        "default-src 'none'; "
        f"script-src {hashes('script')}; style-src {hashes('style')}; "
        "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    )


def add_openapi_routes(
    app: web.Application,
    *,
    title: str,
    version: str,
    description: str | None = None,
    spec_path: str = "/openapi.json",
    docs_path: str = "/docs",
) -> None:
    """Serve the description at ``GET spec_path`` and the reader at ``GET docs_path``.

    The document is built for its first reader, from every route the application has (all
    are added before it starts): ~0.1 s of CPU that a daemon nobody reads it from (each
    worker, each test's) does not spend at start. tests/test_api_openapi.py builds it
    from every route, so a route described wrongly fails there.
    """
    page = docs_html(spec_path)
    csp = _csp(page)
    cache: dict[str, bytes] = {}

    def spec_bytes() -> bytes:
        if "spec" not in cache:
            doc = build_openapi(app, title=title, version=version, description=description)
            cache["spec"] = json.dumps(doc, indent=1).encode()
        return cache["spec"]

    @describe(summary="This API's OpenAPI 3.1 description", roles=None, response=dict[str, Any])
    async def openapi_json(request: web.Request) -> web.Response:
        return web.Response(
            body=spec_bytes(),
            content_type="application/json",
            headers={"Cache-Control": "no-cache"},
        )

    @describe(summary="This API's documentation, as a page for a browser", roles=None)
    async def docs(request: web.Request) -> web.Response:
        return web.Response(
            text=page,
            content_type="text/html",
            headers={
                "Content-Security-Policy": csp,
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer",
                "Cache-Control": "no-cache",
            },
        )

    app.router.add_get(spec_path, openapi_json)
    app.router.add_get(docs_path, docs)
