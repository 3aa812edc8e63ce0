"""Seed 002 "Internet Account Confirm" over real HTTP, with the create/get/list around it:
the seed's example field by field, every error of its table, the address checks and who may
do what."""

from __future__ import annotations

import http.client
import json
import re
import sqlite3
import time

import pytest

from api_world import World, build_world, device_body, token
from conftest import lazy_world, wait_for

# The seed's example as printed: JavaScript, not JSON (unquoted keys, single quotes).
SEED_EXAMPLE_TEXT = (
    "{ providerOrderId: '5637575637', providerName: 'TDC', startDate: '2016-02-01T00:00:00Z', "
    "circuitId: 'EM23867', installTime: '12_00_TO_16_00', net: { ipAddress: '1.2.3.4', "
    "subnet: '255.255.255.0', gateway: '1.2.3.1', failover: true, failoverNumber: '71919998' } }"
)
# The same example as a real client sends it.
SEED_EXAMPLE = {
    "providerOrderId": "5637575637",
    "providerName": "TDC",
    "startDate": "2016-02-01T00:00:00Z",
    "circuitId": "EM23867",
    "installTime": "12_00_TO_16_00",
    "net": {
        "ipAddress": "1.2.3.4",
        "subnet": "255.255.255.0",
        "gateway": "1.2.3.1",
        "failover": True,
        "failoverNumber": "71919998",
    },
}


@pytest.fixture(scope="module")
def admin_token(module_daemon) -> str:
    return token(module_daemon, "ADMIN")


@pytest.fixture
def world(module_daemon, admin_token) -> World:
    """Customers of the test's own on the module's daemon: what a test lists or counts, it
    filters by its customers; addresses it confirms are used by no other test of the module."""
    return lazy_world(module_daemon, admin_token)


def error(reply, status: int, message: str) -> dict:
    assert reply.status == status, (reply.status, reply.body)
    assert reply.body["code"] == status and reply.body["message"] == message, reply.body
    assert reply.body["description"]
    return reply.body


def order(world: World, customer: str = "own", *, device: str | None = None, as_="ADMIN"):
    body = {"customer": world.customers[customer], "device": device, "name": "Fibre 1000/1000"}
    return world.as_(as_).post("/internet/account", body)


def confirmed_line(world: World, device: str, ip: str, start: str):
    """A line ordered for ``device`` and the answer to its confirm from ``start`` on."""
    line = order(world, device=device).body["_id"]
    body = {**confirm_body(ip), "startDate": start}
    return line, world.api.post(f"/internet/account/{line}/confirm", body)


def confirm_body(ip: str, **net) -> dict:
    body = json.loads(json.dumps(SEED_EXAMPLE))
    body["net"].update({"ipAddress": ip, "gateway": ip.rsplit(".", 1)[0] + ".1"}, **net)
    return body


def test_seed_example_request_and_response_field_by_field(world: World):
    created = order(world)
    assert created.status == 201, created.body
    account = created.body
    assert re.fullmatch(r"[0-9a-f]{24}", account["_id"])
    assert account == {
        "_id": account["_id"],
        "customer": world.customers["own"],
        "device": None,
        "name": "Fibre 1000/1000",
        "state": "ORDERED",
    }
    path = f"/internet/account/{account['_id']}"

    reply = world.api.post(path + "/confirm", SEED_EXAMPLE)
    assert reply.status == 200, reply.body
    assert reply.body == {"success": True}

    got = world.api.get(path)
    assert got.status == 200
    shown = got.body
    # Its startDate (2016) has come: the account is live at once.
    assert shown["state"] == "ACTIVE"
    for key in ("_id", "customer", "device", "name"):
        assert shown[key] == account[key], key
    assert shown["providerOrderId"] == "5637575637"
    assert shown["providerName"] == "TDC"
    assert shown["startDate"] == "2016-02-01T00:00:00Z"
    assert shown["circuit"] == "EM23867"  # the example's circuitId is the seed's circuit
    assert shown["installTime"] == "12_00_TO_16_00"
    assert shown["net"] == SEED_EXAMPLE["net"]
    assert set(shown) == {
        "_id", "customer", "device", "name", "state", "providerOrderId", "providerName",
        "startDate", "circuit", "installTime", "net",
    }  # fmt: skip
    listed = world.api.get("/internet/account", query={"customer": world.customers["own"]}).body
    assert listed["total"] == 1 and listed["items"] == [shown]
    entries = world.api.get("/audit").body["items"]
    confirm = next(e for e in entries if e["action"] == "internet.confirm")
    assert confirm["resourceId"] == account["_id"]
    assert confirm["before"]["state"] == "ORDERED" and confirm["after"]["circuit"] == "EM23867"
    assert confirm["after"]["state"] == "ACTIVE" and confirm["customer"] == account["customer"]


