"""Every vendor: a factory-fresh simulated router gets the seed-000 wifi and DHCP at its
vendor's paths, a second session sends nothing, a value changed by hand is put back, and a
removed reservation is deleted from the router's table.

The expected paths are written out here from the vendor documentation (cwmp-reference §8),
not taken from the profiles, so a wrong profile path fails.

The tests share one daemon (module_daemon): each has routers of its own serial prefix (with
the vendor's tree in it where a test runs for several)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from acsd.sim.runner import Simulation
from api_world import SEED_BODY, seed_body, token
from apiclient import Api

W = "InternetGatewayDevice.LANDevice.1.WLANConfiguration."
LH = "InternetGatewayDevice.LANDevice.1.LANHostConfigManagement."
POOL = "Device.DHCPv4.Server.Pool.1."


@dataclass
class Vendor:
    tree: str
    profile: str
    ssid: tuple[str, str]  # 2.4 GHz and 5 GHz SSID parameter
    enable: tuple[str, str]
    password: tuple[str, str]
    security: dict[str, str]  # path -> value for both bands
    dhcp: dict[str, str]  # path -> value
    table: str
    mac: str  # Chaddr as the router holds it
    lan: str  # the router's LAN is lan.0/24 (its factory address), and so is the pool
    extra: dict[str, str] | None = None


def tr181(tree: str, profile: str, five: int, lan: str, extra: dict | None = None) -> Vendor:
    ap = "Device.WiFi.AccessPoint."
    return Vendor(
        tree,
        profile,
        ssid=("Device.WiFi.SSID.1.SSID", f"Device.WiFi.SSID.{five}.SSID"),
        enable=("Device.WiFi.SSID.1.Enable", f"Device.WiFi.SSID.{five}.Enable"),
        password=(f"{ap}1.Security.KeyPassphrase", f"{ap}{five}.Security.KeyPassphrase"),
        security={
            f"{ap}1.Security.ModeEnabled": "WPA2-Personal",
            f"{ap}{five}.Security.ModeEnabled": "WPA2-Personal",
        },
        dhcp={
            POOL + "Enable": "true",
            POOL + "MinAddress": f"{lan}.100",
            POOL + "MaxAddress": f"{lan}.200",
            POOL + "LeaseTime": "600",
            POOL + "DNSServers": "8.8.8.8",
        },
        table=POOL + "StaticAddress.",
        mac="12:34:56:78:90:13",
        lan=lan,
        extra=extra,
    )


def tr098(
    tree: str,
    profile: str,
    five: int,
    secret: str,
    lan: str,
    mac: str = "12:34:56:78:90:13",
    extra: dict | None = None,
) -> Vendor:
    return Vendor(
        tree,
        profile,
        ssid=(f"{W}1.SSID", f"{W}{five}.SSID"),
        enable=(f"{W}1.Enable", f"{W}{five}.Enable"),
        password=(f"{W}1.{secret}", f"{W}{five}.{secret}"),
        security={f"{W}1.BeaconType": "11i", f"{W}{five}.BeaconType": "11i"},
        dhcp={
            LH + "DHCPServerEnable": "true",
            LH + "MinAddress": f"{lan}.100",
            LH + "MaxAddress": f"{lan}.200",
            LH + "DHCPLeaseTime": "600",
            LH + "DNSServers": "8.8.8.8",
        },
        table=LH + "DHCPStaticAddress.",
        mac=mac,
        lan=lan,
        extra=extra,
    )


VENDORS = [
    tr181("tr181-generic", "tr181", 2, "192.168.1"),
    tr181(
        "tplink-tr181",
        "tplink-tr181",
        3,
        "192.168.0",
        {"Device.WiFi.X_TP_BandSteering.Enable": "false"},
    ),
    tr098("tr098-dsl", "tr098", 2, "KeyPassphrase", "192.168.1"),
    tr098("tplink-tr098", "tplink-tr098", 2, "X_TP_PreSharedKey", "192.168.0"),
    # Huawei ONTs take the passphrase in PreSharedKey.1.PreSharedKey.
    tr098("huawei-hg8245", "huawei", 5, "PreSharedKey.1.PreSharedKey", "192.168.100"),
    tr098("zte-f670l", "zte", 5, "PreSharedKey.1.KeyPassphrase", "192.168.1"),
    tr098("zyxel-vmg8825", "zyxel", 5, "PreSharedKey.1.KeyPassphrase", "192.168.1"),
    tr098("nokia-g240w", "nokia", 5, "PreSharedKey.1.KeyPassphrase", "192.168.1"),
]


def same(held: str, wanted: str) -> bool:
    booleans = {"1": "true", "0": "false"}
    return booleans.get(held, held).lower() == booleans.get(wanted, wanted).lower()


def rows(tree: dict[str, str], table: str) -> dict[int, dict[str, str]]:
    out: dict[int, dict[str, str]] = {}
    for path, value in tree.items():
        if path.startswith(table):
            instance, leaf = path[len(table) :].split(".", 1)
            out.setdefault(int(instance), {})[leaf] = value
    return out


@pytest.mark.parametrize("vendor", VENDORS, ids=[v.tree for v in VENDORS])
async def test_vendor_router_ends_with_the_seed_settings_at_its_paths(
    module_daemon, tmp_path: Path, vendor: Vendor
):
    daemon = module_daemon
    sim = Simulation(daemon.cwmp_url, [vendor.tree], 1, serial_prefix=f"PV-{vendor.tree}")
    serial = sim.routers[0].serial
    created = daemon.apply(seed_body(serial, vendor.lan))
    assert created["state"] == "PROVISIONING" and created["jobs"] == 1

    assert (await sim.run_once()).ok == 1
    router = sim.router(serial)
    tree = router.tree.flat()
    wanted = {
        vendor.ssid[0]: "SkyNet",
        vendor.ssid[1]: "Need4Speed",
        vendor.enable[0]: "true",
        vendor.enable[1]: "true",
        vendor.password[0]: "JohnConner",
        vendor.password[1]: "SarahConner",
        **vendor.security,
        **vendor.dhcp,
        **(vendor.extra or {}),
    }
    for path, value in wanted.items():
        assert same(tree[path], value), (path, tree[path], value)
    [(instance, row)] = rows(tree, vendor.table).items()
    assert row["Chaddr"].lower() == vendor.mac.lower() and row["Yiaddr"] == f"{vendor.lan}.10"
    assert same(row["Enable"], "true")

    device = daemon.device_json(serial)
    assert device["cpe"]["profile"] == vendor.profile
    assert device["state"] == "ACTIVE" and device["jobs"] == 0
    assert device["status"]["provisioned"] is True
    assert device["dhcp"]["reservedClients"][0]["id"] == str(instance)
    assert device["job"]["state"] == "DONE"

    # A second session finds nothing to change.
    assert (await sim.run_once()).ok == 1
    assert router.stats.rpcs[-1] == ["GetParameterValues"]

    # A value changed on the router by hand is put back.
    router.set_local(vendor.ssid[1], "Changed by hand")
    assert (await sim.run_once()).ok == 1
    assert "SetParameterValues" in router.stats.rpcs[-1]
    assert router.tree.get(vendor.ssid[1]) == "Need4Speed"

    # Replacing the reservation deletes the old row first: a full table has room then.
    body = seed_body(serial, vendor.lan)
    other = {"mac": "02:00:5E:00:00:77", "ip": f"{vendor.lan}.11"}
    body["dhcp"]["reservedClients"] = [other]
    assert daemon.apply(body)["state"] == "PROVISIONING"
    assert (await sim.run_once()).ok == 1
    rpcs = router.stats.rpcs[-1]
    assert rpcs.index("DeleteObject") < rpcs.index("AddObject") < rpcs.index("SetParameterValues")
    [row] = rows(router.tree.flat(), vendor.table).values()
    assert row["Chaddr"].lower() == other["mac"].lower() and row["Yiaddr"] == other["ip"]

    # Removing the reservation deletes the router's table row.
    body = seed_body(serial, vendor.lan)
    body["dhcp"]["reservedClients"] = []
    assert daemon.apply(body)["state"] == "PROVISIONING"
    assert (await sim.run_once()).ok == 1
    assert "DeleteObject" in router.stats.rpcs[-1]
    assert rows(router.tree.flat(), vendor.table) == {}
    device = daemon.device_json(serial)
    assert device["state"] == "ACTIVE" and device["status"]["provisioned"] is True


@pytest.mark.parametrize("vendor", VENDORS, ids=[v.tree for v in VENDORS])
async def test_a_reservation_made_on_the_router_by_hand_stays(module_daemon, vendor: Vendor):
    # The customer reserved an address on the router's own web page before acsd managed
    # its reservations: acsd adds and deletes its own rows, and leaves that one alone.
    daemon = module_daemon
    sim = Simulation(daemon.cwmp_url, [vendor.tree], 1, serial_prefix=f"PH-{vendor.tree}")
    serial = sim.routers[0].serial
    router = sim.router(serial)
    theirs = router.tree.add_object(vendor.table, "")
    by_hand = {"Chaddr": "02:00:5E:00:00:99", "Yiaddr": f"{vendor.lan}.20", "Enable": "true"}
    for leaf, value in by_hand.items():
        router.set_local(f"{vendor.table}{theirs}.{leaf}", value)
    daemon.apply(seed_body(serial, vendor.lan))
    assert (await sim.run_once()).ok == 1
    held = rows(router.tree.flat(), vendor.table)
    assert all(same(held[theirs][leaf], value) for leaf, value in by_hand.items())
    [ours] = [i for i in held if i != theirs]
    assert held[ours]["Chaddr"].lower() == vendor.mac.lower()
    assert daemon.device_json(serial)["job"]["state"] == "DONE"

    # The operator's reservations go; the customer's stays.
    body = seed_body(serial, vendor.lan)
    body["dhcp"]["reservedClients"] = []
    daemon.apply(body)
    assert (await sim.run_once()).ok == 1
    held = rows(router.tree.flat(), vendor.table)
    assert list(held) == [theirs]
    assert all(same(held[theirs][leaf], value) for leaf, value in by_hand.items())
    device = daemon.device_json(serial)
    assert device["state"] == "ACTIVE" and device["job"]["state"] == "DONE", device["job"]


@pytest.mark.parametrize("vendor", [VENDORS[0], VENDORS[4]], ids=lambda v: v.tree)
async def test_a_reservation_of_an_address_the_customer_reserved_is_refused(module_daemon, vendor):
    # The customer reserved the seed's address on the router for another client: acsd
    # leaves that row, sends the rest, and the job names the clash instead of a second
    # reservation of one address (refused by the router, or handed to two clients).
    daemon = module_daemon
    sim = Simulation(daemon.cwmp_url, [vendor.tree], 1, serial_prefix=f"PC-{vendor.tree}")
    serial = sim.routers[0].serial
    router = sim.router(serial)
    theirs = router.tree.add_object(vendor.table, "")
    row = {"Chaddr": "02:00:5E:00:00:99", "Yiaddr": f"{vendor.lan}.10", "Enable": "true"}
    for leaf, value in row.items():
        router.set_local(f"{vendor.table}{theirs}.{leaf}", value)
    daemon.apply(seed_body(serial, vendor.lan))
    assert (await sim.run_once()).ok == 1
    tree = router.tree.flat()
    assert list(rows(tree, vendor.table)) == [theirs]
    assert tree[vendor.ssid[0]] == "SkyNet"
    job = daemon.device_json(serial)["job"]
    assert job["state"] == "FAILED"
    assert job["faults"] == [
        {
            "setting": "dhcp.reservations[123456789013]",
            "message": f"{vendor.lan}.10 is reserved on the router for 02:00:5E:00:00:99 "
            "(a reservation made there, which acsd leaves alone): not sent",
            "attempts": 0,
        }
    ]
    # The customer deletes theirs: the next session adds the operator's.
    router.tree.delete_object(f"{vendor.table}{theirs}.", "")
    assert (await sim.run_once()).ok == 1
    [held] = rows(router.tree.flat(), vendor.table).values()
    assert held["Chaddr"].lower() == vendor.mac.lower()
    assert daemon.device_json(serial)["job"]["state"] == "DONE"


async def test_a_lease_time_that_needs_a_reboot_reboots_once(module_daemon, tmp_path: Path):
    daemon = module_daemon
    sim = Simulation(daemon.cwmp_url, ["zyxel-vmg8825"], 1, serial_prefix="PZ")
    serial = sim.routers[0].serial
    daemon.apply(seed_body(serial, "192.168.1"))
    assert (await sim.run_once()).ok == 1
    router = sim.router(serial)
    assert router.stats.rpcs[-1][-1] == "Reboot"
    job = daemon.device_json(serial)["job"]
    assert job["notes"][0] == "the CPE applies some values after its next reboot"
    assert (await sim.run_once()).ok == 1
    assert "M Reboot" in router.stats.events[-1]
    assert router.stats.rpcs[-1] == ["GetParameterValues"]
    assert daemon.device_json(serial)["job"]["notes"] == []  # rebooted: in effect


async def test_the_reboot_note_goes_with_the_reboot_without_drift_checks(daemon_factory):
    # Without drift checks the session after the reboot plans nothing (the job is held):
    # the note that values wait for a reboot must go all the same.
    daemon = daemon_factory(provisioning={"drift_check": False})
    sim = Simulation(daemon.cwmp_url, ["zyxel-vmg8825"], 1, serial_prefix="PZN")
    serial = sim.routers[0].serial
    daemon.apply(seed_body(serial, "192.168.1"))
    assert (await sim.run_once()).ok == 1
    note = "the CPE applies some values after its next reboot"
    assert note in daemon.device_json(serial)["job"]["notes"]
    assert (await sim.run_once()).ok == 1
    assert "1 BOOT" in sim.router(serial).stats.events[-1]
    assert note not in daemon.device_json(serial)["job"]["notes"]


async def test_factory_reset_router_gets_everything_again(module_daemon, tmp_path: Path):
    daemon = module_daemon
    first = Simulation(daemon.cwmp_url, ["huawei-hg8245"], 1, serial_prefix="PR")
    serial = first.routers[0].serial
    daemon.apply(seed_body(serial, "192.168.100"))
    assert (await first.run_once()).ok == 1
    # The same router after a factory reset: factory tree, 0 BOOTSTRAP.
    again = Simulation(daemon.cwmp_url, ["huawei-hg8245"], 1, serial_prefix="PR")
    assert (await again.run_once()).ok == 1
    router = again.router(serial)
    assert "0 BOOTSTRAP" in router.stats.events[-1]
    tree = router.tree.flat()
    assert tree[f"{W}1.SSID"] == "SkyNet"
    assert tree[f"{W}5.PreSharedKey.1.PreSharedKey"] == "SarahConner"
    assert len(rows(tree, LH + "DHCPStaticAddress.")) == 1
    assert daemon.device_json(serial)["status"]["provisioned"] is True


async def test_the_job_keeps_its_time_while_sessions_find_everything_in_place(
    module_daemon, tmp_path: Path
):
    daemon = module_daemon
    sim = Simulation(daemon.cwmp_url, ["tplink-tr181"], 1, serial_prefix="PJ")
    serial = sim.routers[0].serial
    daemon.apply({**SEED_BODY, "serialNumber": serial})
    assert (await sim.run_once()).ok == 1
    done = daemon.device_json(serial)
    assert done["job"]["state"] == "DONE" and done["job"]["updated"]

    await asyncio.sleep(0.01)  # the job's time has milliseconds
    assert (await sim.run_once()).ok == 1
    again = daemon.device_json(serial)
    assert again["status"]["lastComm"] > done["status"]["lastComm"]  # the session was saved
    assert again["job"] == done["job"]  # but the job did not change, nor its time

    # A value put back is a change of the job: its time moves.
    router = sim.router(serial)
    router.set_local(f"{POOL}MaxAddress", "192.168.0.150")
    await asyncio.sleep(0.01)
    assert (await sim.run_once()).ok == 1
    fixed = daemon.device_json(serial)
    assert (
        fixed["job"]["state"] == "DONE" and fixed["job"]["attempts"] == done["job"]["attempts"] + 1
    )
    assert fixed["job"]["updated"] > done["job"]["updated"]


def band_switches(vendor: Vendor, band: int) -> list[str]:
    """The switches under the SSID of ``band`` (0: 2.4 GHz, 1: 5 GHz) that must be on too
    for it to broadcast: TR-181's access point and radio, TR-098's RadioEnabled."""
    if vendor.ssid[band].startswith("Device."):
        ssid = vendor.ssid[band].split(".")[3]  # the access point has the SSID's number
        return [f"Device.WiFi.AccessPoint.{ssid}.Enable", f"Device.WiFi.Radio.{band + 1}.Enable"]
    return [vendor.ssid[band].removesuffix("SSID") + "RadioEnabled"]


@pytest.mark.parametrize("vendor", VENDORS, ids=[v.tree for v in VENDORS])
async def test_wifi_on_turns_on_the_radio_and_off_only_the_ssid(module_daemon, vendor: Vendor):
    # A router whose radios (and TR-181 access points) are off: "enabled" must make the
    # networks broadcast, not just flip the SSIDs' own switches. "Off" then turns off the
    # SSID alone: the radio carries the band's guest network too.
    daemon = module_daemon
    sim = Simulation(daemon.cwmp_url, [vendor.tree], 1, serial_prefix=f"PW-{vendor.tree}")
    serial = sim.routers[0].serial
    router = sim.router(serial)
    switches = band_switches(vendor, 0) + band_switches(vendor, 1)
    for path in switches:
        router.set_local(path, "false")
    daemon.apply(seed_body(serial, vendor.lan))
    assert (await sim.run_once()).ok == 1
    tree = router.tree.flat()
    for path in [*vendor.enable, *switches]:
        assert same(tree[path], "true"), (path, tree[path])
    assert daemon.device_json(serial)["job"]["state"] == "DONE"

    body = seed_body(serial, vendor.lan)
    body["wifi"] = {**body["wifi"], "enabled": False}
    daemon.apply(body)
    assert (await sim.run_once()).ok == 1
    tree = router.tree.flat()
    assert same(tree[vendor.enable[0]], "false")
    for path in [vendor.enable[1], *switches]:
        assert same(tree[path], "true"), (path, tree[path])
    device = daemon.device_json(serial)
    assert device["state"] == "ACTIVE" and device["job"]["state"] == "DONE", device["job"]


TR098_VENDORS = [v for v in VENDORS if v.table.startswith("InternetGatewayDevice.")]


@pytest.mark.parametrize("enable", [True, None], ids=["with-enable", "pool-only"])
@pytest.mark.parametrize("vendor", TR098_VENDORS, ids=[v.tree for v in TR098_VENDORS])
async def test_a_tr098_dhcp_server_on_its_defaults_is_made_configurable(
    module_daemon, vendor: Vendor, enable: bool | None
):
    # DHCPServerConfigurable false: the gateway keeps its default DHCP server settings
    # (TR-098), so the pool acsd writes would not be served. It is set true with them,
    # also when the record leaves the server's switch as it is and gives only the pool.
    daemon = module_daemon
    sim = Simulation(
        daemon.cwmp_url, [vendor.tree], 1, serial_prefix=f"PD{enable or 0:d}-{vendor.tree}"
    )
    serial = sim.routers[0].serial
    router = sim.router(serial)
    router.set_local(LH + "DHCPServerConfigurable", "false")
    body = seed_body(serial, vendor.lan)
    body["dhcp"]["enable"] = enable
    daemon.apply(body)
    assert (await sim.run_once()).ok == 1
    tree = router.tree.flat()
    assert same(tree[LH + "DHCPServerConfigurable"], "true")
    for path, value in vendor.dhcp.items():
        assert same(tree[path], value), (path, tree[path], value)
    # once, in the SetParameterValues that writes the pool (a name twice is a 9003)
    [spv] = [s for s in router.stats.spv if any(n == LH + "MinAddress" for n, _ in s)]
    assert [n for n, _ in spv].count(LH + "DHCPServerConfigurable") == 1, spv
    assert daemon.device_json(serial)["job"]["state"] == "DONE"


def _open_security(vendor: Vendor, band: int) -> dict[str, str]:
    """What an open network is at ``band`` (0: 2.4 GHz, 1: 5 GHz) on the vendor's router."""
    if vendor.tree in ("tr181-generic", "tplink-tr181"):
        return {vendor.password[band].replace("KeyPassphrase", "ModeEnabled"): "None"}
    base = vendor.ssid[band].removesuffix("SSID")
    # TR-098's BeaconType None lets no station associate: open is Basic, no WEP, no auth
    return {
        base + "BeaconType": "Basic",
        base + "BasicEncryptionModes": "None",
        base + "BasicAuthenticationMode": "None",
    }


