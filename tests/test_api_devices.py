"""Seed 000 "Network Device Create" over real HTTP: the example, field by field, and every
error the seed lists plus the ones a careful API adds."""

from __future__ import annotations

import copy
import gzip
import json
import re
import sqlite3
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from acsd.api.body import parse_json
from acsd.api.errors import ApiError
from acsd.models import NOTES_MAX
from api_world import SEED_REQUEST, World, device_body
from apiclient import Api
from conftest import lazy_world, wait_for

SEED_FILE_EXAMPLE_TAIL = '"password6G": null\n    "bandsteering": false'


@pytest.fixture
def world(module_world) -> World:
    """The module's world, on one daemon: each test makes devices (serials, MAC addresses)
    and tokens of its own. Tests that count every device, take the seed's MAC address or
    damage the database have a daemon of their own."""
    return module_world


def error(reply, status: int, message: str) -> dict:
    assert reply.status == status, (reply.status, reply.body)
    assert reply.body["code"] == status and reply.body["message"] == message, reply.body
    assert reply.body["description"]
    return reply.body


def test_seed_example_request_and_response_field_by_field(world: World):
    body = device_body(world, "own", "484t563tyehfcu38hcnb4", "123456789012")
    reply = world.api.post("/network/device", body)
    assert reply.status == 201, reply.body
    device = reply.body
    assert re.fullmatch(r"[0-9a-f]{24}", device["_id"])
    assert device["state"] == "PROVISIONING" and device["jobs"] == 1
    for key in ("name", "macAddress", "serialNumber", "mvnoAccount", "notes"):
        assert device[key] == SEED_REQUEST[key], key
    assert device["customer"] == world.customers["own"] and device["model"] == world.model
    assert device["modelType"] == "ROUTER"
    assert device["modelBrand"] == "TP-LINK"
    assert device["modelDescription"] == "5G router with 2.4/5GHz wifi and 3 ethernet ports"
    assert device["modelPicture"] == "12345678901234567890BBBB"
    # wifi: every seed value back; nulls may be omitted (seed: "properties holding no value").
    for key, value in SEED_REQUEST["wifi"].items():
        assert device["wifi"].get(key) == value, key
    for key in ("enable", "ipPoolStart", "ipPoolEnd", "leaseTime", "primaryDnsServer"):
        assert device["dhcp"][key] == SEED_REQUEST["dhcp"][key], key
    [client] = device["dhcp"]["reservedClients"]
    assert (client["mac"], client["ip"], client["enable"]) == ("123456789013", "192.168.0.10", True)
    # The router has never been seen: only what is known is in the status object.
    assert device["status"] == {"online": False, "provisioned": False}
    # The response's seed fields come in the seed's order.
    seed_order = [
        "_id", "state", "name", "model", "modelType", "modelBrand", "modelDescription",
        "modelPicture", "customer", "macAddress", "serialNumber", "mvnoAccount", "jobs",
        "notes", "wifi", "dhcp", "status",
    ]  # fmt: skip
    assert [k for k in device if k in seed_order] == seed_order

    got = world.api.get(f"/network/device/{device['_id']}")
    assert got.status == 200 and got.body == device


def test_a_reservation_enable_is_taken_as_the_seeds_table_types_it(world: World):
    # Seed 000's table types reservedClients[].enable as a String, its example as true.
    body = copy.deepcopy(device_body(world, "own", "ENABLETEXT1"))
    body["dhcp"]["reservedClients"][0]["enable"] = "False"
    reply = world.api.post("/network/device", body)
    assert reply.status == 201, reply.body
    assert reply.body["dhcp"]["reservedClients"][0]["enable"] is False
    body["dhcp"]["reservedClients"][0]["enable"] = "maybe"
    refused = world.api.patch(f"/network/device/{reply.body['_id']}", {"dhcp": body["dhcp"]})
    assert refused.status == 400 and refused.body["message"] == "dhcp.reservedClients.0.enable"


def test_errors_of_the_seed_table(daemon):
    world = lazy_world(daemon)  # a daemon of its own: the seed's MAC address is taken here
    api = world.api
    body = device_body(world, "own", "ERR0001", "123456789012")
    assert api.post("/network/device", body).status == 201

    # 409 type: a value outside the permitted set, the field path as message.
    reply = api.post("/network/model", {"name": "X", "type": "TOASTER"})
    assert "ROUTER" in error(reply, 409, "type")["description"]
    error(api.get("/network/device", query={"state": "SLEEPING"}), 409, "state")
    # 403 access_denied
    other = device_body(world, "other", "ERR0002")
    error(world.as_("OWNER").post("/network/device", other), 403, "access_denied")
    # 404 customer
    missing = {**device_body(world, "own", "ERR0003"), "customer": "0" * 24}
    error(api.post("/network/device", missing), 404, "customer")
    # 422 macAddress: in use, whatever its notation
    for mac in ("12:34:56:78:90:12", "123456789012", "12-34-56-78-90-12", "1234.5678.9012"):
        error(api.post("/network/device", device_body(world, "own", "ERR0004", mac)), 422,
              "macAddress")  # fmt: skip
    # 404 model, 409 profile (a model whose profile acsd does not know)
    error(api.post("/network/device", {**other, "model": "0" * 24}), 404, "model")
    reply = api.post("/network/model", {"name": "Y", "type": "ROUTER", "profile": "nosuch"})
    error(reply, 409, "profile")


def test_internal_error_hides_the_cause_and_gives_a_request_id(daemon):
    world = lazy_world(daemon)  # a daemon of its own: its database is damaged
    reply = world.api.post("/network/device", device_body(world, "own", "BROKEN01"))
    device_id = reply.body["_id"]
    # Damage the database behind the daemon's back: a column that every read of a device
    # names is gone (a damaged stored value reads as absent instead, see
    # test_store_damaged_rows).
    with sqlite3.connect(daemon.db) as db:
        db.execute("ALTER TABLE devices RENAME COLUMN wifi TO wifi_gone")
    reply = world.api.get(f"/network/device/{device_id}")
    body = error(reply, 500, "internal_error")
    rid = reply.headers["X-Request-Id"]
    assert rid and rid in body["description"]
    assert "Traceback" not in reply.raw.decode() and "wifi" not in body["description"].lower()
    # The log line is written as the answer goes out; give the reader thread a moment.
    wait_for(lambda: rid in daemon.log_text(), timeout=5)


