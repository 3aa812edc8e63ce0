"""A device whose stored parts are not what this release writes (a row edited by hand, an
older release's, a half restored backup) is still shown by the API and the CLI and still
served by sessions: the damaged part is shown as absent, with one warning naming the
device and the part, and a session or an operator's write repairs it."""

from __future__ import annotations

import json
import sqlite3

from acsd.sim.runner import Simulation
from api_world import device_body
from apn_client import ApnApi, apns_path, network_path


def _damage(daemon, device_id: str, **sets: str) -> None:
    with sqlite3.connect(daemon.db) as db:
        for column, expression in sets.items():
            db.execute(f"UPDATE devices SET {column} = {expression} WHERE id = ?", (device_id,))


def _warned(daemon, device_id: str) -> list[str]:
    return [e["column"] for e in daemon.events("store_column_damaged") if e["record"] == device_id]


async def test_a_device_with_parts_of_another_shape_is_shown_served_and_repaired(
    module_daemon, module_world
):
    daemon, world = module_daemon, module_world
    sim = Simulation(daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="DMGV")
    serial = sim.routers[0].serial
    body = device_body(world, "own", serial)
    body["dhcp"] = None
    device = world.api.post("/network/device", body).body
    path = f"/network/device/{device['_id']}"
    assert (await sim.run_once()).ok == 1
    shown = world.api.get(path).body
    assert shown["job"]["state"] == "DONE" and shown["status"]["lanIp"]
    _damage(
        daemon, device["_id"],
        provisioning="json_set(provisioning, '$.job', 'FAILED')",
        wifi="""'{"ssid": 3, "enabled": "maybe"}'""",
        status="json_set(status, '$.lanIp', 3)",
    )  # fmt: skip
    for _ in range(2):
        got = world.api.get(path)
        assert got.status == 200, got.body
        assert "job" not in got.body and "wifi" not in got.body
        assert "lanIp" not in got.body["status"]
        assert got.body["status"]["wanIp"] == shown["status"]["wanIp"]
        assert got.body["name"] == shown["name"] and got.body["notes"] == shown["notes"]
        listed = world.api.get("/network/device", query={"limit": 1000})
        assert listed.status == 200, listed.body
        assert device["_id"] in [d["_id"] for d in listed.body["items"]]
        cli = daemon.device_json(serial)
        assert cli["name"] == shown["name"] and "wifi" not in cli
    # once per device and part, however often it is read
    assert sorted(_warned(daemon, device["_id"])) == ["provisioning.job", "status", "wifi"]
    assert "maybe" not in daemon.log_text()
    # the router's next session writes its status and its job anew
    assert (await sim.run_once()).ok == 1
    repaired = world.api.get(path).body
    assert repaired["status"]["lanIp"] == shown["status"]["lanIp"]
    assert repaired["job"]["state"] == "DONE"
    # the operator's write of the wifi replaces what was stored
    wifi = {**body["wifi"], "ssid": "Repaired"}
    assert world.api.patch(path, {"wifi": wifi}).status == 200
    assert (await sim.run_once()).ok == 1
    repaired = world.api.get(path).body
    assert repaired["wifi"]["ssid"] == "Repaired"
    assert repaired["job"]["state"] == "DONE"


LINE = {"ipAddress": "203.0.113.50", "subnet": "255.255.255.248", "gateway": "203.0.113.49"}
CONFIRM = {"providerOrderId": "1", "providerName": "TDC", "startDate": "2024-01-01T00:00:00Z",
           "circuit": "EM1", "installTime": "12_00_TO_16_00", "net": LINE}  # fmt: skip


