"""[provisioning] drift_check_interval: applied settings are checked once per interval per
router (a session between checks reads status only), and at once after a BOOT or a VALUE
CHANGE."""

from __future__ import annotations

import time

from acsd.sim.runner import Simulation
from api_world import seed_body

LAN = "192.168.1"
SSID = "Device.WiFi.SSID.1.SSID"


def wait_past(start: float, seconds: float) -> None:
    """Sleep until ``seconds`` after ``start`` (time.monotonic()): what the test did since
    (CLI calls, sessions) counts toward the wait."""
    time.sleep(max(0.0, start + seconds - time.monotonic()))


async def _applied(daemon, prefix: str):
    """A router that took the seed's settings: (sim, router, when its session was over)."""
    sim = Simulation(daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix=prefix)
    serial = sim.routers[0].serial
    daemon.apply(seed_body(serial, LAN))
    assert (await sim.run_once()).ok == 1
    checked = time.monotonic()
    router = sim.router(serial)
    assert router.tree.get(SSID) == "SkyNet"
    assert daemon.device_json(serial)["job"]["state"] == "DONE"
    return sim, router, checked


async def test_a_hand_made_change_is_put_back_once_the_interval_has_passed(daemon_factory):
    # 4 s: the session and the API read of the "within the interval" step must fit in it
    # (less a second: the check's time is stored in whole seconds) on a loaded machine
    daemon = daemon_factory(provisioning={"drift_check_interval": 4})
    sim, router, checked = await _applied(daemon, "DI")
    router.set_local(SSID, "Mine now")
    for wan in ("IP.Interface.2.IPv4Address.1.IPAddress", "DHCPv4.Client.1.IPAddress"):
        router.set_local("Device." + wan, "203.0.113.7")
    # within the interval: status only, the change stays (and status is still written)
    assert (await sim.run_once()).ok == 1
    assert router.tree.get(SSID) == "Mine now"
    assert daemon.device_json(router.serial)["status"]["wanIp"] == "203.0.113.7"
    wait_past(checked, 4.1)  # the interval since the settings were checked
    assert (await sim.run_once()).ok == 1
    assert router.tree.get(SSID) == "SkyNet"
    # checked just now: another change waits for the next interval
    router.set_local(SSID, "Mine again")
    assert (await sim.run_once()).ok == 1
    assert router.tree.get(SSID) == "Mine again"


async def test_a_boot_or_a_value_change_checks_at_once(daemon_factory):
    daemon = daemon_factory(provisioning={"drift_check_interval": 3600})
    sim, router, _ = await _applied(daemon, "DB")
    router.set_local(SSID, "Mine now")
    assert (await sim.run_once()).ok == 1
    assert router.tree.get(SSID) == "Mine now"
    router.reboot()  # "1 BOOT": the router may have come back with an older configuration
    assert (await sim.run_once()).ok == 1
    assert router.tree.get(SSID) == "SkyNet"
    # a user on the router's web page changes a parameter with passive notification on:
    # the router reports "4 VALUE CHANGE" and acsd checks the settings in that session
    router.tree.notification[SSID] = 1
    router.set_local(SSID, "Mine now")
    assert (await sim.run_once()).ok == 1
    assert router.tree.get(SSID) == "SkyNet"


async def test_the_default_checks_every_session(daemon):
    sim, router, _ = await _applied(daemon, "DD")
    router.set_local(SSID, "Mine now")
    assert (await sim.run_once()).ok == 1
    assert router.tree.get(SSID) == "SkyNet"


async def test_a_refused_repair_is_retried_after_retry_base_not_the_interval(daemon_factory):
    # The router refuses the SSID being put back: the job says retry after retry_base, and
    # that is when it is tried again, not an interval (an hour) later.
    daemon = daemon_factory(provisioning={"drift_check_interval": 3600, "retry_base": 1})
    sim, router, _ = await _applied(daemon, "DR")
    router.set_local(SSID, "Mine now")
    router.cpe.faults = {SSID: 9007}
    router.reboot()  # a BOOT: checked at once, and the router refuses the repair
    assert (await sim.run_once()).ok == 1
    refused = time.monotonic()
    assert router.tree.get(SSID) == "Mine now"
    job = daemon.device_json(router.serial)["job"]
    assert job["state"] == "PENDING" and job["faults"][0]["code"] == 9007
    router.cpe.faults = {}
    wait_past(refused, 1.2)  # retry_base
    assert (await sim.run_once()).ok == 1
    assert router.tree.get(SSID) == "SkyNet"
    assert daemon.device_json(router.serial)["job"]["state"] == "DONE"