def test_bad_requests_are_400_with_the_field_path(world: World):
    api = world.api
    before = api.get("/network/device", query={"limit": 1000}).body
    seed_text = json.dumps(device_body(world, "own", "BAD0001"), indent=4)
    broken = seed_text.replace('"password6G": null,', '"password6G": null')
    body = error(api.post("/network/device", raw=broken.encode()), 400, "invalid_json")
    assert "line" in body["description"] and "column" in body["description"]
    error(api.post("/network/device", raw=b"{name: 'x'}"), 400, "invalid_json")
    no_serial = device_body(world, "own", "BAD0002")
    del no_serial["serialNumber"]
    error(api.post("/network/device", no_serial), 400, "serialNumber")
    wrong = device_body(world, "own", "BAD0003")
    wrong["wifi"] = {**wrong["wifi"], "enabled": "yes please"}
    error(api.post("/network/device", wrong), 400, "wifi.enabled")
    extra = {**device_body(world, "own", "BAD0004"), "colour": "red"}
    assert "unknown" in error(api.post("/network/device", extra), 400, "colour")["description"]
    short = device_body(world, "own", "BAD0005")
    short["wifi"] = {**short["wifi"], "password": "short"}
    error(api.post("/network/device", short), 400, "wifi.password")
    bad_pool = device_body(world, "own", "BAD0006")
    bad_pool["dhcp"] = {**bad_pool["dhcp"], "ipPoolStart": "192.168.0.250"}
    error(api.post("/network/device", bad_pool), 400, "dhcp.ipPoolStart")
    reply = api.post("/network/device", raw=b"name=x", content_type="text/plain")
    assert reply.status == 415 and reply.body["code"] == 415
    huge = json.dumps({"name": "x" * (2 * 1024 * 1024)}).encode()
    reply = api.post("/network/device", raw=huge)
    assert reply.status == 413 and reply.body["code"] == 413
    error(api.get("/network/device/" + "0" * 24), 404, "not_found")
    error(api.get("/network/device/not-an-id"), 404, "not_found")
    # an id of any length is named by its start, not echoed whole (URLs may be 8 KB)
    long_id = error(api.get("/network/device/" + "z" * 6000), 404, "not_found")
    assert len(long_id["description"]) < 200, long_id
    # A filter that can match nothing is a mistake, not an empty list.
    body = error(api.get("/network/device", query={"customer": "acme"}), 400, "customer")
    assert "24 hex digits" in body["description"]
    error(api.get("/internet/account", query={"device": "x" * 24}), 400, "device")
    reply = Api(f"http://{api.host}:{api.port}/").get("/network/device")
    assert reply.status == 401 and reply.body["code"] == 401
    # Nothing of the refused requests was stored.
    listed = api.get("/network/device", query={"limit": 1000}).body
    known = {d["_id"] for d in before["items"]}
    assert [d["serialNumber"] for d in listed["items"] if d["_id"] not in known] == []
    assert listed["total"] == before["total"]


def test_list_filters_and_pages(daemon):
    world = lazy_world(daemon)  # a daemon of its own: it counts every device
    api = world.api
    for n in range(5):
        assert api.post("/network/device", device_body(world, "own", f"LIST{n:04d}")).status == 201
    assert api.post("/network/device", device_body(world, "other", "OTHER0001")).status == 201
    page = api.get("/network/device", query={"limit": 2, "offset": 0}).body
    assert page["total"] == 6 and len(page["items"]) == 2
    rest = api.get("/network/device", query={"limit": 10, "offset": 2}).body
    assert len(rest["items"]) == 4
    by_customer = api.get("/network/device", query={"customer": world.customers["other"]}).body
    assert [d["serialNumber"] for d in by_customer["items"]] == ["OTHER0001"]
    by_q = api.get("/network/device", query={"q": "list0003"}).body
    assert [d["serialNumber"] for d in by_q["items"]] == ["LIST0003"]
    # a NUL ended SQLite's LIKE pattern, and matched every device
    error(api.get("/network/device", query={"q": "\x00"}), 400, "q")
    assert api.get("/network/device", query={"online": "true"}).body["total"] == 0
    assert api.get("/network/device", query={"state": "PROVISIONING"}).body["total"] == 6


