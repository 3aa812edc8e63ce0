"""The daemon's answers are what its own /openapi.json says they are: a client generated from
the document (status codes, bodies, media types) can read every answer it gets."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest

from api_world import device_body
from apiclient import Api, Reply
from apn_client import apns_path, network_path
from spec_check import error_keys, mismatches, problems

APNS = "/v1/accounts/{foreignaccountkey}/networks/{foreignkey}/devices/apns"
APN_DEVICE = APNS + "/{device}"
NETWORK = "/v1/accounts/{foreignaccountkey}/networks/{foreignkey}"
OPERATION = "/v1/operations/{id}"


@pytest.fixture(scope="module")
def admin(module_world) -> Api:
    return module_world.api


@pytest.fixture(scope="module")
def doc(admin: Api) -> dict[str, Any]:
    reply = admin.get("/openapi.json")
    assert reply.status == 200
    return reply.body


def conforms(doc: dict[str, Any], method: str, path: str, reply: Reply) -> None:
    found = mismatches(
        doc, method, path, reply.status, reply.headers.get("Content-Type", ""), reply.body
    )
    assert not found, (method, path, reply.status, reply.raw[:400], found)


def _account() -> str:
    return f"SPEC-{uuid.uuid4().hex[:10]}"


def _apn_device(admin: Api, account: str, cli: str) -> Reply:
    body = {"CLI": cli, "Hints": {"BillingCycleDay": 1, "EmailContact": "ops@example.com"}}
    reply = admin.post(apns_path(account, "fleet"), body)
    assert reply.status == 202, reply.raw
    return reply


def test_apn_errors_are_the_wrapper_the_document_describes(admin: Api, doc):
    account = _account()
    _apn_device(admin, account, "(+45)12345678")
    anonymous = admin.as_(None)
    cases = [
        # (method, documented path, reply)
        ("GET", APN_DEVICE, admin.get(apns_path(account, "fleet", "(+45)99999999"))),
        ("GET", APNS, admin.get(apns_path("NOBODY-" + account, "fleet"))),
        ("GET", APNS, admin.get(apns_path(account, "fleet"), query={"PageSize": "0"})),
        ("GET", NETWORK, anonymous.get(network_path(account, "fleet"))),
        ("PUT", NETWORK, admin.request("PUT", network_path(account, "fleet"))),
        ("PUT", NETWORK, admin.request("PUT", network_path(account, "fleet"), raw=b"{")),
        ("POST", APNS, admin.post(apns_path(account, "fleet"), {"CLI": "nonsense"})),
        ("GET", OPERATION, admin.get("/v1/operations/0123456789abcdef01234567")),
        ("DELETE", APN_DEVICE, anonymous.delete(apns_path(account, "fleet", "(+45)12345678"))),
    ]
    for method, path, reply in cases:
        assert reply.status >= 400 and reply.body["Success"] is False, reply.raw
        conforms(doc, method, path, reply)


def test_a_url_key_the_apn_api_refuses_is_a_documented_400(admin: Api, doc):
    for method, path, url in (
        ("GET", APN_DEVICE, apns_path("\x01", "fleet", "(+45)12345678")),
        ("DELETE", APN_DEVICE, apns_path(_account(), " ", "(+45)12345678")),
        ("GET", NETWORK, network_path("\x01", "fleet")),
    ):
        reply = admin.request(method, url)
        assert (reply.status, reply.body["ErrorCode"]) == (400, 4001), reply.raw
        conforms(doc, method, path, reply)


def test_deleting_a_removed_apn_device_again_is_a_documented_200(admin: Api, doc):
    account = _account()
    _apn_device(admin, account, "(+45)12345678")
    url = apns_path(account, "fleet", "(+45)12345678")
    first, again = admin.delete(url), admin.delete(url)
    assert (first.status, again.status) == (202, 200)
    assert again.body["Data"]["EndDate"] == first.body["Data"]["EndDate"]
    conforms(doc, "DELETE", APN_DEVICE, first)
    conforms(doc, "DELETE", APN_DEVICE, again)


def test_apn_answers_in_xml_are_a_documented_media_type(admin: Api, doc):
    account = _account()
    _apn_device(admin, account, "(+45)12345678")
    for url in (apns_path(account, "fleet", "(+45)12345678"), apns_path(account, "other", "1")):
        reply = admin.get(url, headers={"Accept": "application/xml"})
        assert reply.headers["Content-Type"].startswith("application/xml")
        conforms(doc, "GET", APN_DEVICE, reply)


def _request_schema(doc: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    return doc["paths"][path][method.lower()]["requestBody"]["content"]["application/json"][
        "schema"
    ]


def test_a_reservation_enable_as_the_seed_types_it_is_one_the_document_allows(
    admin: Api, module_world, doc
):
    # seed 000: reservedClients[].enable is a String; the API takes "true"/"false" and null
    schema = _request_schema(doc, "POST", "/network/device")
    for n, enable in enumerate(("true", "False", None, False)):
        body = copy.deepcopy(device_body(module_world, "own", f"SPECRES{uuid.uuid4().hex[:8]}{n}"))
        body["dhcp"]["reservedClients"][0]["enable"] = enable
        assert problems(doc, schema, body) == [], enable
        reply = admin.post("/network/device", body)
        assert reply.status == 201, reply.body
        assert reply.body["dhcp"]["reservedClients"][0]["enable"] is (enable in ("true", None))
        conforms(doc, "POST", "/network/device", reply)


def test_the_lease_time_bounds_are_in_the_document(admin: Api, module_world, doc):
    schema = _request_schema(doc, "POST", "/network/device")
    for lease, status in ((0, 400), (5256001, 400), (1, 201), (5256000, 201)):
        body = copy.deepcopy(device_body(module_world, "own", f"SPECLEASE{uuid.uuid4().hex[:8]}"))
        body["dhcp"]["leaseTime"] = lease
        reply = admin.post("/network/device", body)
        assert reply.status == status, reply.body
        assert (problems(doc, schema, body) == []) is (status == 201), lease


def test_the_error_keys_the_operator_api_answers_are_the_documented_ones(
    admin: Api, module_world, doc
):
    # seed 000 names its errors by key (404 customer, 422 macAddress, ...): a client that
    # reads the document finds every key it can get under its status ("<field path>" and
    # "<parameter>" stand for the name of the field or query parameter)
    serial = f"SPECKEY{uuid.uuid4().hex[:8]}"
    made = admin.post("/network/device", device_body(module_world, "own", serial))
    assert made.status == 201, made.body
    unknown = "0123456789abcdef01234567"
    owner = module_world.as_("OWNER")

    def device(suffix: str, **fields: Any) -> dict[str, Any]:
        return device_body(module_world, "own", serial + suffix) | fields

    mac = made.body["macAddress"]
    line = {"customer": module_world.customers["own"], "device": made.body["_id"], "name": "x"}
    routers_line = admin.post("/internet/account", line).body["_id"]
    # started (its date has come), so its router holds it: not ended on request
    started = {"startDate": "2016-02-01T00:00:00Z",
               "net": {"ipAddress": "198.51.100.90", "subnet": "255.255.255.0",
                       "gateway": "198.51.100.1"}}  # fmt: skip
    confirmed = admin.post(f"/internet/account/{routers_line}/confirm", started)
    assert confirmed.status == 200, confirmed.body
    cases = [
        ("POST", "/network/device", admin.post("/network/device", device("")), "serialNumber"),
        ("POST", "/network/device", admin.post("/network/device", device("X", customer=unknown)),
         "customer"),
        ("POST", "/network/device", admin.post("/network/device", device("Y", model=unknown)),
         "model"),
        ("POST", "/network/device", admin.post("/network/device", device("Z", macAddress=mac)),
         "macAddress"),
        ("POST", "/network/device", owner.post("/network/device", device_body(
            module_world, "other", serial + "W")), "access_denied"),
        ("GET", "/network/device/{id}", admin.get(f"/network/device/{unknown}"), "not_found"),
        ("PATCH", "/network/device/{id}", admin.patch(f"/network/device/{unknown}", {}),
         "not_found"),
        ("DELETE", "/network/device/{id}", admin.delete(f"/network/device/{unknown}"),
         "not_found"),
        ("GET", "/network/device", admin.get("/network/device", query={"state": "GONE"}),
         "<parameter>"),
        ("POST", "/customer", admin.post("/customer", {"name": "x", "reseller": unknown}),
         "customer"),
        ("POST", "/customer", admin.post(
            "/customer", {"name": "x", "reseller": module_world.customers["own"]}), "reseller"),
        ("POST", "/customer", admin.post("/customer", {"name": "x", "type": "NOBODY"}),
         "<field path>"),
        ("GET", "/customer/{id}", admin.get(f"/customer/{unknown}"), "not_found"),
        ("POST", "/network/model", admin.post(
            "/network/model", {"name": "x", "type": "ROUTER", "profile": "nobody"}), "profile"),
        ("POST", "/network/model", admin.post("/network/model", {"name": "x", "type": "PHONE"}),
         "<field path>"),
        ("GET", "/network/model/{id}", admin.get(f"/network/model/{unknown}"), "not_found"),
        ("GET", "/internet/account", admin.get("/internet/account", query={"state": "GONE"}),
         "<parameter>"),
        ("POST", "/internet/account/{id}/end", admin.post(f"/internet/account/{unknown}/end"),
         "not_found"),
        ("POST", "/internet/account/{id}/end", owner.post(
            f"/internet/account/{routers_line}/end"), "access_denied"),
        ("POST", "/internet/account/{id}/end", admin.post(
            f"/internet/account/{routers_line}/end"), "state"),
    ]  # fmt: skip
    for method, path, reply, documented in cases:
        assert reply.status >= 400, (method, path, reply.body)
        conforms(doc, method, path, reply)
        if not documented.startswith("<"):
            assert reply.body["message"] == documented, (method, path, reply.body)
        keys = error_keys(doc, method, path, reply.status)
        assert documented in keys, (method, path, reply.status, documented, keys)
    # and the answer of an end that ends (a line for no router), as the document says
    routerless = admin.post("/internet/account", {**line, "device": None}).body["_id"]
    ended = admin.post(f"/internet/account/{routerless}/end")
    assert ended.status == 200, ended.body
    conforms(doc, "POST", "/internet/account/{id}/end", ended)


def test_the_longest_search_the_document_allows_is_answered_in_json(admin: Api, module_world, doc):
    schema = next(
        p["schema"]
        for p in doc["paths"]["/network/device"]["get"]["parameters"]
        if p["name"] == "q"
    )
    longest = "\U0001f600" * 4000  # 4 UTF-8 bytes, %F0%9F%98%80 in the URL: 48 000 bytes
    assert problems(doc, schema, longest) == []
    own = module_world.customers["own"]
    reply = admin.get("/network/device", query={"q": longest, "customer": own})
    assert reply.status == 200, reply.raw[:200]
    assert reply.body["items"] == []
    conforms(doc, "GET", "/network/device", reply)
    # one character more is refused in the API's own error form
    reply = admin.get("/network/device", query={"q": longest + "x"})
    assert (reply.status, reply.body["message"]) == (400, "q")
    conforms(doc, "GET", "/network/device", reply)


def test_query_parameters_take_no_null_the_api_would_refuse(admin: Api, doc):
    # a query string has no null: an optional parameter is left out, and ?online=null is 400
    for path in ("/network/device", "/internet/account"):
        for param in doc["paths"][path]["get"]["parameters"]:
            assert problems(doc, param["schema"], None), (path, param)
    assert admin.get("/network/device", query={"online": "null"}).status == 400
    online = next(
        p for p in doc["paths"]["/network/device"]["get"]["parameters"] if p["name"] == "online"
    )
    assert online["schema"]["type"] == "boolean" and online["required"] is False


def test_a_patch_the_document_allows_does_not_remove_the_serial_number(
    admin: Api, module_world, doc
):
    # a serial number is changed (a router swap), never removed: the document must not
    # offer null, which the API refuses
    made = admin.post("/network/device", device_body(module_world, "own", "SPECNULL01"))
    assert made.status == 201, made.body
    schema = _request_schema(doc, "PATCH", "/network/device/{id}")
    assert problems(doc, schema, {"serialNumber": None})
    assert problems(doc, schema, {"serialNumber": "SPECNULL02"}) == []
    reply = admin.patch(f"/network/device/{made.body['_id']}", {"serialNumber": None})
    assert (reply.status, reply.body["message"]) == (400, "serialNumber")
    assert "cannot be removed" in reply.body["description"]
    conforms(doc, "PATCH", "/network/device/{id}", reply)


def _param(doc: dict[str, Any], method: str, path: str, name: str) -> dict[str, Any]:
    found = doc["paths"][path][method.lower()]["parameters"]
    return next(p["schema"] for p in found if p["name"] == name)


def test_ids_and_keys_the_api_refuses_are_ones_the_document_refuses(admin: Api, module_world, doc):
    # a client that checks its values against the document gets no 400 for them
    customer = _param(doc, "GET", "/network/device", "customer")
    for value in ("nonsense", "0123456789abcdef0123456", "0123456789abcdef012345678"):
        reply = admin.get("/network/device", query={"customer": value})
        assert (reply.status, reply.body["message"]) == (400, "customer"), value
        assert problems(doc, customer, value), value
    own = module_world.customers["own"]
    assert admin.get("/network/device", query={"customer": own.upper()}).status == 200
    assert problems(doc, customer, own.upper()) == []
    assert problems(doc, _param(doc, "GET", "/internet/account", "device"), "nonsense")

    key = _param(doc, "GET", NETWORK, "foreignaccountkey")
    for value in (" ", "\x01", "x" * 129, "a\tb"):
        reply = admin.get(network_path(value, "fleet"))
        assert (reply.status, reply.body["ErrorCode"]) == (400, 4001), value
        assert problems(doc, key, value), value
    account = _account()
    _apn_device(admin, account, "(+45)12345678")
    for value in (account, "x" * 128, "ACME billing é"):
        assert problems(doc, key, value) == [], value
    assert admin.get(network_path(account, "fleet")).status == 200


def _with(body: dict[str, Any], field: str, value: Any) -> dict[str, Any]:
    """A copy of ``body`` with ``field`` (a dotted path: dhcp.reservedClients.0.ip) set."""
    body = copy.deepcopy(body)
    node: Any = body
    *parents, leaf = field.split(".")
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    node[leaf] = value
    return body


def test_the_document_and_the_api_agree_on_ssids_passphrases_and_lan_addresses(
    admin: Api, module_world, doc
):
    # a client that checks its body against the document must neither get a 400 for a
    # value the document allows nor be kept from sending one the API takes
    schema = _request_schema(doc, "POST", "/network/device")
    cases = [
        ("wifi.ssid", "", False),
        ("wifi.ssid", "x" * 33, False),
        ("wifi.ssid", "Caf\u00e9\tBar", False),
        ("wifi.ssid", "Guest\x7f", False),
        ("wifi.ssid", "Net\x85", False),  # C1 control (NEL)
        ("wifi.ssid", "x" * 32, True),
        ("wifi.ssid", "Caf\u00e9 \U0001f600", True),
        ("wifi.password", "short", False),
        ("wifi.password", "x" * 64, False),
        ("wifi.password", "pass\u00e9word", False),
        ("wifi.password5G", "tab\tinside", False),
        ("wifi.password", "", True),
        ("wifi.password", "~ !8chars", True),
        ("wifi.password", "x" * 63, True),
        ("wifi.password", "0123456789abcdef" * 3 + "ABCDEF0123456789", True),
        # 6 GHz is WPA3 alone, which takes no raw key (left on, the old one kept working)
        ("wifi.password6G", "0123456789abcdef" * 3 + "ABCDEF0123456789", False),
        ("wifi.password6G", "x" * 63, True),
        ("dhcp.primaryDnsServer", "127.0.0.1", False),
        ("dhcp.primaryDnsServer", "0.1.2.3", False),
        ("dhcp.primaryDnsServer", "224.0.0.251", False),
        ("dhcp.primaryDnsServer", "255.255.255.255", False),
        ("dhcp.reservedClients.0.ip", "239.1.2.3", False),
        # link-local: no DHCP server may lease it (RFC 3927), no router forwards to it
        ("dhcp.primaryDnsServer", "169.254.1.1", False),
        ("dhcp.ipPoolStart", "169.254.0.10", False),
        ("dhcp.primaryDnsServer", "198.51.100.53", True),
        ("dhcp.primaryDnsServer", "223.255.255.1", True),
        ("dhcp.primaryDnsServer", "1.0.0.1", True),
    ]
    for field, value, accepted in cases:
        serial = f"SPECVAL{uuid.uuid4().hex[:8]}"
        body = _with(device_body(module_world, "own", serial), field, value)
        reply = admin.post("/network/device", body)
        if accepted:
            assert reply.status == 201, (field, value, reply.body)
            assert problems(doc, schema, body) == [], (field, value)
        else:
            assert (reply.status, reply.body["message"]) == (400, field), (value, reply.body)
            assert problems(doc, schema, body), (field, value)
        conforms(doc, "POST", "/network/device", reply)
    # the byte rule is the description's to tell: maxLength counts characters
    ssid = schema_of(doc, "Wifi", "ssid")
    assert "bytes" in ssid["description"] and ssid["maxLength"] == 32
    reply = admin.post(
        "/network/device",
        _with(device_body(module_world, "own", f"SPECVAL{uuid.uuid4().hex[:8]}"), "wifi.ssid",
              "\u00e9" * 17),
    )  # fmt: skip
    assert (reply.status, reply.body["message"]) == (400, "wifi.ssid"), reply.body


def test_one_line_texts_the_api_refuses_are_ones_the_document_refuses(
    admin: Api, module_world, doc
):
    # a device's name and MVNO account, on create and on change, and the search text
    schema = _request_schema(doc, "POST", "/network/device")
    patch = _request_schema(doc, "PATCH", "/network/device/{id}")
    made = admin.post(
        "/network/device", device_body(module_world, "own", f"SPECNAME{uuid.uuid4().hex[:8]}")
    )
    assert made.status == 201, made.body
    where = f"/network/device/{made.body['_id']}"
    for field in ("name", "mvnoAccount"):
        # an APN account's key is not empty nor blank, and holds no '/' (a URL path's)
        account = field == "mvnoAccount"
        for value, accepted in (
            ("Johns\trouter", False),
            ("line\nbreak", False),
            ("bell\x07", False),
            ("csi\x9b", False),
            ("Jöhn's router \U0001f600", True),
            ("", not account),
            ("   ", not account),
            ("ACME/EU", not account),
        ):
            body = _with(
                device_body(module_world, "own", f"SPECNAME{uuid.uuid4().hex[:8]}"), field, value
            )
            reply = admin.post("/network/device", body)
            assert (reply.status == 201) is accepted, (field, value, reply.body)
            assert (problems(doc, schema, body) == []) is accepted, (field, value)
            reply = admin.patch(where, {field: value})
            assert (reply.status == 200) is accepted, (field, value, reply.body)
            assert (problems(doc, patch, {field: value}) == []) is accepted, (field, value)
            if not accepted:
                assert (reply.status, reply.body["message"]) == (400, field), reply.body
            conforms(doc, "PATCH", "/network/device/{id}", reply)
    q = _param(doc, "GET", "/network/device", "q")
    assert admin.get("/network/device", query={"q": "a\tb"}).status == 400
    assert problems(doc, q, "a\tb")


def test_a_wifi_or_dhcp_patch_is_described_as_the_api_checks_it(admin: Api, module_world, doc):
    # the sections merge into what is stored (a null removes a field) and the result is
    # checked as Wifi/Dhcp: a free-form object in the document let clients send anything
    made = admin.post(
        "/network/device", device_body(module_world, "own", f"SPECPATCH{uuid.uuid4().hex[:8]}")
    )
    assert made.status == 201, made.body
    where = f"/network/device/{made.body['_id']}"
    schema = _request_schema(doc, "PATCH", "/network/device/{id}")
    for patch, field in (
        ({"wifi": {"ssid": "x" * 33}}, "wifi.ssid"),
        ({"wifi": {"password": "short"}}, "wifi.password"),
        ({"wifi": {"enabled": "yes please"}}, "wifi.enabled"),
        ({"wifi": {"channel": 6}}, "wifi.channel"),
        ({"dhcp": {"primaryDnsServer": "127.0.0.53"}}, "dhcp.primaryDnsServer"),
        ({"dhcp": {"leaseTime": 0}}, "dhcp.leaseTime"),
        ({"dhcp": {"reservedClients": [{"mac": "not a mac", "ip": "192.0.2.7"}]}},
         "dhcp.reservedClients.0.mac"),
    ):  # fmt: skip
        reply = admin.patch(where, patch)
        assert (reply.status, reply.body["message"]) == (400, field), (patch, reply.body)
        assert problems(doc, schema, patch), patch
        conforms(doc, "PATCH", "/network/device/{id}", reply)
    for patch in (
        {"wifi": {"ssid": "Caf\u00e9", "password6G": None, "bandsteering": True}},
        {"wifi": None},
        {"dhcp": {"leaseTime": None, "primaryDnsServer": "198.51.100.53"}},
        {"dhcp": {"reservedClients": [{"mac": "020000000077", "ip": "192.168.0.77"}]}},
    ):
        assert problems(doc, schema, patch) == [], patch
        reply = admin.patch(where, patch)
        assert reply.status == 200, (patch, reply.body)
        conforms(doc, "PATCH", "/network/device/{id}", reply)


def test_metrics_are_a_described_public_text_page(admin: Api, doc):
    # a generated client (or a reader of /docs) learns what /metrics answers and that it
    # takes no token
    op = doc["paths"]["/metrics"]["get"]
    assert "x-undescribed" not in op and op["security"] == []
    assert "Prometheus" in op["summary"]
    anonymous = admin.as_(None)
    for accept in (None, "application/openmetrics-text; version=1.0.0"):
        reply = anonymous.get("/metrics", headers={"Accept": accept} if accept else {})
        assert reply.status == 200 and "acsd_build_info" in reply.raw.decode()
        conforms(doc, "GET", "/metrics", reply)
    # its errors come from the error middleware, in JSON like every other operation's
    assert set(op["responses"]["500"]["content"]) == {"application/json"}


def schema_of(doc: dict[str, Any], model: str, field: str) -> dict[str, Any]:
    """A field's schema in a request model of the document (the first non-null option)."""
    names = [name for name in doc["components"]["schemas"] if name.split("-")[0] == model]
    prop = doc["components"]["schemas"][sorted(names)[0]]["properties"][field]
    options = [o for o in prop.get("anyOf", [prop]) if o != {"type": "null"}]
    return options[0]


