"""The whole path of an Internet line: routers created through the API, an account ordered
for each and confirmed, a Connection Request, and the routers end up holding the line's
static WAN settings, each through its own profile (TR-098, TR-181, a vendor with failover,
one that lacks the WAN IP connection); an account whose start date is still to come leaves
its router alone until then."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import pytest

from acsd.sim.http import HttpError
from acsd.sim.runner import Simulation
from api_world import World, device_body
from conftest import lazy_world

WCD = "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1."
HCM = "InternetGatewayDevice.LANDevice.1.LANHostConfigManagement."
#: the LAN address the late-LAN routers report (a documentation range, not the trees' own)
LAN_IP = "192.0.2.1"

#: what a first session may see fault on a router without an object its profile reads (a
#: 9005 on a read, or on listing the object to find out): no setting may fault
READS = ("GetParameterValues", "GetParameterNames")


@dataclass
class Line:
    ip: str
    subnet: str
    gateway: str
    lan_net: str
    lan_subnet: str
    lan_router: str  # the router's own address in the additional range

    def confirm(self, start: str = "2024-01-01T00:00:00Z") -> dict:
        return {
            "providerOrderId": "5637575637",
            "providerName": "TDC",
            "startDate": start,
            "circuit": "EM23867",
            "installTime": "12_00_TO_16_00",
            "net": {
                "ipAddress": self.ip,
                "subnet": self.subnet,
                "gateway": self.gateway,
                "lanNet": self.lan_net,
                "lanSubnet": self.lan_subnet,
                "failover": True,
                "failoverNumber": "71919998",
            },
        }


LINES = {
    "tr098-dsl": Line("203.0.113.18", "255.255.255.248", "203.0.113.17",
                      "198.51.100.32", "255.255.255.240", "198.51.100.33"),
    "tr181-generic": Line("203.0.113.10", "255.255.255.248", "203.0.113.9",
                          "198.51.100.16", "255.255.255.240", "198.51.100.17"),
    "zyxel-vmg8825": Line("203.0.113.26", "255.255.255.248", "203.0.113.25",
                          "198.51.100.48", "255.255.255.240", "198.51.100.49"),
    "zte-f670l": Line("203.0.113.34", "255.255.255.248", "203.0.113.33",
                      "198.51.100.64", "255.255.255.240", "198.51.100.65"),
}  # fmt: skip
# The line of the router whose start date is still to come: its own addresses, as the tests
# of this module share one daemon (an address belongs to one account).
LATER_LINE = Line("203.0.113.42", "255.255.255.248", "203.0.113.41",
                  "198.51.100.80", "255.255.255.240", "198.51.100.81")  # fmt: skip


@pytest.fixture
def world(module_world) -> World:
    """One daemon and world for the module: each test has routers (serials) and lines of its
    own."""
    return module_world


def is_true(value: str) -> bool:
    return value in ("true", "1")


async def until(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(predicate):
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)


def add_device(world: World, serial: str) -> str:
    """A router's record, made before the router ever calls in; no wifi or DHCP of its own,
    so all it will be asked for is the line."""
    body = device_body(world, "own", serial)
    body["wifi"] = body["dhcp"] = None
    reply = world.api.post("/network/device", body)
    assert reply.status == 201, reply.body
    return reply.body["_id"]


def order(world: World, device_id: str) -> str:
    body = {"customer": world.customers["own"], "device": device_id, "name": "Fibre"}
    reply = world.api.post("/internet/account", body)
    assert reply.status == 201, reply.body
    return reply.body["_id"]


def rows(tree: dict[str, str], table: str) -> list[dict[str, str]]:
    """The instances of ``table`` ("...IPv4Address.") in a dumped tree, leaf -> value."""
    out: dict[str, dict[str, str]] = {}
    for path, value in tree.items():
        if path.startswith(table):
            instance, _, leaf = path[len(table) :].partition(".")
            if "." not in leaf:
                out.setdefault(instance, {})[leaf] = value
    return list(out.values())


WAN_ADDRESSES = "Device.IP.Interface.2.IPv4Address."
ROUTES = "Device.Routing.Router.1.IPv4Forwarding."
DNS_SERVERS = "Device.DNS.Client.Server."


def wan_address(tree: dict[str, str]) -> str:
    return ",".join(row["IPAddress"] for row in rows(tree, WAN_ADDRESSES))


def unsupported(device: dict) -> dict[str, str]:
    return {u["setting"]: u["reason"] for u in (device.get("job") or {}).get("unsupported", [])}


async def test_confirmed_accounts_give_the_routers_their_static_wan(world, module_daemon):
    sim = Simulation(
        module_daemon.cwmp_url, list(LINES), len(LINES), serial_prefix="NET", interval=3600,
        cr_listen="127.0.0.1:0", ramp=0.01,
    )  # fmt: skip
    routers = {cpe.profile: cpe for cpe in sim.routers}
    devices = {profile: add_device(world, cpe.serial) for profile, cpe in routers.items()}
    running = asyncio.create_task(sim.run(duration=90))
    try:
        # First sessions: each router binds to its record and says where to reach it.
        await until(lambda: all(cpe.stats.ok >= 1 for cpe in routers.values()))
        booted = {p: len(cpe.stats.events) for p, cpe in routers.items()}
        for profile, device_id in devices.items():
            account = order(world, device_id)
            reply = world.api.post(f"/internet/account/{account}/confirm", LINES[profile].confirm())
            assert reply.status == 200 and reply.body == {"success": True}
            assert world.api.get(f"/internet/account/{account}").body["state"] == "ACTIVE"
            # The line is live (its start date has passed): the router has a job again.
            assert world.api.get(f"/network/device/{device_id}").body["state"] == "PROVISIONING"

        def settled() -> bool:
            for device_id in devices.values():
                device = world.api.get(f"/network/device/{device_id}").body
                done = device["status"].get("provisioned")
                failed = (device.get("job") or {}).get("state") == "FAILED"  # (the ZTE's)
                if device["state"] != "ACTIVE" or not (done or failed):
                    return False
            return True

        # No periodic Inform is due for an hour: the Connection Requests bring them in.
        await until(settled)
    finally:
        sim.stop()
        await running
    for profile, cpe in routers.items():
        later = cpe.stats.events[booted[profile] :]
        assert any("6 CONNECTION REQUEST" in events for events in later), profile
    shown = {p: world.api.get(f"/network/device/{d}").body for p, d in devices.items()}

    # TR-181: the DHCP client is off, and its address and default route went with it (the
    # simulated router, like the data model, lets nobody write a DHCP-made address). What
    # is left is the static address and default route acsd added, on the WAN interface.
    cpe = routers["tr181-generic"]
    line, tree = LINES["tr181-generic"], cpe.tree.flat()
    assert not is_true(tree["Device.DHCPv4.Client.1.Enable"])
    (address,) = rows(tree, WAN_ADDRESSES)
    assert address["AddressingType"] == "Static" and is_true(address["Enable"])
    assert (address["IPAddress"], address["SubnetMask"]) == (line.ip, line.subnet)
    (route,) = [r for r in rows(tree, ROUTES) if r["DestIPAddress"] == ""]
    assert route["Origin"] == "Static" and is_true(route["StaticRoute"])
    assert is_true(route["Enable"]) and route["DestSubnetMask"] == ""
    assert (route["GatewayIPAddress"], route["Interface"]) == (
        line.gateway,
        "Device.IP.Interface.2",
    )
    # The DHCP client's DNS servers went with it: the line keeps them as static entries
    # (no [provisioning] static_wan_dns here), and the status still shows them.
    servers = rows(tree, DNS_SERVERS)
    assert [(s["DNSServer"], s["Type"], s["Interface"]) for s in servers] == [
        ("192.0.2.53", "Static", "Device.IP.Interface.2"),
        ("198.51.100.53", "Static", "Device.IP.Interface.2"),
    ]
    status = shown["tr181-generic"]["status"]
    assert (status["dns"], status["dns2"]) == ("192.0.2.53", "198.51.100.53")
    # They are set once the client is off: equal to the client's own entries while it
    # runs, they would break the table's unique key (DNSServer) on a strict CPE.
    spvs = [[path for path, _value in spv] for spv in cpe.stats.spv]
    off = next(i for i, paths in enumerate(spvs) if "Device.DHCPv4.Client.1.Enable" in paths)
    assert not any(path.startswith(DNS_SERVERS) for path in spvs[off])
    assert spvs[off + 1] and all(path.startswith(DNS_SERVERS) for path in spvs[off + 1])
    assert [f for f in cpe.stats.faults if f.method not in READS] == []
    assert is_true(tree["Device.IP.Interface.1.IPv4Address.2.Enable"])
    assert tree["Device.IP.Interface.1.IPv4Address.2.IPAddress"] == line.lan_router
    assert tree["Device.IP.Interface.1.IPv4Address.2.SubnetMask"] == line.lan_subnet
    assert shown["tr181-generic"]["status"]["wanIp"] == line.ip
    assert shown["tr181-generic"]["status"]["gateway"] == line.gateway
    # Failover is in no standard model: said on the job, never dropped silently.
    reasons = unsupported(shown["tr181-generic"])
    assert "unsupported by profile tr181" in reasons["wan.failover.enable"]
    assert "wan.failover.number" in reasons

    # TR-098: the WAN IP connection, routed and static, is the default connection.
    for profile in ("tr098-dsl", "zyxel-vmg8825"):
        line, tree = LINES[profile], routers[profile].tree.flat()
        ip_conn = WCD + "WANIPConnection.1."
        assert is_true(tree[ip_conn + "Enable"]), profile
        assert tree[ip_conn + "ConnectionType"] == "IP_Routed"
        assert tree[ip_conn + "AddressingType"] == "Static"
        assert tree[ip_conn + "ExternalIPAddress"] == line.ip
        assert tree[ip_conn + "SubnetMask"] == line.subnet
        assert tree[ip_conn + "DefaultGateway"] == line.gateway
        assert tree[ip_conn + "DNSServers"] == "192.0.2.53,198.51.100.53"
        default = tree["InternetGatewayDevice.Layer3Forwarding.DefaultConnectionService"]
        assert default == ip_conn.rstrip(".")
        assert is_true(tree[HCM + "IPInterface.2.Enable"])
        assert tree[HCM + "IPInterface.2.IPInterfaceIPAddress"] == line.lan_router
        assert tree[HCM + "IPInterface.2.IPInterfaceSubnetMask"] == line.lan_subnet
    assert "wan.failover.enable" in unsupported(shown["tr098-dsl"])

    # Zyxel's cellular backup sits on a WANDevice whose index differs between builds and
    # takes no number: the profile says so on the job rather than guess a path.
    reasons = unsupported(shown["zyxel-vmg8825"])
    assert set(reasons) == {"wan.failover.enable", "wan.failover.number"}
    assert "unsupported by profile zyxel" in reasons["wan.failover.enable"]

    # ZTE (PPPoE only, no second LAN interface): the router is still ACTIVE, and nothing
    # was sent that it would refuse. Nor half of the static line: its default route stays
    # on the PPP connection (it was once switched to the WANIPConnection.1 the router
    # lacks, which cuts a real router off). The line it cannot take fails its job (it read
    # DONE, with the line under `unsupported`: a billed static address never delivered);
    # the second LAN address it lacks is listed as unsupported.
    zte = routers["zte-f670l"]
    job = shown["zte-f670l"]["job"]
    assert job["state"] == "FAILED" and shown["zte-f670l"]["state"] == "ACTIVE"
    static = {f["setting"]: f["message"] for f in job["faults"]}
    reasons = unsupported(shown["zte-f670l"])
    assert not any(k.startswith("wan.static.") for k in reasons)
    assert set(static) == {"wan.static.enable", "wan.static.ip", "wan.static.mask",
                           "wan.static.gateway", "wan.static.dns"}  # fmt: skip
    for reason in static.values():
        assert "WANIPConnection.1" in reason and "not on this CPE" in reason, reason
        assert reason.endswith("no wan.static.* setting sent"), reason
    assert "not on this CPE" in reasons["lan.extra.ip"]
    default = zte.tree.flat()["InternetGatewayDevice.Layer3Forwarding.DefaultConnectionService"]
    assert default == WCD + "WANPPPConnection.1"
    sent = {path for spv in zte.stats.spv for path, _value in spv}
    assert {p for p in sent if not p.startswith("InternetGatewayDevice.ManagementServer.")} == set()
    assert [f for f in zte.stats.faults if f.method not in READS] == []


async def test_a_future_start_date_waits_for_its_day(world, module_daemon):
    # A router that calls in every second: sessions before the start date must not push.
    sim = Simulation(
        module_daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="LATER", interval=1,
        cr_listen="127.0.0.1:0", ramp=0.01,
    )  # fmt: skip
    router = sim.routers[0]
    device_id = add_device(world, router.serial)
    running = asyncio.create_task(sim.run(duration=60))
    line = LATER_LINE
    try:
        await until(lambda: router.stats.ok >= 1)
        dhcp_ip = wan_address(router.tree.flat())
        account = order(world, device_id)
        start = time.time() + 3
        when = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(start)) + f"{start % 1:.3f}"[1:]
        reply = world.api.post(f"/internet/account/{account}/confirm", line.confirm(when + "Z"))
        assert reply.status == 200, reply.body
        confirmed_at = router.stats.ok
        assert world.api.get(f"/internet/account/{account}").body["state"] == "CONFIRMED"
        # Sessions come and go before the start date: the router keeps its DHCP address.
        await until(lambda: router.stats.ok >= confirmed_at + 2 or time.time() > start - 0.3)
        assert time.time() < start, "the router made too few sessions to tell"
        tree = router.tree.flat()
        assert is_true(tree["Device.DHCPv4.Client.1.Enable"])
        assert wan_address(tree) == dhcp_ip
        assert world.api.get(f"/network/device/{device_id}").body["state"] == "ACTIVE"

        def live() -> bool:
            tree = router.tree.flat()
            device = world.api.get(f"/network/device/{device_id}").body
            account_state = world.api.get(f"/internet/account/{account}").body["state"]
            return (
                wan_address(tree) == line.ip
                and device["state"] == "ACTIVE"
                and device["status"].get("provisioned") is True
                and account_state == "ACTIVE"
            )

        await until(live, timeout=20)
    finally:
        sim.stop()
        await running
    assert time.time() >= start
    assert not is_true(router.tree.get("Device.DHCPv4.Client.1.Enable"))
    job = world.api.get(f"/network/device/{device_id}").body["job"]
    assert job["revision"] >= 1 and job["state"] == "DONE"


async def test_a_line_or_range_on_the_routers_own_lan_is_400(world, module_daemon):
    # The router (tr181-generic) reported its LAN, 192.168.1.1/24: a line or an additional
    # range in it would give the router one network on both sides, or its LAN address twice.
    sim = Simulation(module_daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="ONLAN")
    router = sim.routers[0]
    device_id = add_device(world, router.serial)
    assert (await sim.run_once()).ok == 1
    assert world.api.get(f"/network/device/{device_id}").body["status"]["lanIp"] == "192.168.1.1"
    path = f"/internet/account/{order(world, device_id)}/confirm"
    on_lan = Line("192.168.1.10", "255.255.255.0", "192.168.1.254", "198.51.100.96",
                  "255.255.255.240", "198.51.100.97")  # fmt: skip
    reply = world.api.post(path, on_lan.confirm())
    assert reply.status == 400 and reply.body["message"] == "net.ipAddress", reply.body
    assert "overlaps the router's LAN 192.168.1.0/24" in reply.body["description"]
    lan_twice = Line("203.0.113.58", "255.255.255.248", "203.0.113.57", "192.168.1.0",
                     "255.255.255.0", "192.168.1.1")  # fmt: skip
    reply = world.api.post(path, lan_twice.confirm())
    assert reply.status == 400 and reply.body["message"] == "net.lanNet", reply.body
    assert "overlaps the router's LAN 192.168.1.0/24" in reply.body["description"]


async def test_a_line_or_range_on_the_lan_a_router_reports_later_is_not_sent(world, module_daemon):
    # Lines are mostly confirmed before their router first calls in, when the confirm has
    # no LAN to check them against: the router's first session does, part by part. Both
    # routers report 192.0.2.1/24 as their LAN (set before they first call in).
    sim = Simulation(
        module_daemon.cwmp_url, ["tr181-generic", "tr098-dsl"], 2, serial_prefix="LATELAN"
    )
    routers = {cpe.profile: cpe for cpe in sim.routers}
    routers["tr181-generic"].set_local("Device.IP.Interface.1.IPv4Address.1.IPAddress", LAN_IP)
    routers["tr098-dsl"].set_local(HCM + "IPInterface.1.IPInterfaceIPAddress", LAN_IP)
    devices = {profile: add_device(world, cpe.serial) for profile, cpe in routers.items()}
    lines = {
        # the static line in the LAN, its additional range elsewhere
        "tr181-generic": Line("192.0.2.10", "255.255.255.0", "192.0.2.254",
                              "203.0.113.192", "255.255.255.240", "203.0.113.193"),
        # the static line elsewhere, its additional range in the LAN
        "tr098-dsl": Line("203.0.113.106", "255.255.255.248", "203.0.113.105",
                          "192.0.2.64", "255.255.255.240", "192.0.2.65"),
    }  # fmt: skip
    for profile, device_id in devices.items():
        reply = world.api.post(
            f"/internet/account/{order(world, device_id)}/confirm", lines[profile].confirm()
        )
        assert reply.status == 200, reply.body  # (no LAN reported yet)
    second = HCM + "IPInterface.2."
    before = {k: v for k, v in routers["tr098-dsl"].tree.flat().items() if k.startswith(second)}
    for _ in range(2):  # the first session holds them back, and so does the next
        assert (await sim.run_once()).ok == 2
        shown = {p: world.api.get(f"/network/device/{d}").body for p, d in devices.items()}

        # TR-181: the static line stays off (the DHCP client on, no address or route of
        # the line's), its range goes; the job is FAILED and says why.
        tree = routers["tr181-generic"].tree.flat()
        assert is_true(tree["Device.DHCPv4.Client.1.Enable"])
        assert "192.0.2.10" not in wan_address(tree)
        assert not [r for r in rows(tree, ROUTES) if r["GatewayIPAddress"] == "192.0.2.254"]
        assert tree["Device.IP.Interface.1.IPv4Address.2.IPAddress"] == "203.0.113.193"
        job = shown["tr181-generic"]["job"]
        assert job["state"] == "FAILED", job
        faults = {f["setting"]: f["message"] for f in job["faults"]}
        assert set(faults) == {"wan.static.ip"}, job
        assert "192.0.2.0/24 overlaps the router's LAN 192.0.2.0/24" in faults["wan.static.ip"]
        assert "the static line is not sent" in faults["wan.static.ip"]

        # TR-098: the static line goes, its range does not.
        tree = routers["tr098-dsl"].tree.flat()
        ip_conn = WCD + "WANIPConnection.1."
        assert tree[ip_conn + "ExternalIPAddress"] == "203.0.113.106"
        assert tree[ip_conn + "AddressingType"] == "Static"
        assert {k: v for k, v in tree.items() if k.startswith(second)} == before
        job = shown["tr098-dsl"]["job"]
        assert job["state"] == "FAILED", job
        faults = {f["setting"]: f["message"] for f in job["faults"]}
        assert set(faults) == {"lan.extra.ip"}, job
        assert "192.0.2.64/28 overlaps the router's LAN" in faults["lan.extra.ip"]
        assert "the additional range is not sent" in faults["lan.extra.ip"]
    for cpe in routers.values():  # nothing it was sent was refused
        assert [f for f in cpe.stats.faults if f.method not in READS] == []


async def test_the_configured_dns_servers_replace_the_dhcp_ones(daemon_factory):
    """``[provisioning] static_wan_dns``: the provider's resolvers for every static line,
    whatever the routers learnt from DHCP before."""
    daemon = daemon_factory(provisioning={"static_wan_dns": "198.51.100.153, 203.0.113.153"})
    world = lazy_world(daemon)
    sim = Simulation(daemon.cwmp_url, ["tr181-generic", "tr098-dsl"], 2, serial_prefix="DNS")
    routers = {cpe.profile: cpe for cpe in sim.routers}
    devices = {profile: add_device(world, cpe.serial) for profile, cpe in routers.items()}
    assert (await sim.run_once()).ok == 2
    for profile, device_id in devices.items():
        account = order(world, device_id)
        reply = world.api.post(f"/internet/account/{account}/confirm", LINES[profile].confirm())
        assert reply.status == 200, reply.body
    assert (await sim.run_once()).ok == 2
    for device_id in devices.values():
        device = world.api.get(f"/network/device/{device_id}").body
        assert device["state"] == "ACTIVE" and device["status"]["provisioned"], device
    tree = routers["tr181-generic"].tree.flat()
    servers = [(s["DNSServer"], s["Type"]) for s in rows(tree, DNS_SERVERS)]
    assert servers == [("198.51.100.153", "Static"), ("203.0.113.153", "Static")]
    status = world.api.get(f"/network/device/{devices['tr181-generic']}").body["status"]
    assert (status["dns"], status["dns2"]) == ("198.51.100.153", "203.0.113.153")
    tree = routers["tr098-dsl"].tree.flat()
    assert tree[WCD + "WANIPConnection.1.DNSServers"] == "198.51.100.153,203.0.113.153"


def without_dns(router) -> None:
    """The router learnt no DNS server on its line (a lease without the option, a PPP
    peer that gave none), so it has none to keep when the static line replaces it."""
    for path in router.tree.flat():
        if (
            (path.startswith("InternetGatewayDevice.WANDevice.") and path.endswith(".DNSServers"))
            or path == "Device.DHCPv4.Client.1.DNSServers"
            or (path.startswith(DNS_SERVERS) and path.endswith(".DNSServer"))
        ):
            router.cpe.set_local(path, "")


async def test_a_line_without_dns_servers_waits_where_the_router_reaches_acsd_by_name(
    world, module_daemon
):
    """No [provisioning] static_wan_dns and none reported: the static line would leave a
    router whose ACS URL names a host unable to resolve it, and it never calls in again.
    The line is not sent and the job says why; a router that calls an IP address gets it."""
    sim = Simulation(
        module_daemon.cwmp_url, ["tr181-generic", "tr098-dsl", "tr181-generic"], 3,
        serial_prefix="NODNS",
    )  # fmt: skip
    by_name, by_name_098, by_address = sim.routers
    lines = [
        Line("203.0.113.130", "255.255.255.248", "203.0.113.129",
             "198.51.100.208", "255.255.255.240", "198.51.100.209"),
        Line("203.0.113.138", "255.255.255.248", "203.0.113.137",
             "198.51.100.224", "255.255.255.240", "198.51.100.225"),
        Line("203.0.113.146", "255.255.255.248", "203.0.113.145",
             "198.51.100.240", "255.255.255.240", "198.51.100.241"),
    ]  # fmt: skip
    devices = []
    for router in sim.routers:
        without_dns(router)
        devices.append(add_device(world, router.serial))
    for router, root in ((by_name, "Device."), (by_name_098, "InternetGatewayDevice.")):
        router.cpe.set_local(root + "ManagementServer.URL", "http://acs.example.net:7547/")
    assert (await sim.run_once()).ok == 3
    for router, line in zip(sim.routers, lines, strict=True):
        await confirmed_line(world, module_daemon, router, line, "2024-01-01T00:00:00Z")
    for _ in range(2):
        assert (await sim.run_once()).ok == 3
    for router, device_id in zip((by_name, by_name_098), devices[:2], strict=True):
        tree = router.tree.flat()
        if router is by_name:
            assert is_true(tree["Device.DHCPv4.Client.1.Enable"])
            assert not [a for a in rows(tree, WAN_ADDRESSES) if a["AddressingType"] == "Static"]
        else:
            default = tree["InternetGatewayDevice.Layer3Forwarding.DefaultConnectionService"]
            assert default == WCD + "WANPPPConnection.1"
            assert tree[WCD + "WANIPConnection.1.AddressingType"] == "DHCP"
        device = world.api.get(f"/network/device/{device_id}").body
        assert device["state"] == "ACTIVE" and device["job"]["state"] == "FAILED"
        [fault] = device["job"]["faults"]
        assert fault["setting"] == "wan.static.dns"
        assert "static_wan_dns is empty" in fault["message"]
        assert "its ACS URL names a host (acs.example.net)" in fault["message"]
        assert fault["message"].endswith("the static line is not sent")
    tree = by_address.tree.flat()
    assert not is_true(tree["Device.DHCPv4.Client.1.Enable"])
    assert wan_address(tree) == lines[2].ip
    device = world.api.get(f"/network/device/{devices[2]}").body
    assert device["job"]["state"] == "DONE" and device["job"]["faults"] == [], device["job"]


async def confirmed_line(world: World, daemon, router, line: Line, start: str) -> str:
    """Order and confirm ``line`` for the router's record; returns the account id."""
    device_id = world.api.get("/network/device", query={"q": router.serial}).body["items"][0]
    account = order(world, device_id["_id"])
    reply = world.api.post(f"/internet/account/{account}/confirm", line.confirm(start))
    assert reply.status == 200, reply.body
    return account