def test_the_seed_example_as_printed_is_not_json(world: World):
    account = order(world).body
    reply = world.api.post(
        f"/internet/account/{account['_id']}/confirm", raw=SEED_EXAMPLE_TEXT.encode()
    )
    body = error(reply, 400, "invalid_json")
    assert "line 1 column 3" in body["description"]
    assert world.api.get(f"/internet/account/{account['_id']}").body["state"] == "ORDERED"


def test_errors_of_the_seed_table(daemon):
    # A daemon of its own: it damages the database, and takes the seed example's address.
    world = build_world(daemon)
    api = world.api
    first = order(world).body
    second = order(world).body
    # 404 not_found: no such account (a well-formed id or not)
    error(api.post(f"/internet/account/{'0' * 24}/confirm", SEED_EXAMPLE), 404, "not_found")
    error(api.post("/internet/account/nope/confirm", SEED_EXAMPLE), 404, "not_found")
    # 403 access_denied: confirming is for ADMIN only, even within one's own tenancy
    for role in ("RESELLER", "OWNER", "MANAGER"):
        reply = world.as_(role).post(f"/internet/account/{first['_id']}/confirm", SEED_EXAMPLE)
        error(reply, 403, "access_denied")
    assert api.post(f"/internet/account/{first['_id']}/confirm", SEED_EXAMPLE).status == 200
    # 422 state: only an ORDERED account can be confirmed
    again = api.post(f"/internet/account/{first['_id']}/confirm", confirm_body("198.51.100.2"))
    error(again, 422, "state")
    # ... whatever the body lacks: the state is what is wrong (seed 002 lists it first)
    error(api.post(f"/internet/account/{first['_id']}/confirm", {}), 422, "state")
    # 409 net.ipAddress: the address is another account's
    taken = api.post(f"/internet/account/{second['_id']}/confirm", SEED_EXAMPLE)
    error(taken, 409, "net.ipAddress")
    assert api.get(f"/internet/account/{second['_id']}").body["state"] == "ORDERED"
    ok = api.post(f"/internet/account/{second['_id']}/confirm", confirm_body("198.51.100.2"))
    assert ok.status == 200, ok.body
    # answered refusals (422, 409) are the client's answer, not the database's trouble:
    # nothing in the warning log an operator watches (`journalctl -p warning`)
    assert daemon.events("store_write_failed") == []
    # 500 internal_error: a record the database fails to write behind the daemon's back
    # (a stored value of another shape reads as absent instead: see test_store_damaged_rows)
    third = order(world).body
    with sqlite3.connect(daemon.db) as db:
        db.execute("UPDATE internet_accounts SET confirm = '{not json' WHERE id = ?",
                   (third["_id"],))  # fmt: skip
        db.execute(
            "CREATE TRIGGER damaged BEFORE UPDATE ON internet_accounts"
            f" WHEN old.id = '{third['_id']}' BEGIN SELECT RAISE(ABORT, 'damaged'); END"
        )
    assert api.get(f"/internet/account/{third['_id']}").status == 200
    reply = api.post(f"/internet/account/{third['_id']}/confirm", confirm_body("203.0.113.9"))
    body = error(reply, 500, "internal_error")
    assert reply.headers["X-Request-Id"] in body["description"]
    assert "Traceback" not in reply.raw.decode()
    # The damaged record fails only itself: others are still confirmed (their addresses
    # are checked against every line's, the damaged one's included).
    with sqlite3.connect(daemon.db) as db:
        db.execute("DROP TRIGGER damaged")
        db.execute("UPDATE internet_accounts SET ip_address = '203.0.113.9' WHERE id = ?",
                   (third["_id"],))  # fmt: skip
    fourth = order(world).body
    reply = api.post(f"/internet/account/{fourth['_id']}/confirm", confirm_body("203.0.113.19"))
    assert reply.status == 200, reply.body


