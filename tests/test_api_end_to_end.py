"""The whole path: a device POSTed through the API, the router Informs, acsd's Connection
Request reaches it, it ends with the request's wifi and DHCP, and GET shows it ACTIVE.

The tests share one daemon and API world (module_daemon, module_world): each has routers,
serials and MAC addresses of its own, and filters the audit and the log by its records."""

from __future__ import annotations

import asyncio
import ipaddress
import sqlite3
import time

from acsd.sim.runner import Simulation
from api_world import device_body, seed_body


async def test_post_inform_connection_request_active(module_daemon, module_world):
    daemon, world = module_daemon, module_world
    sim = Simulation(
        daemon.cwmp_url, ["tplink-tr181"], 1, serial_prefix="E2E", interval=3600,
        cr_listen="127.0.0.1:0", ramp=0.01,
    )  # fmt: skip
    serial = sim.routers[0].serial
    running = asyncio.create_task(sim.run(duration=60))
    router = sim.router(serial)
    try:
        # The router's BOOTSTRAP registers it (unclaimed) with its Connection Request URL.
        await _until(lambda: router.stats.ok >= 1)
        reply = world.api.post("/network/device", device_body(world, "own", serial))
        assert reply.status == 201, reply.body
        device_id = reply.body["_id"]
        # No periodic Inform is due for an hour: only the Connection Request brings it in.
        await _until(
            lambda: world.api.get(f"/network/device/{device_id}").body["state"] == "ACTIVE"
        )
    finally:
        sim.stop()
        await running
    assert any("6 CONNECTION REQUEST" in events for events in router.stats.events)
    tree = router.tree.flat()
    assert tree["Device.WiFi.SSID.1.SSID"] == "SkyNet"
    assert tree["Device.WiFi.SSID.3.SSID"] == "Need4Speed"
    assert tree["Device.WiFi.AccessPoint.1.Security.KeyPassphrase"] == "JohnConner"
    assert tree["Device.DHCPv4.Server.Pool.1.MinAddress"] == "192.168.0.100"
    assert tree["Device.DHCPv4.Server.Pool.1.LeaseTime"] == "600"
    device = world.api.get(f"/network/device/{device_id}").body
    assert device["state"] == "ACTIVE" and device["jobs"] == 0
    assert device["status"]["provisioned"] is True
    assert device["status"]["online"] is True
    assert device["status"]["wanIp"].startswith("100.64.")
    assert device["status"]["lanIp"] == tree["Device.IP.Interface.1.IPv4Address.1.IPAddress"]
    assert device["dhcp"]["reservedClients"][0]["id"].isdigit()
    # acsd gave the router its own Connection Request credentials at BOOTSTRAP, kept them
    # per device, and answered the router's Digest challenge with them.
    ms = "Device.ManagementServer."
    assert tree[ms + "ConnectionRequestUsername"] == serial
    with sqlite3.connect(daemon.db) as db:
        (stored,) = db.execute(
            "SELECT cr_password FROM devices WHERE serial_key = ?", (serial.lower(),)
        ).fetchone()
    assert len(stored) >= 20 and tree[ms + "ConnectionRequestPassword"] == stored
    assert stored not in daemon.log_text()


async def _until(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(predicate):
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)


async def test_delete_releases_the_router_at_its_next_session(module_daemon, module_world):
    daemon, world = module_daemon, module_world
    sim = Simulation(daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="DEL")
    serial = sim.routers[0].serial
    assert (await sim.run_once()).ok == 1
    body = device_body(world, "own", serial)
    lan = daemon.device_json(serial)["status"]["lanIp"]
    # The seed's pool is not in this router's LAN: acsd refuses what the router would.
    refused = world.api.post("/network/device", body)
    assert refused.status == 400 and refused.body["message"] == "dhcp.ipPoolStart"
    assert lan in refused.body["description"] or "LAN" in refused.body["description"]
    body["dhcp"] = None
    device = world.api.post("/network/device", body).body
    path = f"/network/device/{device['_id']}"
    assert (await sim.run_once()).ok == 1
    reply = world.api.delete(path)
    assert reply.status == 202 and reply.body["state"] == "DELETING"
    assert world.api.get(path).body["state"] == "DELETING"
    assert (await sim.run_once()).ok == 1  # the release
    assert world.api.get(path).status == 404
    # every session says how it ended: the release too (a dashboard counts ends against
    # Informs)
    ends = [e for e in daemon.events("session.end") if e.get("serial") == serial]
    assert ends[-1]["outcome"] == "released" and ends[-1]["device"] == device["_id"]
    assert (await sim.run_once()).ok == 1  # comes back as an unclaimed CPE
    again = daemon.device_json(serial)
    assert again["_id"] != device["_id"] and "customer" not in again
    audit = world.api.get("/audit").body["items"]
    actions = [e["action"] for e in audit if e.get("resourceId") == device["_id"]]
    assert "device.delete" in actions and "device.create" in actions


