"""Request bodies and query strings into pydantic models, with the API's error keys.

:func:`read_model` is how a handler takes its JSON body::

    data = await read_model(request, DeviceInput)

It answers, as :class:`~acsd.api.errors.ApiError`:

* 415 ``unsupported_media_type``: a body that is not ``application/json`` (or ``*/*+json``);
* 400 ``missing_body``: no body (or only whitespace);
* 413 ``too_large``: a body beyond the application's ``client_max_size``;
* 400 ``invalid_json``: malformed JSON, with "line L column C (char P): what"; also duplicate
  keys, ``NaN``/``Infinity``, text that is not UTF-8;
* 400 ``body``: JSON that is not an object;
* then the model's validation (strict, as JSON: no "true" for a boolean, no 1.5 for an
  integer), one error reported, with the dotted field path (``dhcp.reservedClients.0.mac``) as
  the message: 400 "unknown field", 400 "field required", 409 "Value is not one of the
  permitted values: A, B, C" for a Literal or an Enum, 400 with pydantic's text otherwise.

:func:`parse_query` does the same for the query string (lax: query values are strings).
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import types
import typing
from collections.abc import Sequence
from typing import Any, TypeVar
from urllib.parse import unquote, unquote_to_bytes

from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError
from pydantic import BaseModel, ValidationError

from acsd.api.errors import (
    ApiError,
    field_error,
    invalid_json,
    missing_body,
    not_permitted,
    too_large,
    unsupported_media_type,
)
from acsd.inflate import InflateError, content_encoding, inflate
from acsd.models import AtField

M = TypeVar("M", bound=BaseModel)

_PERMITTED_TYPES = {"literal_error", "enum"}
# Which error a client sees first when there are several: the one most likely to explain
# the others (a misspelt field name is both "unknown" and, often, "missing").
_RANK = {"extra_forbidden": 0, "missing": 1}
_PREFIXES = ("Value error, ", "Assertion failed, ")


# --- JSON ---------------------------------------------------------------------------------


class _BadJson(Exception):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _BadJson(f"Duplicate key {json.dumps(key)} in an object")
        out[key] = value
    return out


def _no_constants(name: str) -> Any:
    raise _BadJson(f"{name} is not valid JSON")


_SURROGATE = re.compile("[\ud800-\udfff]")


def _lone_surrogate(value: Any, path: str = "") -> tuple[str, str] | None:
    """(where, "\\udXXX") of the first string holding half a UTF-16 surrogate pair alone,
    which JSON's ``\\u`` escape can write and no Unicode text holds."""
    if isinstance(value, str):
        if match := _SURROGATE.search(value):
            return path or "body", f"\\u{ord(match.group()):04x}"
    elif isinstance(value, dict):
        for key, item in value.items():
            found = _lone_surrogate(key, path or "body") or _lone_surrogate(
                item, f"{path}.{key}" if path else str(key)
            )
            if found:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if found := _lone_surrogate(item, f"{path}.{index}" if path else str(index)):
                return found
    return None


#: nesting no body of the API comes near; pydantic's own JSON reader stops at about 200
#: levels, with the position in acsd's re-encoding of the body rather than in the client's
MAX_DEPTH = 64


def _deeper_than(text: str, value: Any, limit: int) -> bool:
    """Whether ``value`` nests more than ``limit`` arrays/objects deep (``[[]]`` is 2)."""
    # Each level opens a bracket, so a text with no more than ``limit`` of them (brackets
    # in strings only add to the count) needs no walk: nearly every body, at no cost.
    if text.count("[") + text.count("{") <= limit:
        return False
    level = [value] if isinstance(value, dict | list) else []
    for _ in range(limit):
        level = [
            item
            for node in level
            for item in (node.values() if isinstance(node, dict) else node)
            if isinstance(item, dict | list)
        ]
        if not level:
            return False
    return True


class JsonInt(int):
    """A JSON integer that remembers its text (``text``)."""

    text: str

    def __new__(cls, text: str) -> JsonInt:
        number = super().__new__(cls, text)
        number.text = text
        return number


class JsonFloat(float):
    """A JSON number with a fraction or an exponent that remembers its text (``1.50``,
    ``1e3``: what a float's repr would not give back)."""

    text: str

    def __new__(cls, text: str) -> JsonFloat:
        number = super().__new__(cls, text)
        number.text = text
        return number