# What a router could not use: net changes to the seed's example, the key, a word of the text.
BAD_ADDRESSES = [
    ({"gateway": "198.51.100.1"}, "net.gateway", "not in 1.2.3.0/24"),
    ({"gateway": "1.2.3.4"}, "net.gateway", "own address"),
    ({"gateway": "1.2.3.255"}, "net.gateway", "broadcast"),
    ({"subnet": "255.0.255.0"}, "net.subnet", "not contiguous"),
    ({"subnet": "255.255.255.255"}, "net.subnet", "/32"),
    ({"subnet": "24"}, "net.subnet", "not a subnet mask"),
    ({"ipAddress": "1.2.3"}, "net.ipAddress", "not an IPv4 address"),
    ({"ipAddress": "1.2.3.0"}, "net.ipAddress", "network or broadcast"),
    ({"ipAddress": "224.0.0.1", "gateway": "224.0.0.2"}, "net.ipAddress", "host"),
    ({"ipAddress": "0.1.2.10", "gateway": "0.1.2.9"}, "net.ipAddress", "host"),  # 0/8
    ({"failoverNumber": None}, "net.failoverNumber", "required"),
    ({"failoverNumber": "call me"}, "net.failoverNumber", "phone number"),
    ({"failoverNumber": "71919998\n"}, "net.failoverNumber", "phone number"),
    ({"lanNet": "203.0.113.8"}, "net.lanSubnet", "together"),
    ({"lanSubnet": "255.255.255.248"}, "net.lanNet", "together"),
    ({"lanNet": "203.0.113.9", "lanSubnet": "255.255.255.248"}, "net.lanNet", "203.0.113.8"),
    ({"lanNet": "203.0.113.8", "lanSubnet": "255.255.255.254"}, "net.lanSubnet", "/31"),
    ({"lanNet": "198.0.0.0", "lanSubnet": "255.0.0.0"}, "net.lanSubnet", "/20 to /30"),
    ({"lanNet": "1.2.3.128", "lanSubnet": "255.255.255.128"}, "net.lanNet", "overlaps"),
]


def test_addresses_a_router_could_not_use_are_400(world: World):
    account = order(world).body
    path = f"/internet/account/{account['_id']}/confirm"
    for net, message, text in BAD_ADDRESSES:
        body = json.loads(json.dumps(SEED_EXAMPLE))
        body["net"].update(net)
        reply = world.api.post(path, body)
        assert text in error(reply, 400, message)["description"], (net, reply.body)
    assert world.api.get(path.removesuffix("/confirm")).body["state"] == "ORDERED"


def test_bad_bodies_are_400_with_the_field_path(world: World):
    api = world.api
    path = f"/internet/account/{order(world).body['_id']}/confirm"
    no_ip = json.loads(json.dumps(SEED_EXAMPLE))
    del no_ip["net"]["ipAddress"]
    assert "required" in error(api.post(path, no_ip), 400, "net.ipAddress")["description"]
    error(api.post(path, {**SEED_EXAMPLE, "startDate": "next tuesday"}), 400, "startDate")
    # a value of any length is named by its start, not echoed whole into the answer
    huge = error(api.post(path, {**SEED_EXAMPLE, "startDate": "9" * 200_000}), 400, "startDate")
    assert len(huge["description"]) < 200 and "is not a date" in huge["description"], huge
    huge = api.post(
        path, {**SEED_EXAMPLE, "net": {**SEED_EXAMPLE["net"], "ipAddress": "1" * 200_000}}
    )
    assert len(error(huge, 400, "net.ipAddress")["description"]) < 200
    # ISO 8601 forms no client means (week and ordinal dates, the basic format, an hour
    # alone, an offset without its colon), no such day, digits that are not ASCII
    for start in ("2026-W01-1", "2026-001", "20260101T000000Z", "2026-01-01T00Z",
                  "2026-01-01T00:00:00+0100", "2026-02-30",
                  "\uff12\uff10\uff12\uff16-01-01"):  # fmt: skip
        reply = api.post(path, {**SEED_EXAMPLE, "startDate": start})
        assert "RFC 3339" in error(reply, 400, "startDate")["description"], start
    reply = api.post(path, {**SEED_EXAMPLE, "startDate": "9999-12-31T23:59:59-23:59"})
    assert "±14:00" in error(reply, 400, "startDate")["description"]
    error(api.post(path, {**SEED_EXAMPLE, "colour": "red"}), 400, "colour")
    bad_type = json.loads(json.dumps(SEED_EXAMPLE))
    bad_type["net"]["failover"] = "yes"
    error(api.post(path, bad_type), 400, "net.failover")
    both = error(api.post(path, {**SEED_EXAMPLE, "circuit": "EM1"}), 400, "circuitId")
    assert "another name for circuit" in both["description"]  # not "unknown field"
    for field in ("providerOrderId", "providerName", "circuitId", "installTime"):
        reply = api.post(path, {**SEED_EXAMPLE, field: "x\u001b[2J"})
        assert "control characters" in error(reply, 400, field)["description"]
    assert api.get(path.removesuffix("/confirm")).body["state"] == "ORDERED"
    # A date alone is accepted (midnight UTC), and circuit under its own name.
    fine = {**confirm_body("192.0.2.10"), "startDate": "2016-02-01", "circuit": "EM1"}
    del fine["circuitId"]
    assert api.post(path, fine).status == 200
    assert api.get(path.removesuffix("/confirm")).body["circuit"] == "EM1"
    # RFC 3339's lower-case t and z, a space for the T, a fraction finer than microseconds
    for n, start in enumerate(("2016-02-01t00:00:00z", "2016-02-01 00:00:00+14:00",
                               "2016-02-01T00:00:00.123456789Z"), start=11):  # fmt: skip
        other = f"/internet/account/{order(world).body['_id']}/confirm"
        body = {**confirm_body(f"192.0.2.{n}"), "startDate": start}
        assert api.post(other, body).status == 200, start
        assert api.get(other.removesuffix("/confirm")).body["startDate"] == start


