"""A check a request body must pass, and what the OpenAPI document says of it, as one
annotation: a rule written as a bare validator is enforced but invisible to a client
generated from ``/openapi.json`` (tests/test_api_body_rules.py looks for such validators
in every body the API takes)::

    Serial = Annotated[str, Field(min_length=1, max_length=64), Rule(_serial, SERIAL_SCHEMA)]

The character classes and patterns here are written once and serve both the check (Python's
``re``) and the document (JSON Schema's ECMA-262 regexes): the escapes used (``\\xHH``,
``\\uHHHH``, ``[...]``, ``(?:...)``, ``{m,n}``) mean the same in both.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

#: C0 and C1 control characters, as the inside of a character class
CONTROL = r"\x00-\x1f\x7f-\x9f"
#: the control characters free text may not hold: all but tab and line breaks
TEXT_CONTROL = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
_CONTROL = re.compile(f"[{CONTROL}]")


def serial_problem(serial: str) -> str | None:
    """Why no router can have ``serial``, or None. A router's Inform carries its serial
    without spaces at the ends (they are stripped) and without control characters: a
    device record or a credentials entry for such a serial would never meet its router."""
    if serial != serial.strip() or _CONTROL.search(serial):
        return (
            "serial number must not begin or end with spaces nor hold control characters "
            "(a line break, a tab)"
        )
    return None


def class_of(chars: list[int]) -> str:
    """The inside of a character class holding exactly ``chars`` (code points)."""
    runs: list[list[int]] = []
    for code in chars:
        if runs and code == runs[-1][-1] + 1:
            runs[-1].append(code)
        else:
            runs.append([code])
    return "".join(
        f"\\u{r[0]:04x}" if len(r) == 1 else f"\\u{r[0]:04x}-\\u{r[-1]:04x}" for r in runs
    )


#: what ``str.strip()`` removes that is not a control character (the space, the no-break
#: spaces, U+2000-U+200A, the line and paragraph separators...), as the inside of a class.
#: Written out rather than derived at import (9 ms in every process); tests/test_rules.py
#: derives it from this Python's ``str.isspace`` and fails if the two ever differ.
SPACE = r"\u0020\u00a0\u1680\u2000-\u200a\u2028-\u2029\u202f\u205f\u3000"
#: everything ``str.strip()`` removes (the control characters among it too), as the inside
#: of a class; written out and checked as SPACE is
WHITESPACE = (
    r"\u0009-\u000d\u001c-\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028-\u2029\u202f\u205f\u3000"
)
#: the JSON Schema pattern of an empty or blank text (what ``str.strip()`` makes empty)
BLANK = f"^[{WHITESPACE}]*$"


def none_of(chars: str) -> str:
    """The JSON Schema pattern of a text holding none of ``chars`` (a class's inside)."""
    return f"^[^{chars}]*$"


_NAMED_GROUP = re.compile(r"\(\?P<[A-Za-z_][A-Za-z0-9_]*>")


def whole(regex: re.Pattern[str]) -> str:
    """The JSON Schema pattern of ``regex`` as ``fullmatch()`` applies it: anchored, named
    groups plain (ECMA-262 spells them otherwise), ``\\d`` the ASCII digits it means with
    ``re.ASCII`` (the patterns given here are all ASCII)."""
    text = _NAMED_GROUP.sub("(?:", regex.pattern).replace(r"\d", "[0-9]")
    return f"^(?:{text.removeprefix('^').removesuffix(chr(92) + 'Z')})$"


def any_case(word: str) -> str:
    """A pattern matching ``word`` in any case ("[Pp][Ee][Nn]..."): JSON Schema's regexes
    take no flags."""
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else re.escape(c) for c in word)


@dataclass(frozen=True, eq=False)  # (hashed by identity: typing hashes annotations)
class Stated:
    """Add ``schema`` to the field's JSON schema in requests (``pattern``, ``maxLength``,
    ``enum``, ``description``...): a rule checked elsewhere, where it needs more than the
    field (the stored records, the other fields), stated where clients read it."""

    schema: Mapping[str, Any]

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        out = dict(handler(schema))
        if handler.mode != "validation":
            return out  # an answer shows a stored value as it is, under older rules too
        stated = dict(self.schema)
        if "description" in out and "description" in stated:
            stated["description"] = f"{out['description']}. {stated['description']}"
        out.update(stated)
        return out


class Rule(Stated):
    """Validate with ``check`` (after the type's own validation; ``check(value)`` or
    ``check(value, info)``, raising ValueError), and state ``schema`` as :class:`Stated`."""

    def __init__(self, check: Callable[..., Any], schema: Mapping[str, Any]) -> None:
        super().__init__(schema)
        object.__setattr__(self, "check", check)

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        inner = handler(source)
        if len(inspect.signature(self.check).parameters) == 2:
            return core_schema.with_info_after_validator_function(self.check, inner)
        return core_schema.no_info_after_validator_function(self.check, inner)


def _blank_is_none(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


class BlankIsOmitted(Stated):
    """Take an empty or blank string as the member left out (``None``), before the field's
    own check, and offer it in the document beside the field's own schema: a client that
    sends a .NET default (``""``, XML's ``<SIMNumber/>``) must find it allowed there too.
    Goes on an optional field: ``Annotated[Iccid | None, BlankIsOmitted()]``."""

    def __init__(self) -> None:
        super().__init__(
            {"type": "string", "pattern": BLANK, "description": "Empty or blank: left out"}
        )

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_before_validator_function(_blank_is_none, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        out = dict(handler(schema))
        if handler.mode != "validation":
            return out
        if set(out) <= {"anyOf", "default", "title"} and "anyOf" in out:
            out["anyOf"] = [*out["anyOf"], dict(self.schema)]
            return out
        return {"anyOf": [out, dict(self.schema)]}


_KEY_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def key_problem(value: str) -> str | None:
    """Why ``value`` cannot be an API account's or a network's foreign key (None if it
    can): it sits in URL paths, and a token is scoped to it (``acsd token create
    --apn-account``), so one that no path or token could name is refused up front."""
    if not value.strip() or len(value) > 128 or _KEY_CONTROL.search(value) or "/" in value:
        return "1 to 128 printable characters, not all blank, no '/'"
    if value in (".", ".."):
        # a URL with it (a StatusUrl, a Location) is another URL once a client resolves it
        return "not '.' or '..' (URL path segments clients resolve away)"
    return None