async def test_a_refused_part_of_the_line_leaves_the_router_on_dhcp(world, module_daemon):
    """The route's gateway refused (9007): turning the DHCP client off with no default
    route to follow would cut the router off, so nothing of the line is set and the rows
    made for it go again; the router stays on its lease, and the job says why."""
    sim = Simulation(
        module_daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="REFUSED",
        faults={"Device.Routing.Router.1.IPv4Forwarding.*.GatewayIPAddress": 9007},
    )  # fmt: skip
    router = sim.routers[0]
    device_id = add_device(world, router.serial)
    assert (await sim.run_once()).ok == 1
    before = router.tree.flat()
    line = Line("203.0.113.50", "255.255.255.248", "203.0.113.49",
                "198.51.100.112", "255.255.255.240", "198.51.100.113")  # fmt: skip
    await confirmed_line(world, module_daemon, router, line, "2024-01-01T00:00:00Z")
    assert (await sim.run_once()).ok == 1
    tree = router.tree.flat()
    assert is_true(tree["Device.DHCPv4.Client.1.Enable"])
    assert rows(tree, WAN_ADDRESSES) == rows(before, WAN_ADDRESSES)  # the lease's alone
    assert rows(tree, ROUTES) == rows(before, ROUTES)
    assert rows(tree, DNS_SERVERS) == rows(before, DNS_SERVERS)
    job = world.api.get(f"/network/device/{device_id}").body["job"]
    assert [f["code"] for f in job["faults"]] == [9007], job
    # The next session does not send the rest of the line while the route waits.
    assert (await sim.run_once()).ok == 1
    assert is_true(router.tree.get("Device.DHCPv4.Client.1.Enable"))