def test_create_errors_and_who_may_order(world: World):
    # RESELLER of the customer (its tree) and OWNER of it may order; MANAGER may not.
    assert order(world, "own", as_="RESELLER").status == 201
    assert order(world, "subs_customer", as_="RESELLER").status == 201
    assert order(world, "own", as_="OWNER").status == 201
    error(order(world, "own", as_="MANAGER"), 403, "access_denied")
    # Another customer's: 403 for an OWNER and for a reseller it is not under.
    error(order(world, "other", as_="OWNER"), 403, "access_denied")
    error(order(world, "other", as_="RESELLER"), 403, "access_denied")
    body = {"customer": "0" * 24, "device": None, "name": "x"}
    error(world.api.post("/internet/account", body), 404, "customer")
    body = {"customer": world.customers["own"], "device": "0" * 24, "name": "x"}
    error(world.api.post("/internet/account", body), 404, "device")
    other_device = world.api.post("/network/device", device_body(world, "other", "NETOTHER1"))
    body["device"] = other_device.body["_id"]
    refused = error(world.api.post("/internet/account", body), 409, "device")
    assert "another customer" in refused["description"]
    # (an OWNER is not told that another customer's device exists)
    error(world.as_("OWNER").post("/internet/account", body), 404, "device")
    error(world.api.post("/internet/account", {**body, "name": ""}), 400, "name")
    error(world.api.post("/internet/account", {"customer": body["customer"]}), 400, "name")


def test_tenancy_of_get_and_list(world: World):
    own = order(world, "own").body
    other = order(world, "other").body
    owner = world.as_("OWNER")
    assert owner.get(f"/internet/account/{own['_id']}").body == own
    assert world.as_("MANAGER").get(f"/internet/account/{own['_id']}").status == 200
    error(owner.get(f"/internet/account/{other['_id']}"), 404, "not_found")
    assert [a["_id"] for a in owner.get("/internet/account").body["items"]] == [own["_id"]]
    error(owner.get("/internet/account", query={"customer": world.customers["other"]}), 403,
          "access_denied")  # fmt: skip
    everyone = world.api.get("/internet/account", query={"limit": 1000}).body["items"]
    assert {own["_id"], other["_id"]} <= {a["_id"] for a in everyone}
    for name, account in (("own", own), ("other", other)):
        mine = world.api.get("/internet/account", query={"customer": world.customers[name]})
        assert mine.body["total"] == 1 and mine.body["items"] == [account]
    error(world.api.get("/internet/account", query={"state": "GONE"}), 409, "state")
    error(world.api.get(f"/internet/account/{'0' * 24}"), 404, "not_found")


def test_a_future_start_date_is_confirmed_until_it_comes(world: World):
    api = world.api
    account = order(world).body
    path = f"/internet/account/{account['_id']}"
    start = time.time() + 1.5
    body = confirm_body("198.51.100.6", gateway="198.51.100.5", subnet="255.255.255.252")
    body["startDate"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(start)) + "Z"
    assert api.post(path + "/confirm", body).status == 200
    assert api.get(path).body["state"] == "CONFIRMED"
    own = world.customers["own"]
    confirmed = {"state": "CONFIRMED", "customer": own}
    active = {"state": "ACTIVE", "customer": own}
    assert api.get("/internet/account", query=confirmed).body["total"] == 1
    assert api.get("/internet/account", query=active).body["total"] == 0
    time.sleep(max(0.0, start + 0.2 - time.time()))
    assert api.get(path).body["state"] == "ACTIVE"
    assert api.get("/internet/account", query=active).body["total"] == 1


def test_the_api_description_lists_the_internet_resource(world: World):
    paths = world.api.get("/openapi.json").body["paths"]
    confirm = paths["/internet/account/{id}/confirm"]["post"]
    assert {"200", "403", "404", "409", "422", "500"} <= set(confirm["responses"])
    end = paths["/internet/account/{id}/end"]["post"]
    assert {"200", "403", "404", "422", "500"} <= set(end["responses"])
    assert {"get", "post"} <= set(paths["/internet/account"])


