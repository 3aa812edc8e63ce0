"""A line leaves its router: the static line acsd put on the router is taken off again
(README "Internet accounts": when a line leaves a router), on TR-181 and TR-098, and a
static WAN that acsd did not set is left alone."""

from __future__ import annotations

import asyncio

import pytest

from acsd.cwmp import rpc
from acsd.sim.runner import Simulation
from api_world import World, build_world, device_body
from conftest import BACKENDS
from test_internet_end_to_end import DNS_SERVERS, HCM, ROUTES, WAN_ADDRESSES, WCD, Line, rows

LINE = Line("203.0.113.74", "255.255.255.248", "203.0.113.73",
            "198.51.100.160", "255.255.255.240", "198.51.100.161")  # fmt: skip
PROFILES = ("tr181-generic", "tr098-dsl")
WAN_IP = WCD + "WANIPConnection.1."


@pytest.fixture(params=BACKENDS)
def backend_daemon(request, daemon_factory):
    """A daemon on SQLite, then on PostgreSQL: the memory a released router keeps goes
    through each backend's save."""
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_cluster").new_database()
        return daemon_factory(store={"url": url})
    return daemon_factory()


def add_device(world: World, serial: str, customer: str = "own") -> str:
    body = {**device_body(world, customer, serial), "wifi": None, "dhcp": None}
    reply = world.api.post("/network/device", body)
    assert reply.status == 201, reply.body
    return reply.body["_id"]


def confirm_line(world: World, device_id: str) -> str:
    body = {"customer": world.customers["own"], "device": device_id, "name": "Fibre"}
    reply = world.api.post("/internet/account", body)
    assert reply.status == 201, reply.body
    account = reply.body["_id"]
    reply = world.api.post(f"/internet/account/{account}/confirm", LINE.confirm())
    assert reply.status == 200, reply.body
    return account


def holds_line(tree: dict[str, str]) -> bool:
    """Whether the router holds the line as acsd sets it (and nothing of DHCP)."""
    if "Device.DHCPv4.Client.1.Enable" in tree:
        return tree["Device.DHCPv4.Client.1.Enable"] in ("false", "0") and any(
            r["IPAddress"] == LINE.ip and r["AddressingType"] == "Static"
            for r in rows(tree, WAN_ADDRESSES)
        )
    return tree[WAN_IP + "AddressingType"] == "Static" and tree[WAN_IP + "ExternalIPAddress"] == (
        LINE.ip
    )


def line_taken_off(tree: dict[str, str]) -> None:
    """The router is back on DHCP, without the line's entries and its additional range."""
    if "Device.DHCPv4.Client.1.Enable" in tree:
        assert tree["Device.DHCPv4.Client.1.Enable"] in ("true", "1")
        statics = [r for r in rows(tree, WAN_ADDRESSES) if r["AddressingType"] == "Static"]
        assert statics == [], statics
        assert [r for r in rows(tree, ROUTES) if r.get("StaticRoute") in ("true", "1")] == []
        assert [r for r in rows(tree, DNS_SERVERS) if r.get("Type") == "Static"] == []
        # the DHCP client's lease is back, and the second LAN address off
        assert any(r["AddressingType"] == "DHCP" for r in rows(tree, WAN_ADDRESSES))
        assert tree["Device.IP.Interface.1.IPv4Address.2.Enable"] in ("false", "0")
    else:
        assert tree[WAN_IP + "AddressingType"] == "DHCP"
        assert tree[HCM + "IPInterface.2.Enable"] in ("false", "0")


async def _line_on(world: World, sim: Simulation) -> tuple[str, str]:
    """The router's record, and its line, on the router."""
    router = sim.routers[0]
    device_id = add_device(world, router.serial)
    assert (await sim.run_once()).ok == 1
    account = confirm_line(world, device_id)
    assert (await sim.run_once()).ok == 1
    assert holds_line(router.tree.flat())
    return device_id, account


async def _release(world: World, sim: Simulation, device_id: str) -> None:
    reply = world.api.delete(f"/network/device/{device_id}")
    assert reply.status == 202 and reply.body["state"] == "DELETING", reply.body
    assert (await sim.run_once()).ok == 1  # its session releases it
    assert world.api.get(f"/network/device/{device_id}").status == 404


def _record_of(world: World, serial: str) -> dict:
    found = world.api.get("/network/device", query={"q": serial}).body["items"]
    [record] = [d for d in found if d["serialNumber"] == serial]
    return world.api.get(f"/network/device/{record['_id']}").body