async def test_a_line_whose_stored_confirm_holds_no_addresses_fails_no_session(
    module_daemon, module_world
):
    daemon, world = module_daemon, module_world
    sim = Simulation(daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="DMGL")
    serial = sim.routers[0].serial
    body = device_body(world, "own", serial)
    body["dhcp"] = None
    device = world.api.post("/network/device", body).body
    order = {"customer": world.customers["own"], "device": device["_id"], "name": "Fibre"}
    account = world.api.post("/internet/account", order).body
    confirmed = world.api.post(f"/internet/account/{account['_id']}/confirm", CONFIRM)
    assert confirmed.status == 200, confirmed.body
    assert (await sim.run_once()).ok == 1
    path = f"/network/device/{device['_id']}"
    assert world.api.get(path).body["status"]["wanIp"] == LINE["ipAddress"]
    for damage in ("json_set(confirm, '$.net', 'x')", "json_remove(confirm, '$.net.subnet')",
                   "json_set(confirm, '$.net.lanNet', 'x', '$.net.lanSubnet', 'y')"):  # fmt: skip
        with sqlite3.connect(daemon.db) as db:
            db.execute(
                f"UPDATE internet_accounts SET confirm = {damage} WHERE id = ?", (account["_id"],)
            )
        assert (await sim.run_once()).ok == 1, damage
        # the router keeps the line it holds; the account is still shown
        assert world.api.get(f"/internet/account/{account['_id']}").status == 200
        shown = world.api.get(path)
        assert shown.status == 200 and shown.body["status"]["wanIp"] == LINE["ipAddress"]
    warned = [e for e in daemon.events("store_column_damaged") if e["record"] == account["_id"]]
    assert [e["column"] for e in warned][:1] == ["confirm"]


async def test_a_router_whose_stored_tree_is_no_json_is_served_and_its_tree_rebuilt(
    module_daemon, module_world
):
    daemon, world = module_daemon, module_world
    sim = Simulation(daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="DMGT")
    body = device_body(world, "own", sim.routers[0].serial)
    body["dhcp"] = None
    device = world.api.post("/network/device", body).body
    path = f"/network/device/{device['_id']}"
    assert (await sim.run_once()).ok == 1
    shown = world.api.get(path).body
    _damage(daemon, device["_id"], params="'{broken'")
    # (its sessions failed, every one of them, until the tree was emptied by hand)
    for _ in range(2):
        assert (await sim.run_once()).ok == 1
        got = world.api.get(path)
        assert got.status == 200 and got.body["status"]["lanIp"] == shown["status"]["lanIp"]
        assert got.body["job"]["state"] == "DONE"
    with sqlite3.connect(daemon.db) as db:
        (tree,) = db.execute("SELECT params FROM devices WHERE id = ?", (device["_id"],)).fetchone()
    assert json.loads(tree)  # rebuilt from what the router reported
    assert _warned(daemon, device["_id"]) == ["params"]


def _types(daemon, table: str, record_id: str, *columns: str) -> dict[str, str]:
    with sqlite3.connect(daemon.db) as db:
        row = db.execute(
            f"SELECT {', '.join(f'typeof({c})' for c in columns)} FROM {table} WHERE id = ?",
            (record_id,),
        ).fetchone()
    return dict(zip(columns, row, strict=True))


