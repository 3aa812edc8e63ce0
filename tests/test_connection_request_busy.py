"""A Connection Request the router answers 503 because it is in a session (TR-069: it
will not preempt that session) is not the end of it: the change made meanwhile was not
in the session the router was in, and its next periodic Inform may be a day away."""

from __future__ import annotations

import asyncio
import contextlib
import time

from acsd.sim.runner import Simulation
from api_world import build_world, device_body


async def _until(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(predicate):
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def _busy_router(daemon, prefix: str, ssid: str, duration: float):
    """A provisioned router (in-tree simulator, its Connection Request listener up) that is
    in a session of its own when an operator's change comes: its listener answers the
    change's request 503. Yields (world, router, device path) once that 503 is logged; the
    router's session is over from then on (no periodic Inform for an hour)."""
    world = build_world(daemon)
    sim = Simulation(
        daemon.cwmp_url, ["tplink-tr181"], 1, serial_prefix=prefix, interval=3600,
        cr_listen="127.0.0.1:0", ramp=0.01,
    )  # fmt: skip
    serial = sim.routers[0].serial
    router = sim.router(serial)
    running = asyncio.create_task(sim.run(duration=duration))
    try:
        await _until(lambda: router.stats.ok >= 1)
        reply = world.api.post("/network/device", device_body(world, "own", serial))
        assert reply.status == 201, reply.body
        path = f"/network/device/{reply.body['_id']}"
        await _until(lambda: world.api.get(path).body["state"] == "ACTIVE")
        router.in_session = True
        changed = world.api.patch(path, {"wifi": {"ssid": ssid}})
        assert changed.status == 200, changed.body
        await _until(lambda: any(e.get("status") == 503 for e in daemon.events("connreq.done")))
        router.in_session = False
        yield world, router, path
    finally:
        sim.stop()
        await running


async def test_a_change_whose_request_found_the_router_in_a_session_still_reaches_it(
    daemon_factory,
):
    # The change's request waits out the interval since the provisioning's request, and
    # the busy router is asked again an interval after its 503: the shortest interval
    # keeps both waits (10 s each by default) short.
    daemon = daemon_factory(cwmp={"connection_request_interval": 1})
    async with _busy_router(daemon, "BUSY", "AfterTheBusyOne", 90) as (world, router, path):
        sessions = router.stats.ok
        await _until(lambda: world.api.get(path).body["state"] == "ACTIVE", timeout=40)
    assert router.stats.ok > sessions
    assert router.tree.flat()["Device.WiFi.SSID.1.SSID"] == "AfterTheBusyOne"


async def test_a_request_deferred_for_a_change_a_session_took_up_meanwhile_is_not_sent(
    daemon_factory,
):
    # The router answers the change's request 503 (it is in a session), and then, before
    # acsd asks again, opens a session of its own that applies the change: asking again
    # would only start a session that has nothing to do (with several processes, each
    # that deferred a request sent its own).
    daemon = daemon_factory(cwmp={"connection_request_interval": 2})
    async with _busy_router(daemon, "TOOK", "TakenUpMeanwhile", 60) as (world, router, path):
        router.add_event("4 VALUE CHANGE")  # its own session, before acsd asks again
        router.on_wake()
        await _until(lambda: world.api.get(path).body["state"] == "ACTIVE")
        sessions = router.stats.ok
        await _until(lambda: daemon.events("connreq.dropped"), timeout=10)
        await asyncio.sleep(0.5)
    assert [e.get("status") for e in daemon.events("connreq.done")][-1] == 503
    assert router.stats.ok == sessions
    assert router.tree.flat()["Device.WiFi.SSID.1.SSID"] == "TakenUpMeanwhile"