@pytest.mark.parametrize("vendor", VENDORS, ids=[v.tree for v in VENDORS])
async def test_an_empty_password_makes_an_open_network_the_router_takes(
    module_daemon, vendor: Vendor
):
    daemon = module_daemon
    sim = Simulation(daemon.cwmp_url, [vendor.tree], 1, serial_prefix=f"PO-{vendor.tree}")
    serial = sim.routers[0].serial
    body = seed_body(serial, vendor.lan)
    body["wifi"] = {**body["wifi"], "password": "", "password5G": ""}
    daemon.apply(body)
    router = sim.router(serial)
    before = router.tree.flat()
    assert (await sim.run_once()).ok == 1
    tree = router.tree.flat()
    for band in (0, 1):
        for path, value in _open_security(vendor, band).items():
            assert same(tree[path], value), (path, tree[path], value)
        # the passphrase is left as it was: TR-181 refuses an empty one (8 to 63 characters)
        assert tree[vendor.password[band]] == before[vendor.password[band]]
    device = daemon.device_json(serial)
    assert device["state"] == "ACTIVE", device.get("job")


RAW_KEY = "00112233445566778899aabbccddeeff" * 2


@pytest.mark.parametrize(
    ("vendor", "raw"),
    [
        (VENDORS[0], ("Device.WiFi.AccessPoint.1.Security.PreSharedKey",
                      "Device.WiFi.AccessPoint.2.Security.PreSharedKey")),
        (VENDORS[2], (f"{W}1.PreSharedKey.1.PreSharedKey", f"{W}2.PreSharedKey.1.PreSharedKey")),
        (VENDORS[6], (f"{W}1.PreSharedKey.1.PreSharedKey", f"{W}5.PreSharedKey.1.PreSharedKey")),
    ],
    ids=lambda v: v.tree if isinstance(v, Vendor) else "",
)  # fmt: skip
async def test_a_raw_key_reaches_the_routers_psk_and_holds(module_daemon, vendor: Vendor, raw):
    # A 64-hex-digit key is the PSK itself: KeyPassphrase (8-63 characters) would refuse
    # it (9007) every session; the model's PreSharedKey takes it.
    daemon = module_daemon
    sim = Simulation(daemon.cwmp_url, [vendor.tree], 1, serial_prefix=f"PK-{vendor.tree}")
    serial = sim.routers[0].serial
    body = seed_body(serial, vendor.lan)
    body["wifi"] = {**body["wifi"], "password": RAW_KEY, "password5G": RAW_KEY.upper()}
    daemon.apply(body)
    router = sim.router(serial)
    before = router.tree.flat()
    assert (await sim.run_once()).ok == 1
    tree = router.tree.flat()
    assert (tree[raw[0]], tree[raw[1]]) == (RAW_KEY, RAW_KEY.upper())
    assert tree[vendor.password[0]] == before[vendor.password[0]]
    device = daemon.device_json(serial)
    assert device["state"] == "ACTIVE" and device["job"]["faults"] == [], device["job"]
    assert (await sim.run_once()).ok == 1
    assert "SetParameterValues" not in router.stats.rpcs[-1]  # held, by its hash