def test_macs_and_addresses_the_api_refuses_are_ones_the_document_refuses(
    admin: Api, module_world, doc
):
    schema = _request_schema(doc, "POST", "/network/device")
    serial = f"SPECMAC{uuid.uuid4().hex[:8]}"
    for field, value in (
        ("macAddress", "02:00-5E:10:00:01"),
        ("macAddress", "02005E10000"),
        ("dhcp.reservedClients.0.mac", "not a mac"),
        ("dhcp.reservedClients.0.ip", "192.168.0.300"),
        ("dhcp.ipPoolStart", "192.168.0"),
        ("dhcp.primaryDnsServer", "dns.example"),
    ):
        body = _with(device_body(module_world, "own", serial), field, value)
        reply = admin.post("/network/device", body)
        assert (reply.status, reply.body["message"]) == (400, field), reply.body
        assert problems(doc, schema, body), (field, value)
    for notation in (":", ".", "-"):
        digits = "02" + uuid.uuid4().hex[:10].upper()  # a MAC of its own in each notation
        step = 4 if notation == "." else 2
        mac = notation.join(digits[i : i + step] for i in range(0, 12, step))
        body = device_body(module_world, "own", f"SPECMAC{uuid.uuid4().hex[:8]}", mac=mac)
        assert problems(doc, schema, body) == [], mac
        assert admin.post("/network/device", body).status == 201, mac