async def test_a_new_line_is_in_place_before_the_old_one_goes(world, module_daemon):
    sim = Simulation(module_daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="NEWLINE")
    router = sim.routers[0]
    add_device(world, router.serial)
    assert (await sim.run_once()).ok == 1
    first = Line("203.0.113.58", "255.255.255.248", "203.0.113.57",
                 "198.51.100.128", "255.255.255.240", "198.51.100.129")  # fmt: skip
    await confirmed_line(world, module_daemon, router, first, "2024-01-01T00:00:00Z")
    assert (await sim.run_once()).ok == 1
    assert wan_address(router.tree.flat()) == first.ip
    second = Line("203.0.113.66", "255.255.255.248", "203.0.113.65",
                  "198.51.100.128", "255.255.255.240", "198.51.100.129")  # fmt: skip
    await confirmed_line(world, module_daemon, router, second, "2025-01-01T00:00:00Z")
    assert (await sim.run_once()).ok == 1
    # The new address and route are added and set before the old ones are deleted: a
    # router never goes without a way out.
    calls = router.stats.rpcs[-1]
    assert calls[calls.index("AddObject") : calls.index("GetParameterValues", 1)] == [
        "AddObject", "AddObject", "SetParameterValues", "DeleteObject", "DeleteObject",
    ]  # fmt: skip
    tree = router.tree.flat()
    (address,) = rows(tree, WAN_ADDRESSES)
    assert address["IPAddress"] == second.ip
    (route,) = [r for r in rows(tree, ROUTES) if r["DestIPAddress"] == ""]
    assert route["GatewayIPAddress"] == second.gateway
    # the DNS servers the router had on DHCP stayed with it through both lines
    assert [s["DNSServer"] for s in rows(tree, DNS_SERVERS)] == ["192.0.2.53", "198.51.100.53"]

    # An upgrade that keeps the customer's static address (a faster line, a new range):
    # the new line may take over the address of the line it replaces, no other router may.
    third = Line(second.ip, second.subnet, second.gateway,
                 "198.51.100.144", "255.255.255.240", "198.51.100.145")  # fmt: skip
    await confirmed_line(world, module_daemon, router, third, "2025-06-01T00:00:00Z")
    assert (await sim.run_once()).ok == 1
    tree = router.tree.flat()
    (address,) = rows(tree, WAN_ADDRESSES)
    assert address["IPAddress"] == second.ip
    assert tree["Device.IP.Interface.1.IPv4Address.2.IPAddress"] == third.lan_router
    other = Simulation(module_daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="OTHERLINE")
    path = f"/internet/account/{order(world, add_device(world, other.routers[0].serial))}/confirm"
    reply = world.api.post(path, third.confirm("2026-01-01T00:00:00Z"))
    assert reply.status == 409 and reply.body["message"] == "net.ipAddress", reply.body