async def six_ghz_session(daemon, tree: str, prefix: str) -> tuple[Simulation, dict, str]:
    """A router of ``tree`` asked for the seed's settings and a 6 GHz network: one session."""
    sim = Simulation(daemon.cwmp_url, [tree], 1, serial_prefix=prefix)
    serial = sim.routers[0].serial
    body = seed_body(serial, "192.168.1")
    body["wifi"] = {**body["wifi"], "enabled6G": True, "ssid6G": "Sky6", "password6G": "Skynet6E!"}
    daemon.apply(body)
    assert (await sim.run_once()).ok == 1
    return sim, body, serial


async def test_6ghz_settings_leave_a_dual_band_routers_third_ssid_alone(module_daemon):
    # tr181-generic has two radios: the 6 GHz settings are listed as not on this router,
    # the job still ends DONE, and the next session reads nothing it lacks again.
    daemon = module_daemon
    sim, _body, serial = await six_ghz_session(daemon, "tr181-generic", "P6")
    router = sim.router(serial)
    assert not [p for p, v in router.tree.flat().items() if v == "Sky6"]
    job = daemon.device_json(serial)["job"]
    assert job["state"] == "DONE", job
    six = {
        u["setting"]: u["reason"] for u in job["unsupported"] if u["setting"].startswith("wifi.6g")
    }
    assert set(six) == {"wifi.6g.enable", "wifi.6g.ssid", "wifi.6g.password", "wifi.6g.security"}
    radio = "Device.WiFi.Radio.3.OperatingFrequencyBand is not on this CPE"
    assert set(six.values()) == {radio}, six
    assert (await sim.run_once()).ok == 1
    assert router.stats.rpcs[-1] == ["GetParameterValues"]