def test_serial_numbers_and_notes_the_api_refuses_are_ones_the_document_refuses(
    admin: Api, module_world, doc
):
    # the document said only "1 to 64 characters" of a serial number and nothing of notes:
    # a client checking its body against it got 400s for values it allowed
    schema = _request_schema(doc, "POST", "/network/device")
    patch = _request_schema(doc, "PATCH", "/network/device/{id}")
    made = admin.post(
        "/network/device", device_body(module_world, "own", f"SPECSN{uuid.uuid4().hex[:8]}")
    )
    assert made.status == 201, made.body
    where = f"/network/device/{made.body['_id']}"
    tag = uuid.uuid4().hex[:6]
    for field, value, accepted in (
        ("serialNumber", f" LEAD{tag}", False),
        ("serialNumber", f"TRAIL{tag} ", False),
        ("serialNumber", f"NBSP{tag}\u00a0", False),  # what str.strip() takes, not only " "
        ("serialNumber", f"TAB\t{tag}", False),
        ("serialNumber", f"NEL\x85{tag}", False),
        ("serialNumber", "", False),
        ("serialNumber", f"{tag}" + "x" * 59, False),
        ("serialNumber", f"IN SIDE\u00a0{tag}", True),
        ("serialNumber", f"{tag}" + "x" * 58, True),
        ("notes", "two lines\r\nand\ta tab", True),
        ("notes", "", True),
        ("notes", "bell\x07", False),
        ("notes", "csi\x9b2J", False),
        ("notes", "nul\x00", False),
    ):
        body = device_body(module_world, "own", f"SPECSN{uuid.uuid4().hex[:8]}")
        body[field] = value
        reply = admin.post("/network/device", body)
        assert (reply.status == 201) is accepted, (field, value, reply.body)
        assert (problems(doc, schema, body) == []) is accepted, (field, value)
        if not accepted:
            assert (reply.status, reply.body["message"]) == (400, field), reply.body
        conforms(doc, "POST", "/network/device", reply)
        if field == "notes" or not accepted:  # (an accepted serial number is taken)
            reply = admin.patch(where, {field: value})
            assert (reply.status == 200) is accepted, (field, value, reply.body)
            assert (problems(doc, patch, {field: value}) == []) is accepted, (field, value)


