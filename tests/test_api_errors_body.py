"""Request bodies and query strings of the operator API: every way a client's input goes
wrong gets its status and key, over real HTTP (seed 000's own malformed example included)."""

from __future__ import annotations

import enum
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

import aiohttp
import pytest
from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError

from acsd.api.body import field_path, parse_query, read_model, validate, validation_error
from acsd.api.errors import error_middleware
from acsd.models import DeviceInput

MAX_BODY = 8 * 1024

# Seed 000's request example, verbatim: note the missing comma after "password6G": null.
SEED_EXAMPLE = """{
  "name": "Johns router",
  "model": "12345678901234567890AAAA",
  "customer": "12345678901234567890CCCC",
  "macAddress": "123456789012",
  "serialNumber": "484t563tyehfcu38hcnb4",
  "mvnoAccount": "12345678901234567890DDDD",
  "notes": "Note about device",
  "wifi": {
    "enabled": true,
    "ssid": "SkyNet",
    "password": "JohnConner",
    "enabled5G": true,
    "ssid5G": "Need4Speed",
    "password5G": "SarahConner",
    "enabled6G": false,
    "ssid6G": null,
    "password6G": null
    "bandsteering": false
  },
  "dhcp": {
    "enable": true,
    "ipPoolStart": "192.168.0.100",
    "ipPoolEnd": "192.168.0.200",
    "leaseTime": 10,
    "primaryDnsServer": "8.8.8.8",
    "reservedClients": [
      {
        "mac": "123456789013",
        "ip": "192.168.0.10",
        "enable": true,
        "id": "r8jf84fv"
      }
    ]
  }
}
"""
SEED_FIXED = SEED_EXAMPLE.replace('"password6G": null\n', '"password6G": null,\n')


class Band(enum.Enum):
    B24 = "2.4GHz"
    B5 = "5GHz"