async def test_a_wifi_6e_router_gets_its_6ghz_network_and_band_steerings_copy(module_daemon):
    daemon = module_daemon
    sim, body, serial = await six_ghz_session(daemon, "tr181-wifi6e", "P6E")
    router = sim.router(serial)
    tree = router.tree.flat()
    ap = "Device.WiFi.AccessPoint.3.Security."
    assert tree["Device.WiFi.SSID.3.SSID"] == "Sky6"
    assert (tree[ap + "SAEPassphrase"], tree[ap + "ModeEnabled"], tree[ap + "MFPConfig"]) == (
        "Skynet6E!",
        "WPA3-Personal",
        "Required",
    )
    device = daemon.device_json(serial)
    assert device["state"] == "ACTIVE" and device["job"]["unsupported"] == [], device["job"]
    assert (await sim.run_once()).ok == 1
    assert router.stats.rpcs[-1] == ["GetParameterValues"]  # all of it holds
    # band steering: one network on every band, the 6 GHz one included
    body["wifi"] = {"ssid": "Sky", "password": "Skynet2024", "bandsteering": True}
    daemon.apply(body)
    assert (await sim.run_once()).ok == 1
    tree = router.tree.flat()
    assert [tree[f"Device.WiFi.SSID.{i}.SSID"] for i in (1, 2, 3)] == ["Sky"] * 3
    assert tree[ap + "SAEPassphrase"] == "Skynet2024"
    assert daemon.device_json(serial)["state"] == "ACTIVE"