def test_patch_merges_and_bumps_the_revision_only_for_router_settings(world: World):
    api = world.api
    device = api.post("/network/device", device_body(world, "own", "PATCH001")).body
    path = f"/network/device/{device['_id']}"
    renamed = api.patch(path, {"name": "Renamed", "notes": None})
    assert renamed.status == 200 and renamed.body["name"] == "Renamed"
    assert "notes" not in renamed.body
    changed = api.patch(path, {"wifi": {"ssid": "NewName"}})
    assert changed.body["wifi"]["ssid"] == "NewName"
    assert changed.body["wifi"]["ssid5G"] == "Need4Speed"  # merged, not replaced
    error(api.patch(path, {"wifi": {"ssid": ""}}), 400, "wifi.ssid")
    error(api.patch(path, {"serialNumber": ""}), 400, "serialNumber")
    # null removes, but a device is always one router's: refused rather than ignored
    gone = error(api.patch(path, {"serialNumber": None}), 400, "serialNumber")
    assert "cannot be removed" in gone["description"]
    assert api.get(path).body["serialNumber"] == "PATCH001"
    # null puts the drift check back to its default (on)
    assert api.patch(path, {"driftCheck": False}).body["driftCheck"] is False
    assert api.patch(path, {"driftCheck": None}).body["driftCheck"] is True
    error(api.patch(path, {"macAddress": "nope"}), 400, "macAddress")
    # what a client read and sends back: the fields acsd sets are said to be so
    sent_back = api.get(path).body
    for field in ("_id", "state", "jobs", "status", "modelType"):
        said = error(api.patch(path, {field: sent_back.get(field)}), 400, field)
        assert said["description"].startswith("read-only: acsd sets it"), said
    said = error(api.patch(path, {"customer": sent_back["customer"]}), 400, "customer")
    assert said["description"].startswith("not changed by PATCH"), said
    created = error(api.post("/network/device", {**device_body(world, "own", "PATCH010"),
                                                 "state": "ACTIVE"}), 400, "state")  # fmt: skip
    assert created["description"].startswith("read-only"), created
    # a misspelt key is refused even with a null (which would remove a known one)
    assert "unknown" in error(api.patch(path, {"wifi": {"chanel": None}}), 400,
                              "wifi.chanel")["description"]  # fmt: skip
    error(api.patch(path, {"dhcp": {"leaseTme": None}}), 400, "dhcp.leaseTme")
    # a null removes the MAC address (RFC 7386), as for the other fields
    assert api.patch(path, {"macAddress": "02:00:5e:00:53:01"}).body["macAddress"]
    cleared = api.patch(path, {"macAddress": None})
    assert cleared.status == 200 and "macAddress" not in cleared.body, cleared.body
    # PATCH checks what POST checks: an escape sequence stored by one token would reach
    # the terminal of whoever lists the record
    escape = "evil\u001b]0;pwned\u0007\u001b[2J"
    # and an mvnoAccount no APN account can have (empty: linked to none; null unlinks)
    for field, value in (("name", escape), ("name", "x" * 201), ("notes", escape),
                         ("mvnoAccount", "12\u0000"), ("mvnoAccount", "12\u009b2J"),
                         ("mvnoAccount", ""), ("mvnoAccount", "  "), ("mvnoAccount", "a/b"),
                         ("mvnoAccount", "..")):  # fmt: skip
        error(api.patch(path, {field: value}), 400, field)
        error(api.post("/network/device", {**device_body(world, "own", "PATCH009"),
                                           field: value}), 400, field)  # fmt: skip
    # a pool start past the stored end: the answer names the end it is compared with
    late = error(api.patch(path, {"dhcp": {"ipPoolStart": "192.168.0.250"}}), 400,
                 "dhcp.ipPoolStart")  # fmt: skip
    # the end alone sent, before the stored start: the end is named
    error(api.patch(path, {"dhcp": {"ipPoolEnd": "192.168.0.50"}}), 400, "dhcp.ipPoolEnd")
    assert late["description"] == "ipPoolStart 192.168.0.250 is after ipPoolEnd 192.168.0.200"
    noted = api.patch(path, {"notes": "line one\n\tline two"})
    assert noted.status == 200 and noted.body["notes"] == "line one\n\tline two"
    audit = api.get("/audit").body["items"]
    update = next(e for e in audit if e["action"] == "device.update" and
                  e["after"].get("wifi", {}).get("ssid") == "NewName")  # fmt: skip
    assert update["before"]["wifi"]["password"] == "***"
    assert update["after"]["wifi"]["password"] == "***"
    assert "JohnConner" not in json.dumps(audit)
    error(world.as_("OWNER").get("/audit"), 403, "access_denied")


def test_a_patch_names_another_model_as_the_create_does(world: World):
    """A router swapped for another model: the record's model (joined into every answer as
    modelType, modelBrand...) moves with it in the same PATCH, checked as the create checks
    it; a refused one changes nothing."""
    api = world.api
    device = api.post("/network/device", device_body(world, "own", "PATCHMODEL1")).body
    path = f"/network/device/{device['_id']}"
    ont = api.post("/network/model", {"name": "HG8245", "type": "ONT", "brand": "Huawei",
                                      "profile": "huawei"}).body  # fmt: skip
    swapped = api.patch(path, {"serialNumber": "PATCHMODEL2", "model": ont["_id"].upper()})
    assert swapped.status == 200, swapped.body
    assert (swapped.body["model"], swapped.body["modelType"]) == (ont["_id"], "ONT")
    assert swapped.body["modelBrand"] == "Huawei" and "modelPicture" not in swapped.body
    before = api.get(path).body
    error(api.patch(path, {"name": "gone", "model": "0" * 24}), 404, "model")
    error(api.patch(path, {"name": "gone", "model": "nope"}), 404, "model")
    gone = error(api.patch(path, {"name": "gone", "model": None}), 400, "model")
    assert "cannot be removed" in gone["description"]
    assert api.get(path).body == before
    # as in the create, a MANAGER names models of the catalog
    managed = world.as_("MANAGER").patch(path, {"model": world.model})
    assert managed.status == 200 and managed.body["modelType"] == "ROUTER", managed.body
    audit = api.get("/audit").body["items"]
    mine = [e for e in audit if e["resourceId"] == device["_id"]]
    update = next(e for e in mine if e["action"] == "device.update")
    assert (update["before"]["model"], update["after"]["model"]) == (ont["_id"], world.model)


def test_notes_hold_a_page_of_text_and_no_more(world: World):
    """Notes were as long as a body (1 MiB): a page of 1,000 such devices was an answer of
    a GB, built in the daemon's memory for any token that may list. A page of text fits;
    one character more is the seed's 400 naming the field, and nothing is changed."""
    api = world.api
    page = ("A line of notes about the router.\n" * 400)[:NOTES_MAX]
    device = api.post("/network/device", {**device_body(world, "own", "NOTES00001"), "notes": page})
    assert device.status == 201, device.body
    path = f"/network/device/{device.body['_id']}"
    assert api.get(path).body["notes"] == page
    too_long = error(api.patch(path, {"name": "kept?", "notes": page + "x"}), 400, "notes")
    assert f"{NOTES_MAX}" in too_long["description"]
    assert api.get(path).body["notes"] == page and api.get(path).body.get("name") != "kept?"
    body = {**device_body(world, "own", "NOTES00002"), "notes": page + "x"}
    error(api.post("/network/device", body), 400, "notes")
    spec = api.get("/openapi.json").body["components"]["schemas"]
    assert spec["DevicePatch"]["properties"]["notes"]["anyOf"][0]["maxLength"] == NOTES_MAX


def test_openapi_and_docs_are_served(world: World):
    api = world.api
    spec = api.get("/openapi.json").body
    assert spec["openapi"].startswith("3.1")
    assert {"/network/device", "/network/device/{id}", "/customer", "/network/model"} <= set(
        spec["paths"]
    )
    docs = api.get("/docs")
    assert docs.status == 200 and b"/openapi.json" in docs.raw