@pytest.mark.parametrize("profile", PROFILES)
async def test_a_line_taken_over_by_the_replacement_router_leaves_the_old_one(daemon, profile):
    world = build_world(daemon)
    old = Simulation(daemon.cwmp_url, [profile], 1, serial_prefix="OFFOLD")
    new = Simulation(daemon.cwmp_url, [profile], 1, serial_prefix="OFFNEW")
    device_id, account = await _line_on(world, old)
    await _release(world, old, device_id)
    # The line names no router now, and waits for the customer's replacement: the old
    # router, unclaimed, still serves the customer with it.
    assert (await old.run_once()).ok == 1
    assert holds_line(old.routers[0].tree.flat())

    # The replacement's line takes the addresses over: the old router's next session
    # puts it back on DHCP, and acsd forgets the line there.
    replacement = add_device(world, new.routers[0].serial)
    assert (await new.run_once()).ok == 1
    confirm_line(world, replacement)
    assert world.api.get(f"/internet/account/{account}").body["state"] == "ENDED"
    assert (await new.run_once()).ok == 1
    assert holds_line(new.routers[0].tree.flat())
    assert (await old.run_once()).ok == 1
    line_taken_off(old.routers[0].tree.flat())
    shown = _record_of(world, old.routers[0].serial)
    assert shown["status"].get("wanIp") != LINE.ip, shown["status"]
    # Taken off once: a later session of the router changes nothing more.
    before = old.routers[0].tree.flat()
    assert (await old.run_once()).ok == 1
    assert old.routers[0].tree.flat() == before


@pytest.mark.parametrize("profile", PROFILES)
async def test_a_router_given_to_another_customer_loses_the_line_it_held(backend_daemon, profile):
    daemon = backend_daemon
    world = build_world(daemon)
    sim = Simulation(daemon.cwmp_url, [profile], 1, serial_prefix="OFFGIVE")
    router = sim.routers[0]
    device_id, account = await _line_on(world, sim)
    await _release(world, sim, device_id)
    # Given to another customer (a DELETE and a POST): the line still waits for the first
    # customer's replacement router, but not on this one.
    again = add_device(world, router.serial, customer="other")
    for _ in range(2):
        assert (await sim.run_once()).ok == 1
    line_taken_off(router.tree.flat())
    shown = world.api.get(f"/network/device/{again}").body
    assert shown["status"].get("wanIp") != LINE.ip, shown["status"]
    assert shown["state"] == "ACTIVE" and (shown.get("job") or {}).get("faults", []) == []
    assert world.api.get(f"/internet/account/{account}").body["state"] == "ACTIVE"


@pytest.mark.parametrize("profile", PROFILES)
async def test_a_static_wan_acsd_did_not_set_is_left_alone(daemon, profile):
    world = build_world(daemon)
    sim = Simulation(daemon.cwmp_url, [profile], 1, serial_prefix="OFFTHEIRS")
    router = sim.routers[0]
    tree = router.tree
    # The customer's own static WAN, set on the router before it ever called in.
    if profile.startswith("tr181"):
        tree.set_values([rpc.ParameterValue("Device.DHCPv4.Client.1.Enable", "false")], "")
        n = tree.add_object(WAN_ADDRESSES, "")
        base = f"{WAN_ADDRESSES}{n}."
        tree.set_values(
            [
                rpc.ParameterValue(base + "IPAddress", LINE.ip),
                rpc.ParameterValue(base + "SubnetMask", LINE.subnet),
                rpc.ParameterValue(base + "Enable", "true"),
            ],
            "",
        )
    else:
        for leaf, value in (("AddressingType", "Static"), ("ExternalIPAddress", LINE.ip)):
            tree.set_local(WAN_IP + leaf, value)
    before = tree.flat()
    device_id = add_device(world, router.serial)
    for _ in range(2):
        assert (await sim.run_once()).ok == 1
    await _release(world, sim, device_id)
    add_device(world, router.serial, customer="other")
    for _ in range(2):
        assert (await sim.run_once()).ok == 1
    after = tree.flat()
    for path, value in before.items():
        if path.startswith((WAN_ADDRESSES, "Device.DHCPv4.Client.1.Enable", WAN_IP)):
            assert after.get(path) == value, path


async def test_a_router_that_refuses_dhcp_back_keeps_its_line_and_is_asked_again(
    daemon_factory,
):
    """Never neither: the line's entries go only once DHCP is on again; the job says what
    the router refused, and a later session tries again."""
    daemon = daemon_factory(provisioning={"retry_base": 1})
    world = build_world(daemon)
    sim = Simulation(daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="OFFREFUSE")
    router = sim.routers[0]
    device_id, _account = await _line_on(world, sim)
    await _release(world, sim, device_id)
    router.faults["Device.DHCPv4.Client.1.Enable"] = 9007
    again = add_device(world, router.serial, customer="other")
    assert (await sim.run_once()).ok == 1
    assert holds_line(router.tree.flat())  # refused: the line stays whole
    shown = world.api.get(f"/network/device/{again}").body
    job = shown.get("job") or {}
    assert job["state"] == "PENDING", shown
    refused = [f for f in job["faults"] if f.get("code") == 9007]
    assert [f["parameter"] for f in refused] == ["Device.DHCPv4.Client.1.Enable"], job
    # The router takes it at the retry (retry_base later).
    del router.faults["Device.DHCPv4.Client.1.Enable"]
    await asyncio.sleep(1.2)
    assert (await sim.run_once()).ok == 1
    line_taken_off(router.tree.flat())