async def test_an_open_6ghz_network_is_enhanced_open(module_daemon):
    # 6 GHz allows no open network (None) and no WPA2: a Wi-Fi 6E access point lists
    # WPA3-Personal and OWE only, and refuses anything else (9007). An empty password6G
    # (an open network) is Enhanced Open there: no password, encrypted, with the
    # management frame protection every 6 GHz network needs; the passphrase stays.
    daemon = module_daemon
    sim = Simulation(daemon.cwmp_url, ["tr181-wifi6e"], 1, serial_prefix="P6O")
    router = sim.routers[0]
    ap = "Device.WiFi.AccessPoint.3.Security."
    before = router.tree.get(ap + "SAEPassphrase")
    body = seed_body(router.serial, "192.168.1")
    body["wifi"] = {**body["wifi"], "enabled6G": True, "ssid6G": "Open6", "password6G": ""}
    daemon.apply(body)
    assert (await sim.run_once()).ok == 1
    tree = router.tree.flat()
    assert (tree["Device.WiFi.SSID.3.SSID"], tree[ap + "ModeEnabled"], tree[ap + "MFPConfig"]) == (
        "Open6",
        "OWE",
        "Required",
    )
    assert router.tree.get(ap + "SAEPassphrase") == before
    assert not [f for f in router.stats.faults if f.method == "SetParameterValues"]
    device = daemon.device_json(router.serial)
    assert device["state"] == "ACTIVE" and device["job"]["unsupported"] == [], device["job"]
    assert (await sim.run_once()).ok == 1
    assert router.stats.rpcs[-1] == ["GetParameterValues"]  # all of it holds
    # band steering's open network: None on 2.4 and 5 GHz, Enhanced Open on 6 GHz
    body["wifi"] = {"ssid": "OpenAll", "password": "", "enabled6G": True, "bandsteering": True}
    daemon.apply(body)
    assert (await sim.run_once()).ok == 1
    tree = router.tree.flat()
    modes = [tree[f"Device.WiFi.AccessPoint.{i}.Security.ModeEnabled"] for i in (1, 2, 3)]
    assert modes == ["None", "None", "OWE"]
    assert daemon.device_json(router.serial)["state"] == "ACTIVE"


async def test_a_security_mode_the_access_point_does_not_list_is_not_written(module_daemon):
    # ModeEnabled takes only what the access point's ModesSupported lists (TR-181's
    # enumerationRef): a 6 GHz one without OWE, a 2.4 GHz one without None. Written, the
    # router refused it (9007) session after session; now the job says why instead, and
    # the rest (SSID, password) is written.
    daemon = module_daemon
    sim = Simulation(daemon.cwmp_url, ["tr181-wifi6e"], 1, serial_prefix="P6M")
    router = sim.routers[0]
    ap = "Device.WiFi.AccessPoint.{}.Security."
    router.tree.values[ap.format(3) + "ModesSupported"] = "WPA3-Personal"
    router.tree.values[ap.format(1) + "ModesSupported"] = "WPA2-Personal,WPA3-Personal-Transition"
    body = seed_body(router.serial, "192.168.1")
    body["wifi"] = {
        **body["wifi"],
        "password": "",
        "enabled6G": True,
        "ssid6G": "Open6",
        "password6G": "",
    }
    daemon.apply(body)
    assert (await sim.run_once()).ok == 1
    written = {name for spv in router.stats.spv for name, _ in spv}
    assert ap.format(3) + "ModeEnabled" not in written
    assert ap.format(1) + "ModeEnabled" not in written
    assert router.tree.get("Device.WiFi.SSID.3.SSID") == "Open6"
    assert router.tree.get(ap.format(2) + "ModeEnabled") == "WPA2-Personal"  # (5 GHz: as asked)
    assert not [f for f in router.stats.faults if f.method == "SetParameterValues"]
    job = daemon.device_json(router.serial)["job"]
    assert job["state"] == "DONE" and job["faults"] == [], job
    assert job["unsupported"] == [
        {
            "setting": "wifi.2g.security",
            "reason": "Device.WiFi.AccessPoint.1.Security.ModesSupported is "
            "'WPA2-Personal,WPA3-Personal-Transition' on this CPE: no 'None'",
        },
        {
            "setting": "wifi.6g.security",
            "reason": "Device.WiFi.AccessPoint.3.Security.ModesSupported is "
            "'WPA3-Personal' on this CPE: no 'OWE'",
        },
    ], job
    assert (await sim.run_once()).ok == 1
    assert router.stats.rpcs[-1] == ["GetParameterValues"]


async def test_tplink_firmware_without_its_steering_switch_says_steering_is_emulated(
    module_daemon,
):
    # TP-Link TR-181 firmware without X_TP_BandSteering: the 2.4 GHz SSID and password go
    # to both bands all the same (band steering's copy), and the job says so, as it does
    # for every profile without a steering parameter, rather than only "not on this CPE".
    daemon = module_daemon
    sim = Simulation(daemon.cwmp_url, ["tplink-tr181"], 1, serial_prefix="PS")
    serial = sim.routers[0].serial
    router = sim.router(serial)
    router.tree._remove("Device.WiFi.X_TP_BandSteering.")
    body = {**SEED_BODY, "serialNumber": serial}
    body["wifi"] = {**SEED_BODY["wifi"], "bandsteering": True}
    daemon.apply(body)
    assert (await sim.run_once()).ok == 1
    tree = router.tree.flat()
    assert tree["Device.WiFi.SSID.3.SSID"] == tree["Device.WiFi.SSID.1.SSID"] == "SkyNet"
    key = "Device.WiFi.AccessPoint.{}.Security.KeyPassphrase"
    assert tree[key.format(3)] == tree[key.format(1)] == SEED_BODY["wifi"]["password"]
    job = daemon.device_json(serial)["job"]
    assert job["state"] == "DONE", job
    assert job["unsupported"] == [
        {
            "setting": "wifi.bandsteering",
            "reason": "Device.WiFi.X_TP_BandSteering.Enable is not on this CPE; "
            "emulated with one SSID and password on every band",
        }
    ]