async def test_a_device_made_again_right_after_its_release_reaches_its_router(
    module_daemon, module_world
):
    """A customer's router given to another customer is a delete and a create: the record
    that knew the router's Connection Request address went with the release, and the new
    one's settings waited for the router's next periodic Inform (an hour here)."""
    daemon, world = module_daemon, module_world
    sim = Simulation(
        daemon.cwmp_url, ["tplink-tr181"], 1, serial_prefix="AGAIN", interval=3600,
        cr_listen="127.0.0.1:0", ramp=0.01,
    )  # fmt: skip
    serial = sim.routers[0].serial
    router = sim.router(serial)
    running = asyncio.create_task(sim.run(duration=60))
    try:
        await _until(lambda: router.stats.ok >= 1)
        first = world.api.post("/network/device", device_body(world, "own", serial)).body
        path = f"/network/device/{first['_id']}"
        await _until(lambda: world.api.get(path).body["state"] == "ACTIVE")
        assert world.api.delete(path).status == 202  # released in the session it asks for
        await _until(lambda: world.api.get(path).status == 404)
        body = device_body(world, "own", serial)
        body["wifi"] = {**body["wifi"], "ssid": "SecondCustomer"}
        again = world.api.post("/network/device", body)
        assert again.status == 201, again.body
        path = f"/network/device/{again.body['_id']}"
        await _until(lambda: world.api.get(path).body["state"] == "ACTIVE")
    finally:
        sim.stop()
        await running
    assert router.tree.flat()["Device.WiFi.SSID.1.SSID"] == "SecondCustomer"


async def test_dhcp_addresses_no_lan_client_can_have_are_refused(module_daemon, module_world):
    daemon, world = module_daemon, module_world
    sim = Simulation(daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="HOSTS")
    serial = sim.routers[0].serial
    assert (await sim.run_once()).ok == 1
    status = daemon.device_json(serial)["status"]
    lan = ipaddress.IPv4Network(f"{status['lanIp']}/{status['subnetMask']}", strict=False)
    hosts = list(lan.hosts())
    router = ipaddress.IPv4Address(status["lanIp"])
    free = [h for h in hosts if h != router]

    def refused(dhcp: dict, field: str, why: str) -> None:
        body = device_body(world, "own", serial)
        body["dhcp"] = {"ipPoolStart": str(free[0]), "ipPoolEnd": str(free[20]), **dhcp}
        reply = world.api.post("/network/device", body)
        assert (reply.status, reply.body["message"]) == (400, field), reply.body
        assert why in reply.body["description"]

    refused({"ipPoolStart": str(min(router, free[0])), "ipPoolEnd": str(max(router, free[20]))},
            "dhcp.ipPoolStart", "the router's own address")  # fmt: skip
    refused({"ipPoolEnd": str(lan.broadcast_address), "ipPoolStart": str(free[-3])},
            "dhcp.ipPoolEnd", "broadcast address")  # fmt: skip
    refused({"reservedClients": [{"mac": "aabbccddee01", "ip": str(lan.network_address)}]},
            "dhcp.reservedClients.0.ip", "network address")  # fmt: skip
    refused({"reservedClients": [{"mac": "aabbccddee01", "ip": str(router)}]},
            "dhcp.reservedClients.0.ip", "the router's own address")  # fmt: skip
    refused({"primaryDnsServer": "0.0.0.0"}, "dhcp.primaryDnsServer", "no address")
    for address in (lan.broadcast_address, lan.network_address):
        refused({"primaryDnsServer": str(address)}, "dhcp.primaryDnsServer", "no DNS server")
    refused({"ipPoolStart": "224.0.0.1", "ipPoolEnd": "224.0.0.9"}, "dhcp.ipPoolStart",
            "no address")  # fmt: skip
    body = device_body(world, "own", serial)
    # the router's own address as the DNS server, as most hand out
    body["dhcp"] = {"ipPoolStart": str(free[0]), "ipPoolEnd": str(free[20]),
                    "primaryDnsServer": str(router)}  # fmt: skip
    created = world.api.post("/network/device", body)
    assert created.status == 201, created.body
    # and a resolver outside the LAN
    path = f"/network/device/{created.body['_id']}"
    assert world.api.patch(path, {"dhcp": {"primaryDnsServer": "192.0.2.53"}}).status == 200


