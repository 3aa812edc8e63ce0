"""A later line replaces the router's earlier one (seed 002 confirm): what the earlier line
set on the router and the later one does not have must not stay behind."""

from __future__ import annotations

from acsd.sim.runner import Simulation
from api_world import build_world
from test_internet_end_to_end import Line, add_device, is_true, order, wan_address

FIRST = Line("203.0.113.82", "255.255.255.248", "203.0.113.81",
             "198.51.100.176", "255.255.255.240", "198.51.100.177")  # fmt: skip
EXTRA = "Device.IP.Interface.1.IPv4Address.2."


async def test_a_later_line_without_an_additional_range_takes_the_old_range_off(daemon):
    world = build_world(daemon)
    sim = Simulation(daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="LATERLINE")
    router = sim.routers[0]
    device_id = add_device(world, router.serial)
    assert (await sim.run_once()).ok == 1
    first = order(world, device_id)
    reply = world.api.post(f"/internet/account/{first}/confirm", FIRST.confirm())
    assert reply.status == 200, reply.body
    assert (await sim.run_once()).ok == 1
    tree = router.tree.flat()
    assert is_true(tree[EXTRA + "Enable"]) and tree[EXTRA + "IPAddress"] == FIRST.lan_router

    # The customer's new line has no additional range: the old one (its addresses free for
    # other lines from now on) must no longer be served by this router.
    second = order(world, device_id)
    body = FIRST.confirm("2025-01-01T00:00:00Z")
    body["net"] = {"ipAddress": "203.0.113.90", "subnet": "255.255.255.248",
                   "gateway": "203.0.113.89", "failover": False}  # fmt: skip
    reply = world.api.post(f"/internet/account/{second}/confirm", body)
    assert reply.status == 200, reply.body
    assert world.api.get(f"/internet/account/{first}").body["state"] == "ENDED"
    for _ in range(2):
        assert (await sim.run_once()).ok == 1
    tree = router.tree.flat()
    assert wan_address(tree) == "203.0.113.90"
    assert world.api.get(f"/network/device/{device_id}").body["state"] == "ACTIVE"
    assert not is_true(tree.get(EXTRA + "Enable", "false")), {
        k: v for k, v in tree.items() if k.startswith(EXTRA)
    }


async def _rangeless(daemon, profile: str, prefix: str, ip: str, gateway: str) -> dict:
    world = build_world(daemon)
    sim = Simulation(daemon.cwmp_url, [profile], 1, serial_prefix=prefix)
    device_id = add_device(world, sim.routers[0].serial)
    assert (await sim.run_once()).ok == 1
    account = order(world, device_id)
    body = FIRST.confirm()
    body["net"] = {"ipAddress": ip, "subnet": "255.255.255.248", "gateway": gateway}
    reply = world.api.post(f"/internet/account/{account}/confirm", body)
    assert reply.status == 200, reply.body
    for _ in range(2):
        assert (await sim.run_once()).ok == 1
    return world.api.get(f"/network/device/{device_id}").body


async def test_off_is_no_failure_where_there_is_no_second_lan_address(daemon):
    for profile, prefix, ip, gateway in (
        ("tr181-generic", "NORANGE", "203.0.113.98", "203.0.113.97"),
        ("zte-f670l", "NORANGEZ", "203.0.113.106", "203.0.113.105"),
        ("tr098-dsl", "NORANGED", "203.0.113.114", "203.0.113.113"),
    ):
        device = await _rangeless(daemon, profile, prefix, ip, gateway)
        assert device["state"] == "ACTIVE", (profile, device.get("job"))
        notes = [u["setting"] for u in (device.get("job") or {}).get("unsupported", [])]
        assert not [n for n in notes if n.startswith("lan.extra")], (profile, device["job"])


async def test_a_line_moved_from_ppp_to_static_ip_shows_no_old_ppp_address(daemon):
    # TR-098: the router's PPP session stays up after the line moved the default connection
    # to the static IP connection; that connection is not up yet. The status must not show
    # the PPP session's address, peer and DNS servers as the router's WAN.
    world = build_world(daemon)
    sim = Simulation(daemon.cwmp_url, ["tr098-dsl"], 1, serial_prefix="PPPSTATIC")
    router = sim.routers[0]
    device_id = add_device(world, router.serial)
    assert (await sim.run_once()).ok == 1
    before = world.api.get(f"/network/device/{device_id}").body["status"]
    assert (before["wanIp"], before["gateway"]) == ("100.64.0.6", "100.64.0.5")
    account = order(world, device_id)
    body = FIRST.confirm()
    body["net"] = {"ipAddress": "203.0.113.122", "subnet": "255.255.255.248",
                   "gateway": "203.0.113.121"}  # fmt: skip
    assert world.api.post(f"/internet/account/{account}/confirm", body).status == 200
    for _ in range(2):
        assert (await sim.run_once()).ok == 1
    ip_conn = "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANIPConnection.1."
    ppp = "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANPPPConnection.1."
    tree = router.tree.flat()
    assert tree[ip_conn + "ExternalIPAddress"] == "203.0.113.122"
    assert tree[ppp + "ConnectionStatus"] == "Connected"  # (the simulated session stays up)
    status = world.api.get(f"/network/device/{device_id}").body["status"]
    for field in ("wanIp", "gateway", "dns", "dns2"):
        assert field not in status, status
    # Once the static connection is up, it is the router's WAN.
    router.tree.values[ip_conn + "ConnectionStatus"] = "Connected"
    assert (await sim.run_once()).ok == 1
    status = world.api.get(f"/network/device/{device_id}").body["status"]
    assert (status["wanIp"], status["gateway"]) == ("203.0.113.122", "203.0.113.121")
    assert (status["dns"], status["dns2"]) == ("192.0.2.53", "198.51.100.53")