async def test_5ghz_settings_leave_a_tr098_routers_2ghz_guest_network_alone(module_daemon):
    # tr098-ont (no vendor profile: plain tr098) has its 5 GHz SSID at .5 and a 2.4 GHz
    # guest network at .2, where tr098 writes 5 GHz: the guest network keeps its name,
    # switch and password, the job lists wifi.5g.* as not on this router and ends DONE.
    daemon = module_daemon
    sim = Simulation(daemon.cwmp_url, ["tr098-ont"], 1, serial_prefix="P5")
    serial = sim.routers[0].serial
    router = sim.router(serial)
    before = router.tree.flat()
    daemon.apply(seed_body(serial, "192.168.1"))
    assert (await sim.run_once()).ok == 1
    tree = router.tree.flat()
    assert tree[f"{W}1.SSID"] == "SkyNet"  # 2.4 GHz and DHCP go on
    assert tree[LH + "MinAddress"] == "192.168.1.100"
    guest = {p: v for p, v in before.items() if p.startswith(f"{W}2.")}
    assert {p: tree[p] for p in guest} == guest
    assert not [p for p, v in tree.items() if v in ("Need4Speed", "SarahConner")]
    device = daemon.device_json(serial)
    assert device["cpe"]["profile"] == "tr098"
    job = device["job"]
    assert job["state"] == "DONE", job
    five = {u["setting"]: u["reason"] for u in job["unsupported"] if u["setting"][:8] == "wifi.5g."}
    assert set(five) == {"wifi.5g.enable", "wifi.5g.ssid", "wifi.5g.password", "wifi.5g.security"}
    channels = f"{W}2.PossibleChannels is '1-13' on this CPE: not written here"
    assert set(five.values()) == {channels}, five
    assert (await sim.run_once()).ok == 1
    assert router.stats.rpcs[-1] == ["GetParameterValues"]


async def test_a_router_no_profile_matches_gets_the_profile_its_model_names(module_daemon):
    # tr098-ont under an operator's own brand: no [match] knows it, and plain tr098 writes
    # 5 GHz at .2 (its guest network) or, as here, nowhere. Its catalog model names the
    # profile of the firmware inside (Nokia's: 5 GHz at .5); a model whose profile is of
    # the other data model is not used, and says so.
    daemon = module_daemon
    api = Api(daemon.api_url, token(daemon, "ADMIN"))
    onts = {}
    for name, profile in (("White ONT", "nokia"), ("Wrong root", "tplink-tr181")):
        reply = api.post("/network/model", {"name": name, "type": "ONT", "profile": profile})
        assert reply.status == 201, reply.body
        onts[profile] = reply.body["_id"]
    sim = Simulation(daemon.cwmp_url, ["tr098-ont"], 2, serial_prefix="P5M")
    nokia, wrong = (r.serial for r in sim.routers)
    for serial, model in ((nokia, onts["nokia"]), (wrong, onts["tplink-tr181"])):
        daemon.apply({**seed_body(serial, "192.168.1"), "model": model})
    assert (await sim.run_once()).ok == 2
    device = daemon.device_json(nokia)
    assert device["cpe"]["profile"] == "nokia"
    job = device["job"]
    assert job["state"] == "DONE" and job["unsupported"] == [], job
    assert sim.router(nokia).tree.flat()[f"{W}5.SSID"] == "Need4Speed"
    other = daemon.device_json(wrong)
    assert other["cpe"]["profile"] == "tr098"  # as without a model
    [unusable] = [e for e in daemon.events("session.model_profile_unusable")
                  if e["serial"] == wrong]  # fmt: skip
    assert (unusable["profile"], unusable["root"]) == ("tplink-tr181", "InternetGatewayDevice.")
    assert unusable["level"] == "warning"
    # said once, not at every session of the router until the operator changes the model
    assert (await sim.run_once()).ok == 2
    told = [e for e in daemon.events("session.model_profile_unusable") if e["serial"] == wrong]
    assert [e["level"] for e in told if e["level"] != "debug"] == ["warning"], told


@pytest.mark.parametrize(
    ("tree", "band", "other"),
    [
        ("huawei-hg8245", "X_HW_RFBand", "2.4GHz"),
        ("zte-f670l", "X_ZTE-COM_OperatingFrequencyBand", "2.4GHz"),
        ("zyxel-vmg8825", "X_ZYXEL_OperatingFrequencyBand", "2.4GHz"),
        ("nokia-g240w", "PossibleChannels", "1-13"),
    ],
)
async def test_an_ont_whose_fifth_ssid_is_not_5ghz_keeps_it(module_daemon, tree, band, other):
    # The same firmware with a 2.4 GHz SSID at .5 (a single-band build): the vendor's band
    # parameter says so, and the 5 GHz settings leave it alone.
    daemon = module_daemon
    sim = Simulation(daemon.cwmp_url, [tree], 1, serial_prefix=f"P5V-{tree}")
    serial = sim.routers[0].serial
    router = sim.router(serial)
    router.tree.set_local(f"{W}5.{band}", other)
    before = {p: v for p, v in router.tree.flat().items() if p.startswith(f"{W}5.")}
    lan = {"huawei-hg8245": "192.168.100"}.get(tree, "192.168.1")
    daemon.apply(seed_body(serial, lan))
    assert (await sim.run_once()).ok == 1
    tree_now = router.tree.flat()
    assert {p: tree_now[p] for p in before} == before
    assert same(tree_now[f"{W}1.SSID"], "SkyNet")
    job = daemon.device_json(serial)["job"]
    five = {u["setting"]: u["reason"] for u in job["unsupported"] if u["setting"][:8] == "wifi.5g."}
    assert set(five) == {"wifi.5g.enable", "wifi.5g.ssid", "wifi.5g.password", "wifi.5g.security"}
    assert set(five.values()) == {f"{W}5.{band} is {other!r} on this CPE: not written here"}