def test_internet_lines_the_api_refuses_are_ones_the_document_refuses(
    admin: Api, module_world, doc
):
    # net's masks, addresses and failover number were plain strings in the document
    ordered = admin.post(
        "/internet/account",
        {"customer": module_world.customers["own"], "name": f"Spec line {uuid.uuid4().hex[:6]}"},
    )
    assert ordered.status == 201, ordered.body
    path = f"/internet/account/{ordered.body['_id']}/confirm"
    schema = _request_schema(doc, "POST", "/internet/account/{id}/confirm")
    good = {
        "startDate": "2016-02-01T00:00:00Z",
        "net": {"ipAddress": "198.51.100.10", "subnet": "255.255.255.0",
                "gateway": "198.51.100.1", "failover": True, "failoverNumber": "+4571919998",
                "lanNet": "203.0.113.0", "lanSubnet": "255.255.255.248"},
    }  # fmt: skip
    for field, value in (
        ("net.subnet", "255.0.255.0"),  # not contiguous
        ("net.subnet", "255.255.255.255"),  # /32: no room for a gateway
        ("net.lanSubnet", "255.255.0.0"),  # /16: wider than a range may be
        ("net.lanSubnet", "255.255.255.254"),  # /31: no address left for the customer
        ("net.ipAddress", "198.51.100"),
        ("net.failoverNumber", "45-7191"),
        ("net.failoverNumber", "12"),
    ):
        body = _with(good, field, value)
        reply = admin.post(path, body)
        assert (reply.status, reply.body["message"]) == (400, field), (value, reply.body)
        assert problems(doc, schema, body), (field, value)
    assert problems(doc, schema, good) == []
    assert admin.post(path, good).status == 200