def test_addresses_outside_the_lan_are_refused(world: World):
    api = world.api
    body = device_body(world, "own", "LAN0001")
    body["dhcp"] = {**body["dhcp"], "reservedClients": [
        {"mac": "123456789013", "ip": "10.1.2.3", "enable": True}]}  # fmt: skip
    error(api.post("/network/device", body), 400, "dhcp.reservedClients.0.ip")
    body["dhcp"] = {**body["dhcp"], "reservedClients": [], "ipPoolEnd": "192.169.0.1"}
    error(api.post("/network/device", body), 400, "dhcp.ipPoolEnd")
    twice = device_body(world, "own", "LAN0002")
    twice["dhcp"] = {**twice["dhcp"], "reservedClients": [
        {"mac": "123456789013", "ip": "192.168.0.10", "enable": True},
        {"mac": "123456789014", "ip": "192.168.0.10", "enable": True}]}  # fmt: skip
    # without a pool, reservations in networks no one LAN holds are refused as well
    apart = device_body(world, "own", "LAN0003")
    apart["dhcp"] = {"reservedClients": [
        {"mac": "020000000077", "ip": "10.0.0.5"},
        {"mac": "020000000078", "ip": "172.16.0.5"}]}  # fmt: skip
    said = error(api.post("/network/device", apart), 400, "dhcp.reservedClients.1.ip")
    assert (
        said["description"] == "172.16.0.5 is not in 10.0.0.0/16, the first reservation's network"
    )
    reserved_twice = error(api.post("/network/device", twice), 400, "dhcp.reservedClients.1.ip")
    assert "twice" in reserved_twice["description"]


def test_tokens_are_listed_without_secrets_and_revoked(world: World, module_daemon):
    daemon = module_daemon  # the world's
    token = daemon.cli("token", "create", "--role", "OWNER", "--customer",
                       world.customers["own"], "--name", "shop").stdout.strip()  # fmt: skip
    api = world.api.as_(token)
    assert api.get("/network/device").status == 200
    listing = daemon.cli("token", "list").stdout
    assert "shop" in listing and token not in listing
    token_id = next(line.split()[0] for line in listing.splitlines() if "shop" in line)
    assert daemon.cli("token", "revoke", token_id).returncode == 0
    reply = api.get("/network/device")
    assert reply.status == 401 and reply.body["message"] == "unauthorized"
    bad = daemon.cli("token", "create", "--role", "OWNER", check=False)
    assert bad.returncode == 2 and "customer" in bad.stderr
    # an ADMIN token bound to a customer would look scoped and be almighty: refused
    bad = daemon.cli("token", "create", "--role", "ADMIN", "--customer",
                     world.customers["own"], check=False)  # fmt: skip
    assert bad.returncode == 2
    assert bad.stderr.strip() == "acsd: an ADMIN token sees every customer: leave out --customer"
    with sqlite3.connect(daemon.db) as db:
        assert token not in json.dumps(db.execute("SELECT * FROM tokens").fetchall())


def test_an_offset_past_what_the_database_counts_is_400(world: World):
    for path in ("/network/device", "/customer", "/network/model", "/audit"):
        reply = world.api.get(path, query={"offset": 2**63})
        error(reply, 400, "offset")
        assert world.api.get(path, query={"offset": 2**63 - 1}).body["items"] == []


def test_a_body_that_does_not_inflate_is_400_and_no_error_in_the_log(world: World, module_daemon):
    gzip = {"Content-Encoding": "gzip"}
    reply = world.api.post("/customer", raw=b"not gzip", headers=gzip)
    description = error(reply, 400, "invalid_json")["description"]
    assert description.startswith("Body could not be read: not gzip"), description
    # Unauthenticated: answered before the body is read; aiohttp then reads the rest to
    # keep the connection (it used to inflate it, and logged the client's bad gzip as an
    # error with a traceback).
    assert world.api.as_(None).post("/customer", raw=b"not gzip", headers=gzip).status == 401
    # an encoding acsd does not inflate: 415 in the API's error form, not aiohttp's 400
    for encoding in ("br", "zstd", "compress"):
        reply = world.api.post("/customer", raw=b"{}", headers={"Content-Encoding": encoding})
        assert encoding in error(reply, 415, "unsupported_media_type")["description"]
        assert reply.headers.get("X-Request-Id")
    assert world.api.get("/healthz").status == 200
    assert not [line for line in module_daemon.lines if '"level": "error"' in line]


def test_a_transfer_coding_other_than_chunked_is_named_in_the_415(world: World):
    # aiohttp takes the chunks apart and handed the gzip on: "Body is not valid UTF-8"
    # sent the client's author looking at the JSON, not at the header.
    packed = gzip.compress(b'{"name": "Chunky", "type": "CUSTOMER"}')
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(packed), packed)
    for codings in ("gzip, chunked", "GZIP,chunked"):
        reply = world.api.post("/customer", raw=chunked, headers={"Transfer-Encoding": codings})
        description = error(reply, 415, "unsupported_media_type")["description"]
        assert "Transfer-Encoding 'gzip'" in description.replace("GZIP", "gzip"), description
    # chunked alone is read as ever
    plain = b'{"name": "Chunky", "type": "CUSTOMER"}'
    reply = world.api.post(
        "/customer",
        raw=b"%x\r\n%s\r\n0\r\n\r\n" % (len(plain), plain),
        headers={"Transfer-Encoding": "chunked"},
    )
    assert reply.status == 201, reply.body


def test_an_ssid_xml_cannot_carry_is_400(world: World):
    body = device_body(world, "own", "CTRLSSID1")
    body["wifi"] = {**body["wifi"], "ssid": "Sky\u0001Net"}
    reply = world.api.post("/network/device", body)
    assert error(reply, 400, "wifi.ssid")["description"].startswith("SSID must not contain")


def test_null_for_an_optional_field_is_as_left_out_in_every_body(world: World):
    """Clients generated from a schema send null for what they were not given; every
    optional field takes it as left out (a customer's type has a default: CUSTOMER)."""
    api = world.api
    made = api.post("/customer", {"name": "Null Type", "type": None, "reseller": None})
    assert made.status == 201, made.body
    assert made.body["type"] == "CUSTOMER"
    assert api.get(f"/customer/{made.body['_id']}").body["type"] == "CUSTOMER"
    entry = next(e for e in api.get("/audit").body["items"] if e["resourceId"] == made.body["_id"])
    assert entry["after"]["type"] == "CUSTOMER"
    error(api.post("/customer", {"name": "Bad Type", "type": "customer"}), 409, "type")
    unset = dict.fromkeys(("brand", "description", "picture", "profile"))
    model = api.post("/network/model", {"name": "Nulls", "type": "ROUTER", **unset})
    assert model.status == 201, model.body
    unset = dict.fromkeys(("name", "macAddress", "mvnoAccount", "notes", "wifi", "dhcp"))
    body = {**device_body(world, "own", "NULLS001"), **unset, "driftCheck": None}
    assert api.post("/network/device", body).status == 201
    account = {"customer": world.customers["own"], "device": None, "name": "Null line"}
    assert api.post("/internet/account", account).status == 201