async def test_a_router_in_wpa2_wpa3_transition_mode_keeps_it(module_daemon):
    # Wi-Fi 6 routers ship in WPA3-Personal-Transition, which serves WPA2-PSK as well: the
    # password no longer takes them down to WPA2 alone, both sides of it get the password,
    # and the session after finds everything in place.
    daemon = module_daemon
    sim = Simulation(daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="WPA3T")
    router = sim.routers[0]
    sec = "Device.WiFi.AccessPoint.1.Security."
    router.set_local(sec + "ModeEnabled", "WPA3-Personal-Transition")
    daemon.apply(seed_body(router.serial, "192.168.1"))
    assert (await sim.run_once()).ok == 1
    assert router.tree.get(sec + "ModeEnabled") == "WPA3-Personal-Transition"
    written = {name: value for spv in router.stats.spv for name, value in spv}
    password = SEED_BODY["wifi"]["password"]
    assert written[sec + "KeyPassphrase"] == written[sec + "SAEPassphrase"] == password
    mode = "WPA3-Personal-Transition"
    assert written.get(sec + "ModeEnabled", mode) == mode  # (a 0 BOOTSTRAP writes it as it is)
    device = daemon.device_json(router.serial)
    assert device["state"] == "ACTIVE" and device["job"]["state"] == "DONE", device["job"]
    before = len(router.stats.spv)
    assert (await sim.run_once()).ok == 1
    assert len(router.stats.spv) == before, router.stats.spv[before:]


async def _provisioned(daemon, prefix: str) -> tuple[Simulation, Any]:
    """A tr181-generic router given the seed's settings in its first session."""
    sim = Simulation(daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix=prefix)
    router = sim.routers[0]
    daemon.apply(seed_body(router.serial, "192.168.1"))
    assert (await sim.run_once()).ok == 1
    return sim, router


async def test_a_router_that_lost_its_wlan_without_a_bootstrap_gets_its_password_again(
    module_daemon,
):
    # A configuration reset that says no BOOTSTRAP (genieacs-sim restarted, a backup
    # restored): the SSID read back at its default was put back, but the password reads
    # back "" and its remembered hash said "held": WPA2 with the old (or no) key, job DONE.
    sim, router = await _provisioned(module_daemon, "LOSTWLAN")
    key = "Device.WiFi.AccessPoint.1.Security.KeyPassphrase"
    password = SEED_BODY["wifi"]["password"]
    assert router.tree.get(key) == password
    router.set_local("Device.WiFi.SSID.1.SSID", "Factory-1234")
    router.set_local(key, "factory-key")
    management = "Device.ManagementServer.ConnectionRequest"
    router.set_local(management + "Username", "admin")  # and the CR credentials too
    before = len(router.stats.spv)
    assert (await sim.run_once()).ok == 1
    written = {name: value for spv in router.stats.spv[before:] for name, value in spv}
    assert written["Device.WiFi.SSID.1.SSID"] == SEED_BODY["wifi"]["ssid"]
    assert written[key] == password and router.tree.get(key) == password
    assert management + "Username" in written and management + "Password" in written
    # the 5 GHz network kept its name: its password is not sent again
    assert "Device.WiFi.AccessPoint.2.Security.KeyPassphrase" not in written
    before = len(router.stats.spv)
    assert (await sim.run_once()).ok == 1
    assert len(router.stats.spv) == before  # and then nothing more


async def _reset_without_bootstrap(router, sim) -> dict[str, str]:
    """The router goes back to its factory configuration but its next Inform says only
    "1 BOOT" (a BOOTSTRAP session whose result acsd could not save, firmware that does not
    announce a reset, a backup restored): what acsd writes in the session after it."""
    from acsd.cwmp import rpc

    router.factory_reset()
    router.events = [rpc.EventStruct("1 BOOT")]
    before = len(router.stats.spv)
    assert (await sim.run_once()).ok == 1
    return {name: value for spv in router.stats.spv[before:] for name, value in spv}


async def test_a_router_that_lost_its_configuration_unannounced_is_provisioned_again(
    module_daemon,
):
    # Told by its ParameterKey: acsd's revision, reported back at every Inform since
    # acsd wrote it, and the factory's "" after the reset.
    daemon = module_daemon
    sim, router = await _provisioned(daemon, "LOSTCONF")
    assert (await sim.run_once()).ok == 1  # the router reports acsd's key
    key = "Device.ManagementServer.ParameterKey"
    assert router.tree.get(key) != ""
    written = await _reset_without_bootstrap(router, sim)
    wifi = SEED_BODY["wifi"]
    # both bands' passwords, not only where the SSID drifted
    for band, password in ((1, wifi["password"]), (2, wifi["password5G"])):
        assert written[f"Device.WiFi.AccessPoint.{band}.Security.KeyPassphrase"] == password
    assert written["Device.DHCPv4.Server.Pool.1.MinAddress"] == "192.168.1.100"
    assert router.tree.get(key) != ""
    before = len(router.stats.spv)
    assert (await sim.run_once()).ok == 1
    assert len(router.stats.spv) == before  # and then nothing more
    assert daemon.device_json(router.serial)["job"]["state"] == "DONE"


async def test_a_router_that_never_reports_acsds_parameter_key_is_not_taken_for_reset(
    module_daemon,
):
    # Firmware that leaves its ParameterKey as it is: acsd never saw its key echoed, so
    # a key other than acsd's says nothing, and nothing is written again session after
    # session.
    sim, router = await _provisioned(module_daemon, "STILLKEY")
    key = "Device.ManagementServer.ParameterKey"
    for _ in range(3):
        router.tree.values[key] = "vendor-default"
        before = len(router.stats.spv)
        assert (await sim.run_once()).ok == 1
        assert len(router.stats.spv) == before


async def test_reservations_resent_in_another_notation_or_order_make_no_job(module_daemon):
    # A client that reads a device and sends its reservations back, with the MACs as its
    # own UI writes them or in another order, changes nothing the router must hold: no
    # job (and no Connection Request) with nothing to do.
    daemon = module_daemon
    sim = Simulation(daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="RESVSAME")
    router = sim.routers[0]
    body = seed_body(router.serial, "192.168.1")
    body["dhcp"]["reservedClients"] = [
        {"mac": "123456789013", "ip": "192.168.1.10", "enable": True},
        {"mac": "02005e100001", "ip": "192.168.1.11", "enable": True},
    ]
    daemon.apply(body)
    assert (await sim.run_once()).ok == 1
    device = daemon.device_json(router.serial)
    assert (device["state"], device["jobs"]) == ("ACTIVE", 0)
    body["dhcp"]["reservedClients"] = [
        {"mac": "02-00-5E-10-00-01", "ip": "192.168.1.11", "enable": True},
        {"mac": "1234.5678.9013", "ip": "192.168.1.10", "enable": True},
    ]
    daemon.apply(body)
    device = daemon.device_json(router.serial)
    assert (device["state"], device["jobs"]) == ("ACTIVE", 0)
    body["dhcp"]["reservedClients"][0]["ip"] = "192.168.1.12"  # a real change still is one
    daemon.apply(body)
    device = daemon.device_json(router.serial)
    assert (device["state"], device["jobs"]) == ("PROVISIONING", 1)


