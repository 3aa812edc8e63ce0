"""A device whose stored parts are not what this release writes (a row edited by hand, an
older release's, a half restored backup) is still shown by the API and the CLI and still
served by sessions: the damaged part is shown as absent, with one warning naming the
device and the part, and a session or an operator's write repairs it."""

from __future__ import annotations

import json
import sqlite3

from acsd.sim.runner import Simulation
from api_world import device_body


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