class Port(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["LAN", "WAN", "SFP"]


class Typed(BaseModel):
    """A body with closed value sets, nested in objects and lists."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["ROUTER", "SWITCH", "AP"]
    band: Band | None = None
    ports: list[Port] = []
    mode: Literal["auto"] | int = "auto"


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    limit: int = 50
    state: Literal["ACTIVE", "PROVISIONING", "DELETING"] | None = None
    tag: list[str] = []
    online: bool | None = None


async def create_device(request: web.Request) -> web.Response:
    device = await read_model(request, DeviceInput)
    return web.json_response(device.model_dump(exclude_none=True), status=201)


async def create_typed(request: web.Request) -> web.Response:
    typed = await read_model(request, Typed)
    return web.json_response(typed.model_dump(mode="json"))


async def list_devices(request: web.Request) -> web.Response:
    query = parse_query(request, ListQuery)
    return web.json_response(query.model_dump())


@asynccontextmanager
async def serve() -> AsyncIterator[str]:
    app = web.Application(middlewares=[error_middleware], client_max_size=MAX_BODY)
    app.router.add_post("/network/device", create_device)
    app.router.add_post("/typed", create_typed)
    app.router.add_get("/network/device", list_devices)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def api() -> AsyncIterator[tuple[aiohttp.ClientSession, str]]:
    async with serve() as base, aiohttp.ClientSession() as session:
        yield session, base


async def post(
    api: tuple[aiohttp.ClientSession, str],
    path: str,
    body: str | bytes | None,
    content_type: str | None = "application/json",
) -> tuple[int, dict, aiohttp.typedefs.LooseHeaders]:
    session, base = api
    headers = {"Content-Type": content_type} if content_type else {}
    if isinstance(body, str):
        body = body.encode()
    async with session.post(base + path, data=body, headers=headers) as resp:
        return resp.status, await resp.json(), resp.headers


def assert_error(status: int, body: dict, headers, code: int, message: str) -> str:
    assert status == code, body
    assert set(body) == {"code", "message", "description"}, body
    assert body["code"] == code
    assert body["message"] == message, body
    assert headers["Content-Type"].startswith("application/json")
    assert headers.get("X-Request-Id")
    return body["description"]


# --- malformed JSON -----------------------------------------------------------------------


async def test_the_seeds_own_example_is_invalid_json_with_its_position(api):
    status, body, headers = await post(api, "/network/device", SEED_EXAMPLE)
    text = assert_error(status, body, headers, 400, "invalid_json")
    lines = SEED_EXAMPLE.splitlines()
    line = next(i for i, s in enumerate(lines) if '"bandsteering"' in s) + 1
    column = lines[line - 1].index('"') + 1
    char = SEED_EXAMPLE.index('"bandsteering"')
    assert text == f"line {line} column {column} (char {char}): Expecting ',' delimiter"
    assert (line, column) == (19, 5)


async def test_the_seeds_example_with_the_comma_is_accepted(api):
    status, body, headers = await post(api, "/network/device", SEED_FIXED)
    assert status == 201, body
    assert body["wifi"]["bandsteering"] is False
    assert body["dhcp"]["reservedClients"][0]["mac"] == "123456789013"
    assert headers["X-Request-Id"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            '{serialNumber: "abc"}',
            "line 1 column 2 (char 1): Expecting property name enclosed in double quotes",
        ),
        (
            '{\n  "serialNumber": "abc",\n  wifi: {}\n}',
            "line 3 column 3 (char 29): Expecting property name enclosed in double quotes",
        ),
        ("{'serialNumber': 'abc'}", "line 1 column 2 (char 1): Expecting property name"),
        # (Python 3.13 words it "Illegal trailing comma".)
        ('{"serialNumber": "abc",}', "line 1 column 24 (char 23): "),
        ('{"serialNumber": "abc"', "line 1 column 23 (char 22): Expecting ',' delimiter"),
        ('{"serialNumber": "abc"} x', "line 1 column 25 (char 24): Extra data"),
    ],
)
async def test_malformed_json_names_line_column_and_offset(api, raw, expected):
    status, body, headers = await post(api, "/network/device", raw)
    text = assert_error(status, body, headers, 400, "invalid_json")
    assert text.startswith(expected), text


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ('{"serialNumber": "a", "serialNumber": "b"}', 'Duplicate key "serialNumber"'),
        ('{"serialNumber": "a", "wifi": {"ssid": "x", "ssid": "y"}}', 'Duplicate key "ssid"'),
        ('{"serialNumber": "a", "dhcp": {"leaseTime": NaN}}', "NaN is not valid JSON"),
        ('{"serialNumber": "a", "dhcp": {"leaseTime": -Infinity}}', "-Infinity is not valid"),
        ('{"serialNumber": "a", "dhcp": {"leaseTime": ' + "9" * 5000 + "}}", "too many digits"),
        ("[" * 3000 + "]" * 3000, "Nesting is too deep"),
        # a lone surrogate escape: named with where it is (pydantic said "unexpected end of
        # hex escape", of a JSON text the client never sent)
        ('{"serialNumber": "a", "name": "x\\ud800y"}', "name: \\ud800 is half of a UTF-16"),
        (
            '{"serialNumber": "a", "dhcp": {"reservedClients": [{"mac": "\\udc00"}]}}',
            "dhcp.reservedClients.0.mac: \\udc00 is half",
        ),
    ],
)
async def test_json_that_python_would_take_but_is_not_clean_is_refused(api, raw, fragment):
    status, body, headers = await post(api, "/network/device", raw)
    text = assert_error(status, body, headers, 400, "invalid_json")
    assert fragment in text


async def test_a_body_that_is_not_utf8_is_invalid_json(api):
    raw = '{"serialNumber": "caf\xe9"}'.encode("latin-1")
    status, body, headers = await post(api, "/network/device", raw)
    assert "not valid UTF-8" in assert_error(status, body, headers, 400, "invalid_json")


async def test_a_utf8_bom_is_tolerated(api):
    raw = "\ufeff" + '{"serialNumber": "abc"}'
    status, body, _ = await post(api, "/network/device", raw.encode("utf-8"))
    assert status == 201, body


@pytest.mark.parametrize("raw", ["[]", '"text"', "42", "null", '[{"serialNumber": "a"}]'])
async def test_the_top_level_must_be_an_object(api, raw):
    status, body, headers = await post(api, "/network/device", raw)
    text = assert_error(status, body, headers, 400, "body")
    assert text == "Request body must be a JSON object"


# --- media type, empty and huge bodies ----------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/xml", "multipart/form-data"],
)
async def test_a_body_that_is_not_json_is_415(api, content_type):
    status, body, headers = await post(api, "/network/device", SEED_FIXED, content_type)
    text = assert_error(status, body, headers, 415, "unsupported_media_type")
    assert "application/json" in text


async def test_a_415_names_the_content_type_sent_without_carrying_it_all(api):
    # A header may be 8 KB: the answer (and a log line of it) names it, cut.
    content_type = "text/plain; x=" + "a" * 4000
    status, body, headers = await post(api, "/network/device", SEED_FIXED, content_type)
    text = assert_error(status, body, headers, 415, "unsupported_media_type")
    assert "text/plain; x=aaa" in text and len(text) < 200


async def test_a_body_without_content_type_is_415(api):
    status, body, headers = await post(api, "/network/device", SEED_FIXED, None)
    text = assert_error(status, body, headers, 415, "unsupported_media_type")
    assert "send the header Content-Type: application/json" in text


async def test_json_sent_as_curl_d_sends_it_is_415_saying_what_to_add(api):
    # (curl -d labels every body a form: the usual first try of an operator at a shell)
    ct = "application/x-www-form-urlencoded"
    status, body, headers = await post(api, "/network/device", SEED_FIXED, ct)
    text = assert_error(status, body, headers, 415, "unsupported_media_type")
    assert "curl -d" in text and "-H 'Content-Type: application/json'" in text


async def test_a_json_charset_other_than_utf8_is_415(api):
    ct = "application/json; charset=iso-8859-1"
    status, body, headers = await post(api, "/network/device", SEED_FIXED, ct)
    assert_error(status, body, headers, 415, "unsupported_media_type")


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json; charset=utf-8",
        "application/json;charset=UTF-8",
        "application/vnd+json",
        # seed 003 lists text/json beside application/json; ASCII is UTF-8 as sent
        "text/json",
        "application/json; charset=us-ascii",
    ],
)
async def test_json_media_types_are_accepted(api, content_type):
    status, body, _ = await post(api, "/network/device", SEED_FIXED, content_type)
    assert status == 201, body


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [(None, None), (b"", "application/json"), (b"  \n ", "application/json"), (None, "text/plain")],
)
async def test_no_body_is_400_missing_body(api, raw, content_type):
    status, body, headers = await post(api, "/network/device", raw, content_type)
    assert_error(status, body, headers, 400, "missing_body")


async def test_a_body_over_the_limit_is_413(api):
    big = json.dumps({"serialNumber": "a", "notes": "x" * (MAX_BODY + 10)})
    status, body, headers = await post(api, "/network/device", big)
    text = assert_error(status, body, headers, 413, "too_large")
    assert str(MAX_BODY) in text


async def test_a_chunked_body_over_the_limit_is_413(api):
    session, base = api

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"serialNumber": "a", "notes": "'
        for _ in range(MAX_BODY // 1024 + 2):
            yield b"x" * 1024
        yield b'"}'

    headers = {"Content-Type": "application/json"}
    async with session.post(base + "/network/device", data=chunks(), headers=headers) as resp:
        assert resp.request_info.headers.get("Transfer-Encoding") == "chunked"
        assert_error(resp.status, await resp.json(), resp.headers, 413, "too_large")


async def test_a_body_just_under_the_limit_is_read(api):
    small = json.dumps({"serialNumber": "a", "notes": "x" * (MAX_BODY - 100)})
    status, body, _ = await post(api, "/network/device", small)
    assert status == 201, body


# --- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("patch", "path", "text"),
    [
        ({"wifi": {"enabled": "yes"}}, "wifi.enabled", "Input should be a valid boolean"),
        ({"wifi": {"enabled": 1}}, "wifi.enabled", "Input should be a valid boolean"),
        ({"wifi": {"enabled": "true"}}, "wifi.enabled", "Input should be a valid boolean"),
        ({"dhcp": {"leaseTime": 1.5}}, "dhcp.leaseTime", "Input should be a valid integer"),
        ({"dhcp": {"leaseTime": "10"}}, "dhcp.leaseTime", "Input should be a valid integer"),
        ({"serialNumber": 484}, "serialNumber", "Input should be a valid string"),
        ({"wifi": "on"}, "wifi", "Input should be an object"),
        ({"dhcp": {"reservedClients": {}}}, "dhcp.reservedClients", "Input should be a valid"),
        (
            {"dhcp": {"leaseTime": 0}},
            "dhcp.leaseTime",
            "Input should be greater than or equal to 1",
        ),
        ({"serialNumber": ""}, "serialNumber", "String should have at least 1 character"),
    ],
)
async def test_a_wrong_type_is_400_with_the_field_path(api, patch, path, text):
    data = {"serialNumber": "abc", **patch}
    status, body, headers = await post(api, "/network/device", json.dumps(data))
    assert assert_error(status, body, headers, 400, path).startswith(text)


async def test_a_whole_number_written_as_a_float_and_a_null_enable_are_taken(api):
    # JSON has one number type: 10.0 is what Python's json writes for a float; a null
    # enable is a property holding no value (seed 000), so the reservation is active.
    data = {
        "serialNumber": "abc",
        "dhcp": {
            "leaseTime": 10.0,
            "reservedClients": [{"mac": "123456789013", "ip": "192.168.0.10", "enable": None}],
        },
    }
    status, body, _ = await post(api, "/network/device", json.dumps(data))
    assert status == 201, body
    assert body["dhcp"]["leaseTime"] == 10 and isinstance(body["dhcp"]["leaseTime"], int)
    assert body["dhcp"]["reservedClients"][0]["enable"] is True


async def test_a_validator_message_comes_without_pydantics_prefix(api):
    data = {
        "serialNumber": "abc",
        "dhcp": {
            "reservedClients": [
                {"mac": "123456789013", "ip": "192.168.0.10"},
                {"mac": "zz", "ip": "192.168.0.11"},
            ]
        },
    }
    status, body, headers = await post(api, "/network/device", json.dumps(data))
    text = assert_error(status, body, headers, 400, "dhcp.reservedClients.1.mac")
    assert text.startswith("not a MAC address")

    # a rule of two fields names the one at fault (a client maps it to its form's field)
    data = {"serialNumber": "a", "dhcp": {"ipPoolStart": "10.0.0.9", "ipPoolEnd": "10.0.0.1"}}
    status, body, headers = await post(api, "/network/device", json.dumps(data))
    text = assert_error(status, body, headers, 400, "dhcp.ipPoolStart")
    assert text == "ipPoolStart 10.0.0.9 is after ipPoolEnd 10.0.0.1"
    twice = [{"mac": "020000000012", "ip": "192.168.5.12"},
             {"mac": "02-00-00-00-00-12", "ip": "192.168.5.13"}]  # fmt: skip
    data = {"serialNumber": "a", "dhcp": {"reservedClients": twice}}
    status, body, headers = await post(api, "/network/device", json.dumps(data))
    text = assert_error(status, body, headers, 400, "dhcp.reservedClients.1.mac")
    assert text == "MAC 02-00-00-00-00-12 is reserved twice"

    data = {"serialNumber": "a", "wifi": {"password": "short"}}
    status, body, headers = await post(api, "/network/device", json.dumps(data))
    text = assert_error(status, body, headers, 400, "wifi.password")
    assert text.startswith("WPA passphrase must be")
    assert "Value error" not in text


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"serialNumber": "a", "colour": "red"}, "colour"),
        ({"serialNumber": "a", "wifi": {"enabeld": True}}, "wifi.enabeld"),
        ({"serialNumber": "a", "status": {"online": True}}, "status"),
        (
            {
                "serialNumber": "a",
                "dhcp": {"reservedClients": [{"mac": "1", "ip": "x", "vlan": 3}]},
            },
            "dhcp.reservedClients.0.vlan",
        ),
        # A misspelt field is reported as unknown before anything else is.
        ({"serialNumber": 5, "wifi": {"enabled": "x", "sid": "a"}}, "wifi.sid"),
    ],
)
async def test_unknown_fields_are_rejected_not_ignored(api, data, path):
    status, body, headers = await post(api, "/network/device", json.dumps(data))
    assert assert_error(status, body, headers, 400, path) == "unknown field"


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({}, "serialNumber"),
        ({"name": "Johns router"}, "serialNumber"),
        (
            {"serialNumber": "a", "dhcp": {"reservedClients": [{"mac": "123456789013"}]}},
            "dhcp.reservedClients.0.ip",
        ),
    ],
)
async def test_missing_fields_are_400_with_the_path(api, data, path):
    status, body, headers = await post(api, "/network/device", json.dumps(data))
    assert assert_error(status, body, headers, 400, path) == "field required"


@pytest.mark.parametrize(
    ("data", "path", "permitted"),
    [
        ({"type": "HUB"}, "type", "ROUTER, SWITCH, AP"),
        ({"type": "router"}, "type", "ROUTER, SWITCH, AP"),
        (
            {"type": "AP", "ports": [{"kind": "LAN"}, {"kind": "DSL"}]},
            "ports.1.kind",
            "LAN, WAN, SFP",
        ),
        ({"type": "AP", "band": "6GHz"}, "band", "2.4GHz, 5GHz"),
    ],
)
async def test_a_value_outside_the_permitted_set_is_409_with_the_path(api, data, path, permitted):
    status, body, headers = await post(api, "/typed", json.dumps(data))
    text = assert_error(status, body, headers, 409, path)
    assert text == f"Value is not one of the permitted values: {permitted}"


async def test_permitted_values_are_accepted_with_json_semantics(api):
    data = {"type": "AP", "band": "5GHz", "ports": [{"kind": "WAN"}], "mode": 3}
    status, body, _ = await post(api, "/typed", json.dumps(data))
    assert status == 200, body
    assert body == data


async def test_a_union_member_name_never_reaches_the_path(api):
    status, body, headers = await post(api, "/typed", json.dumps({"type": "AP", "mode": [1]}))
    assert_error(status, body, headers, 400, "mode")


async def test_a_literal_field_given_another_type_is_409_too(api):
    status, body, headers = await post(api, "/typed", json.dumps({"type": 7}))
    text = assert_error(status, body, headers, 409, "type")
    assert text == "Value is not one of the permitted values: ROUTER, SWITCH, AP"


# --- query strings ------------------------------------------------------------------------


async def get(api, query: str) -> tuple[int, dict, dict]:
    session, base = api
    async with session.get(base + "/network/device" + query) as resp:
        return resp.status, await resp.json(), resp.headers


async def test_query_values_are_parsed_from_strings(api):
    status, body, _ = await get(api, "?limit=10&state=ACTIVE&tag=a&tag=b&online=true")
    assert status == 200, body
    assert body == {"limit": 10, "state": "ACTIVE", "tag": ["a", "b"], "online": True}


@pytest.mark.parametrize(
    ("query", "code", "path", "text"),
    [
        ("?bogus=1", 400, "bogus", "unknown query parameter"),
        ("?=1", 400, "query", "a query parameter with no name"),  # (was blamed on "body")
        ("?limit=ten", 400, "limit", "Input should be a valid integer"),
        ("?limit=1&limit=2", 400, "limit", "query parameter given more than once"),
        ("?online=maybe", 400, "online", "Input should be a valid boolean"),
        ("?state=GONE", 409, "state", "Value is not one of the permitted values: ACTIVE, "),
    ],
)
async def test_query_errors(api, query, code, path, text):
    status, body, headers = await get(api, query)
    assert assert_error(status, body, headers, code, path).startswith(text)


# --- the mapping on its own ---------------------------------------------------------------


def test_field_path_keeps_only_what_the_client_sent():
    data = {"a": [{"b": 1}], "u": "x"}
    assert field_path(("a", 0, "b"), data) == "a.0.b"
    assert field_path(("a", 0, "missing"), data, missing=True) == "a.0.missing"
    assert field_path(("u", "function-after[_mac(), str]"), data) == "u"
    assert field_path(("u", "int"), data) == "u"
    # an object sent where a number belongs: the union member is no key of the client's
    assert field_path(("o", "int"), {"o": {}}) == "o"
    assert field_path((), data) == ""


def test_validate_maps_a_validation_error_without_http():
    with pytest.raises(Exception) as caught:
        validate(Typed, {"type": "X"})
    assert (caught.value.status, caught.value.message) == (409, "type")


def test_validation_error_can_be_used_on_an_error_raised_elsewhere():
    data = {"serialNumber": "a", "wifi": {"bandsteering": "no"}}
    with pytest.raises(ValidationError) as caught:
        DeviceInput.model_validate(data, strict=True)
    err = validation_error(caught.value, data, DeviceInput)
    assert (err.status, err.message, err.description) == (
        400,
        "wifi.bandsteering",
        "Input should be a valid boolean",
    )


@pytest.mark.parametrize(
    ("data", "field"),
    [
        # "$" in a Python pattern also matches before a final newline: these slipped past.
        ({"macAddress": "aabbccddeeff\n"}, "macAddress"),
        ({"wifi": {"password": "a" * 64 + "\n"}}, "wifi.password"),
        (
            {"dhcp": {"reservedClients": [{"mac": "aabbccddee01\n", "ip": "192.0.2.5"}]}},
            "dhcp.reservedClients.0.mac",
        ),
        # A serial a router's Inform can never carry, so the record could never be reached.
        ({"serialNumber": " SN1"}, "serialNumber"),
        ({"serialNumber": "SN1\n"}, "serialNumber"),
        ({"serialNumber": "S\u0000N1"}, "serialNumber"),
        ({"name": "x" * 201}, "name"),
        ({"name": "John\u0007s router"}, "name"),
    ],
)
def test_values_no_router_could_use_are_refused_by_field(data, field):
    body = {"serialNumber": "SN1", **data}
    with pytest.raises(ValidationError) as caught:
        DeviceInput.model_validate(body, strict=True)
    assert validation_error(caught.value, body, DeviceInput).message == field
    DeviceInput.model_validate({**body, **dict.fromkeys(data, None), "serialNumber": "SN1"})


@pytest.mark.parametrize(
    "mac", ["FFFFFFFFFFFF", "00:00:00:00:00:00", "01:00:5E:00:00:01", "3333.0000.0001"]
)
async def test_no_device_has_an_all_zero_or_a_group_mac_address(api, mac):
    # No router has, and no DHCP server leases to, the all-zero address or a group one
    # (multicast, broadcast: the first octet odd); a router would fault the reservation.
    bodies = (
        ({"serialNumber": "a", "macAddress": mac}, "macAddress"),
        ({"serialNumber": "a", "dhcp": {"reservedClients": [{"mac": mac, "ip": "192.168.0.10"}]}},
         "dhcp.reservedClients.0.mac"),
    )  # fmt: skip
    for data, field in bodies:
        status, body, headers = await post(api, "/network/device", json.dumps(data))
        assert "MAC address" in assert_error(status, body, headers, 400, field)


@pytest.mark.parametrize("name", ["one\u2028two", "one\u2029two", "one\x85two"])
async def test_a_name_on_two_lines_by_a_unicode_line_break_is_refused(api, name):
    status, body, headers = await post(
        api, "/network/device", json.dumps({"serialNumber": "a", "name": name})
    )
    assert_error(status, body, headers, 400, "name")


def test_a_record_stored_before_the_tighter_rules_is_shown_as_it_is():
    # a name with U+2028 and a group MAC passed the checks of their day: shown, not a 500
    from acsd.device_view import device_view
    from acsd.store.base import DeviceRecord

    record = DeviceRecord(
        id="0" * 24, serial_number="S1", name="one\u2028two", mac_address="FFFFFFFFFFFF",
        dhcp={"reservedClients": [{"mac": "01005E000001", "ip": "192.168.0.10"}]},
    )  # fmt: skip
    shown = device_view(record, default_interval=300, grace=60).model_dump(by_alias=True)
    assert shown["name"] == "one\u2028two" and shown["macAddress"] == "FFFFFFFFFFFF"
    assert shown["dhcp"]["reservedClients"][0]["mac"] == "01005E000001"
