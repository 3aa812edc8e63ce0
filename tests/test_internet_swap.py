"""A router with an Internet line is swapped: the line goes with the record to the new
router (README "Replacing a router"), which gets the static WAN at its next session."""

from __future__ import annotations

from acsd.sim.runner import Simulation
from api_world import build_world
from test_internet_end_to_end import Line, add_device, order, wan_address

LINE = Line("203.0.113.74", "255.255.255.248", "203.0.113.73",
            "198.51.100.160", "255.255.255.240", "198.51.100.161")  # fmt: skip


async def _swap(daemon, new_called_in: bool) -> None:
    world = build_world(daemon)
    old = Simulation(daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="LINEOLD")
    new = Simulation(daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="LINENEW")
    device_id = add_device(world, old.routers[0].serial)
    assert (await old.run_once()).ok == 1
    account = order(world, device_id)
    reply = world.api.post(f"/internet/account/{account}/confirm", LINE.confirm())
    assert reply.status == 200, reply.body
    assert (await old.run_once()).ok == 1
    assert wan_address(old.routers[0].tree.flat()) == LINE.ip
    path = f"/network/device/{device_id}"
    assert world.api.get(path).body["state"] == "ACTIVE"
    if new_called_in:
        assert (await new.run_once()).ok == 1  # unclaimed until the PATCH
    reply = world.api.patch(path, {"serialNumber": new.routers[0].serial})
    assert reply.status == 200, reply.body
    assert reply.body["state"] == "PROVISIONING"
    for _ in range(2):
        assert (await new.run_once()).ok == 1
    assert wan_address(new.routers[0].tree.flat()) == LINE.ip
    shown = world.api.get(path).body
    assert shown["state"] == "ACTIVE", shown
    assert shown["status"]["wanIp"] == LINE.ip
    got = world.api.get(f"/internet/account/{account}").body
    assert got["device"] == device_id and got["state"] == "ACTIVE"


async def test_a_line_moves_to_a_router_never_seen(daemon):
    await _swap(daemon, new_called_in=False)


async def test_a_line_moves_to_a_router_that_called_in_before_the_swap(daemon):
    await _swap(daemon, new_called_in=True)


async def test_a_future_line_reaches_a_router_that_informs_hourly_on_its_start(daemon):
    """No periodic Inform comes near the start date: the activation's Connection Request
    alone brings the router in."""
    import asyncio
    import time

    from test_internet_end_to_end import until

    world = build_world(daemon)
    sim = Simulation(
        daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="HOURLY", interval=3600,
        cr_listen="127.0.0.1:0", ramp=0.01,
    )  # fmt: skip
    router = sim.routers[0]
    device_id = add_device(world, router.serial)
    running = asyncio.create_task(sim.run(duration=60))
    try:
        await until(lambda: router.stats.ok >= 1)
        account = order(world, device_id)
        # a whole second: milliseconds rounded to ".000" at x.9995 named a second too early
        start = float(int(time.time()) + 4)
        when = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(start))
        reply = world.api.post(f"/internet/account/{account}/confirm", LINE.confirm(when + "Z"))
        assert reply.status == 200, reply.body
        await until(lambda: wan_address(router.tree.flat()) == LINE.ip, timeout=20)
    finally:
        sim.stop()
        await running
    assert time.time() >= start