def test_an_account_no_longer_names_a_device_that_was_deleted(world: World):
    device = world.api.post("/network/device", device_body(world, "own", "NETGONE01")).body
    account = order(world, device=device["_id"]).body
    assert account["device"] == device["_id"]
    # Never seen by acsd: the DELETE removes the record at once.
    assert world.api.delete(f"/network/device/{device['_id']}").status == 202
    shown = world.api.get(f"/internet/account/{account['_id']}").body
    assert shown.get("device") is None
    listed = world.api.get("/internet/account", query={"device": device["_id"]}).body
    assert listed["items"] == []


def test_a_line_whose_router_was_deleted_moves_to_the_customers_new_router(world: World):
    def router(serial: str) -> str:
        body = {**device_body(world, "own", serial), "wifi": None, "dhcp": None}
        reply = world.api.post("/network/device", body)
        assert reply.status == 201, reply.body
        return reply.body["_id"]

    def confirm(account: str, ip: str, **net):
        return world.api.post(f"/internet/account/{account}/confirm", confirm_body(ip, **net))

    ranged = {"lanNet": "203.0.113.64", "lanSubnet": "255.255.255.240"}
    old = order(world, device=router("SWAPGONE1")).body
    assert confirm(old["_id"], "198.51.100.40", **ranged).status == 200
    kept = order(world).body  # a line of the customer's at no router acsd manages
    assert confirm(kept["_id"], "198.51.100.50").status == 200
    # The old router's record is deleted instead of swapped (PATCH serialNumber).
    assert world.api.delete(f"/network/device/{old['device']}").status == 202
    # Another customer's router cannot take the line's address.
    theirs = world.api.post("/network/device", {**device_body(world, "other", "SWAPTHEIRS")})
    foreign = order(world, "other", device=theirs.body["_id"]).body
    error(confirm(foreign["_id"], "198.51.100.40"), 409, "net.ipAddress")
    # Nor does a line of the customer's ordered for no router: the address is still taken.
    routerless = order(world).body
    error(confirm(routerless["_id"], "198.51.100.40"), 409, "net.ipAddress")

    new = order(world, device=router("SWAPNEW01")).body
    reply = confirm(new["_id"], "198.51.100.40", **ranged)
    assert reply.status == 200, reply.body
    shown = world.api.get(f"/internet/account/{new['_id']}").body
    assert shown["state"] == "ACTIVE" and shown["device"] == new["device"]
    assert world.api.get(f"/internet/account/{old['_id']}").body["state"] == "ENDED"
    assert world.api.get(f"/internet/account/{kept['_id']}").body["state"] == "ACTIVE"


def test_no_line_is_ordered_for_a_device_being_deleted(world: World, module_daemon):
    # Seen by acsd: the DELETE leaves it DELETING until its router's next session, when the
    # record goes and takes the account's link with it: refused as a PATCH of it is.
    device = world.api.post("/network/device", device_body(world, "own", "NETLEAVE1")).body
    with sqlite3.connect(module_daemon.db) as db:
        # (seen, and online: a DELETE of a router that is not goes at once)
        db.execute("UPDATE devices SET last_inform = ? WHERE id = ?", (time.time(), device["_id"]))
    assert world.api.delete(f"/network/device/{device['_id']}").body["state"] == "DELETING"
    body = error(order(world, device=device["_id"]), 422, "state")
    assert "being deleted" in body["description"]
    listed = world.api.get("/internet/account", query={"customer": world.customers["own"]})
    assert listed.body["items"] == []