def parse_json(text: str, *, number_text: bool = False) -> Any:
    """Parse JSON text strictly; malformed input raises 400 ``invalid_json``. With
    ``number_text``, numbers are :class:`JsonInt` and :class:`JsonFloat`, which keep the
    text they were written as (for a reader that takes a number as text, as Json.NET does
    for a string member)."""
    numbers: dict[str, Any] = {}
    if number_text:
        numbers = {"parse_int": JsonInt, "parse_float": JsonFloat}
    try:
        data = json.loads(
            text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants, **numbers
        )
    except json.JSONDecodeError as exc:
        raise invalid_json(
            f"line {exc.lineno} column {exc.colno} (char {exc.pos}): {exc.msg}"
        ) from None
    except _BadJson as exc:
        raise invalid_json(str(exc)) from None
    except RecursionError:
        raise invalid_json("Nesting is too deep") from None
    except ValueError:
        # int() beyond sys.get_int_max_str_digits()
        raise invalid_json("A number has too many digits") from None
    if _deeper_than(text, data, MAX_DEPTH):
        raise invalid_json(f"Nesting is too deep (more than {MAX_DEPTH} levels)")
    # (only an escape can write one: the text itself was decoded from UTF-8)
    if "\\u" in text and (found := _lone_surrogate(data)):
        where, escape = found
        raise invalid_json(f"{where}: {escape} is half of a UTF-16 surrogate pair, alone")
    return data


def _is_json_type(content_type: str) -> bool:
    # text/json: what seed 003 lists beside application/json, and older clients send
    if content_type in ("application/json", "text/json"):
        return True
    major, _, minor = content_type.partition("/")
    return major == "application" and minor.endswith("+json")


#: charsets (without dashes) whose text is UTF-8 as sent: ASCII is a subset
_UTF8_COMPATIBLE = frozenset({"utf8", "usascii", "ascii"})


def utf8_charset(charset: str | None) -> bool:
    """No charset given, or one whose bytes are UTF-8 as sent."""
    return not charset or charset.lower().replace("-", "") in _UTF8_COMPATIBLE


#: [api] body_timeout, set on the app by build_api_app
BODY_TIMEOUT = web.AppKey("acsd_body_timeout", float)


class BodyNotReceived(Exception):
    """The body did not arrive: ``timeout`` (it stopped coming) or the client went away;
    the text is what the client is told."""

    def __init__(self, *, timeout: float | None) -> None:
        super().__init__(
            f"The request body did not arrive within {timeout:g} s"
            if timeout is not None
            else "The connection closed before the body was complete"
        )
        self.timeout = timeout


async def receive_body(request: web.Request) -> bytes:
    """The request's body as sent, waiting at most ``[api] body_timeout`` for it: a client
    that promises more than it sends must not hold a handler (and a connection) for good."""
    limit = request.config_dict.get(BODY_TIMEOUT, 30.0)  # sub-apps (/v1) see the main one's
    try:
        async with asyncio.timeout(limit):
            return await request.read()
    except TimeoutError:
        raise BodyNotReceived(timeout=limit) from None
    except ConnectionResetError:  # the client closed its end before the body was in
        raise BodyNotReceived(timeout=None) from None


def body_not_received(exc: BodyNotReceived) -> ApiError:
    if exc.timeout is not None:
        return ApiError(408, "request_timeout", str(exc), headers={"Connection": "close"})
    # Nobody reads this answer; the 400 keeps the log line an ordinary refusal, not an
    # internal error with a traceback.
    return ApiError(400, "body_incomplete", str(exc))


async def read_json(request: web.Request) -> Any:
    """The request's JSON body, parsed (any JSON value); the checks of :func:`read_model`."""
    has_type = "Content-Type" in request.headers
    if request.body_exists and (not has_type or not _is_json_type(request.content_type)):
        raise unsupported_media_type(request.headers.get("Content-Type"))
    if not utf8_charset(request.charset):
        raise ApiError(
            415, "unsupported_media_type", f"JSON must be UTF-8 (got charset {request.charset})"
        )
    try:
        encoding = content_encoding(request.headers)
    except InflateError as exc:
        raise ApiError(415, "unsupported_media_type", exc.reason) from None
    limit = request.client_max_size
    if limit and request.content_length is not None and request.content_length > limit:
        raise too_large(limit)
    try:
        raw = inflate(await receive_body(request), encoding, limit)
    except BodyNotReceived as exc:
        raise body_not_received(exc) from None
    except web.HTTPRequestEntityTooLarge:
        raise too_large(limit) from None
    except InflateError as exc:
        if exc.status == 413:
            raise too_large(limit) from None
        raise invalid_json(exc.reason[:1].upper() + exc.reason[1:]) from None
    except RequestPayloadError as exc:  # a chunked body cut short
        raise invalid_json(f"Body could not be read: {exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise invalid_json(f"Body is not valid UTF-8 (byte {exc.start})") from None
    if not text.strip():
        raise missing_body()
    return parse_json(text)


async def no_body(request: web.Request, why: str) -> None:
    """For an action that takes nothing (``POST .../end``): nothing, white space or ``{}``
    passes; anything else is a 400 saying ``why``, rather than a body ignored (an end
    date sent to an action that ends the line now)."""
    if not request.body_exists:
        return
    try:
        if not (await receive_body(request)).strip():
            return
    except BodyNotReceived as exc:  # (cut short, or too slow: 408 as for any body)
        raise body_not_received(exc) from None
    sent = await read_json(request)  # (the body is read once; aiohttp keeps it)
    if sent != {}:
        raise field_error(next(iter(sent), "body") if isinstance(sent, dict) else "body", why)


async def read_model(request: web.Request, model: type[M]) -> M:
    """The request's JSON body as ``model``; every failure as an :class:`ApiError`."""
    data = await read_json(request)
    return validate(model, data)


def validate(model: type[M], data: Any, *, strict: bool = True, sent: Any = None) -> M:
    """``data`` (parsed JSON) as ``model``, with the API's error mapping.

    Strict validation uses JSON semantics, as if ``data`` had arrived as JSON text, so enum
    values and ISO dates are accepted while "true" for a boolean is not. ``sent``: what
    the client sent, when ``data`` is more (a PATCH merged into the record): an error
    names a field in it.
    """
    if not isinstance(data, dict):
        raise field_error("body", "Request body must be a JSON object")
    try:
        if strict:
            return model.model_validate_json(json.dumps(data), strict=True)
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, data, model, sent=sent) from None