async def test_a_replaced_router_takes_over_the_record(module_daemon, module_world):
    """The router at a customer broke; the technician plugs in a new one, which calls in
    (unclaimed), and the operator PATCHes the record's serial number: settings, customer and
    history stay, the new router gets everything, the old one's reports are gone."""
    daemon, world = module_daemon, module_world
    # the old router's LAN is 192.168.1.0/24, the new one's 192.168.0.0/24
    old = Simulation(daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="SWAPOLD")
    new = Simulation(daemon.cwmp_url, ["tplink-tr181"], 1, serial_prefix="SWAPNEW")
    old_serial, new_serial = old.routers[0].serial, new.routers[0].serial
    assert (await old.run_once()).ok == 1
    body = device_body(world, "own", old_serial)
    body["dhcp"] = seed_body(old_serial, "192.168.1")["dhcp"]
    device = world.api.post("/network/device", body).body
    path = f"/network/device/{device['_id']}"
    assert (await old.run_once()).ok == 1
    assert world.api.get(path).body["state"] == "ACTIVE"
    assert (await new.run_once()).ok == 1  # the new router calls in: unclaimed
    unclaimed = daemon.device_json(new_serial)
    assert "customer" not in unclaimed

    other = world.api.post("/network/device", {**device_body(world, "own", "SWAP-TAKEN"),
                                               "dhcp": None}).body  # fmt: skip
    taken = world.api.patch(path, {"serialNumber": "swap-taken"})
    assert taken.status == 409 and taken.body["message"] == "serialNumber", taken.body
    assert other["_id"] in world.api.get(f"/network/device/{other['_id']}").body["_id"]
    used = world.api.patch(path, {"macAddress": other["macAddress"]})
    assert used.status == 422 and used.body["message"] == "macAddress"

    # The pool is checked against the LAN the new router reported, not the old one's.
    swap = {"serialNumber": new_serial, "macAddress": unclaimed["macAddress"]}
    outside = world.api.patch(path, swap)
    assert outside.status == 400 and outside.body["message"] == "dhcp.ipPoolStart", outside.body
    assert "192.168.0.0/24" in outside.body["description"]
    # With its own MAC (the unclaimed record's until now) and a pool in its LAN, it is taken.
    reply = world.api.patch(path, {**swap, "dhcp": seed_body(new_serial, "192.168.0")["dhcp"]})
    assert reply.status == 200, reply.body
    moved = reply.body
    assert (moved["serialNumber"], moved["macAddress"]) == (new_serial, unclaimed["macAddress"])
    assert moved["customer"] == world.customers["own"] and moved["wifi"] == device["wifi"]
    # The new router's own report (its earlier session) is the record's now; it is owed
    # all the record holds.
    assert moved["state"] == "PROVISIONING"
    assert moved["status"]["lanIp"] == unclaimed["status"]["lanIp"]
    assert world.api.get(f"/network/device/{unclaimed['_id']}").status == 404
    assert (await new.run_once()).ok == 1
    shown = world.api.get(path).body
    assert shown["state"] == "ACTIVE" and shown["status"]["provisioned"], shown
    assert new.routers[0].tree.get("Device.WiFi.SSID.1.SSID") == device["wifi"]["ssid"]
    assert new.routers[0].tree.get("Device.DHCPv4.Server.Pool.1.MinAddress") == "192.168.0.100"
    # The old router, should it call again, is a stranger: it changes nothing here.
    assert (await old.run_once()).ok == 1
    assert world.api.get(path).body["serialNumber"] == new_serial
    assert "customer" not in daemon.device_json(old_serial)
    audit = world.api.get("/audit").body["items"]
    update = next(
        e for e in audit if (e["action"], e["resourceId"]) == ("device.update", device["_id"])
    )
    assert (update["before"]["serialNumber"], update["after"]["serialNumber"]) == (
        old_serial, new_serial,
    )  # fmt: skip


