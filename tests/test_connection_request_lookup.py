"""The Connection Request deferred to the end of the interval is made from the device as
stored when it goes (the daemon's look-up): a session meanwhile may have reported another
username on the router, which is the one the router's Digest check wants."""

from __future__ import annotations

import asyncio
import time

import pytest

from acsd.sim.cpe import Cpe
from acsd.sim.runner import Simulation
from api_world import build_world, device_body
from conftest import wait_for

USERNAME = "Device.ManagementServer.ConnectionRequestUsername"


#: the Connection Request interval of the test below: the second change must come within it
INTERVAL = 3


async def test_a_deferred_request_names_the_username_the_router_reported_meanwhile(
    daemon_factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon = daemon_factory(cwmp={"connection_request_interval": INTERVAL})
    world = build_world(daemon)
    # ISP-locked firmware: it keeps its own username (refuses acsd's with 9008)
    sim = Simulation(
        daemon.cwmp_url, ["tplink-tr181"], 1, serial_prefix="CRLOOK", interval=3600,
        cr_listen="127.0.0.1:0", ramp=0.01, faults={USERNAME: 9008},
    )  # fmt: skip
    serial = sim.routers[0].serial
    router = sim.router(serial)
    router.tree.values[USERNAME] = "cpeadmin"
    made = await asyncio.to_thread(
        world.api.post, "/network/device", device_body(world, "own", serial)
    )
    assert made.status == 201, made.body
    path = f"/network/device/{made.body['_id']}"

    def active() -> bool:
        return world.api.get(path).body["state"] == "ACTIVE"

    # the username the router held when a Connection Request got past its Digest check
    accepted: list[str] = []
    original = Cpe.request_connection

    def request_connection(cpe: Cpe) -> bool:
        accepted.append(cpe.tree.get(USERNAME))
        if len(accepted) == 1:
            # changed on the router (its own management) before the session this request
            # opens: that session reports it, after both changes were made
            cpe.tree.values[USERNAME] = "rotated"
        return original(cpe)

    running = asyncio.create_task(sim.run(duration=60))
    try:
        await asyncio.to_thread(wait_for, active, 20)
        monkeypatch.setattr(Cpe, "request_connection", request_connection)
        changed = time.monotonic()
        informs = len(daemon.events("session.inform"))
        one = await asyncio.to_thread(world.api.patch, path, {"wifi": {"ssid": "FirstChange"}})
        assert one.status == 200, one.body
        # The second change after the Inform of the session the first one's request
        # opens: that session works from the first change alone, so the router has the
        # second one still to take when the deferred request goes (had the session read
        # both, the request would be dropped as needless: connreq.dropped).
        await asyncio.to_thread(
            wait_for, lambda: len(daemon.events("session.inform")) > informs, 10
        )
        two = await asyncio.to_thread(world.api.patch, path, {"wifi": {"ssid": "SecondChange"}})
        assert two.status == 200, two.body
        assert time.monotonic() - changed < INTERVAL  # both within the interval

        def second_request_applied() -> bool:
            ssid = router.tree.flat()["Device.WiFi.SSID.1.SSID"]
            return len(accepted) >= 2 and ssid == "SecondChange" and active()

        await asyncio.to_thread(wait_for, second_request_applied, 20)
    finally:
        sim.stop()
        await running
    # the first with the username the router held then; the deferred one, looked up when
    # it went, with the one the session in between reported (not refused with a 401)
    assert accepted[:2] == ["cpeadmin", "rotated"]
    deferred = [e for e in daemon.events("connreq.deferred") if e.get("device") == two.body["_id"]]
    assert deferred, daemon.events("connreq.deferred")
