"""Every rule the API's request bodies are validated with is one /openapi.json states.

The bodies are the models the handlers describe (``@describe(body=...)``), walked field
by field: each bound (``max_length``, ``ge``...) and each :class:`acsd.rules.Rule` or
``Stated`` must be in the document's schema of that field, and a validator that states
nothing (a bare ``AfterValidator``, a ``field_validator``, a ``model_validator``) fails
here unless it is listed below with where the document says it. A new rule cannot be
enforced without a client generated from the document learning of it.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from types import SimpleNamespace
from typing import Annotated, Any

import annotated_types
import pytest
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    PlainValidator,
    WithJsonSchema,
    WrapValidator,
)
from pydantic.fields import FieldInfo
from pydantic.types import StringConstraints

from acsd.api.app import build_api_app
from acsd.api.openapi import DocumentedAs, build_openapi, operations_of
from acsd.ids import normal_id
from acsd.rules import Rule, Stated

_VALIDATORS = (AfterValidator, BeforeValidator, PlainValidator, WrapValidator)


def _null_free(prop: dict[str, Any]) -> bool:
    return "null" not in repr(prop)


#: validators that change what they are given rather than refuse it (a rule is a refusal)
_TRANSFORMS: dict[str, str] = {
    normal_id.__qualname__: "an id in any case: a reference to no record is a 404, not a 400",
    "_integral": "10.0 is the integer 10 (JSON has one number type)",
}

#: validators whose rule the document states in prose or in the field's type, and how
#: this test finds it there: (component, field or None for the model) -> check
_STATED_ELSEWHERE: dict[str, tuple[str, str | None, Callable[[dict[str, Any]], bool]]] = {
    "Dhcp._consistent": (
        "Dhcp",
        None,
        lambda s: (
            "ipPoolStart is not after ipPoolEnd" in s.get("description", "")
            and "reserved twice" in s.get("description", "")
        ),
    ),
    "DevicePatch._serial_stays": ("DevicePatch", "serialNumber", _null_free),
    "DevicePatch._model_stays": ("DevicePatch", "model", _null_free),
    "AccountConfirm._date": ("AccountConfirm", "startDate", lambda s: "RFC 3339" in str(s)),
    "Wifi._six_ghz_takes_a_passphrase": (
        "Wifi",
        None,
        lambda s: "band steering" in s.get("description", ""),
    ),
}


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    # The document as the daemon serves it, without a daemon: only the routes are read.
    app = build_api_app(SimpleNamespace(body_timeout=30))  # type: ignore[arg-type]
    return build_openapi(app, title="acsd operator API", version="0")


def _body_models() -> list[type[BaseModel]]:
    app = build_api_app(SimpleNamespace(body_timeout=30))  # type: ignore[arg-type]
    found: list[type[BaseModel]] = []
    for route in app.router.routes():
        for op in operations_of(route.handler):
            if isinstance(op.body, type) and op.body not in found:
                found.append(op.body)
    return found


def _collection(tp: Any) -> bool:
    """A list (or an optional one): its bounds count items."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return any(_collection(arg) for arg in typing.get_args(tp))
    return typing.get_origin(tp) in (list, set, tuple) or tp in (list, set, tuple)


def _bound(meta: Any, base: Any) -> dict[str, Any]:
    """The JSON Schema keys a pydantic bound becomes (on a string, a list or a number)."""
    items = _collection(base)
    length = ("minItems", "maxItems") if items else ("minLength", "maxLength")
    if isinstance(meta, annotated_types.MinLen):
        return {length[0]: meta.min_length}
    if isinstance(meta, annotated_types.MaxLen):
        return {length[1]: meta.max_length}
    for kind, key, attr in (
        (annotated_types.Ge, "minimum", "ge"),
        (annotated_types.Le, "maximum", "le"),
        (annotated_types.Gt, "exclusiveMinimum", "gt"),
        (annotated_types.Lt, "exclusiveMaximum", "lt"),
    ):
        if isinstance(meta, kind):
            return {key: getattr(meta, attr)}
    if isinstance(meta, StringConstraints):
        pairs = (("minLength", meta.min_length), ("maxLength", meta.max_length),
                 ("pattern", meta.pattern))  # fmt: skip
        return {k: v for k, v in pairs if v is not None}
    if isinstance(meta, Stated):
        return dict(meta.schema)
    return {}


