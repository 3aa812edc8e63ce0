"""A static line held for want of DNS servers goes out as soon as the operator configures
some: the reload that sets ``[provisioning] static_wan_dns`` asks the routers whose lines
it held to connect, rather than leave them to a periodic Inform that may be a day away."""

from __future__ import annotations

import asyncio
import socket

from acsd.sim.runner import Simulation
from conftest import lazy_world, wait_for
from test_internet_end_to_end import (
    DNS_SERVERS,
    Line,
    add_device,
    confirmed_line,
    rows,
    wan_address,
    without_dns,
)
from test_reload import hup

HELD = Line("203.0.113.154", "255.255.255.248", "203.0.113.153",
            "198.51.100.96", "255.255.255.240", "198.51.100.97")  # fmt: skip
SENT = Line("203.0.113.162", "255.255.255.248", "203.0.113.161",
            "198.51.100.112", "255.255.255.240", "198.51.100.113")  # fmt: skip


async def test_setting_static_wan_dns_on_reload_sends_the_held_lines_at_once(daemon_factory):
    daemon = daemon_factory(cwmp={"connection_request_interval": 1})
    world = lazy_world(daemon)
    # (periodic Informs an hour apart: only a Connection Request brings a session soon)
    sim = Simulation(
        daemon.cwmp_url, ["tr181-generic"], 2, serial_prefix="HELDDNS", interval=3600,
        ramp=0.01,
    )  # fmt: skip
    held, sent = sim.routers
    devices = {}
    for router in sim.routers:
        without_dns(router)
        devices[router.serial] = add_device(world, router.serial)
    # reaches acsd by name: no line without a resolver; the other one by address
    held.cpe.set_local("Device.ManagementServer.URL", "http://acs.example.net:7547/")
    assert (await sim.run_once()).ok == 2
    for router, line in ((held, HELD), (sent, SENT)):
        await confirmed_line(world, daemon, router, line, "2024-01-01T00:00:00Z")
    assert (await sim.run_once()).ok == 2

    def job(router) -> dict:
        return world.api.get(f"/network/device/{devices[router.serial]}").body["job"]

    assert job(held)["state"] == "FAILED"
    assert [f["setting"] for f in job(held)["faults"]] == ["wan.static.dns"]
    assert job(sent)["state"] == "DONE" and wan_address(sent.tree.flat()) == SENT.ip
    assert HELD.ip not in wan_address(held.tree.flat())  # (its DHCP address only)

    running = asyncio.create_task(sim.run(duration=60))
    try:
        await asyncio.sleep(0.2)  # (the routers' Connection Request listeners are up)
        sessions = {router.serial: router.stats.sessions for router in sim.routers}
        text = daemon.config.read_text()
        assert "[provisioning]" not in text
        daemon.config.write_text(
            text + '[provisioning]\nstatic_wan_dns = ["198.51.100.53", "203.0.113.53"]\n'
        )
        done = await asyncio.to_thread(hup, daemon)
        assert "restart_needed" not in done, done

        def line_sent() -> bool:
            return wan_address(held.tree.flat()) == HELD.ip and job(held)["state"] == "DONE"

        await asyncio.to_thread(wait_for, line_sent, 15)
    finally:
        sim.stop()
        await running
    servers = [(s["DNSServer"], s["Type"]) for s in rows(held.tree.flat(), DNS_SERVERS)]
    assert servers == [("198.51.100.53", "Static"), ("203.0.113.53", "Static")]
    assert job(held)["faults"] == []
    # woken by a Connection Request; the router whose line went was left alone
    assert "6 CONNECTION REQUEST" in held.stats.events[sessions[held.serial]]
    assert sent.stats.sessions == sessions[sent.serial]
    [woken] = daemon.events("internet.held_lines_woken")
    assert woken["routers"] == 1
    done = [e for e in daemon.events("connreq.done") if e.get("device") == devices[held.serial]]
    assert done and done[-1]["ok"], done


async def test_a_start_with_static_wan_dns_set_sends_the_held_lines_at_once(daemon_factory):
    """The operator set static_wan_dns and restarted instead of reloading: the same."""
    with socket.socket() as probe:  # (one CWMP port for both runs: the router knows it)
        probe.bind(("127.0.0.1", 0))
        cwmp = {"listen": f"127.0.0.1:{probe.getsockname()[1]}", "connection_request_interval": 1}
    daemon = daemon_factory(cwmp=cwmp)
    world = lazy_world(daemon)
    sim = Simulation(
        daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="HELDSTART", interval=3600,
        ramp=0.01,
    )  # fmt: skip
    [held] = sim.routers
    without_dns(held)
    device = add_device(world, held.serial)
    held.cpe.set_local("Device.ManagementServer.URL", "http://acs.example.net:7547/")
    assert (await sim.run_once()).ok == 1
    await confirmed_line(world, daemon, held, HELD, "2024-01-01T00:00:00Z")
    assert (await sim.run_once()).ok == 1
    assert world.api.get(f"/network/device/{device}").body["job"]["state"] == "FAILED"

    running = asyncio.create_task(sim.run(duration=60))
    try:
        await asyncio.sleep(0.2)  # (the router's Connection Request listener is up)
        sessions = held.stats.sessions
        assert await asyncio.to_thread(daemon.stop) == 0
        daemon = daemon_factory(cwmp=cwmp, provisioning={"static_wan_dns": "198.51.100.53"})
        world = lazy_world(daemon)
        await asyncio.to_thread(wait_for, lambda: wan_address(held.tree.flat()) == HELD.ip, 15)
    finally:
        sim.stop()
        await running
    assert "6 CONNECTION REQUEST" in held.stats.events[sessions]
    servers = [s["DNSServer"] for s in rows(held.tree.flat(), DNS_SERVERS)]
    assert servers == ["198.51.100.53"]
    [woken] = daemon.events("internet.held_lines_woken")
    assert woken["routers"] == 1


async def test_the_held_lines_are_found_among_failed_jobs_on_both_backends(store) -> None:
    """Only a FAILED job of the record's revision with a ``wan.static.dns`` fault is a
    held line; the walk pages through FAILED jobs without skipping any."""
    from acsd.provisioning.held_lines import held_lines, wake_held_lines
    from acsd.store.base import DeviceRecord

    def job(revision: int, state: str, *settings: str) -> dict:
        faults = [{"setting": s, "code": 0, "message": "held"} for s in settings]
        return {"job": {"revision": revision, "state": state, "faults": faults}}

    async def add(serial: str, revision: int, provisioning: dict, **kw) -> None:
        await store.upsert_device(
            DeviceRecord(id="", serial_number=serial, revision=revision,
                         provisioning=provisioning, **kw)
        )  # fmt: skip

    for n in range(5):  # (more than a page of the walk below)
        await add(f"HELD{n}", 1, job(1, "FAILED", "wifi.2g.ssid", "wan.static.dns"))
    await add("OTHERFAULT", 1, job(1, "FAILED", "wifi.2g.ssid"))
    await add("PENDINGDNS", 1, job(1, "PENDING", "wan.static.dns"), state="PROVISIONING")
    await add("OLDREVISION", 2, job(1, "FAILED", "wan.static.dns"), state="PROVISIONING")
    await add("DELETING", 1, job(1, "FAILED", "wan.static.dns"), state="DELETING")
    found = [r.serial_number async for r in held_lines(store, page=2)]
    assert found == [f"HELD{n}" for n in range(5)]
    woken: list[str] = []
    assert await wake_held_lines(store, lambda r: woken.append(r.serial_number)) == 5
    assert woken == found