def test_a_line_that_would_never_reach_its_router_is_409(world: World, module_daemon):
    # The router applies the line that started last: a second line starting no later than
    # the one it has would be ACTIVE and never sent.
    reply = world.api.post(
        "/network/device", {**device_body(world, "own", "LINES-1"), "wifi": None, "dhcp": None}
    )
    assert reply.status == 201, reply.body
    device = reply.body["_id"]
    first = order(world, device=device).body["_id"]
    body = {**confirm_body("192.0.2.210"), "startDate": "2017-01-01T00:00:00Z"}
    assert world.api.post(f"/internet/account/{first}/confirm", body).status == 200
    second = order(world, device=device).body["_id"]
    for start in ("2015-01-01T00:00:00Z", "2017-01-01T00:00:00Z"):
        body = {**confirm_body("192.0.2.220"), "startDate": start}
        reply = world.api.post(f"/internet/account/{second}/confirm", body)
        assert first in error(reply, 409, "startDate")["description"]
    assert world.api.get(f"/internet/account/{second}").body["state"] == "ORDERED"
    # A line that starts later takes over (an upgrade, a new address).
    body = {**confirm_body("192.0.2.220"), "startDate": "2018-01-01T00:00:00Z"}
    assert world.api.post(f"/internet/account/{second}/confirm", body).status == 200
    # One confirmed for a date years off (a typo) stands in the way of every later line
    # until it is withdrawn: not started, it reached no router, and ends on request.
    typo, reply = confirmed_line(world, device, "192.0.2.230", "2999-01-01T00:00:00Z")
    assert reply.status == 200, reply.body
    fixed, reply = confirmed_line(world, device, "192.0.2.230", "2019-01-01T00:00:00Z")
    assert typo in error(reply, 409, "startDate")["description"]
    # a body is no schedule: a line told when to end would have ended at once
    late = {"endDate": "2999-06-01T00:00:00Z"}
    error(world.api.post(f"/internet/account/{typo}/end", late), 400, "endDate")
    assert world.api.get(f"/internet/account/{typo}").body["state"] != "ENDED"
    # an empty body, chunked, is no body (a client library's empty POST)
    conn = http.client.HTTPConnection(world.api.host, world.api.port, timeout=10)
    conn.request("POST", f"/internet/account/{typo}/end", body=iter([]), encode_chunked=True,
                 headers={"Authorization": f"Bearer {world.api.token}",
                          "Transfer-Encoding": "chunked"})  # fmt: skip
    answer = conn.getresponse()
    assert (answer.status, json.loads(answer.read())) == (200, {"success": True})
    conn.close()
    assert world.api.post(f"/internet/account/{typo}/end", {}).body == {"success": True}
    # again: nothing changes, and the log does not say it ended again
    assert world.api.post(f"/internet/account/{typo}/end").body == {"success": True}
    body = {**confirm_body("192.0.2.230"), "startDate": "2019-01-01T00:00:00Z"}
    assert world.api.post(f"/internet/account/{fixed}/confirm", body).status == 200
    # The log comes through a pipe: once the later confirmation is in it, so is any second
    # "ended" line.
    wait_for(
        lambda: any(e.get("account") == fixed for e in module_daemon.events("internet.confirmed"))
    )
    said = [e for e in module_daemon.events("internet.ended") if e.get("account") == typo]
    assert len(said) == 1, said
    # the router's line in use holds its settings: ended only by its router's next line
    assert world.api.get(f"/internet/account/{second}").body["state"] == "ENDED"
    error(world.api.post(f"/internet/account/{fixed}/end"), 422, "state")


def test_a_line_for_an_unclaimed_router_says_to_claim_it_first(world: World, module_daemon):
    # (it said the router "belongs to another customer": it belongs to none yet)
    import asyncio

    from acsd.sim.runner import Simulation

    sim = Simulation(module_daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="NETUNCL")
    assert asyncio.run(sim.run_once()).ok == 1
    unclaimed = module_daemon.device_json(sim.routers[0].serial)
    body = {"customer": world.customers["own"], "device": unclaimed["_id"], "name": "x"}
    reply = world.api.post("/internet/account", body)
    assert "POST /network/device" in error(reply, 409, "device")["description"]


def test_addresses_inside_another_lines_additional_range_are_409(world: World):
    def line(ip: str, lan: str | None = None, mask: str = "255.255.255.240", **extra) -> dict:
        # a /30: the gateway is the address just below the line's
        prefix, last = ip.rsplit(".", 1)
        net = {"subnet": "255.255.255.252", "gateway": f"{prefix}.{int(last) - 1}"}
        if lan:
            net |= {"lanNet": lan, "lanSubnet": mask}
        return {**confirm_body(ip, **net), **extra}

    reply = world.api.post(
        "/network/device", {**device_body(world, "own", "RANGE-1"), "wifi": None, "dhcp": None}
    )
    device = reply.body["_id"]
    first = order(world, device=device).body["_id"]
    reply = world.api.post(f"/internet/account/{first}/confirm", line("192.0.2.134", "192.0.2.144"))
    assert reply.status == 200, reply.body

    def refused(body: dict, field: str, fragment: str) -> None:
        account = order(world).body["_id"]
        reply = world.api.post(f"/internet/account/{account}/confirm", body)
        assert fragment in error(reply, 409, field)["description"]
        assert first in reply.body["description"]
        assert world.api.get(f"/internet/account/{account}").body["state"] == "ORDERED"

    # the line's address is one the other customer's router hands out on its LAN
    refused(line("192.0.2.150"), "net.ipAddress", "192.0.2.150 is in 192.0.2.144/28")
    # the additional range overlaps the other one, or holds the other line's address
    refused(line("192.0.2.138", "192.0.2.152", "255.255.255.248"), "net.lanNet", "overlaps")
    refused(line("192.0.2.170", "192.0.2.128", "255.255.255.248"), "net.lanNet",
            "192.0.2.128/29 holds 192.0.2.134")  # fmt: skip
    # The same router's next line (an upgrade) keeps the customer's range.
    upgrade = order(world, device=device).body["_id"]
    body = line("192.0.2.174", "192.0.2.144", startDate="2030-01-01T00:00:00Z")
    reply = world.api.post(f"/internet/account/{upgrade}/confirm", body)
    assert reply.status == 200, reply.body