class _Walk:
    """The rules of one body model and of every model it holds."""

    def __init__(self) -> None:
        self.rules: list[tuple[str, str, dict[str, Any]]] = []  # (model, field, keys)
        self.unstated: list[tuple[str, str]] = []  # (where, validator)
        self.models: list[type[BaseModel]] = []

    def model(self, model: type[BaseModel]) -> None:
        if model in self.models:
            return
        self.models.append(model)
        for name, info in model.model_fields.items():
            tp = info.annotation
            metas = list(info.metadata)
            self.type(model, name, Annotated[tp, *metas] if metas else tp)  # type: ignore[valid-type]
        decorators = model.__pydantic_decorators__
        for name in [*decorators.field_validators, *decorators.model_validators]:
            self.unstated.append((model.__name__, f"{model.__name__}.{name}"))

    def type(self, model: type[BaseModel], field: str, tp: Any) -> None:
        origin = typing.get_origin(tp)
        if origin is Annotated:
            base, *metas = typing.get_args(tp)
            stated = any(isinstance(m, Stated | WithJsonSchema) for m in metas)
            for meta in metas:
                if isinstance(meta, DocumentedAs):
                    self.model(meta.model)
                    continue
                parts = meta.metadata if isinstance(meta, FieldInfo) else [meta]
                for part in parts:
                    if keys := _bound(part, base):
                        self.rules.append((model.__name__, field, keys))
                if isinstance(meta, _VALIDATORS) and not stated:
                    name = getattr(meta.func, "__qualname__", repr(meta.func))
                    if name.rsplit(".", 1)[-1] not in _TRANSFORMS and name not in _TRANSFORMS:
                        self.unstated.append((f"{model.__name__}.{field}", name))
            self.type(model, field, base)
        elif origin in (typing.Union, types.UnionType, list, dict, set, tuple):
            for arg in typing.get_args(tp):
                self.type(model, field, arg)
        elif isinstance(tp, type) and issubclass(tp, BaseModel):
            self.model(tp)


def _walked() -> _Walk:
    walk = _Walk()
    for model in _body_models():
        walk.model(model)
    return walk


def _component(doc: dict[str, Any], name: str) -> dict[str, Any]:
    schemas = doc["components"]["schemas"]
    return schemas.get(f"{name}-Input") or schemas[name]


def _carries(schema: Any, keys: dict[str, Any]) -> bool:
    """Whether ``schema``, or a schema within it (an anyOf option, the items, the values of
    an object), states ``keys``: the same values, a description that includes the rule's."""
    if not isinstance(schema, dict):
        return False

    def states(key: str, value: Any) -> bool:
        if key == "description":
            return value in schema.get("description", "")
        return schema.get(key) == value

    if all(states(k, v) for k, v in keys.items()):
        return True
    inner = [*schema.get("anyOf", ()), schema.get("items"), schema.get("additionalProperties")]
    return any(_carries(s, keys) for s in inner)


def test_the_walk_finds_the_bodies_and_their_rules():
    # (a walk that found nothing would pass everything below)
    walk = _walked()
    names = {m.__name__ for m in walk.models}
    assert {"DeviceCreate", "DevicePatch", "Wifi", "Dhcp", "ReservedClient", "AccountCreate",
            "AccountConfirm", "Net", "APNDevice", "NewAccountHints", "AccountNetwork",
            "CustomerCreate", "ModelCreate"} <= names, names  # fmt: skip
    fields = {(model, field) for model, field, _ in walk.rules}
    assert {("DeviceCreate", "serialNumber"), ("DeviceCreate", "notes"), ("Net", "subnet"),
            ("APNDevice", "CLI"), ("AccountNetwork", "APN"),
            ("Dhcp", "leaseTime")} <= fields  # fmt: skip


def test_every_rule_of_a_request_body_is_in_the_document(doc):
    walk = _walked()
    missing = [
        (model, field, keys)
        for model, field, keys in walk.rules
        if not _carries(_component(doc, model)["properties"][field], keys)
    ]
    assert not missing, missing


def test_no_body_is_checked_by_a_validator_the_document_does_not_state(doc):
    unstated = []
    for where, name in _walked().unstated:
        if name not in _STATED_ELSEWHERE:
            unstated.append((where, name))
            continue
        component, field, check = _STATED_ELSEWHERE[name]
        schema = _component(doc, component)
        if not check(schema["properties"][field] if field else schema):
            unstated.append((where, f"{name}: not stated where _STATED_ELSEWHERE says"))
    assert not unstated, (
        "validators the document does not state: write them as acsd.rules.Rule "
        f"(or say in _STATED_ELSEWHERE where the document states them): {unstated}"
    )


def test_a_bare_validator_is_found():
    # the walk itself: a new rule written as a bare AfterValidator is reported
    def _even(value: int) -> int:
        if value % 2:
            raise ValueError("must be even")
        return value

    class Body(BaseModel):
        stated: Annotated[int, Rule(_even, {"multipleOf": 2})] | None = None
        bare: Annotated[int, AfterValidator(_even)] | None = None

    walk = _Walk()
    walk.model(Body)
    assert [(w, n.rsplit(".", 1)[-1]) for w, n in walk.unstated] == [("Body.bare", "_even")]
    assert walk.rules == [("Body", "stated", {"multipleOf": 2})]