async def test_a_router_that_sends_latin1_in_utf8_envelopes_keeps_its_ssid(module_daemon):
    # Firmware that keeps text in Latin-1 and sends those bytes in envelopes it labels
    # UTF-8: the SSID was read back as "Caf\ufffd-\ufffdet", taken for drift and written
    # again at every session (each a radio restart) until the job failed as refused.
    daemon = module_daemon
    sim = Simulation(
        daemon.cwmp_url, ["tr181-generic"], 1, serial_prefix="LATIN1", quirks={"latin1-values"}
    )
    router = sim.routers[0]
    body = seed_body(router.serial, "192.168.1")
    body["wifi"]["ssid"] = "Café-Ñet"
    daemon.apply(body)
    assert (await sim.run_once()).ok == 1
    assert router.tree.get("Device.WiFi.SSID.1.SSID") == "Café-Ñet"
    writes = len(router.stats.spv)
    for _ in range(3):
        assert (await sim.run_once()).ok == 1
    assert len(router.stats.spv) == writes, router.stats.spv[writes:]
    device = daemon.device_json(router.serial)
    assert device["job"]["state"] == "DONE" and device["state"] == "ACTIVE"


async def test_zte_v9_firmware_takes_the_passphrase_at_the_wlan_level(module_daemon):
    # A ZTE F670L V9 (a full walk of one): PreSharedKey.1. holds the hex key alone, and
    # the passphrase is WLANConfiguration.{i}.KeyPassphrase. It used to get the new SSIDs
    # with the factory password, the job DONE with the passwords "not on this CPE".
    daemon = module_daemon
    sim = Simulation(daemon.cwmp_url, ["zte-f670l"], 1, serial_prefix="PV-zte-v9")
    router = sim.routers[0]
    router.tree.lack(*(f"{W}{i}.PreSharedKey.1.KeyPassphrase" for i in range(1, 9)))
    daemon.apply(seed_body(router.serial, "192.168.1"))
    assert (await sim.run_once()).ok == 1
    assert router.tree.get(f"{W}1.KeyPassphrase") == "JohnConner"
    assert router.tree.get(f"{W}5.KeyPassphrase") == "SarahConner"
    device = daemon.device_json(router.serial)
    assert device["state"] == "ACTIVE" and device["job"]["state"] == "DONE"
    assert not device["job"].get("unsupported"), device["job"]
    # and nothing to write the next time
    assert (await sim.run_once()).ok == 1
    assert router.stats.rpcs[-1] == ["GetParameterValues"]


async def test_a_longer_primary_dns_server_keeps_a_tr098_list_within_64_characters(
    module_daemon,
):
    # TR-098's DNSServers is a list of 64 characters at most. The primary replaces the
    # first entry and the router's own entries stay: a primary longer than the one it
    # replaces pushed a full list over, and a router that follows the model refused the
    # whole value (9007) every session. Its last entries are left out, and the job says so.
    daemon = module_daemon
    sim = Simulation(daemon.cwmp_url, ["huawei-hg8245"], 1, serial_prefix="DNS64")
    router = sim.routers[0]
    own = "1.1.1.1,203.0.113.201,203.0.113.202,203.0.113.203,203.0.113.20"  # 62
    router.set_local(LH + "DNSServers", own)
    body = seed_body(router.serial, "192.168.100")
    body["dhcp"]["primaryDnsServer"] = "198.51.100.153"
    daemon.apply(body)
    assert (await sim.run_once()).ok == 1
    held = router.tree.get(LH + "DNSServers")
    assert held == "198.51.100.153,203.0.113.201,203.0.113.202,203.0.113.203", held
    job = daemon.device_json(router.serial)["job"]
    assert job["state"] == "DONE" and not job.get("faults"), job
    assert any("203.0.113.20 left out of" in note for note in job["notes"]), job
    # held from then on: nothing written, nothing more left out
    assert (await sim.run_once()).ok == 1
    assert router.stats.rpcs[-1] == ["GetParameterValues"]
    assert router.tree.get(LH + "DNSServers") == held


def eg8141a5_tree(folder: Path) -> str:
    """An EG8141A5 as the public sources show it, made from the shipped HG8245Q2 tree:
    one radio (WLANConfiguration.1-4, 2.4 GHz), the passphrase taken at
    PreSharedKey.1.KeyPassphrase (which the HG8245Q2 tree refuses, 9008)."""
    import json
    from importlib import resources

    tree = json.loads((resources.files("acsd.sim") / "trees" / "huawei-hg8245.json").read_text())
    tree["name"], tree["serial_prefix"] = "huawei-eg8141a5", "SIMHWA"
    tree["set_faults"] = {}
    params = tree["parameters"]
    for leaf in ("ProductClass", "ModelName"):
        params[f"InternetGatewayDevice.DeviceInfo.{leaf}"][0] = "EG8141A5"
    for path in [p for p in params if any(p.startswith(f"{W}{i}.") for i in range(5, 9))]:
        del params[path]
    params["InternetGatewayDevice.LANDevice.1.LANWLANConfigurationNumberOfEntries"][0] = "4"
    out = folder / "huawei-eg8141a5.json"
    out.write_text(json.dumps(tree))
    return str(out)


async def test_a_huawei_eg8141a5_takes_its_passphrase_at_the_standard_leaf(
    module_daemon, tmp_path: Path
):
    # The EG8141A5 (Flashman's model of it, firmware V5R019C00S120) takes the passphrase at
    # PreSharedKey.1.KeyPassphrase, where the other Huawei ONTs take it at
    # PreSharedKey.1.PreSharedKey; and it has no 5 GHz radio. Under the huawei profile its
    # password went to PreSharedKey.1.PreSharedKey.
    daemon = module_daemon
    sim = Simulation(daemon.cwmp_url, [eg8141a5_tree(tmp_path)], 1, serial_prefix="PV-eg8141")
    router = sim.routers[0]
    before = router.tree.get(f"{W}1.PreSharedKey.1.PreSharedKey")
    daemon.apply(seed_body(router.serial, "192.168.100"))
    assert (await sim.run_once()).ok == 1
    device = daemon.device_json(router.serial)
    assert device["cpe"]["profile"] == "huawei-eg8141a5"
    assert router.tree.get(f"{W}1.PreSharedKey.1.KeyPassphrase") == "JohnConner"
    assert router.tree.get(f"{W}1.PreSharedKey.1.PreSharedKey") == before
    job = device["job"]
    assert job["state"] == "DONE" and not job.get("faults"), job
    assert {u["setting"] for u in job["unsupported"]} >= {"wifi.5g.ssid", "wifi.5g.password"}
    # nothing to write the next time
    assert (await sim.run_once()).ok == 1
    assert router.stats.rpcs[-1] == ["GetParameterValues"]