def test_apn_members_the_api_refuses_are_ones_the_document_refuses(admin: Api, doc):
    # CLI, SIMNumber, the status enums, ProvisioningMetaData and the APN name were plain
    # strings (or any object) in the document
    account = _account()
    _apn_device(admin, account, "(+45)12345600")
    schema = _request_schema(doc, "POST", APNS)
    tag = uuid.uuid4().int % 10**6
    refused = (
        ("CLI", "12345"),
        ("CLI", "+4512345678"),
        ("SIMNumber", "89450012"),
        ("IPAddress", "198.51.100"),
        ("Status", "bogus"),
        ("Status", 7),
        ("Description", "bell\x07"),
        ("ProvisioningMetaData", {f"k{n}": "v" for n in range(65)}),
        ("ProvisioningMetaData", {"": "v"}),
    )
    for field, value in refused:
        body = {"CLI": f"(+45)22{tag:06d}", field: value}
        reply = admin.post(apns_path(account, "fleet"), body)
        assert (reply.status, reply.body["ErrorCode"]) == (400, 4001), (field, value, reply.raw)
        assert problems(doc, schema, body), (field, value)
    for n, (field, value) in enumerate((
        ("CLI", f"(+45)33{tag:06d}"),
        ("CLI", f"2380{tag:06d}1234"),  # an IMSI
        ("SIMNumber", f"89450012{tag:06d}12345"),
        ("IPAddress", "2001:db8::7"),
        ("Status", "aCtIvE"),
        ("Description", "two lines\nand\ta tab"),
        ("ProvisioningMetaData", {"plan": "m2m", "none": None}),
    )):  # fmt: skip
        body = {"CLI": f"(+45)44{tag:05d}{n}", field: value}
        assert problems(doc, schema, body) == [], (field, value)
        reply = admin.post(apns_path(account, "fleet"), body)
        assert reply.status == 202, (field, value, reply.raw)
    network = _request_schema(doc, "PUT", NETWORK)
    for name, accepted in (("iot.example", True), ("-bad.example", False), ("x" * 101, False),
                           ("x" * 65, False), ("x" * 64, False), ("x" * 63, True),
                           ("x" * 31 + "." + "x" * 32, True), ("a..b", False),
                           ("m2m", True)):  # fmt: skip
        reply = admin.request("PUT", network_path(account, "fleet"), {"APN": name})
        assert (reply.status == 200) is accepted, (name, reply.raw)
        assert (problems(doc, network, {"APN": name}) == []) is accepted, name