def test_a_lines_gateway_is_no_other_lines_address_and_the_other_way_round_409(world: World):
    # One line's gateway is the provider's address: no line takes it, nor holds it in its
    # range; and no line's way out is another line's router, or an address in its range.
    # Lines on one provider network share their gateway.
    def line(ip: str, gateway: str, mask: str = "255.255.255.240", **net) -> dict:
        return confirm_body(ip, subnet=mask, gateway=gateway, **net)

    first = order(world).body["_id"]
    body = line("198.51.100.200", "198.51.100.193", lanNet="203.0.113.240",
                lanSubnet="255.255.255.240")  # fmt: skip
    reply = world.api.post(f"/internet/account/{first}/confirm", body)
    assert reply.status == 200, reply.body

    def refused(body: dict, field: str, fragment: str) -> None:
        account = order(world).body["_id"]
        reply = world.api.post(f"/internet/account/{account}/confirm", body)
        assert fragment in error(reply, 409, field)["description"]
        assert first in reply.body["description"]
        assert world.api.get(f"/internet/account/{account}").body["state"] == "ORDERED"

    refused(line("198.51.100.193", "198.51.100.194"), "net.ipAddress",
            "198.51.100.193 is the gateway of internet account")  # fmt: skip
    refused(line("198.51.100.201", "198.51.100.200"), "net.gateway",
            "198.51.100.200 is the address of internet account")  # fmt: skip
    refused(line("203.0.113.226", "203.0.113.241", "255.255.255.224"), "net.gateway",
            "203.0.113.241 is in 203.0.113.240/28, the additional range")  # fmt: skip
    refused(line("203.0.113.234", "203.0.113.233", lanNet="198.51.100.192",
                 lanSubnet="255.255.255.252"), "net.lanNet",
            "198.51.100.192/30 holds 198.51.100.193, the gateway")  # fmt: skip
    # another line behind the same gateway
    shared = order(world).body["_id"]
    reply = world.api.post(
        f"/internet/account/{shared}/confirm", line("198.51.100.201", "198.51.100.193")
    )
    assert reply.status == 200, reply.body


def audit_of(world: World, resource_id: str, action: str) -> list[dict]:
    entries = world.api.get("/audit", query={"limit": 1000}).body["items"]
    return [e for e in entries if e.get("resourceId") == resource_id and e["action"] == action]


def router_of(world: World, serial: str) -> str:
    body = {**device_body(world, "own", serial), "wifi": None, "dhcp": None}
    reply = world.api.post("/network/device", body)
    assert reply.status == 201, reply.body
    return reply.body["_id"]


def test_the_audit_log_says_why_a_line_ended(world: World):
    # An upgrade: the router's new line, live at once, ends the old one.
    device = router_of(world, "ENDWHY-1")
    old, reply = confirmed_line(world, device, "203.0.113.210", "2016-01-01T00:00:00Z")
    assert reply.status == 200, reply.body
    upgrade, reply = confirmed_line(world, device, "203.0.113.211", "2017-01-01T00:00:00Z")
    assert reply.status == 200, reply.body
    [entry] = audit_of(world, old, "internet.end")
    assert entry["customer"] == world.customers["own"] and entry["role"] == "ADMIN"
    assert entry["requestId"] == reply.headers["X-Request-Id"]  # the confirm that ended it
    assert entry["before"] == {"state": "ACTIVE", "device": device, "ipAddress": "203.0.113.210"}
    after = entry["after"]
    assert (after["state"], after["reason"], after["replacedBy"]) == ("ENDED", "superseded",
                                                                      upgrade)  # fmt: skip
    # The router's record is deleted, and the customer's new router takes the address.
    assert world.api.delete(f"/network/device/{device}").status == 202
    moved = order(world, device=router_of(world, "ENDWHY-2")).body["_id"]
    reply = world.api.post(f"/internet/account/{moved}/confirm", confirm_body("203.0.113.211"))
    assert reply.status == 200, reply.body
    [entry] = audit_of(world, upgrade, "internet.end")
    assert entry["before"]["ipAddress"] == "203.0.113.211" and entry["before"]["device"] is None
    assert entry["after"]["reason"] == "taken_over" and entry["after"]["replacedBy"] == moved
    assert "deleted" in entry["after"]["description"]
    assert audit_of(world, moved, "internet.end") == []