async def test_a_device_with_columns_of_another_type_is_shown_served_and_repaired(
    module_daemon, module_world
):
    daemon, world = module_daemon, module_world
    sim = Simulation(daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="DMGC")
    serial = sim.routers[0].serial
    body = device_body(world, "own", serial)
    body["dhcp"] = None
    device = world.api.post("/network/device", body).body
    path = f"/network/device/{device['_id']}"
    assert (await sim.run_once()).ok == 1
    shown = world.api.get(path).body
    # SQLite keeps what an UPDATE by hand writes, whatever the column's declared type
    _damage(
        daemon, device["_id"],
        revision="'x'", jobs="4.5", last_inform="'yesterday'", periodic_interval="x'00ff'",
        name="x'6869'", notes="x'00'", drift_check="'maybe'", updated="'now'",
        created="'then'",
    )  # fmt: skip
    for _ in range(2):
        got = world.api.get(path)
        assert got.status == 200, got.body
        assert "name" not in got.body and "notes" not in got.body
        assert got.body["serialNumber"] == serial and got.body["wifi"] == shown["wifi"]
        listed = world.api.get("/network/device", query={"limit": 1000})
        assert listed.status == 200, listed.body
        assert device["_id"] in [d["_id"] for d in listed.body["items"]]
        assert "name" not in daemon.device_json(serial)
        assert serial in daemon.cli("device", "list").stdout
        # shown offline (no last Inform), and listed so
        assert got.body["status"]["online"] is False
        for online, found in (("true", []), ("false", [device["_id"]])):
            query = {"online": online, "q": serial}
            listed = world.api.get("/network/device", query=query)
            assert [d["_id"] for d in listed.body["items"]] == found, online
    # once per device and column, naming no value
    assert sorted(_warned(daemon, device["_id"])) == sorted(
        ["revision", "jobs", "last_inform", "periodic_interval", "name", "notes",
         "drift_check", "updated", "created"]
    )  # fmt: skip
    assert "yesterday" not in daemon.log_text()
    # the router's session writes what it reports, and the record's revision, jobs and
    # creation as it read them; the operator's write the rest
    assert (await sim.run_once()).ok == 1
    assert world.api.get(path).body["status"]["online"] is True
    assert _types(daemon, "devices", device["_id"], "revision", "jobs", "created") == {
        "revision": "integer", "jobs": "integer", "created": "real"
    }  # fmt: skip
    # (the revision read as 0: a write of settings starts it again, and its job)
    patched = world.api.patch(path, {"name": "Repaired", "wifi": {**body["wifi"], "ssid": "R"}})
    assert patched.status == 200, patched.body
    assert (await sim.run_once()).ok == 1
    repaired = world.api.get(path).body
    assert repaired["name"] == "Repaired" and repaired["job"]["state"] == "DONE"
    assert _types(
        daemon, "devices", device["_id"], "revision", "jobs", "last_inform",
        "periodic_interval", "name", "drift_check", "updated", "created",
    ) == {
        "revision": "integer", "jobs": "integer", "last_inform": "real",
        "periodic_interval": "integer", "name": "text", "drift_check": "integer",
        "updated": "real", "created": "real",
    }  # fmt: skip


def _damage_row(daemon, table: str, where: str, args: tuple, **sets: str) -> None:
    with sqlite3.connect(daemon.db) as db:
        for column, expression in sets.items():
            db.execute(f"UPDATE {table} SET {column} = {expression} WHERE {where}", args)


def _warned_columns(daemon, table: str, record: str) -> list[str]:
    return sorted(
        e["column"]
        for e in daemon.events("store_column_damaged")
        if e["table"] == table and e["record"] == record
    )