def test_a_reseller_learns_nothing_of_a_customer_outside_its_tenancy(world: World):
    # "other" is a plain customer outside the reseller's tree: its type is not told (409)
    body = {"name": "Probe", "type": "CUSTOMER", "reseller": world.customers["other"]}
    error(world.as_("RESELLER").post("/customer", body), 403, "access_denied")
    # within the tenancy, the 409 still says why
    inside = {**body, "reseller": world.customers["own"]}
    error(world.as_("RESELLER").post("/customer", inside), 409, "reseller")


# --- requests that race: each answer holds, and the record is what the answers say --------


def _together(calls: list) -> list:
    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(lambda call: call(), calls))


def test_parallel_patches_of_different_fields_both_hold(world: World):
    api = world.api
    for trial in range(5):
        device = api.post("/network/device", device_body(world, "own", f"RACEP{trial:04d}")).body
        path = f"/network/device/{device['_id']}"
        ssid = {"wifi": {"ssid": f"New{trial}"}}
        lease = {"dhcp": {"leaseTime": 99}}
        replies = _together([lambda p=path, b=body: api.patch(p, b) for body in (ssid, lease)])
        assert [r.status for r in replies] == [200, 200]
        final = api.get(path).body
        assert final["wifi"]["ssid"] == f"New{trial}" and final["dhcp"]["leaseTime"] == 99
        # each change is a revision of its own: the router's ParameterKey tells them apart
        revisions = {e["after"]["revision"] for e in _audit(world, device["_id"], "device.update")}
        assert len(revisions) == 2


def test_many_parallel_patches_of_one_device_all_hold(world: World):
    # Four clients, a hundred PATCHes each, of one record: every one is applied (none is
    # told the device "kept changing"), each on top of the one before.
    api = world.api
    device = api.post("/network/device", device_body(world, "own", "RACEQ0001")).body
    path = f"/network/device/{device['_id']}"

    def client(n: int) -> list[int]:
        return [api.patch(path, {"notes": f"{n}-{i}"}).status for i in range(100)]

    with ThreadPoolExecutor(4) as pool:
        statuses = [s for many in pool.map(client, range(4)) for s in many]
    assert statuses == [200] * 400
    assert len(_audit(world, device["_id"], "device.update")) == 400


def _audit(world: World, device_id: str, action: str) -> list[dict]:
    entries = world.api.get("/audit", query={"limit": 1000}).body["items"]
    return [e for e in entries if e.get("resourceId") == device_id and e["action"] == action]


def test_parallel_creates_of_one_serial_or_one_mac_make_one_device(world: World):
    body = device_body(world, "own", "RACEC0001")
    replies = _together([lambda: world.api.post("/network/device", body)] * 10)
    assert sorted(r.status for r in replies) == [201] + [409] * 9
    assert {r.body["message"] for r in replies if r.status == 409} == {"serialNumber"}

    mac = "02:00:5e:10:20:30"
    bodies = [device_body(world, "own", f"RACEM{n:04d}", mac) for n in range(10)]
    replies = _together([lambda b=b: world.api.post("/network/device", b) for b in bodies])
    assert sorted(r.status for r in replies) == [201] + [422] * 9
    assert {r.body["message"] for r in replies if r.status == 422} == {"macAddress"}


def test_a_delete_is_not_undone_by_patches_running_with_it(world: World):
    api = world.api
    for trial in range(3):
        device = api.post("/network/device", device_body(world, "own", f"RACED{trial:04d}")).body
        path = f"/network/device/{device['_id']}"
        calls = [lambda p=path, n=n: api.patch(p, {"name": f"n{n}"}) for n in range(5)]
        replies = _together([*calls[:2], lambda p=path: api.delete(p), *calls[2:]])
        assert replies[2].status == 202
        assert {r.status for r in replies[:2] + replies[3:]} <= {200, 404}
        assert api.get(path).status == 404  # never seen by acsd: gone at once, and stays gone


def test_a_device_being_deleted_takes_no_more_changes(world: World, module_daemon):
    # A router acsd has seen (and that is online) is released at its next session; until
    # then it is DELETING.
    serial = "RACEX0001"
    device = world.api.post("/network/device", device_body(world, "own", serial)).body
    path = f"/network/device/{device['_id']}"
    with sqlite3.connect(module_daemon.db) as db:
        db.execute("UPDATE devices SET last_inform = ? WHERE id = ?", (time.time(), device["_id"]))
    assert world.api.delete(path).body["state"] == "DELETING"
    error(world.api.patch(path, {"wifi": {"ssid": "Back"}}), 422, "state")
    assert world.api.get(path).body["state"] == "DELETING"
    # Asked again, the DELETE answers as the first did and stores nothing new.
    revision = _revision(module_daemon, device["_id"])
    deletes = _audited(world, "device.delete", device["_id"])
    again = world.api.delete(path)
    assert (again.status, again.body["state"]) == (202, "DELETING")
    assert _revision(module_daemon, device["_id"]) == revision
    assert _audited(world, "device.delete", device["_id"]) == deletes == 1


def test_a_router_that_stopped_calling_in_is_deleted_at_once(world: World, module_daemon):
    # A returned or dead router never comes back to be released: its record stayed
    # DELETING for good, and its serial number and MAC refused its replacement.
    body = {**device_body(world, "own", "DEADR0001"), "macAddress": "02:00:5e:10:20:31"}
    device = world.api.post("/network/device", body).body
    path = f"/network/device/{device['_id']}"
    with sqlite3.connect(module_daemon.db) as db:
        db.execute("UPDATE devices SET last_inform = ? WHERE id = ?",
                   (time.time() - 86400, device["_id"]))  # fmt: skip
    assert world.api.delete(path).status == 202
    assert world.api.get(path).status == 404
    assert world.api.post("/network/device", body).status == 201
    # One that went silent after its DELETE is removed by the DELETE asked again.
    device = world.api.post("/network/device", device_body(world, "own", "DEADR0002")).body
    path = f"/network/device/{device['_id']}"
    with sqlite3.connect(module_daemon.db) as db:
        db.execute("UPDATE devices SET last_inform = ? WHERE id = ?", (time.time(), device["_id"]))
    assert world.api.delete(path).body["state"] == "DELETING"
    with sqlite3.connect(module_daemon.db) as db:
        db.execute("UPDATE devices SET last_inform = ? WHERE id = ?",
                   (time.time() - 86400, device["_id"]))  # fmt: skip
    assert world.api.delete(path).status == 202
    assert world.api.get(path).status == 404