def test_an_admin_ends_a_line_that_names_no_router(world: World):
    device = router_of(world, "ENDME-1")
    line = order(world, device=device).body["_id"]
    ranged = {"lanNet": "198.51.100.232", "lanSubnet": "255.255.255.248"}
    reply = world.api.post(f"/internet/account/{line}/confirm",
                           confirm_body("203.0.113.220", **ranged))  # fmt: skip
    assert reply.status == 200, reply.body
    path = f"/internet/account/{line}/end"
    # While its router holds it: the router's next line ends it.
    body = error(world.api.post(path), 422, "state")
    assert device in body["description"]
    # (that router never called in: it holds nothing of the line, and is not said to)
    assert "holds its settings" not in body["description"], body
    assert "never called in: delete its record" in body["description"], body
    assert world.api.get(f"/internet/account/{line}").body["state"] == "ACTIVE"
    # The router's record is deleted; no line of the customer's takes the address over.
    assert world.api.delete(f"/network/device/{device}").status == 202
    for role in ("RESELLER", "OWNER", "MANAGER"):
        error(world.as_(role).post(path), 403, "access_denied")
    error(world.api.post(f"/internet/account/{'0' * 24}/end"), 404, "not_found")
    error(world.api.post("/internet/account/nope/end"), 404, "not_found")
    assert world.api.get(f"/internet/account/{line}").body["state"] == "ACTIVE"
    assert audit_of(world, line, "internet.end") == []

    reply = world.api.post(path)
    assert reply.status == 200 and reply.body == {"success": True}
    assert world.api.get(f"/internet/account/{line}").body["state"] == "ENDED"
    [entry] = audit_of(world, line, "internet.end")
    assert entry["requestId"] == reply.headers["X-Request-Id"] and entry["role"] == "ADMIN"
    assert entry["customer"] == world.customers["own"]
    assert entry["before"] == {"state": "ACTIVE", "device": None, "ipAddress": "203.0.113.220",
                               **ranged}  # fmt: skip
    assert entry["after"]["reason"] == "ended" and "replacedBy" not in entry["after"]
    # Again: the same answer, nothing changes, no second entry.
    assert world.api.post(path).body == {"success": True}
    assert len(audit_of(world, line, "internet.end")) == 1
    # Its address and range are free: another customer's line takes them.
    theirs = order(world, "other").body["_id"]
    reply = world.api.post(f"/internet/account/{theirs}/confirm",
                           confirm_body("203.0.113.220", **ranged))  # fmt: skip
    assert reply.status == 200, reply.body


def test_a_leap_second_start_is_the_first_second_of_the_next_minute():
    # RFC 3339 allows second 60; it was refused as "not an RFC 3339 date-time"
    from acsd.api.internet import start_of

    assert start_of("2016-12-31T23:59:60Z") == start_of("2017-01-01T00:00:00Z")
    assert start_of("2016-12-31T23:59:60.5+00:00") == start_of("2017-01-01T00:00:00.5Z")
    for wrong in ("2016-12-31T23:59:61Z", "2016-12-31T23:60:00Z", "2016-12-31T24:59:60Z"):
        with pytest.raises(ValueError, match="not a date"):
            start_of(wrong)


def test_a_leap_second_is_only_the_last_second_of_a_utc_day():
    from acsd.api.internet import start_of

    # 23:59:60 UTC written at another offset is the same leap second
    assert start_of("2016-12-31T18:59:60-05:00") == start_of("2017-01-01T00:00:00Z")
    # elsewhere no leap second is inserted: not a time that existed
    for wrong in ("2016-02-01T12:00:60Z", "2016-12-31T23:59:60+01:00"):
        with pytest.raises(ValueError, match="not a date"):
            start_of(wrong)


def test_a_leap_second_past_the_last_representable_day_is_a_400(world):
    # the second after 9999-12-31T23:59:59 overflowed into a 500 and a traceback
    account = order(world).body["_id"]
    body = confirm_body("203.0.113.221")
    body["startDate"] = "9999-12-31T23:59:60Z"
    reply = world.api.post(f"/internet/account/{account}/confirm", body)
    assert reply.status == 400, reply.body
    assert reply.body["message"] == "startDate"
    assert world.api.get(f"/internet/account/{account}").body["state"] == "ORDERED"