def cut_power_after(router, method: str, nth: int = 1) -> None:
    """The router applies the ``nth`` ``method`` request of its next session and loses
    power before it answers: the session breaks off there, and the router boots again."""
    handle, armed = router.cpe.handle, [nth]

    def power_cut(request):
        answer = handle(request)
        if armed[0] and method == request.METHOD:
            armed[0] -= 1
            if armed[0] == 0:
                router.cpe.reboot()
                raise HttpError("power cut")
        return answer

    router.cpe.handle = power_cut


async def test_a_router_that_reboots_mid_line_gets_its_dns_servers_at_once(world, module_daemon):
    """TR-181 takes a line in two steps: the DHCP client off with the static address and
    route, then the DNS servers (their entries would clash with the client's). A router
    that reboots between the two has no DNS server at all (with an ACS named by host name
    it could not even call in): its next session sends the rest, with no back-off, since
    the router refused nothing."""
    sim = Simulation(module_daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="POWERCUT")
    router = sim.routers[0]
    device_id = add_device(world, router.serial)
    assert (await sim.run_once()).ok == 1
    line = Line("203.0.113.74", "255.255.255.248", "203.0.113.73",
                "198.51.100.160", "255.255.255.240", "198.51.100.161")  # fmt: skip
    await confirmed_line(world, module_daemon, router, line, "2024-01-01T00:00:00Z")
    cut_power_after(router, "SetParameterValues")
    assert (await sim.run_once()).ok == 0
    tree = router.tree.flat()
    assert not is_true(tree["Device.DHCPv4.Client.1.Enable"]) and wan_address(tree)
    assert not any(s["DNSServer"] for s in rows(tree, DNS_SERVERS))  # cut off from DNS

    assert (await sim.run_once()).ok == 1  # the session of the boot
    assert "1 BOOT" in router.stats.events[-1]
    servers = [s for s in rows(router.tree.flat(), DNS_SERVERS) if s["DNSServer"]]
    assert [(s["DNSServer"], s["Enable"]) for s in servers] == [
        ("192.0.2.53", "true"), ("198.51.100.53", "true"),
    ]  # fmt: skip
    device = world.api.get(f"/network/device/{device_id}").body
    assert device["state"] == "ACTIVE" and device["job"]["faults"] == [], device["job"]
    assert (device["status"]["dns"], device["status"]["dns2"]) == ("192.0.2.53", "198.51.100.53")