async def unclaimed_router(daemon, prefix: str) -> tuple[Simulation, str, str]:
    """A router that called in before any record was made for it: (its simulation, its
    serial number, its record's API path)."""
    sim = Simulation(daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix=prefix)
    serial = sim.routers[0].serial
    assert (await sim.run_once()).ok == 1
    return sim, serial, f"/network/device/{daemon.device_json(serial)['_id']}"


async def test_an_unclaimed_router_is_claimed_before_it_is_changed(module_daemon, module_world):
    # A PATCH of a router that called in unclaimed made it an operator's record of no
    # customer: the POST of its serial then said 409 and no PATCH could give it one.
    daemon, world = module_daemon, module_world
    _sim, serial, path = await unclaimed_router(daemon, "CLAIM")
    for body in ({"notes": "spare on the shelf"}, {"name": "Spare"}, {"driftCheck": False}):
        reply = world.api.patch(path, body)
        assert reply.status == 422 and reply.body["message"] == "customer", reply.body
        assert "POST /network/device" in reply.body["description"]
    assert "notes" not in world.api.get(path).body
    body = {**device_body(world, "own", serial), "dhcp": seed_body(serial, "192.168.1")["dhcp"]}
    claimed = world.api.post("/network/device", body)
    assert claimed.status == 201, claimed.body
    assert path.endswith(claimed.body["_id"])
    assert world.api.patch(path, {"notes": "at the customer's"}).status == 200


async def test_no_device_moves_onto_a_router_being_deleted(module_daemon, module_world):
    # A PATCH of another device's serialNumber to it merged the DELETING record in: the
    # delete (in the audit log) never happened. As for a POST of that serial: 422 state.
    daemon, world = module_daemon, module_world
    _sim, serial, going = await unclaimed_router(daemon, "DELSW")
    assert world.api.delete(going).status == 202
    device = world.api.post("/network/device", device_body(world, "own", "DELSW-OTHER")).body
    path = f"/network/device/{device['_id']}"
    reply = world.api.patch(path, {"serialNumber": serial})
    assert reply.status == 422 and reply.body["message"] == "state", reply.body
    assert "being deleted" in reply.body["description"]
    assert world.api.get(path).body["serialNumber"] == "DELSW-OTHER"
    assert world.api.get(going).body["state"] == "DELETING"


async def test_a_record_an_operator_made_is_no_router_to_merge(module_daemon, module_world):
    """`acsd device apply` may make a record without a customer: a PATCH to its serial
    must not delete its settings as if it were a router's own report."""
    daemon, world = module_daemon, module_world
    device = world.api.post("/network/device", {**device_body(world, "own", "MADE-1"),
                                                "dhcp": None}).body  # fmt: skip
    daemon.apply({"serialNumber": "MADE-2", "notes": "spare for the 3rd floor"})
    reply = world.api.patch(f"/network/device/{device['_id']}", {"serialNumber": "MADE-2"})
    assert reply.status == 409 and reply.body["message"] == "serialNumber", reply.body
    assert daemon.device_json("MADE-2")["notes"] == "spare for the 3rd floor"