async def test_lines_and_apn_records_with_columns_of_another_type_are_shown_and_repaired(
    module_daemon, module_world
):
    daemon, world = module_daemon, module_world
    body = device_body(world, "own", "DMGA000001")
    device = world.api.post("/network/device", body).body
    order = {"customer": world.customers["own"], "device": device["_id"], "name": "Fibre"}
    account = world.api.post("/internet/account", order).body
    line = f"/internet/account/{account['_id']}"
    _damage_row(daemon, "internet_accounts", "id = ?", (account["_id"],),
                name="x'00'", state="x'4f'", start_date="'soon'", created="'then'")  # fmt: skip
    apn = ApnApi(world.api, "json")
    cli = "(+45)12345678"
    hints = {"BillingCycleDay": 5, "EmailContact": "ops@example.com"}
    made = apn.post(apns_path("DMGA", "fleet"), {"CLI": cli, "Hints": hints})
    assert made.status == 202, made.data
    assert apn.put(network_path("DMGA", "fleet"), {"APN": "iot.example"}).status == 200
    with sqlite3.connect(daemon.db) as db:
        (sim_id,) = db.execute("SELECT id FROM apn_devices WHERE account = 'DMGA'").fetchone()
    _damage_row(daemon, "apn_devices", "id = ?", (sim_id,),
                status="'x'", version="4.5", enabled="'maybe'", start_date="x'00'",
                last_sync="'x'", description="x'00'")  # fmt: skip
    _damage_row(daemon, "apn_accounts", "key = ?", ("DMGA",), billing_cycle_day="'x'")
    _damage_row(daemon, "apn_networks", "account = ?", ("DMGA",), apn="x'00'")
    for _ in range(2):
        got = world.api.get(line)
        assert got.status == 200, got.body
        assert (got.body["name"], got.body["state"]) == ("", "ORDERED")
        assert world.api.get("/internet/account").status == 200
        one = apn.get(apns_path("DMGA", "fleet", cli))
        assert one.status == 200, one.data
        assert (one.data["Status"], one.data["Version"], one.data["Enabled"]) == (0, 1, True)
        assert one.data["Description"] is None and "LastSync" not in one.data
        assert one.data["Hints"]["BillingCycleDay"] is None
        assert apn.get(apns_path("DMGA", "fleet")).status == 200
        net = apn.get(network_path("DMGA", "fleet"))
        assert net.status == 200 and net.data["APN"] is None, net.data
    assert _warned_columns(daemon, "internet_accounts", account["_id"]) == [
        "created", "name", "start_date", "state"
    ]  # fmt: skip
    assert _warned_columns(daemon, "apn_devices", sim_id) == [
        "description", "enabled", "last_sync", "start_date", "status", "version"
    ]  # fmt: skip
    assert _warned_columns(daemon, "apn_accounts", "DMGA") == ["billing_cycle_day"]
    assert _warned_columns(daemon, "apn_networks", "DMGA/fleet") == ["apn"]
    # the next write of each replaces what was damaged
    net = {"ipAddress": "203.0.113.58", "subnet": "255.255.255.248", "gateway": "203.0.113.57"}
    confirmed = world.api.post(f"{line}/confirm", {**CONFIRM, "net": net})
    assert confirmed.status == 200, confirmed.body
    assert world.api.get(line).body["state"] == "ACTIVE"
    assert apn.put(network_path("DMGA", "fleet"), {"APN": "iot.example"}).status == 200
    assert apn.get(network_path("DMGA", "fleet")).data["APN"] == "iot.example"
    assert apn.delete(apns_path("DMGA", "fleet", cli)).status in (200, 202)
    assert world.api.get(line).body["name"] == ""
    assert _types(daemon, "internet_accounts", account["_id"], "state", "start_date",
                  "name", "created") == {
        "state": "text", "start_date": "real", "name": "text", "created": "real"
    }  # fmt: skip
    assert _types(daemon, "apn_devices", sim_id, "status", "end_date", "start_date") == {
        "status": "integer", "end_date": "real", "start_date": "real"
    }  # fmt: skip
    # (a damaged start reads as the device's creation, and is written so)
    with sqlite3.connect(daemon.db) as db:
        started = db.execute(
            "SELECT start_date = created FROM apn_devices WHERE id = ?", (sim_id,)
        ).fetchone()
    assert started == (1,)