async def test_a_spare_bridged_connection_routes_the_line_with_nat_and_dns(world, module_daemon):
    """TR-098: the line goes on WANIPConnection.1, on a DSL router a spare connection
    (here bridged, for IPTV, as such connections are: no NAT, no DNS). Made routed and
    static, it must translate the LAN's private addresses and query the line's DNS
    servers, or nothing behind the router gets out."""
    sim = Simulation(module_daemon.cwmp_url, ["tr098-dsl"], 1, serial_prefix="BRIDGED")
    router = sim.routers[0]
    ip_conn = WCD + "WANIPConnection.1."
    for leaf, value in (("ConnectionType", "IP_Bridged"), ("NATEnabled", "false"),
                        ("DNSEnabled", "false")):  # fmt: skip
        router.cpe.set_local(ip_conn + leaf, value)
    device_id = add_device(world, router.serial)
    assert (await sim.run_once()).ok == 1
    line = Line("203.0.113.82", "255.255.255.248", "203.0.113.81",
                "198.51.100.176", "255.255.255.240", "198.51.100.177")  # fmt: skip
    await confirmed_line(world, module_daemon, router, line, "2024-01-01T00:00:00Z")
    assert (await sim.run_once()).ok == 1
    tree = router.tree.flat()
    assert tree[ip_conn + "ConnectionType"] == "IP_Routed"
    assert tree[ip_conn + "ExternalIPAddress"] == line.ip
    assert is_true(tree[ip_conn + "NATEnabled"])
    assert is_true(tree[ip_conn + "DNSEnabled"])
    assert tree[ip_conn + "DNSServers"] == "192.0.2.53,198.51.100.53"
    device = world.api.get(f"/network/device/{device_id}").body
    assert device["state"] == "ACTIVE" and device["job"]["faults"] == [], device["job"]
    # Later sessions find it all in place and write nothing again (DNSEnabled is read,
    # though the line's DNS servers come from the status rather than the settings).
    sent = len(router.stats.spv)
    for _ in range(2):
        assert (await sim.run_once()).ok == 1
    assert router.stats.spv[sent:] == []


