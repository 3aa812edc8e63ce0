"""TR-098 DHCPServerConfigurable: while it is false the gateway serves its default DHCP
settings, whatever acsd wrote. acsd keeps it true on routers whose DHCP it manages, also
when the firmware turns it back by itself, and leaves it alone on the others."""

from __future__ import annotations

from acsd.sim.runner import Simulation
from api_world import seed_body

LH = "InternetGatewayDevice.LANDevice.1.LANHostConfigManagement."
CONFIGURABLE = LH + "DHCPServerConfigurable"
LAN = "192.168.1"  # the tr098-dsl simulated router's LAN


async def test_a_configurable_switch_the_router_turned_off_is_put_back(module_daemon):
    daemon = module_daemon
    sim = Simulation(daemon.cwmp_url, ["tr098-dsl"], 1, serial_prefix="DCB")
    serial = sim.routers[0].serial
    router = sim.router(serial)
    # the pool alone: the record leaves the server's own on/off switch (DHCPServerEnable,
    # whose setting carries the configurable switch too) as the router has it
    body = seed_body(serial, LAN)
    del body["dhcp"]["enable"]
    daemon.apply(body)
    assert (await sim.run_once()).ok == 1
    assert daemon.device_json(serial)["job"]["state"] == "DONE"

    # The firmware resets it after a change on its web page; nothing else differs.
    router.set_local(CONFIGURABLE, "false")
    assert (await sim.run_once()).ok == 1
    assert router.tree.get(CONFIGURABLE) in ("true", "1")
    spvs = router.stats.spv[-1:]
    assert [[name for name, _ in spv] for spv in spvs] == [[CONFIGURABLE]]
    device = daemon.device_json(serial)
    assert device["state"] == "ACTIVE" and device["job"]["state"] == "DONE", device["job"]

    # Held again: the next session sends nothing.
    count = len(router.stats.spv)
    assert (await sim.run_once()).ok == 1
    assert len(router.stats.spv) == count


async def test_a_router_whose_dhcp_acsd_does_not_manage_keeps_its_switch(module_daemon):
    daemon = module_daemon
    sim = Simulation(daemon.cwmp_url, ["tr098-dsl"], 1, serial_prefix="DCN")
    serial = sim.routers[0].serial
    router = sim.router(serial)
    router.set_local(CONFIGURABLE, "false")
    body = seed_body(serial, LAN)
    del body["dhcp"]
    daemon.apply(body)
    assert (await sim.run_once()).ok == 1
    assert router.tree.get(CONFIGURABLE) in ("false", "0")
    assert all(CONFIGURABLE not in [n for n, _ in spv] for spv in router.stats.spv)
    assert daemon.device_json(serial)["job"]["state"] == "DONE"


async def test_reservations_alone_make_the_dhcp_server_configurable(module_daemon):
    # A record whose DHCP is only reservations: the rows acsd adds (and deletes) are not
    # served while the router keeps its default DHCP settings.
    daemon = module_daemon
    sim = Simulation(daemon.cwmp_url, ["tr098-dsl"], 1, serial_prefix="DCR")
    serial = sim.routers[0].serial
    router = sim.router(serial)
    router.set_local(CONFIGURABLE, "false")
    body = seed_body(serial, LAN)
    body["dhcp"] = {"reservedClients": body["dhcp"]["reservedClients"]}
    daemon.apply(body)
    assert (await sim.run_once()).ok == 1
    assert router.tree.get(CONFIGURABLE) in ("true", "1")
    table = LH + "DHCPStaticAddress."
    [row] = router.tree.instances(table)
    assert router.tree.get(f"{table}{row}.Yiaddr") == f"{LAN}.10"
    # once, in the SetParameterValues that fills the new row
    [spv] = [s for s in router.stats.spv if any(n == f"{table}{row}.Yiaddr" for n, _ in s)]
    assert [n for n, _ in spv].count(CONFIGURABLE) == 1, spv
    device = daemon.device_json(serial)
    assert device["job"]["state"] == "DONE", device["job"]
    assert device["dhcp"]["reservedClients"][0]["id"] == str(row)

    # Turned back by the router, and the reservation removed from the record: the row
    # goes, and the switch is put back with its DeleteObject.
    router.set_local(CONFIGURABLE, "false")
    body["dhcp"] = {"reservedClients": []}
    daemon.apply(body)
    assert (await sim.run_once()).ok == 1
    assert router.tree.instances(table) == []
    assert router.tree.get(CONFIGURABLE) in ("true", "1")
    assert daemon.device_json(serial)["job"]["state"] == "DONE"