# --- validation errors --------------------------------------------------------------------


def field_path(loc: Sequence[int | str], data: Any, *, missing: bool = False) -> str:
    """The dotted path of ``loc`` in ``data``: the keys and list indexes the client sent.

    pydantic puts the names of union members (``str``, ``function-after[...]``) and the like
    into ``loc``; they are not part of the client's document, so only the steps found in
    ``data`` are kept, plus, for a ``missing`` error, the last key, absent from its object
    (a required field). Else an object sent for a number would read ``ActorStatus.int``.
    """
    parts: list[str] = []
    current: Any = data
    for index, step in enumerate(loc):
        last = index == len(loc) - 1
        if isinstance(current, dict) and isinstance(step, str):
            if step in current:
                parts.append(step)
                current = current[step]
            elif last and missing:
                parts.append(step)
        elif isinstance(current, list) and isinstance(step, int) and 0 <= step < len(current):
            parts.append(str(step))
            current = current[step]
    return ".".join(parts)


def _text(error: Any) -> str:
    msg = str(error.get("msg", "Invalid value"))
    for prefix in _PREFIXES:
        if msg.startswith(prefix):
            return msg[len(prefix) :]
    return msg


def validation_error(
    exc: ValidationError,
    data: Any,
    model: type[BaseModel] | None = None,
    *,
    unknown: str = "unknown field",
    sent: Any = None,
) -> ApiError:
    """One :class:`ApiError` for a pydantic ``ValidationError`` raised validating ``data``
    (``sent``: the part of it the client sent, see :func:`validate`)."""
    errors = exc.errors(include_url=False)
    if not errors:
        return field_error("body", "Invalid input")
    ranked = sorted(
        enumerate(errors),
        key=lambda pair: (
            _RANK.get(pair[1]["type"], 3 if pair[1]["type"] in _PERMITTED_TYPES else 2),
            pair[0],
        ),
    )
    error = ranked[0][1]
    kind = error["type"]
    path = field_path(error["loc"], data, missing=kind == "missing") or "body"
    if isinstance(at := (error.get("ctx") or {}).get("error"), AtField):
        path = _at_field(error["loc"], at, sent) or _at_field(error["loc"], at, data) or path
    if kind == "extra_forbidden":
        said = getattr(model, "READ_ONLY", {}) if len(error["loc"]) == 1 else {}
        return field_error(path, said.get(error["loc"][0], unknown))
    if kind == "missing":
        return field_error(path, "field required")
    if kind in _PERMITTED_TYPES:
        values = _permitted(model, tuple(error["loc"])) if model else None
        if values is None:
            values = _expected(str((error.get("ctx") or {}).get("expected", "")))
        return not_permitted(path, values)
    if kind == "json_invalid":
        return invalid_json(_text(error))
    return field_error(path, _text(error))


def _at_field(loc: Sequence[int | str], at: AtField, data: Any) -> str | None:
    """The path of the first of ``at``'s fields found in ``data``."""
    if data is None:
        return None
    for where in at.at:
        path = field_path((*loc, *where), data)
        if path.endswith(".".join(str(step) for step in where)):
            return path
    return None


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _expected(text: str) -> list[str]:
    # pydantic's "'A', 'B' or 'C'": the fallback when the schema does not say.
    quoted = re.findall(r"'((?:[^'\\]|\\.)*)'", text)
    if quoted:
        return quoted
    return [part for part in re.split(r", | or ", text) if part]


@functools.lru_cache(maxsize=256)
def _schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema()