async def test_entries_a_cut_short_session_added_and_never_set_are_deleted(world, module_daemon):
    """AddObject makes an empty entry, its fields come in a later request. The DNS entries
    of a session cut short before them hold neither server nor interface, so they pass for
    the router's own: kept for good, one more pair after every such reboot. acsd remembers
    the entries it added and did not set, and deletes those still empty."""
    sim = Simulation(module_daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="BLANKROWS")
    router = sim.routers[0]
    add_device(world, router.serial)
    assert (await sim.run_once()).ok == 1
    line = Line("203.0.113.90", "255.255.255.248", "203.0.113.89",
                "198.51.100.192", "255.255.255.240", "198.51.100.193")  # fmt: skip
    await confirmed_line(world, module_daemon, router, line, "2024-01-01T00:00:00Z")
    cut_power_after(router, "SetParameterValues")
    assert (await sim.run_once()).ok == 0
    assert len([s for s in rows(router.tree.flat(), DNS_SERVERS) if not s["DNSServer"]]) == 2
    for _ in range(2):
        assert (await sim.run_once()).ok == 1
    tree = router.tree.flat()
    assert [(s["DNSServer"], s["Interface"]) for s in rows(tree, DNS_SERVERS)] == [
        ("192.0.2.53", "Device.IP.Interface.2"), ("198.51.100.53", "Device.IP.Interface.2"),
    ]  # fmt: skip
    assert [a["IPAddress"] for a in rows(tree, WAN_ADDRESSES)] == [line.ip]
    assert [r["GatewayIPAddress"] for r in rows(tree, ROUTES)] == [line.gateway]