def test_an_ipv6_scope_id_is_refused_by_the_api_and_by_the_document(admin: Api, module_world, doc):
    # JSON Schema's ipv6 format has no scope id ("fe80::1%eth0"): the API took one in an
    # APN device's IPAddress, which names an interface of the host that wrote it, of no
    # use for the address the APN gives a SIM. The device API's DNS server and
    # reservations are IPv4 (LAN hosts): refused there by both as well.
    account = _account()
    _apn_device(admin, account, "(+45)12345601")
    schema = _request_schema(doc, "POST", APNS)
    tag = uuid.uuid4().int % 10**6
    for value in ("fe80::1%eth0", "fe80::1%1", "2001:db8::7%eth0"):
        body = {"CLI": f"(+45)55{tag:06d}", "IPAddress": value}
        reply = admin.post(apns_path(account, "fleet"), body)
        assert (reply.status, reply.body["ErrorCode"], reply.body["ErrorSubCode"]) == (
            400, 4001, 6), (value, reply.raw)  # fmt: skip
        assert "scope id" in reply.body["ErrorDescription"], reply.raw
        assert problems(doc, schema, body), value
        conforms(doc, "POST", APNS, reply)
    for n, value in enumerate(("2001:db8::8", "2001:db8::7", "198.51.100.7")):
        body = {"CLI": f"(+45)66{tag:05d}{n}", "IPAddress": value}
        assert problems(doc, schema, body) == [], value
        reply = admin.post(apns_path(account, "fleet"), body)
        assert reply.status == 202, (value, reply.raw)
        assert reply.body["Data"]["IPAddress"] == value
        conforms(doc, "POST", APNS, reply)
    device = _request_schema(doc, "POST", "/network/device")
    for field in ("dhcp.primaryDnsServer", "dhcp.reservedClients.0.ip"):
        body = _with(device_body(module_world, "own", f"SPECV6{uuid.uuid4().hex[:8]}"), field,
                     "fe80::1%eth0")  # fmt: skip
        reply = admin.post("/network/device", body)
        assert (reply.status, reply.body["message"]) == (400, field), reply.body
        assert problems(doc, device, body), field