def _revision(daemon, device_id: str) -> int:
    with sqlite3.connect(daemon.db) as db:
        return db.execute("SELECT revision FROM devices WHERE id = ?", (device_id,)).fetchone()[0]


def _audited(world: World, action: str, target: str) -> int:
    items = world.api.get("/audit?limit=1000").body["items"]
    return sum(1 for e in items if e["action"] == action and e.get("resourceId") == target)


def test_more_reservations_than_any_router_holds_is_400(world: World):
    body = device_body(world, "own", "MANYRES01")
    clients = [
        {"mac": f"02:00:00:00:{n // 256:02x}:{n % 256:02x}", "ip": f"10.0.{n // 256}.{n % 256}"}
        for n in range(1025)
    ]
    body["dhcp"] = {**body["dhcp"], "reservedClients": clients}
    reply = world.api.post("/network/device", body)
    assert error(reply, 400, "dhcp.reservedClients")["description"].startswith(
        "List should have at most 1024 items"
    )


def test_every_create_says_where_the_new_record_is(world: World):
    api = world.api
    customer = api.post("/customer", {"name": "Located", "type": "CUSTOMER", "reseller": None})
    model = api.post("/network/model", {"name": "Located box", "type": "ROUTER"})
    device = api.post("/network/device", device_body(world, "own", "LOCATED01"))
    account = api.post("/internet/account", {"customer": customer.body["_id"], "name": "Line"})
    for reply in (customer, model, device, account):
        assert reply.status == 201, reply.body
        location = reply.headers["Location"]
        assert location.endswith("/" + reply.body["_id"])
        assert api.get(location).body == reply.body


def test_ids_are_taken_in_any_case(world: World):
    # The seed's examples print ids in upper case; clients copy what they see.
    api = world.api
    body = device_body(world, "own", "UPPERID01")
    body["customer"], body["model"] = body["customer"].upper(), body["model"].upper()
    created = api.post("/network/device", body)
    assert created.status == 201, created.body
    device = created.body
    assert device["customer"] == world.customers["own"]  # stored as acsd writes ids
    assert api.get(f"/network/device/{device['_id'].upper()}").body == device
    listed = api.get("/network/device", query={"customer": device["customer"].upper()}).body
    assert device["_id"] in {d["_id"] for d in listed["items"]}
    assert api.get(f"/customer/{device['customer'].upper()}").status == 200


def test_a_lan_the_router_reported_as_no_address_does_not_break_a_write(
    world: World, module_daemon
):
    # What a CPE reports is stored unchecked: "N/A" as its LAN address used to turn the
    # LAN check of every later write into a 500.
    device = world.api.post("/network/device", device_body(world, "own", "LANNA0001")).body
    with sqlite3.connect(module_daemon.db) as db:
        db.execute(
            "UPDATE devices SET status = json_set(coalesce(status, '{}'), '$.lanIp', 'N/A',"
            " '$.subnetMask', '255.255.255.0') WHERE id = ?",
            (device["_id"],),
        )
    reply = world.api.patch(f"/network/device/{device['_id']}", {"dhcp": {"leaseTime": 30}})
    assert reply.status == 200, reply.body
    assert reply.body["dhcp"]["leaseTime"] == 30


def test_a_pool_outside_the_lan_reported_later_blocks_only_a_dhcp_change(
    world: World, module_daemon
):
    # The pool was written before the router first reported; its LAN turned out to be
    # another one (the job says so). A change of the name or the wifi is still the
    # operator's to make; only a dhcp that is sent is checked against the LAN.
    device = world.api.post("/network/device", device_body(world, "own", "LANLATE01")).body
    with sqlite3.connect(module_daemon.db) as db:
        db.execute(
            "UPDATE devices SET status = json_set(coalesce(status, '{}'), '$.lanIp',"
            " '192.168.1.1', '$.subnetMask', '255.255.255.0') WHERE id = ?",
            (device["_id"],),
        )
    path = f"/network/device/{device['_id']}"
    reply = world.api.patch(path, {"notes": "moved to the shop", "wifi": {"ssid": "Cafe"}})
    assert reply.status == 200, reply.body
    assert (reply.body["notes"], reply.body["wifi"]["ssid"]) == ("moved to the shop", "Cafe")
    error(world.api.patch(path, {"dhcp": {"leaseTime": 30}}), 400, "dhcp.ipPoolStart")
    pool = {"ipPoolStart": "192.168.1.100", "ipPoolEnd": "192.168.1.200", "reservedClients": []}
    reply = world.api.patch(path, {"dhcp": pool})
    assert reply.status == 200, reply.body
    assert reply.body["dhcp"]["ipPoolStart"] == "192.168.1.100"


def test_a_record_staged_with_the_cli_is_not_claimed_by_a_create(world: World, module_daemon):
    # `acsd device apply` may stage a record without a customer: its name, notes, wifi or
    # mvnoAccount are the operator's, and a POST of the serial must not drop them.
    wifi = {"enabled": True, "ssid": "Staged", "password": "staged-pass-1"}
    staged = module_daemon.apply({"serialNumber": "STAGED0001", "name": "lobby", "wifi": wifi})
    bound = module_daemon.apply({"serialNumber": "STAGED0002", "mvnoAccount": "ACME"})
    # a model, or the drift check turned off, is the operator's too
    typed = module_daemon.apply({"serialNumber": "STAGED0003", "model": world.model})
    left = module_daemon.apply({"serialNumber": "STAGED0004", "driftCheck": False})
    for record in (staged, bound, typed, left):
        reply = world.api.post("/network/device", device_body(world, "own", record["serialNumber"]))
        error(reply, 409, "serialNumber")
    kept = world.api.get(f"/network/device/{staged['_id']}").body
    assert (kept.get("customer"), kept["name"], kept["wifi"]["ssid"]) == (None, "lobby", "Staged")
    assert world.api.get(f"/network/device/{bound['_id']}").body["mvnoAccount"] == "ACME"
    assert world.api.get(f"/network/device/{left['_id']}").body["driftCheck"] is False


def test_answers_are_not_kept_by_caches(world: World):
    # A device holds its wifi passwords: no proxy or browser cache may keep the answer.
    device = world.api.post("/network/device", device_body(world, "own", "NOSTORE01")).body
    for reply in (
        world.api.get(f"/network/device/{device['_id']}"),
        world.api.get("/network/device", query={"customer": world.customers["own"]}),
        world.api.get("/v1/accounts/NOSTORE/networks/fleet"),  # the APN API's wrapper (404)
    ):
        assert reply.headers["Cache-Control"] == "no-store", reply.status