async def test_rows_whose_addobject_answer_was_lost_are_found_and_deleted(world, module_daemon):
    """The router makes the row, then the connection drops before its AddObject answer: acsd
    never learns the instance number, and the row, blank, passes for the router's own (an
    address entry with no IPv4 address, a route with no interface). Every such session
    left one more until the table was full and the line could never go (9004). The next
    session finds the rows the table did not hold before and deletes them while blank."""
    sim = Simulation(module_daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="LOSTADD")
    router = sim.routers[0]
    device_id = add_device(world, router.serial)
    assert (await sim.run_once()).ok == 1
    line = Line("203.0.113.154", "255.255.255.248", "203.0.113.153",
                "198.51.100.0", "255.255.255.240", "198.51.100.1")  # fmt: skip
    await confirmed_line(world, module_daemon, router, line, "2024-01-01T00:00:00Z")
    # the address entry's answer lost three times (its table holds four entries, one the
    # DHCP client's), then the route's and a DNS server's
    for nth in (1, 1, 1, 2, 3):
        cut_power_after(router, "AddObject", nth)
        assert (await sim.run_once()).ok == 0
    for _ in range(2):
        assert (await sim.run_once()).ok == 1
    tree = router.tree.flat()
    assert [a["IPAddress"] for a in rows(tree, WAN_ADDRESSES)] == [line.ip]
    assert [r["GatewayIPAddress"] for r in rows(tree, ROUTES)] == [line.gateway]
    assert [(s["DNSServer"], s["Interface"]) for s in rows(tree, DNS_SERVERS)] == [
        ("192.0.2.53", "Device.IP.Interface.2"), ("198.51.100.53", "Device.IP.Interface.2"),
    ]  # fmt: skip
    device = world.api.get(f"/network/device/{device_id}").body
    assert device["state"] == "ACTIVE" and device["job"]["state"] == "DONE", device["job"]
    assert device["job"]["faults"] == [] and device["status"]["wanIp"] == line.ip