def _permitted(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str] | None:
    """The permitted values at ``loc``, from the model's JSON schema (Literal and Enum)."""
    try:
        schema = _schema(model)
    except Exception:
        return None
    defs = schema.get("$defs", {})
    found = _enum_at(schema, loc, defs, depth=0)
    if not found:
        return None
    return [_show(v) for v in found]


def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    for _ in range(32):
        ref = schema.get("$ref")
        if not isinstance(ref, str) or not ref.startswith("#/$defs/"):
            break
        schema = defs.get(ref.removeprefix("#/$defs/"), {})
    return schema


def _members(schema: dict[str, Any]) -> list[dict[str, Any]]:
    return [*schema.get("anyOf", ()), *schema.get("oneOf", ()), *schema.get("allOf", ())]


def _enum_at(
    schema: dict[str, Any], loc: tuple[int | str, ...], defs: dict[str, Any], depth: int
) -> list[Any]:
    if depth > 64:
        return []
    schema = _resolve(schema, defs)
    if not loc:
        if "enum" in schema:
            return [v for v in schema["enum"] if v is not None]
        if "const" in schema:
            return [schema["const"]]
        out: list[Any] = []
        for member in _members(schema):
            for value in _enum_at(member, loc, defs, depth + 1):
                if value not in out:
                    out.append(value)
        return out
    step, rest = loc[0], loc[1:]
    if isinstance(step, str) and step in schema.get("properties", {}):
        return _enum_at(schema["properties"][step], rest, defs, depth + 1)
    if isinstance(step, int):
        prefix = schema.get("prefixItems")
        if isinstance(prefix, list) and 0 <= step < len(prefix):
            return _enum_at(prefix[step], rest, defs, depth + 1)
        if isinstance(schema.get("items"), dict):
            return _enum_at(schema["items"], rest, defs, depth + 1)
    if isinstance(step, str) and isinstance(schema.get("additionalProperties"), dict):
        return _enum_at(schema["additionalProperties"], rest, defs, depth + 1)
    for member in _members(schema):
        found = _enum_at(member, loc, defs, depth + 1)
        if found:
            return found
    # A step that is not in the document (a union member's name): skip it.
    return [] if _members(schema) else _enum_at(schema, rest, defs, depth + 1)


# --- query strings ------------------------------------------------------------------------


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
            continue
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if origin in (typing.Union, types.UnionType) and len(args) == 1:
            annotation = args[0]
            continue
        return annotation


def _is_sequence(annotation: Any) -> bool:
    origin = typing.get_origin(_unwrap(annotation))
    return origin in (list, tuple, set, frozenset)


def _query_names(model: type[BaseModel]) -> dict[str, bool]:
    """Accepted query parameter names -> whether the field takes several values."""
    names: dict[str, bool] = {}
    by_name = bool(model.model_config.get("populate_by_name")) or bool(
        model.model_config.get("validate_by_name")
    )
    for name, field in model.model_fields.items():
        many = _is_sequence(field.annotation)
        alias = field.validation_alias if isinstance(field.validation_alias, str) else None
        alias = alias or field.alias
        if alias:
            names[alias] = many
        if not alias or by_name:
            names[name] = many
    return names


def _undecodable(raw_query: str) -> str | None:
    """The name of the first parameter whose percent-escapes are no UTF-8, if any: the
    URL parser reads those bytes as U+FFFD, so ``q=%E9t%E9`` (Latin-1) would search for
    something nobody typed and find nothing, as if there were nothing to find."""
    for pair in raw_query.split("&"):
        name, _, value = pair.partition("=")
        for part in (name, value):
            try:
                unquote_to_bytes(part.replace("+", " ")).decode("utf-8")
            except UnicodeDecodeError:
                return unquote(name.replace("+", " "), errors="replace")
    return None


def parse_query(request: web.Request, model: type[M]) -> M:
    """The query string as ``model`` (lax: "10" is an integer, "true" a boolean).

    Unknown parameters, a parameter given twice for a single-valued field and one whose
    escapes are not UTF-8 are 400s.
    """
    if (bad := _undecodable(request.rel_url.raw_query_string)) is not None:
        raise field_error(bad, "not UTF-8: percent-encode the UTF-8 bytes of the text")
    accepted = _query_names(model)
    data: dict[str, Any] = {}
    for key in request.query:
        if key in data:
            continue
        if key not in accepted:
            # ("?=x": a parameter with no name, not the body's fault)
            raise field_error(key or "query", "unknown query parameter" if key else
                              "a query parameter with no name")  # fmt: skip
        values = request.query.getall(key)
        if accepted[key]:
            data[key] = list(values)
        elif len(values) > 1:
            raise field_error(key, "query parameter given more than once")
        else:
            data[key] = values[0]
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, data, model, unknown="unknown query parameter") from None


__all__ = [
    "field_path",
    "parse_json",
    "parse_query",
    "read_json",
    "read_model",
    "validate",
    "validation_error",
]