def test_naming_another_tenants_apn_account_needs_a_say_over_it(world: World, module_daemon):
    # mvnoAccount makes a router take that APN account's SIMs, IMEI lock and private APN:
    # a customer's token may not link its router to an account it has no rights on.
    account = "LINKACME"
    made = world.api.post(
        f"/v1/accounts/{account}/networks/fleet/devices/apns",
        {
            "CLI": "(+45)30000001",
            "Hints": {"BillingCycleDay": 5, "EmailContact": "ops@example.com"},
        },
    )
    assert made.status == 202, made.body
    owner = world.as_("OWNER")
    body = device_body(world, "own", "LINK000001")
    body["mvnoAccount"] = account
    denied = error(owner.post("/network/device", body), 403, "access_denied")
    assert account in denied["description"]
    body.pop("mvnoAccount")
    device = owner.post("/network/device", body)
    assert device.status == 201, device.body
    path = f"/network/device/{device.body['_id']}"
    error(owner.patch(path, {"mvnoAccount": account}), 403, "access_denied")
    assert owner.get(path).body.get("mvnoAccount") is None  # nothing stored
    # ADMIN links it; a token of the account could too
    scoped = world.api.as_(
        module_daemon.cli(
            "token", "create", "--role", "OWNER", "--name", "acme", "--customer",
            world.customers["own"], "--apn-account", account,
        ).stdout.strip()
    )  # fmt: skip
    assert scoped.patch(path, {"mvnoAccount": account}).status == 200
    # the customer may keep the link, change other fields, and unlink its own router
    assert owner.patch(path, {"mvnoAccount": account, "notes": "kept"}).status == 200
    assert owner.patch(path, {"mvnoAccount": None}).status == 200
    assert owner.get(path).body.get("mvnoAccount") is None
    # An account acsd does not know yet is no different: taken as given, the link bound
    # the router once the account's owner made it (its SIM's IMEI lock and private APN
    # went to another tenant's router). The answer is the same as for one that exists:
    # no telling which accounts there are.
    unknown = owner.patch(path, {"mvnoAccount": "12345678901234567890DDDD"})
    assert error(unknown, 403, "access_denied")["description"] == denied["description"].replace(
        account, "12345678901234567890DDDD"
    )
    assert owner.get(path).body.get("mvnoAccount") is None
    # ADMIN links a router to an account it will make later
    assert world.api.patch(path, {"mvnoAccount": "12345678901234567890DDDD"}).status == 200


def test_a_models_texts_hold_no_control_characters(world: World):
    # brand, description and picture are joined into every device of the model: an
    # escape sequence or a NUL there would reach whoever lists the devices.
    base = {"name": "Control", "type": "ROUTER"}
    for field, value in (
        ("brand", "TP-LINK\u001b[31m"),
        ("brand", "TP\nLINK"),
        ("description", "5G router\u0000"),
        ("picture", "12345678901234567890BBBB\r"),
        ("picture", "p" * 129),  # a reference (an id or a URL), not the picture itself
    ):
        error(world.api.post("/network/model", {**base, field: value}), 400, field)
    assert world.api.post("/network/model", {**base, "picture": "p" * 128}).status == 201
    made = world.api.post(
        "/network/model", {**base, "brand": "TP-LINK", "description": "5G router\n3 ports"}
    )
    assert made.status == 201, made.body
    assert world.api.get(f"/network/model/{made.body['_id']}").body["description"] == (
        "5G router\n3 ports"
    )


def test_a_setting_stored_under_older_rules_does_not_block_other_changes(
    world: World, module_daemon
):
    # An SSID of 17 characters but 34 bytes (taken when the limit was counted in
    # characters) is shown as stored; a PATCH of the name or the dhcp leaves it alone,
    # and only a PATCH of the wifi must bring it within the rules.
    device = world.api.post("/network/device", device_body(world, "own", "OLDRULES01")).body
    legacy = "\u00e9" * 17
    with sqlite3.connect(module_daemon.db) as db:
        db.execute(
            "UPDATE devices SET wifi = json_set(wifi, '$.ssid', ?) WHERE id = ?",
            (legacy, device["_id"]),
        )
    path = f"/network/device/{device['_id']}"
    assert world.api.get(path).body["wifi"]["ssid"] == legacy
    reply = world.api.patch(path, {"name": "renamed", "dhcp": {"leaseTime": 30}})
    assert reply.status == 200, reply.body
    assert (reply.body["name"], reply.body["dhcp"]["leaseTime"]) == ("renamed", 30)
    assert reply.body["wifi"]["ssid"] == legacy
    error(world.api.patch(path, {"wifi": {"enabled": False}}), 400, "wifi.ssid")
    reply = world.api.patch(path, {"wifi": {"ssid": "\u00e9" * 16}})
    assert reply.status == 200, reply.body


def test_the_openapi_document_names_the_status_the_api_answers(world: World):
    # A client generated from /openapi.json takes an undocumented status for a failure.
    paths = world.api.get("/openapi.json").body["paths"]
    device = world.api.post("/network/device", device_body(world, "own", "DOCSTAT01")).body
    deleted = world.api.delete(f"/network/device/{device['_id']}")
    assert deleted.status == 202, deleted.body
    assert str(deleted.status) in paths["/network/device/{id}"]["delete"]["responses"]
    apns = "/v1/accounts/{foreignaccountkey}/networks/{foreignkey}/devices/apns"
    listed = world.api.get("/v1/accounts/DOCSTAT/networks/fleet/devices/apns?PageSize=0")
    assert listed.status == 400, listed.body
    assert str(listed.status) in paths[apns]["get"]["responses"]


def test_nesting_too_deep_is_invalid_json_wherever_the_validator_would_stop(world: World):
    # 250 levels is well-formed JSON that Python reads, but past what the validator reads
    # (about 200): it answered with a position in acsd's re-encoding of the body.
    device = world.api.post("/network/device", device_body(world, "own", "DEEPJSON01")).body
    raw = ('{"wifi": {"ssid": ' + "[" * 250 + "]" * 250 + "}}").encode()
    reply = world.api.patch(f"/network/device/{device['_id']}", raw=raw)
    description = error(reply, 400, "invalid_json")["description"]
    assert description == "Nesting is too deep (more than 64 levels)"
    apn = world.api.post(
        "/v1/accounts/DEEPJSON/networks/fleet/devices/apns",
        raw=('{"CLI": "(+45)12345678", "ProvisioningMetaData": ' + "[" * 300 + "]" * 300 + "}")
        .encode(),
    )  # fmt: skip
    assert (apn.status, apn.body["ErrorCode"], apn.body["ErrorSubCode"]) == (400, 4000, 1)
    assert "Nesting is too deep" in apn.body["ErrorDescription"]