def test_a_blank_sim_number_or_ip_address_is_left_out_by_the_api_and_the_document(admin: Api, doc):
    # a .NET client sends an unset string as "" (XML: <SIMNumber/>): the API takes it as
    # left out, and a client checking its body against the document must be let send it
    account = _account()
    _apn_device(admin, account, "(+45)12345602")
    schema = _request_schema(doc, "POST", APNS)
    tag = uuid.uuid4().int % 10**5
    for n, (field, value) in enumerate(
        (field, value)
        for field in ("SIMNumber", "IPAddress")
        for value in ("", "  ", "\t", "\u00a0")
    ):
        body = {"CLI": f"(+45)77{tag:05d}{n}", field: value}
        assert problems(doc, schema, body) == [], (field, value)
        reply = admin.post(apns_path(account, "fleet"), body)
        assert reply.status == 202, (field, value, reply.raw)
        assert reply.body["Data"][field] is None, (field, value, reply.body)
        conforms(doc, "POST", APNS, reply)
    for field, value in (("SIMNumber", " 89450012345678901234"), ("IPAddress", " x ")):
        body = {"CLI": f"(+45)88{tag:05d}0", field: value}
        reply = admin.post(apns_path(account, "fleet"), body)
        assert (reply.status, reply.body["ErrorCode"]) == (400, 4001), (field, reply.raw)
        assert problems(doc, schema, body), (field, value)