async def test_a_line_without_a_range_leaves_the_customers_own_second_lan_on(world, module_daemon):
    # A line without an additional range turned off the router's second LAN address
    # whoever had set it: the customer's own second subnet was cut off. Only the one an
    # earlier line of acsd's turned on is turned off.
    sim = Simulation(module_daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="OWNLAN")
    router = sim.routers[0]
    add_device(world, router.serial)
    lan2 = "Device.IP.Interface.1.IPv4Address.2."
    for leaf, value in (("IPAddress", "10.10.10.1"), ("SubnetMask", "255.255.255.0"),
                        ("Enable", "true")):  # fmt: skip
        router.set_local(lan2 + leaf, value)
    assert (await sim.run_once()).ok == 1

    def line(ip: str, gateway: str, lan: tuple[str, str] | None) -> Line:
        net, router_ip = lan or ("", "")
        return Line(ip, "255.255.255.248", gateway, net, "255.255.255.240" if lan else "",
                    router_ip)  # fmt: skip

    device_id = world.api.get("/network/device", query={"q": router.serial}).body["items"][0]

    async def confirm(line: Line, start: str) -> None:
        body = line.confirm(start)
        if not line.lan_net:  # (seed 002: the range is optional)
            del body["net"]["lanNet"], body["net"]["lanSubnet"]
        path = f"/internet/account/{order(world, device_id['_id'])}/confirm"
        reply = world.api.post(path, body)
        assert reply.status == 200, reply.body

    without = line("203.0.113.186", "203.0.113.185", None)
    await confirm(without, "2024-01-01T00:00:00Z")
    assert (await sim.run_once()).ok == 1
    tree = router.tree.flat()
    assert wan_address(tree) == without.ip
    assert is_true(tree[lan2 + "Enable"]) and tree[lan2 + "IPAddress"] == "10.10.10.1"
    # a line with a range uses it, and a later line without one turns acsd's range off
    ranged = line("203.0.113.186", "203.0.113.185", ("203.0.113.224", "203.0.113.225"))
    await confirm(ranged, "2025-01-01T00:00:00Z")
    assert (await sim.run_once()).ok == 1
    assert router.tree.get(lan2 + "IPAddress") == "203.0.113.225"
    await confirm(without, "2025-06-01T00:00:00Z")
    assert (await sim.run_once()).ok == 1
    assert not is_true(router.tree.get(lan2 + "Enable"))