async def test_a_router_fills_in_its_mac_but_never_takes_one(module_daemon, module_world):
    """The MAC a router reports fills a record that has none. It never replaces the MAC
    an operator typed, and never takes a MAC that another device has: the operator's
    device keeps it and a search by it finds that device alone."""
    daemon, world = module_daemon, module_world
    sim = Simulation(daemon.cwmp_url, ["tr181-generic"], 2, serial_prefix="MAC")
    unclaimed, typed = (r.serial for r in sim.routers)
    body = {**device_body(world, "own", typed, mac="02:00:5E:00:00:0B"), "dhcp": None}
    assert world.api.post("/network/device", body).status == 201
    assert (await sim.run_once()).ok == 2
    lan_mac = "Device.Ethernet.Interface.2.MACAddress"
    reported = sim.router(unclaimed).tree.get(lan_mac)  # "0A:5E:..." as firmware writes it
    assert daemon.device_json(unclaimed)["macAddress"] == reported.replace(":", "").upper()
    assert sim.router(typed).tree.get(lan_mac).lower() != "02:00:5e:00:00:0b"
    assert daemon.device_json(typed)["macAddress"] == "02:00:5E:00:00:0B"

    # An unclaimed router's MAC is no device's yet: an operator who writes it for another
    # device (the router's own record may come from a rogue or a clone) takes it.
    routers_mac = daemon.device_json(unclaimed)["macAddress"]
    reply = world.api.post("/network/device", device_body(world, "own", "MAC-REAL",
                                                          mac=routers_mac.lower()))  # fmt: skip
    assert reply.status == 201, reply.body
    assert "macAddress" not in daemon.device_json(unclaimed)
    assert (await sim.run_once()).ok == 2  # and it does not take it back
    assert "macAddress" not in daemon.device_json(unclaimed)
    # A claimed router's reported MAC is its device's: another device cannot have it.
    taken = daemon.device_json(typed)["macAddress"]
    world.api.delete(f"/network/device/{reply.body['_id']}")
    reply = world.api.patch(f"/network/device/{daemon.device_json(typed)['_id']}",
                            {"macAddress": None})  # fmt: skip
    assert reply.status == 200, reply.body
    assert (await sim.run_once()).ok == 2  # the typed router fills in its own
    own = daemon.device_json(typed)["macAddress"]
    assert own == sim.router(typed).tree.get(lan_mac).replace(":", "").upper() != taken
    clash = world.api.post("/network/device", device_body(world, "own", "MAC-OTHER", mac=own))
    assert clash.status == 422 and clash.body["message"] == "macAddress", clash.body
    world.api.patch(f"/network/device/{daemon.device_json(typed)['_id']}", {"macAddress": taken})

    # Another router reports the typed MAC (as a clone or a rogue would): it stays put.
    world.api.delete(f"/network/device/{daemon.device_json(unclaimed)['_id']}")
    assert (await sim.run_once()).ok == 2  # released, and kept as unclaimed with its own MAC
    before = sim.router(unclaimed).tree.get(lan_mac).replace(":", "").upper()
    assert daemon.device_json(unclaimed)["macAddress"] == before
    sim.router(unclaimed).tree.set_local(lan_mac, "02:00:5e:00:00:0b")
    assert (await sim.run_once()).ok == 2
    assert daemon.device_json(unclaimed)["macAddress"] == before
    found = world.api.get("/network/device", query={"q": "02005e00000b"})
    assert [d["serialNumber"] for d in found.body["items"]] == [typed]


async def test_a_router_asked_for_nothing_is_provisioned_once_it_called_in(
    module_daemon, module_world
):
    """A client testing `!status.provisioned` must not take every router without wifi or
    DHCP settings for one still waiting: once it has called in, it holds all it was asked."""
    daemon, world = module_daemon, module_world
    sim = Simulation(daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="NOTHING")
    body = {**device_body(world, "own", sim.routers[0].serial), "wifi": None, "dhcp": None}
    created = world.api.post("/network/device", body)
    assert created.status == 201, created.body
    assert "provisioned" not in created.body["status"]  # not seen yet: nothing to say
    assert (await sim.run_once()).ok == 1
    device = world.api.get(f"/network/device/{created.body['_id']}").body
    assert device["state"] == "ACTIVE" and device["status"]["provisioned"] is True


async def test_a_mac_the_old_router_reported_goes_with_it_on_a_swap(module_daemon, module_world):
    daemon, world = module_daemon, module_world
    sim = Simulation(daemon.cwmp_url, ["tr181-generic"], 2, serial_prefix="MACSWAP")
    old, new = sim.routers
    body = {**device_body(world, "own", old.serial), "dhcp": None}
    del body["macAddress"]
    device = world.api.post("/network/device", body).body
    path = f"/network/device/{device['_id']}"
    # the old router fills in its MAC; the new one calls in unclaimed, with its own
    assert (await sim.run_once()).ok == 2
    lan_mac = "Device.Ethernet.Interface.2.MACAddress"
    mac_of = {r.serial: r.tree.get(lan_mac).replace(":", "").upper() for r in sim.routers}
    assert world.api.get(path).body["macAddress"] == mac_of[old.serial]

    reply = world.api.patch(path, {"serialNumber": new.serial})
    assert reply.status == 200, reply.body
    assert reply.body["macAddress"] == mac_of[new.serial]  # the new router's own report
    audit = world.api.get("/audit").body["items"]
    update = next(
        e for e in audit if (e["action"], e["resourceId"]) == ("device.update", device["_id"])
    )
    assert (update["before"]["macAddress"], update["after"]["macAddress"]) == (
        mac_of[old.serial], mac_of[new.serial],
    )  # fmt: skip
    found = world.api.get("/network/device", query={"q": mac_of[new.serial]}).body["items"]
    assert [d["_id"] for d in found] == [device["_id"]]
    assert (await sim.run_once()).ok == 2  # the old router is a stranger, with its own MAC
    assert daemon.device_json(old.serial)["macAddress"] == mac_of[old.serial]


