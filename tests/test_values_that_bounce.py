"""A value the router takes (SetParameterValues answers 0) but then holds otherwise: it
normalises it (an SSID's outer spaces stripped) or silently keeps its own (a lease time it
will not have). Writing it again every session never helps: cwmp-reference 9.7 says stop
after N attempts and raise a per-device fault. acsd wrote it in every session for ever,
with the job DONE and the device ACTIVE, so the operator never learnt that the router does
not hold what was asked; on a setting that needs a reboot, the router rebooted in every
session."""

from __future__ import annotations

import copy

from acsd.sim.runner import Simulation
from acsd.sim.template import PathRules
from api_world import seed_body

SSID2 = "Device.WiFi.SSID.2.SSID"
LEASE = "InternetGatewayDevice.LANDevice.1.LANHostConfigManagement.DHCPLeaseTime"


async def test_an_ssid_the_router_strips_is_written_n_times_then_reported(daemon_factory):
    daemon = daemon_factory(provisioning={"retry_max_attempts": 3})
    sim = Simulation(daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="BS")
    serial = sim.routers[0].serial
    router = sim.router(serial)
    template = copy.copy(router.tree.template)
    template.store = PathRules({SSID2: "strip"})  # this firmware strips an SSID's spaces
    router.tree.template = template
    body = seed_body(serial, "192.168.1")
    body["wifi"]["ssid5G"] = "Need4Speed "
    daemon.apply(body)

    writes = passwords = 0
    key5 = "Device.WiFi.AccessPoint.2.Security.KeyPassphrase"
    for _ in range(6):
        spvs = len(router.stats.spv)
        assert (await sim.run_once()).ok == 1
        sent = {name for spv in router.stats.spv[spvs:] for name, _value in spv}
        writes += SSID2 in sent
        passwords += key5 in sent
    assert router.tree.get(SSID2) == "Need4Speed"
    assert writes == 3  # retry_max_attempts, then no more
    # An SSID found other than written may be a WLAN the router lost (its password with
    # it: sent again), but not when it was written in the sessions before: then it is a
    # value the router does not keep, and its password is not sent with every session.
    assert passwords <= 2, passwords
    device = daemon.device_json(serial)
    job = device["job"]
    assert job["state"] == "FAILED", job
    [fault] = job["faults"]
    assert fault["setting"] == "wifi.5g.ssid" and fault["parameter"] == SSID2
    assert "'Need4Speed'" in fault["message"] and fault["attempts"] == 3
    # The rest of the settings hold, and the device is not stuck in PROVISIONING.
    assert device["state"] == "ACTIVE" and device["jobs"] == 0

    # A value the router can hold is written at once, and the fault goes.
    body["wifi"]["ssid5G"] = "Need4Speed"
    daemon.apply(body)
    assert (await sim.run_once()).ok == 1
    job = daemon.device_json(serial)["job"]
    assert job["state"] == "DONE" and job["faults"] == []


async def test_a_value_put_back_by_hand_now_and_then_is_no_bounce(daemon_factory):
    # Drift correction stays: a value changed by hand is put back however often that
    # happens, as long as the router holds it after each write.
    daemon = daemon_factory(provisioning={"retry_max_attempts": 2})
    sim = Simulation(daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="BH")
    serial = sim.routers[0].serial
    router = sim.router(serial)
    daemon.apply(seed_body(serial, "192.168.1"))
    assert (await sim.run_once()).ok == 1
    for _ in range(4):
        router.set_local(SSID2, "Changed by hand")
        assert (await sim.run_once()).ok == 1
        assert router.tree.get(SSID2) == "Need4Speed"
        assert (await sim.run_once()).ok == 1  # holds
    job = daemon.device_json(serial)["job"]
    assert job["state"] == "DONE" and job["faults"] == []


async def test_a_setting_that_needs_a_reboot_does_not_reboot_the_router_for_ever(daemon):
    # Zyxel applies a new lease time after a reboot; firmware that silently keeps its own
    # would otherwise be rebooted in every session.
    sim = Simulation(daemon.cwmp_url, ["zyxel-vmg8825"], 1, serial_prefix="BZ")
    serial = sim.routers[0].serial
    router = sim.router(serial)
    daemon.apply(seed_body(serial, "192.168.1"))
    reboots = 0
    for _ in range(8):
        assert (await sim.run_once()).ok == 1
        reboots += router.stats.rpcs[-1].count("Reboot")
        router.tree.values[LEASE] = "86400"  # the firmware keeps its own lease time
    assert reboots == 5  # retry_max_attempts (default 5)
    job = daemon.device_json(serial)["job"]
    assert job["state"] == "FAILED"
    assert [f["parameter"] for f in job["faults"]] == [LEASE]


def test_a_password_read_back_empty_n_times_says_the_profile_must_call_it_secret(tmp_path):
    # A vendor passphrase leaf taken for readable (its profile did not say secret = true)
    # that the router hides: "the CPE holds another value" sent the operator after the
    # router, when the profile is what needs a word.
    from acsd.provisioning.desired import Desired
    from acsd.provisioning.jobs import value_hash
    from acsd.provisioning.plan import plan_changes
    from acsd.provisioning.profiles import load_profiles

    leaf = "Device.WiFi.AccessPoint.1.Security.X_ACME_WiFiKey"
    (tmp_path / "acme.toml").write_text(
        'name = "acme"\nextends = "tr181"\nmatch = { manufacturer = "ACME" }\n'
        f'[settings."wifi.2g.password"]\npath = "{leaf}"\nsecret = false\n'
    )
    profile = load_profiles(tmp_path).get("acme")
    wanted = "correct horse battery"
    plan = plan_changes(
        profile,
        Desired(settings={"wifi.2g.password": wanted}),
        {leaf: ""},
        absent=set(),
        memory={"bounces": {leaf: {"hash": value_hash(leaf, wanted), "count": 3}}},
        force=False,
        now=0.0,
        max_attempts=3,
    )
    [failed] = plan.failed
    assert failed["parameter"] == leaf and "reads this parameter back empty" in failed["message"]
    assert "secret = true" in failed["message"] and wanted not in failed["message"]