@pytest.mark.parametrize("profile", PROFILES)
async def test_a_line_replaced_by_hand_is_not_acsds_to_take_off(daemon, profile):
    """acsd put its line on, and the customer put a static WAN of their own in its place:
    once the line leaves, what the router holds stays, and acsd forgets its line."""
    world = build_world(daemon)
    sim = Simulation(daemon.cwmp_url, [profile], 1, serial_prefix="OFFHAND")
    router = sim.routers[0]
    device_id, _account = await _line_on(world, sim)
    tree = router.tree
    if profile.startswith("tr181"):
        [n] = [
            i
            for i in tree.instances(WAN_ADDRESSES)
            if tree.get(f"{WAN_ADDRESSES}{i}.IPAddress") == LINE.ip
        ]
        tree.set_local(f"{WAN_ADDRESSES}{n}.IPAddress", "198.51.100.10")
    else:
        tree.set_local(WAN_IP + "ExternalIPAddress", "198.51.100.10")
    await _release(world, sim, device_id)
    before = tree.flat()
    add_device(world, router.serial, customer="other")
    for _ in range(2):
        assert (await sim.run_once()).ok == 1
    after = tree.flat()
    for path, value in before.items():
        if path.startswith((WAN_ADDRESSES, ROUTES, "Device.DHCPv4.Client.1.Enable", WAN_IP)):
            assert after.get(path) == value, path


def test_the_memory_of_acsds_line_and_what_it_takes_off():
    from acsd.provisioning.line_off import GOING, carried, holds_line, remember, stored
    from acsd.provisioning.plan import STATIC_LINE, Change
    from acsd.provisioning.profiles import load_profiles

    settings = {"wan.static.enable": True, "wan.static.ip": LINE.ip,
                "wan.static.gateway": LINE.gateway}  # fmt: skip
    memory: dict = {"lineDns": ["192.0.2.53"], "switchedOn": ["lan.extra.enable"]}
    remember(memory, settings, "acc", [])
    assert STATIC_LINE not in memory  # the router held it before: not known to be acsd's
    on = Change("wan.static.enable", "Device.DHCPv4.Client.1.Enable", "false", "xsd:boolean")
    remember(memory, settings, "acc", [on])
    line = stored(memory)
    assert line == {"account": "acc", "ip": LINE.ip, "gateway": LINE.gateway,
                    "dns": ["192.0.2.53"]}  # fmt: skip
    assert carried(memory) == {STATIC_LINE: line, "switchedOn": ["lan.extra.enable"]}
    assert carried({}) is None and stored({STATIC_LINE: "x"}) is None
    tr181 = load_profiles().get("tr181")
    static = {f"{WAN_ADDRESSES}3.{k}": v for k, v in
              {"IPAddress": LINE.ip, "AddressingType": "Static", "Enable": "true",
               "SubnetMask": LINE.subnet}.items()}  # fmt: skip
    assert holds_line(tr181, static, line)
    dhcp = {**static, f"{WAN_ADDRESSES}3.AddressingType": "DHCP"}
    assert not holds_line(tr181, dhcp, line)  # (an address the DHCP client holds)
    assert holds_line(tr181, {}, {**line, GOING: True})  # the rest of a line half taken off


async def test_ending_a_started_line_its_router_has_not_got_says_what_is_known(daemon):
    """A started line is its router's to end (its next line ends it), but the 422 does not
    say the router holds it when it may not have got it yet."""
    world = build_world(daemon)
    sim = Simulation(daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="OFFEND")
    router = sim.routers[0]
    device_id = add_device(world, router.serial)
    assert (await sim.run_once()).ok == 1  # (seen: its record does not go at once)
    account = confirm_line(world, device_id)
    reply = world.api.post(f"/internet/account/{account}/end")
    assert reply.status == 422 and reply.body["message"] == "state", reply.body
    said = reply.body["description"]
    assert "holds its settings" not in said and "gets it at its next session" in said, said
    assert "never called in" not in said, said
    assert (await sim.run_once()).ok == 1
    assert holds_line(router.tree.flat())
