"""Does an answer of the API match what its own OpenAPI document says of it?

A client generated from ``/openapi.json`` trusts the document: an answer with a status the
operation does not list, or a body its schema does not allow, breaks such a client. This
checks the part of JSON Schema the document uses (``$ref``, ``type``, ``properties``,
``required``, ``additionalProperties``, ``anyOf``, ``items``, ``enum``, ``minimum``,
``maximum``, ``minLength``, ``maxLength``, ``pattern``, ``format: ipv4`` and ``ipv6``,
``maxProperties``, ``propertyNames``).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

_TYPES: dict[str, Any] = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "null": type(None),
}


def _is(value: Any, kind: str) -> bool:
    if kind == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, _TYPES[kind])


def _ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def _ipv6(text: str) -> bool:
    # JSON Schema's ipv6 is RFC 4291's text form: no scope id ("fe80::1%eth0"), which
    # Python's IPv6Address takes (jsonschema's format checker refuses one, as it should)
    try:
        return ipaddress.IPv6Address(text).scope_id is None
    except ValueError:
        return False


def problems(doc: dict[str, Any], schema: dict[str, Any], value: Any, at: str = "") -> list[str]:
    """Where ``value`` breaks ``schema`` (a schema of ``doc``): empty when it conforms."""
    if "$ref" in schema:
        node: Any = doc
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        return problems(doc, node, value, at)
    if "anyOf" in schema:
        found = [problems(doc, option, value, at) for option in schema["anyOf"]]
        if all(found):
            return min(found, key=len)
        # and the keywords beside it ({"type": "string", "maxLength": 64, "anyOf": [...]})
        schema = {k: v for k, v in schema.items() if k != "anyOf"}
    if "not" in schema and not problems(doc, schema["not"], value, at):
        return [f"{at or '.'}: {value!r} is what {schema['not']} excludes"]
    kinds = schema.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if not any(_is(value, kind) for kind in kinds):
            return [f"{at or '.'}: {value!r} is not {'/'.join(kinds)}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{at or '.'}: {value!r} is not one of {schema['enum']}"]
    out: list[str] = []
    low, high = schema.get("minimum"), schema.get("maximum")
    if _is(value, "number") and (
        (low is not None and value < low) or (high is not None and value > high)
    ):
        out.append(f"{at or '.'}: {value!r} is outside {schema}")
    if isinstance(value, str):
        if not schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", len(value)):
            out.append(f"{at or '.'}: {value!r} has a length outside {schema}")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            out.append(f"{at or '.'}: {value!r} does not match {schema['pattern']}")
        if schema.get("format") == "ipv4" and not _ipv4(value):
            out.append(f"{at or '.'}: {value!r} is not an IPv4 address")
        if schema.get("format") == "ipv6" and not _ipv6(value):
            out.append(f"{at or '.'}: {value!r} is not an IPv6 address")
    if isinstance(value, dict):
        if len(value) > schema.get("maxProperties", len(value)):
            out.append(f"{at or '.'}: more than {schema['maxProperties']} members")
        if "propertyNames" in schema:
            for name in value:
                out += problems(doc, {"type": "string", **schema["propertyNames"]}, name, at)
        props = schema.get("properties", {})
        out += [f"{at}.{name}: missing" for name in schema.get("required", ()) if name not in value]
        for name, item in value.items():
            if name in props:
                out += problems(doc, props[name], item, f"{at}.{name}")
            elif schema.get("additionalProperties") is False:
                out.append(f"{at}.{name}: not in the schema")
            elif isinstance(schema.get("additionalProperties"), dict):
                out += problems(doc, schema["additionalProperties"], item, f"{at}.{name}")
    if isinstance(value, list) and "items" in schema:
        for n, item in enumerate(value):
            out += problems(doc, schema["items"], item, f"{at}[{n}]")
    return out


def mismatches(
    doc: dict[str, Any], method: str, path: str, status: int, content_type: str, body: Any
) -> list[str]:
    """What the document's ``method path`` gets wrong about an answer (empty: nothing)."""
    responses = doc["paths"][path][method.lower()]["responses"]
    documented = responses.get(str(status))
    if documented is None:
        return [f"status {status} is not documented (only {', '.join(responses)})"]
    content = documented.get("content", {})
    media = content_type.split(";")[0].strip().lower()
    if media not in content:
        return [f"{media} is not documented for {status} (only {', '.join(content)})"]
    schema = content[media].get("schema")
    return [] if schema is None else problems(doc, schema, body)


def error_keys(doc: dict[str, Any], method: str, path: str, status: int) -> set[str]:
    """The error keys (``message``) the document names for ``status`` of ``method path``."""
    responses = doc["paths"][path][method.lower()]["responses"]
    return set(
        re.findall(r"^- `([^`]+)`", responses.get(str(status), {}).get("description", ""), re.M)
    )