async def test_a_router_that_keeps_its_own_username_still_takes_connection_requests(
    module_daemon, module_world
):
    # ISP-locked firmware refuses a new ConnectionRequestUsername (9008) but takes the
    # password: acsd must ask with the username the router holds, not the one it wanted.
    ms = "Device.ManagementServer."
    daemon, world = module_daemon, module_world
    sim = Simulation(
        daemon.cwmp_url, ["tplink-tr181"], 1, serial_prefix="CRU", interval=3600,
        cr_listen="127.0.0.1:0", ramp=0.01, faults={ms + "ConnectionRequestUsername": 9008},
    )  # fmt: skip
    serial = sim.routers[0].serial
    router = sim.router(serial)
    router.tree.values[ms + "ConnectionRequestUsername"] = "cpeadmin"
    running = asyncio.create_task(sim.run(duration=60))
    try:
        await _until(lambda: router.stats.ok >= 1)
        assert router.tree.get(ms + "ConnectionRequestUsername") == "cpeadmin"
        assert len(router.tree.get(ms + "ConnectionRequestPassword")) >= 20
        [refused] = [
            e for e in daemon.events("session.cr_credentials_refused") if e["serial"] == serial
        ]
        assert refused["parameters"] == [ms + "ConnectionRequestUsername"]
        assert refused["codes"] == [9008] and refused["username_kept"] is True
        reply = world.api.post("/network/device", device_body(world, "own", serial))
        assert reply.status == 201, reply.body
        device_id = reply.body["_id"]
        # only the Connection Request brings the router in before its next periodic Inform
        await _until(
            lambda: world.api.get(f"/network/device/{device_id}").body["state"] == "ACTIVE"
        )
    finally:
        sim.stop()
        await running
    assert any("6 CONNECTION REQUEST" in events for events in router.stats.events)
    assert router.tree.get(ms + "ConnectionRequestPassword") not in daemon.log_text()


async def test_a_create_of_a_customers_device_being_deleted_says_so(module_daemon, module_world):
    # A customer's device keeps its customer while its router releases it: a create of its
    # serial must say why it cannot be had yet, not that the serial belongs to someone.
    daemon, world = module_daemon, module_world
    sim = Simulation(daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="RELOWN")
    serial = sim.routers[0].serial
    body = {**device_body(world, "own", serial), "dhcp": None, "wifi": None}
    created = world.api.post("/network/device", body)
    assert created.status == 201, created.body
    assert (await sim.run_once()).ok == 1
    path = f"/network/device/{created.body['_id']}"
    assert world.api.delete(path).body["state"] == "DELETING"
    refused = world.api.post("/network/device", body)
    assert refused.status == 422 and refused.body["message"] == "state", refused.body


async def test_a_create_does_not_claim_a_router_being_released(module_daemon, module_world):
    # An unclaimed router deleted by the operator is released at its next session and its
    # record goes: a device created on that record in between would go with it.
    daemon, world = module_daemon, module_world
    sim, serial, path = await unclaimed_router(daemon, "RELCLAIM")
    assert world.api.delete(path).body["state"] == "DELETING"
    body = {**device_body(world, "own", serial), "dhcp": None, "wifi": None}
    refused = world.api.post("/network/device", body)
    assert refused.status == 422 and refused.body["message"] == "state", refused.body
    assert "customer" not in world.api.get(path).body
    assert (await sim.run_once()).ok == 1  # the release
    assert world.api.get(path).status == 404
    assert (await sim.run_once()).ok == 1  # back as an unclaimed CPE: now it is claimed
    created = world.api.post("/network/device", body)
    assert created.status == 201, created.body
    assert created.body["customer"] == world.customers["own"]
    assert created.body["state"] == "ACTIVE"
