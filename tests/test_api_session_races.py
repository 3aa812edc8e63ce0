"""The operator's API racing a router's session: a change made while a session is open (it
read the record at its Inform) must not be undone by what that session writes at its end,
must reach the router without waiting for its next periodic Inform, and a device deleted
meanwhile gets none of its settings.

The tests share one daemon (module_daemon; race_daemon runs a test on it and again on one
with two workers): each has routers (serial prefixes), API accounts and devices of its
own. The routers are simulated ones driven a message at a time (cpe_steps.SteppedCpe), so
that a test acts between two messages of a session."""

from __future__ import annotations

import asyncio
import time

import pytest

from acsd.cwmp import rpc
from acsd.sim.crserver import ConnectionRequestServer
from acsd.sim.runner import Simulation
from api_world import device_body
from apiclient import Api
from apn_client import ApnApi, apns_path
from conftest import lazy_world, wait_for
from cpe_steps import SteppedCpe
from test_apn_api import token
from test_apn_end_to_end import HINTS, mobile_router


@pytest.fixture(scope="module")
def module_daemon(module_daemon_factory):
    """The module's daemon: a router that answers a Connection Request 503 (it is still in
    the session that asked) is asked again a second later, not ten."""
    return module_daemon_factory(cwmp={"connection_request_interval": 1})


@pytest.fixture(scope="module", params=["one process", "two workers"])
def race_daemon(request, module_daemon_factory):
    """module_daemon, and the same with ``workers = 2`` (the session, the API's change and
    the Connection Request each in either process)."""
    if request.param == "one process":
        return module_daemon_factory(cwmp={"connection_request_interval": 1})
    daemon = module_daemon_factory(top={"workers": 2}, cwmp={"connection_request_interval": 1})
    wait_for(lambda: daemon.events("workers.ready"), timeout=20)
    return daemon