def test_nesting_of_64_levels_is_read_and_65_is_refused():
    # The limit is the same whatever the innermost array holds (empty, or a value).
    for inner in ("", "1"):
        assert parse_json("[" * 64 + inner + "]" * 64) is not None
        with pytest.raises(ApiError) as refused:
            parse_json("[" * 65 + inner + "]" * 65)
        assert "more than 64 levels" in str(refused.value.description)
    # brackets inside strings are not nesting
    assert parse_json(json.dumps({"notes": "[" * 500})) == {"notes": "[" * 500}


def test_a_reservation_id_is_one_short_line(world: World):
    # The seed's "r8jf84fv" is what a router assigns; an escape sequence or a NUL stored
    # there reached whoever lists the device.
    body = device_body(world, "own", "RESID0001")
    for bad in ("r8jf\u001b[2J", "r8\u0000", "r" * 65):
        body["dhcp"] = {**SEED_REQUEST["dhcp"], "reservedClients": [
            {"mac": "123456789013", "ip": "192.168.0.10", "enable": True, "id": bad}]}  # fmt: skip
        error(world.api.post("/network/device", body), 400, "dhcp.reservedClients.0.id")
    body["dhcp"] = SEED_REQUEST["dhcp"]
    made = world.api.post("/network/device", body)
    assert made.status == 201, made.body
    assert made.body["dhcp"]["reservedClients"][0]["id"] == "r8jf84fv"


def test_unknown_tokens_are_counted_and_said_without_flooding_the_log(daemon):
    # A client guessing tokens (or one left with a revoked one) got its 401s with neither a
    # log line nor a metric; one line per address a while, and a counter, now.

    guess = "acsd_" + "0" * 40
    api = Api(daemon.api_url, guess)
    for _ in range(5):
        assert api.get("/network/device").status == 401
    [line] = daemon.events("api.auth_failed")
    assert line["level"] == "warning" and line["remote"] == "127.0.0.1"
    assert guess not in daemon.log_text()
    with urllib.request.urlopen(daemon.api_url + "metrics", timeout=10) as answer:
        text = answer.read().decode()
    assert "acsd_api_auth_failures_total 5.0" in text


def test_six_ghz_takes_no_raw_key_given_or_steered_to_it(world: World):
    # 6 GHz is WPA3 alone, which takes a passphrase: a raw key was written nowhere there,
    # and the 6 GHz network kept its old password working while the job said DONE
    key = "0123456789abcdef" * 4
    for serial, wifi, field in (
        ("SIXKEY0001", {"enabled6G": True, "ssid6G": "Six", "password6G": key}, "password6G"),
        (
            "SIXKEY0002",
            {"ssid": "Home", "password": key, "bandsteering": True, "enabled6G": True},
            "password",
        ),
    ):
        body = {**device_body(world, "own", serial), "wifi": wifi}
        reply = world.api.post("/network/device", body)
        assert (reply.status, reply.body["message"]) == (400, f"wifi.{field}"), reply.body
        assert "6 GHz takes a WPA3 passphrase" in reply.body["description"]
    # a short one is refused without offering the 64-hex-digit form 6 GHz refuses
    body = {**device_body(world, "own", "SIXKEY0004"), "wifi": {"password6G": "short"}}
    reply = world.api.post("/network/device", body)
    assert (reply.status, reply.body["message"]) == (400, "wifi.password6G"), reply.body
    assert "hex" not in reply.body["description"] and "8-63" in reply.body["description"]
    # steered without asking for 6 GHz: taken (a router with 6 GHz has it switched off)
    body = {**device_body(world, "own", "SIXKEY0003"),
            "wifi": {"ssid": "Home", "password": key, "bandsteering": True}}  # fmt: skip
    assert world.api.post("/network/device", body).status == 201


def test_writes_and_refusals_leave_an_access_line_and_every_request_is_counted(
    world: World, module_daemon
):
    # A billing system's imports that were refused left no trace: the audit keeps only
    # what was written, and the log said nothing of a 400.
    body = {**device_body(world, "own", "ACCESS0001"), "wifi": {"password": "short"}}
    ours = {"X-Request-Id": "access-line-test"}  # (the module's other tests log too)
    refused = world.api.post("/network/device", body, headers=ours)
    assert refused.status == 400
    made = world.api.post("/network/device", device_body(world, "own", "ACCESS0002"), headers=ours)
    assert made.status == 201
    path = f"/network/device/{made.body['_id']}"
    assert world.api.get(path, headers=ours).status == 200
    # what anyone may send again and again is counted, not logged: a wrong token (its
    # api.auth_failed is throttled per address) and a path nothing serves
    assert world.api.as_("acsd_wrong").get(path, headers=ours).status == 401
    assert world.api.get("/no/such/path/" + "x" * 5000, headers=ours).status == 404

    def lines() -> list[dict]:
        return [
            e for e in module_daemon.events("api.request")
            if e.get("request_id") == "access-line-test"
        ]  # fmt: skip

    found = wait_for(lambda: lines() if len(lines()) >= 2 else None)
    seen = [(e["method"], e["status"]) for e in found]
    assert ("POST", 400) in seen and ("POST", 201) in seen
    assert ("GET", 200) not in seen  # reads that succeed are only counted
    assert ("GET", 401) not in seen and ("GET", 404) not in seen
    for line in found:
        # the token's record id (what `acsd token list` shows), never the token
        assert re.fullmatch(r"[0-9a-f]{24}", line["token_id"]) and line["request_id"]
        assert world.api.token not in json.dumps(line) and "short" not in json.dumps(line)
    with urllib.request.urlopen(module_daemon.api_url + "metrics", timeout=10) as answer:
        text = answer.read().decode()
    assert 'acsd_api_requests_total{method="GET",route="/network/device/{id}",status="200"}' in text
    assert 'acsd_api_requests_total{method="POST",route="/network/device",status="400"}' in text
    assert 'acsd_api_request_duration_seconds_count{method="POST",route="/network/device"}' in text