def test_the_hints_that_create_an_account_are_the_documents_new_account_hints(admin: Api, doc):
    # the rules Hints must meet to create an account were prose: a client checking its
    # Hints against the document's NewAccountHints gets no 400 for them, and is kept from
    # sending ones the API refuses
    schema = _request_schema(doc, "POST", APNS)
    hints_schema = doc["components"]["schemas"]["NewAccountHints"]
    hints_prop = doc["components"]["schemas"]["APNDevice-Input"]["properties"]["Hints"]
    assert "#/components/schemas/NewAccountHints" in str(hints_prop)
    assert "does not exist" in str(hints_prop)
    good = {"BillingCycleDay": 1, "EmailContact": "billing@example.com"}
    refused = (
        ({"BillingCycleDay": 0, "EmailContact": "billing@example.com"}, 3),
        ({"BillingCycleDay": 32, "EmailContact": "billing@example.com"}, 3),
        ({"EmailContact": "billing@example.com"}, 3),
        ({"BillingCycleDay": 1}, 4),
        ({**good, "EmailContact": "nobody"}, 4),
        ({**good, "EmailContact": "no body@example.com"}, 4),
        ({**good, "EmailContact": "bell\x07@example.com"}, 4),
        ({**good, "EmailContact": "a@" + "b" * 250 + ".dk"}, 4),
        ({**good, "TenantId": "t" * 129}, 5),
        ({**good, "TenantId": "bell\x07"}, 5),
    )
    for hints, sub in refused:
        body = {"CLI": "(+45)12345604", "Hints": hints}
        reply = admin.post(apns_path(_account(), "fleet"), body)
        assert (reply.status, reply.body["ErrorCode"], reply.body["ErrorSubCode"]) == (
            400, 4001, sub), (hints, reply.raw)  # fmt: skip
        assert problems(doc, hints_schema, hints), hints
        conforms(doc, "POST", APNS, reply)
    for hints in (
        good,
        {"BillingCycleDay": 31, "EmailContact": "ops@mail.example.com", "TenantId": "t" * 128},
        {**good, "TenantId": "two\tparts"},
    ):
        body = {"CLI": "(+45)12345605", "Hints": hints}
        assert problems(doc, hints_schema, hints) == [], hints
        assert problems(doc, schema, body) == [], hints
        reply = admin.post(apns_path(_account(), "fleet"), body)
        assert reply.status == 202, (hints, reply.raw)
        conforms(doc, "POST", APNS, reply)
    # once the account exists its devices' Hints are ignored: the document allows any
    # values there (as AccountHints), as the API takes them
    account = _account()
    _apn_device(admin, account, "(+45)12345606")
    for n, hints in enumerate(({"BillingCycleDay": 0, "EmailContact": ""}, {"TenantId": "x"})):
        body = {"CLI": f"(+45)1234561{n}", "Hints": hints}
        assert problems(doc, hints_schema, hints), hints
        assert problems(doc, schema, body) == [], hints
        reply = admin.post(apns_path(account, "fleet"), body)
        assert reply.status == 202, (hints, reply.raw)


def test_a_boolean_apn_status_is_refused_by_the_api_and_the_document(admin: Api, doc):
    # the status members are enums (a number or a name): true is neither, for either
    account = _account()
    _apn_device(admin, account, "(+45)12345603")
    schema = _request_schema(doc, "POST", APNS)
    tag = uuid.uuid4().int % 10**6
    for field in ("Status", "ActorStatus", "NetworkStatus"):
        for value in (True, False):
            body = {"CLI": f"(+45)99{tag:06d}", field: value}
            reply = admin.post(apns_path(account, "fleet"), body)
            assert (reply.status, reply.body["ErrorCode"]) == (400, 4001), (field, reply.raw)
            assert field in reply.body["ErrorDescription"], reply.raw
            assert problems(doc, schema, body), (field, value)
            conforms(doc, "POST", APNS, reply)
        # nor an object, whose error names the member, not a type of pydantic's
        reply = admin.post(apns_path(account, "fleet"), {"CLI": f"(+45)98{tag:06d}", field: {}})
        assert (reply.status, reply.body["ErrorCode"]) == (400, 4001), (field, reply.raw)
        assert reply.body["ErrorDescription"].startswith(f"{field}: "), reply.raw