async def _until(predicate, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(predicate):
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_a_device_made_during_its_routers_first_session_is_asked_to_connect(
    module_daemon,
):
    """The operator creates the device while its router's first session is open: acsd
    cannot ask the router to connect yet (it learns the URL at that session's end), and
    the session began without the record's settings. The session's end asks it, so the
    router holds the settings within seconds rather than at its next periodic Inform."""
    daemon = module_daemon
    world = lazy_world(daemon)
    cpe = Simulation(daemon.cwmp_url, ["tplink-tr181"], 1, serial_prefix="RACEFIRST").routers[0]
    server = ConnectionRequestServer({cpe.serial: cpe})
    await server.start()
    cpe.set_connection_request_url(server.url_for(cpe.serial))
    router = SteppedCpe(daemon.cwmp_url, cpe)
    try:
        await asyncio.to_thread(router.inform)
        await asyncio.to_thread(router.until, rpc.GetParameterValues)
        reply = world.api.post("/network/device", device_body(world, "own", cpe.serial))
        assert reply.status == 201 and reply.body["state"] == "PROVISIONING", reply.body
        path = f"/network/device/{reply.body['_id']}"
        await asyncio.to_thread(router.finish)
        assert world.api.get(path).body["state"] == "PROVISIONING"
        await _until(lambda: cpe.cr_requested)
        await asyncio.to_thread(router.session, ["6 CONNECTION REQUEST"])
    finally:
        await server.stop()
        router.close()
    assert cpe.tree.get("Device.WiFi.SSID.1.SSID") == "SkyNet"
    device = world.api.get(path).body
    assert device["state"] == "ACTIVE" and device["status"]["provisioned"] is True


async def test_a_change_during_the_session_that_reports_a_new_address_reaches_the_router(
    module_daemon,
):
    """The router's address changed (a new WAN lease) and a change is made while the
    session that reports it is open: the Connection Request went to the old URL, where
    nothing answers. The session's end asks at the new one."""
    daemon = module_daemon
    world = lazy_world(daemon)
    cpe = Simulation(daemon.cwmp_url, ["tplink-tr181"], 1, serial_prefix="RACEMOVED").routers[0]
    old, new = ConnectionRequestServer({cpe.serial: cpe}), ConnectionRequestServer({})
    await old.start()
    cpe.set_connection_request_url(old.url_for(cpe.serial))
    router = SteppedCpe(daemon.cwmp_url, cpe)
    try:
        await asyncio.to_thread(router.session)
        body = {**device_body(world, "own", cpe.serial), "dhcp": None}
        reply = world.api.post("/network/device", body)
        assert reply.status == 201, reply.body
        path = f"/network/device/{reply.body['_id']}"
        await _until(lambda: cpe.cr_requested)
        await asyncio.to_thread(router.session, ["6 CONNECTION REQUEST"])
        assert world.api.get(path).body["state"] == "ACTIVE"
        await old.stop()  # the old address answers nothing any more
        new.routers = {cpe.serial: cpe}
        await new.start()
        cpe.set_connection_request_url(new.url_for(cpe.serial))
        cpe.cr_requested = False
        await asyncio.to_thread(router.inform, ["2 PERIODIC"])
        await asyncio.to_thread(router.until, rpc.GetParameterValues)
        await asyncio.sleep(1.1)  # the interval since the last request is over: sent at once
        assert world.api.patch(path, {"wifi": {"ssid": "MovedNet"}}).status == 200
        await asyncio.to_thread(router.finish)
        await _until(lambda: cpe.cr_requested)
        await asyncio.to_thread(router.session, ["6 CONNECTION REQUEST"])
    finally:
        await old.stop()
        await new.stop()
        router.close()
    assert cpe.tree.get("Device.WiFi.SSID.1.SSID") == "MovedNet"
    assert world.api.get(path).body["state"] == "ACTIVE"


def test_a_router_unlinked_from_its_apn_account_mid_session_stays_unlinked(module_daemon):
    """An operator who takes a router away from an APN account (mvnoAccount) while it is in
    a session: the session began as that account's router, but its end must not connect
    the account's SIM through the router again, nor lock the SIM to the router's modem
    (the account would read the IMEI of a router that is no longer its)."""
    daemon = module_daemon
    admin = Api(daemon.api_url, token(daemon, "ADMIN"))
    apn = ApnApi(admin, "json")
    sim, card = mobile_router(daemon, "RACEAPN")
    router = SteppedCpe(daemon.cwmp_url, sim.routers[0])
    router.session()  # its SIM numbers are on its record from now on
    daemon.apply({"serialNumber": card["serial"], "mvnoAccount": "RACE-A"})
    device_id = daemon.device_json(card["serial"])["_id"]
    router.inform(["2 PERIODIC"])
    router.until(rpc.GetParameterValues)
    # the account registers the SIM, locked to the modem it is first seen in; then the
    # router is unlinked from the account, both while the session is open
    created = apn.post(
        apns_path("RACE-A", "fleet"), {"CLI": card["imsi"], "LockIMEI": True, "Hints": HINTS}
    )
    assert created.status == 202, created.wrapper
    sim_path = apns_path("RACE-A", "fleet", created.wrapper["Meta"]["Id"])
    reply = admin.patch(f"/network/device/{device_id}", {"mvnoAccount": None})
    assert reply.status == 200 and "mvnoAccount" not in reply.body
    router.finish()
    for _ in range(2):  # and the next session leaves it so
        got = apn.get(sim_path)
        assert "Router" not in got.wrapper["Meta"], got.wrapper
        assert got.data["NetworkStatus"] == 0 and "LastSync" not in got.data
        assert got.data["IMEI"] is None
        router.session(["2 PERIODIC"])


def drops_requests_in_session(cpe) -> list[bool]:
    """Make ``cpe`` answer a Connection Request that comes during a session 200 and then
    forget it, as many real CPEs do (TR-069 lets them): the list grows by one each time."""
    dropped: list[bool] = []
    accept = cpe.request_connection

    def request_connection() -> bool:
        if cpe.in_session:
            dropped.append(True)
            return True
        return accept()

    cpe.request_connection = request_connection
    return dropped


async def _router_with_device(daemon, world, prefix: str):
    """A simulated router with a Connection Request server, whose device the operator made
    and whose first session is done (ACTIVE)."""
    cpe = Simulation(daemon.cwmp_url, ["tplink-tr181"], 1, serial_prefix=prefix).routers[0]
    server = ConnectionRequestServer({cpe.serial: cpe})
    await server.start()
    cpe.set_connection_request_url(server.url_for(cpe.serial))
    router = SteppedCpe(daemon.cwmp_url, cpe)
    reply = world.api.post(
        "/network/device", {**device_body(world, "own", cpe.serial), "dhcp": None}
    )
    assert reply.status == 201, reply.body
    path = f"/network/device/{reply.body['_id']}"
    await asyncio.to_thread(router.session)
    assert world.api.get(path).body["state"] == "ACTIVE"
    cpe.cr_requested = False
    return cpe, server, router, path


async def test_a_change_after_the_settings_phase_reaches_a_router_that_drops_requests_in_session(
    race_daemon,
):
    """The operator changes the wifi while the router is in a session that has already
    planned its settings (its SetParameterValues carries the revision before). The router
    answers the Connection Request 200 and forgets it once the session ends: acsd asks
    again after that session, so the change does not wait for the next periodic Inform."""
    daemon = race_daemon
    world = lazy_world(daemon)
    cpe, server, router, path = await _router_with_device(daemon, world, "RACELATE")
    dropped = drops_requests_in_session(cpe)
    try:
        assert world.api.patch(path, {"wifi": {"ssid": "FirstNet"}}).status == 200
        await _until(lambda: cpe.cr_requested)
        await asyncio.to_thread(router.inform, ["6 CONNECTION REQUEST"])
        await asyncio.to_thread(router.until, rpc.SetParameterValues)
        await asyncio.sleep(1.1)  # the interval since the last request is over
        second = world.api.patch(path, {"wifi": {"ssid": "SecondNet"}})
        assert second.status == 200 and second.body["job"]["state"] == "PENDING"
        await _until(lambda: dropped)
        await asyncio.to_thread(router.finish)
        assert cpe.tree.get("Device.WiFi.SSID.1.SSID") == "FirstNet"
        device = world.api.get(path).body
        assert device["state"] == "PROVISIONING"
        # The session that ended wrote its job, of the revision before: the change after it
        # still shows as waiting for the router, and is listed so.
        assert device["job"] == second.body["job"], device["job"]
        waiting = world.api.get("/network/device", query={"job": "PENDING", "limit": 1000})
        assert device["_id"] in [d["_id"] for d in waiting.body["items"]]
        await _until(lambda: cpe.cr_requested, timeout=8)
        await asyncio.to_thread(router.session, ["6 CONNECTION REQUEST"])
    finally:
        await server.stop()
        router.close()
    assert cpe.tree.get("Device.WiFi.SSID.1.SSID") == "SecondNet"
    device = world.api.get(path).body
    assert device["state"] == "ACTIVE" and device["status"]["provisioned"] is True


async def test_a_device_deleted_during_its_routers_session_gets_none_of_its_settings(
    race_daemon,
):
    """The operator changes the wifi, and deletes the device while the session that the
    change started is still reading the router: that session must not push the deleted
    record's settings, and the record goes without waiting for the next periodic Inform."""
    daemon = race_daemon
    world = lazy_world(daemon)
    cpe, server, router, path = await _router_with_device(daemon, world, "RACEGONE")
    before = cpe.tree.get("Device.WiFi.SSID.1.SSID")
    drops_requests_in_session(cpe)
    try:
        assert world.api.patch(path, {"wifi": {"ssid": "DoomedNet"}}).status == 200
        await _until(lambda: cpe.cr_requested)
        await asyncio.to_thread(router.inform, ["6 CONNECTION REQUEST"])
        await asyncio.to_thread(router.until, rpc.GetParameterValues)
        reply = world.api.delete(path)
        assert reply.status == 202 and reply.body["state"] == "DELETING", reply.body
        await asyncio.to_thread(router.finish)
        assert cpe.tree.get("Device.WiFi.SSID.1.SSID") == before
        await _until(lambda: world.api.get(path).status == 404 or cpe.cr_requested, timeout=8)
        if world.api.get(path).status != 404:
            await asyncio.to_thread(router.session, ["6 CONNECTION REQUEST"])
    finally:
        await server.stop()
        router.close()
    assert world.api.get(path).status == 404
    assert cpe.tree.get("Device.WiFi.SSID.1.SSID") == before


async def test_a_device_deleted_during_its_routers_first_session_is_not_made_again(
    race_daemon,
):
    """A device whose router acsd has never seen goes at once when deleted; when that
    router's first session is open meanwhile, the session pushes none of its settings and
    its end does not make the record again."""
    daemon = race_daemon
    world = lazy_world(daemon)
    cpe = Simulation(daemon.cwmp_url, ["tplink-tr181"], 1, serial_prefix="RACENEW").routers[0]
    before = cpe.tree.get("Device.WiFi.SSID.1.SSID")
    router = SteppedCpe(daemon.cwmp_url, cpe)
    reply = world.api.post(
        "/network/device", {**device_body(world, "own", cpe.serial), "dhcp": None}
    )
    assert reply.status == 201, reply.body
    path = f"/network/device/{reply.body['_id']}"
    try:
        await asyncio.to_thread(router.inform)
        await asyncio.to_thread(router.until, rpc.GetParameterValues)
        assert world.api.delete(path).status == 202
        assert world.api.get(path).status == 404
        await asyncio.to_thread(router.finish)
    finally:
        router.close()
    assert cpe.tree.get("Device.WiFi.SSID.1.SSID") == before
    shown = await asyncio.to_thread(daemon.cli, "device", "show", cpe.serial, check=False)
    assert shown.returncode != 0, shown.stdout


async def test_a_release_overtaken_by_the_routers_reboot_keeps_the_newer_session(
    module_daemon_factory,
):
    """The router reboots (new firmware) while the session that releases its device is
    open, and its new session runs in the other worker: that one releases the device and
    keeps the router as unclaimed with what it reported. The first session, ending after
    it, wrote what it read before the reboot over that (the firmware of before, until the
    next periodic Inform); it now keeps nothing, as the record was not its to release."""
    daemon = module_daemon_factory(top={"workers": 2}, cwmp={"connection_request_interval": 1})
    wait_for(lambda: daemon.events("workers.ready"), timeout=20)
    world = lazy_world(daemon)
    version = "Device.DeviceInfo.SoftwareVersion"
    # until the two sessions are in different workers: the kernel hands each connection to
    # either, so one try in two; twenty all alike is one run in a million
    for attempt in range(20):
        cpe, server, router, path = await _router_with_device(daemon, world, f"RACEBOOT{attempt}X")
        rebooted = SteppedCpe(daemon.cwmp_url, cpe)
        try:
            assert world.api.delete(path).status == 202
            await _until(lambda cpe=cpe: cpe.cr_requested)
            await asyncio.to_thread(router.inform, ["6 CONNECTION REQUEST"])
            await asyncio.to_thread(router.until, rpc.GetParameterValues)
            cpe.tree.set_local(version, "2.0 after the reboot")
            await asyncio.to_thread(rebooted.session, ["1 BOOT"])
            try:
                await asyncio.to_thread(router.finish)
            except AssertionError:  # (ended by the new session: both in one worker)
                continue
        finally:
            await server.stop()
            router.close()
            rebooted.close()
        informs = [e for e in daemon.events("session.inform") if e["serial"] == cpe.serial]
        if informs[-1]["worker"] == informs[-2]["worker"]:
            continue
        kept = world.api.get("/network/device", query={"q": cpe.serial}).body["items"]
        assert [d["cpe"]["softwareVersion"] for d in kept] == ["2.0 after the reboot"]
        return
    raise AssertionError("the two sessions never ran in different workers in 20 tries")