async def test_a_state_this_release_does_not_know_reads_as_a_new_records_and_is_repaired(
    module_daemon, module_world
):
    daemon, world = module_daemon, module_world
    sim = Simulation(daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="DMGS")
    serial = sim.routers[0].serial
    body = device_body(world, "own", serial)
    body["dhcp"] = None
    device = world.api.post("/network/device", body).body
    path = f"/network/device/{device['_id']}"
    order = {"customer": world.customers["own"], "device": device["_id"], "name": "Fibre"}
    account = world.api.post("/internet/account", order).body
    line = f"/internet/account/{account['_id']}"
    assert (await sim.run_once()).ok == 1
    # (a newer release's, or a typing error in sqlite3)
    _damage(daemon, device["_id"], state="'RETIRED'")
    _damage_row(daemon, "internet_accounts", "id = ?", (account["_id"],), state="'LOST'")
    for _ in range(2):
        got = world.api.get(path)
        assert got.status == 200 and got.body["state"] == "ACTIVE", got.body
        assert world.api.get("/network/device", query={"limit": 1000}).status == 200
        assert daemon.device_json(serial)["state"] == "ACTIVE"
        shown = world.api.get(line)
        assert shown.status == 200 and shown.body["state"] == "ORDERED", shown.body
        listed = world.api.get("/internet/account", query={"device": device["_id"]})
        assert [a["state"] for a in listed.body["items"]] == ["ORDERED"]
        # a list filtered by the state shown finds each (and by the stored one, neither)
        for state, found in (("ACTIVE", [device["_id"]]), ("PROVISIONING", [])):
            query = {"state": state, "q": serial, "limit": 1000}
            listed = world.api.get("/network/device", query=query)
            assert [d["_id"] for d in listed.body["items"]] == found, state
        for state, found in (("ORDERED", [account["_id"]]), ("ACTIVE", [])):
            query = {"state": state, "device": device["_id"]}
            listed = world.api.get("/internet/account", query=query)
            assert [a["_id"] for a in listed.body["items"]] == found, state
    found = [
        (e["table"], e["column"], e["found"], e["read_as"])
        for e in daemon.events("store_column_damaged")
        if e["record"] in (device["_id"], account["_id"])
    ]
    assert sorted(found) == [
        ("devices", "state", "unknown value", '"ACTIVE"'),
        ("internet_accounts", "state", "unknown value", '"ORDERED"'),
    ]
    assert "RETIRED" not in daemon.log_text()
    # the operator's next write of settings, and the confirm, write states of this release
    patched = world.api.patch(path, {"wifi": {**body["wifi"], "ssid": "Again"}})
    assert patched.status == 200 and patched.body["state"] == "PROVISIONING", patched.body
    assert (await sim.run_once()).ok == 1
    assert world.api.get(path).body["state"] == "ACTIVE"
    net = {"ipAddress": "203.0.113.66", "subnet": "255.255.255.248", "gateway": "203.0.113.65"}
    confirmed = world.api.post(f"{line}/confirm", {**CONFIRM, "net": net})
    assert confirmed.status == 200, confirmed.body
    with sqlite3.connect(daemon.db) as db:
        states = db.execute(
            "SELECT (SELECT state FROM devices WHERE id = ?),"
            " (SELECT state FROM internet_accounts WHERE id = ?)",
            (device["_id"], account["_id"]),
        ).fetchone()
    # (the confirmed line, started at once, is the router's next job)
    assert states == ("PROVISIONING", "ACTIVE")


async def test_a_router_whose_records_serial_key_is_damaged_is_served_by_its_record(
    module_daemon, module_world
):
    daemon, world = module_daemon, module_world
    sim = Simulation(daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="DMGK")
    serial = sim.routers[0].serial
    body = device_body(world, "own", serial)  # (a MAC of its own: no binding by MAC)
    body["dhcp"] = None
    device = world.api.post("/network/device", body).body
    path = f"/network/device/{device['_id']}"
    # (wrong case and spaces: what sqlite3 and psql both keep; a BLOB is SQLite's only)
    _damage(daemon, device["_id"], serial_key="' ' || upper(serial_key)")
    assert (await sim.run_once()).ok == 1
    # its router's Inform found it: no second record of the serial, and its job is done
    listed = world.api.get("/network/device", query={"q": serial, "limit": 1000}).body
    assert [d["_id"] for d in listed["items"]] == [device["_id"]]
    shown = world.api.get(path).body
    assert shown["status"]["lanIp"] and shown["job"]["state"] == "DONE", shown
    assert _warned(daemon, device["_id"]) == ["serial_key"]
    assert daemon.device_json(serial)["_id"] == device["_id"]
