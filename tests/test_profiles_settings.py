"""Abstract settings in profiles: built-in vendor profiles, `extends`, defaults, `select`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from acsd.provisioning.profiles import (
    SETTINGS,
    ProfileError,
    Target,
    load_profiles,
    parse_profile,
)
from acsd.store.base import CpeIdentity

IGD = "InternetGatewayDevice."
LAN = "InternetGatewayDevice.LANDevice.1."
WLAN = LAN + "WLANConfiguration."
HOST = LAN + "LANHostConfigManagement."
VENDORS = {
    "tplink-tr181": "tr181",
    "tplink-tr098": "tr098",
    "huawei": "tr098",
    "zte": "tr098",
    "zyxel": "tr098",
    "nokia": "tr098",
}


@pytest.fixture(scope="module")
def profiles():
    return load_profiles()


def paths(profile, key: str) -> list[str]:
    return [t.path for t in profile.settings[key]]


def identity(manufacturer: str, oui: str = "000000", **kw: str | None) -> CpeIdentity:
    return CpeIdentity(
        oui=oui, product_class="PC", serial_number="S1", manufacturer=manufacturer, **kw
    )


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


# --- the built-in profiles ----------------------------------------------------------------


def test_every_builtin_profile_loads(profiles):
    assert set(profiles.names()) >= {"tr181", "tr098", *VENDORS}
    for name, base in VENDORS.items():
        profile = profiles.get(name)
        assert profile.extends == base
        assert profile.root == profiles.get(base).root
        assert not profile.is_base
        assert profile.match["manufacturer"]


@pytest.mark.parametrize("name", ["tr181", "tr098"])
def test_base_profiles_map_every_setting_but_band_steering(profiles, name):
    profile = profiles.get(name)
    # Neither band steering nor WAN failover is standardised: vendor profiles map them.
    vendor_only = {"wifi.bandsteering", "wan.failover.enable", "wan.failover.number"}
    if name == "tr098":
        vendor_only.add("apn.name")  # TR-098 has no cellular model
        # nor 6 GHz nor WPA3: WLANConfiguration.3 is a 2.4 GHz or guest network
        vendor_only |= {k for k in SETTINGS if k.startswith("wifi.6g.")}
    # TR-181's static WAN address and default route are rows acsd adds beside the DHCP
    # client's: their settings are fields of those rows, not parameters at fixed paths.
    in_rows = {s for table in profile.tables.values() for s in table.row_from.values()}
    assert set(profile.settings) | in_rows == set(SETTINGS) - vendor_only
    assert not set(profile.settings) & in_rows
    rows = {"wan.static.address", "wan.static.route", "wan.static.dns_servers"}
    rows = rows if name == "tr181" else set()
    assert set(profile.tables) == {"dhcp.reservations", *rows}


def test_tr181_bands_dhcp_and_reservations(profiles):
    p = profiles.get("tr181")
    assert paths(p, "wifi.5g.ssid") == ["Device.WiFi.SSID.2.SSID"]
    assert paths(p, "wifi.6g.password") == ["Device.WiFi.AccessPoint.3.Security.SAEPassphrase"]
    # WPA3 needs management frame protection Required (TR-181 2.17, MFPConfig), in the
    # same write as the mode
    # 6 GHz is WPA3-SAE or Enhanced Open (OWE), never None or WPA2, and only a mode its
    # access point lists (ModesSupported)
    mode, mfp = p.settings["wifi.6g.security"]
    assert (mode.path, mode.map, mode.supported) == (
        "Device.WiFi.AccessPoint.3.Security.ModeEnabled",
        {"wpa3-sae": "WPA3-Personal", "open": "OWE"},
        "Device.WiFi.AccessPoint.3.Security.ModesSupported",
    )
    assert (mfp.path, mfp.map) == (
        "Device.WiFi.AccessPoint.3.Security.MFPConfig",
        {"wpa3-sae": "Required", "open": "Required"},
    )
    security, mfp = p.settings["wifi.2g.security"]
    assert security.map == {
        "wpa2-psk": "WPA2-Personal",
        "open": "None",
        "wpa3-sae": "WPA3-Personal",
    }
    # WPA3 with MFP Required; back to WPA2 makes it Optional (Required would shut out WPA2
    # clients without MFP). Firmware older than MFPConfig does without it.
    assert (mfp.path, mfp.map, mfp.optional) == (
        "Device.WiFi.AccessPoint.1.Security.MFPConfig",
        {"wpa3-sae": "Required", "wpa2-psk": "Optional"},
        True,
    )
    (lease,) = p.settings["dhcp.lease_time"]
    assert (lease.path, lease.type, lease.multiply) == (
        "Device.DHCPv4.Server.Pool.1.LeaseTime",
        "xsd:int",
        60,
    )
    table = p.tables["dhcp.reservations"]
    assert table.object == "Device.DHCPv4.Server.Pool.1.StaticAddress."
    assert table.key == "mac"
    assert {k: f.param for k, f in table.fields.items()} == {
        "mac": "Chaddr",
        "ip": "Yiaddr",
        "enable": "Enable",
    }
    assert table.fields["mac"].format == "mac-colon-upper"
    assert table.fields["enable"].type == "xsd:boolean"


def test_tr098_security_writes_its_parameters_together(profiles):
    p = profiles.get("tr098")
    beacon, basic_enc, basic_auth, encryption, auth = p.settings["wifi.2g.security"]
    assert beacon.path == WLAN + "1.BeaconType"
    # open is Basic without encryption: TR-098's BeaconType None lets no station associate
    assert beacon.map == {"wpa2-psk": "11i", "open": "Basic"}
    assert (basic_enc.path, basic_enc.map) == (WLAN + "1.BasicEncryptionModes", {"open": "None"})
    assert (basic_auth.path, basic_auth.map) == (
        WLAN + "1.BasicAuthenticationMode",
        {"open": "None"},
    )
    # no entry for "open": nothing is written to the 11i modes of an open network
    assert encryption.map == {"wpa2-psk": "AESEncryption"}
    assert auth.map == {"wpa2-psk": "PSKAuthentication"}
    assert paths(p, "dhcp.enable") == [HOST + "DHCPServerEnable", HOST + "DHCPServerConfigurable"]
    assert p.tables["dhcp.reservations"].object == HOST + "DHCPStaticAddress."


def test_tplink_tr181_puts_5ghz_on_ssid_3_and_has_band_steering(profiles):
    p = profiles.get("tplink-tr181")
    assert paths(p, "wifi.2g.ssid") == ["Device.WiFi.SSID.1.SSID"]  # inherited
    assert paths(p, "wifi.5g.ssid") == ["Device.WiFi.SSID.3.SSID"]
    assert paths(p, "wifi.5g.password") == [
        "Device.WiFi.AccessPoint.3.Security.KeyPassphrase",
        "Device.WiFi.AccessPoint.3.Security.PreSharedKey",
        "Device.WiFi.AccessPoint.3.Security.SAEPassphrase",  # in WPA2/WPA3 transition mode
    ]
    assert paths(p, "wifi.5g.security") == [
        "Device.WiFi.AccessPoint.3.Security.ModeEnabled",
        "Device.WiFi.AccessPoint.3.Security.MFPConfig",
    ]
    (steering,) = p.settings["wifi.bandsteering"]
    assert (steering.path, steering.type) == ("Device.WiFi.X_TP_BandSteering.Enable", "xsd:boolean")
    # the base's 6 GHz would be SSID.3 too: dropped rather than written twice
    assert not any(k.startswith("wifi.6g.") for k in p.settings)


def test_tplink_tr098_password_and_band_steering(profiles):
    p = profiles.get("tplink-tr098")
    assert paths(p, "wifi.5g.ssid") == [WLAN + "2.SSID"]
    (password,) = p.settings["wifi.5g.password"]
    assert password.path == WLAN + "2.X_TP_PreSharedKey"
    assert password.secret and not password.readback
    # No band steering parameter is known for TP-Link's TR-098 firmware (only front-ends
    # that disagree on its path): steering is emulated, and the job says so.
    assert "wifi.bandsteering" not in p.settings
    steer = {"ssid": "Home", "password": "secret123", "bandsteering": True}
    result = wifi_plan(p, steer, {WLAN + "2.PossibleChannels": "36-64"})
    assert not [path for path in written(result) if "BandSteering" in path]
    assert written(result)[WLAN + "2.SSID"] == "Home"
    [reason] = [u["reason"] for u in result.unsupported if u["setting"] == "wifi.bandsteering"]
    assert reason.startswith("profile tplink-tr098 has no band steering parameter; emulated")


@pytest.mark.parametrize(
    ("name", "band"),
    [
        ("huawei", {WLAN + "5.X_HW_RFBand": "5GHz"}),
        ("zte", {WLAN + "5.X_ZTE-COM_OperatingFrequencyBand": "5GHz"}),
        ("zyxel", {WLAN + "5.X_ZYXEL_OperatingFrequencyBand": "5GHz"}),
        ("nokia", {WLAN + "5.PossibleChannels": "36-64"}),
    ],
    ids=["huawei", "zte", "zyxel", "nokia"],
)
def test_ont_vendors_emulate_band_steering_and_write_no_steering_leaf(profiles, name, band):
    # No ONT vendor's steering leaf is known well enough to write (the profiles' headers
    # say what public sources show, e.g. only an object name for ZTE): a guessed one would
    # fault 9005 in every session. Steering is one network on both bands, and the job says
    # that it was emulated.
    steer = {"ssid": "Home", "password": "secret123", "bandsteering": True}
    result = wifi_plan(profiles.get(name), steer, band)
    assert not [path for path in written(result) if "steer" in path.lower()]
    assert written(result)[WLAN + "1.SSID"] == written(result)[WLAN + "5.SSID"] == "Home"
    [reason] = [u["reason"] for u in result.unsupported if u["setting"] == "wifi.bandsteering"]
    assert reason.startswith(f"profile {name} has no band steering parameter; emulated")


@pytest.mark.parametrize(
    ("name", "leaf"),
    [
        ("huawei", "PreSharedKey.1.PreSharedKey"),
        ("zte", "PreSharedKey.1.KeyPassphrase"),
        ("zyxel", "PreSharedKey.1.KeyPassphrase"),
        ("nokia", "PreSharedKey.1.KeyPassphrase"),
    ],
)
def test_ont_vendors_put_5ghz_on_wlan_5(profiles, name, leaf):
    p = profiles.get(name)
    assert paths(p, "wifi.2g.ssid") == [WLAN + "1.SSID"]
    assert paths(p, "wifi.5g.ssid") == [WLAN + "5.SSID"]
    # the passphrase (and TR-098's WLAN-level copy, where firmware lacks PreSharedKey.1.'s),
    # and (where it is not the passphrase's own leaf) the raw key
    raw = (
        []
        if leaf == "PreSharedKey.1.PreSharedKey"
        else ["KeyPassphrase", "PreSharedKey.1.PreSharedKey"]
    )
    assert paths(p, "wifi.2g.password") == [WLAN + "1." + x for x in [leaf, *raw]]
    assert paths(p, "wifi.5g.password") == [WLAN + "5." + x for x in [leaf, *raw]]
    assert all(t.secret for t in p.settings["wifi.5g.password"])
    assert paths(p, "wifi.5g.security") == [
        WLAN + "5.BeaconType",
        WLAN + "5.BasicEncryptionModes",
        WLAN + "5.BasicAuthenticationMode",
        WLAN + "5.IEEE11iEncryptionModes",
        WLAN + "5.IEEE11iAuthenticationMode",
    ]
    assert "wifi.6g.ssid" not in p.settings  # .3 is a 2.4 GHz SSID on these
    assert "wifi.bandsteering" not in p.settings


def test_vendor_quirks(profiles):
    assert profiles.get("zte").settings["wifi.2g.enable"][0].booleans == ("1", "0")
    assert profiles.get("tr098").settings["wifi.2g.enable"][0].booleans == ("true", "false")
    (lease,) = profiles.get("zyxel").settings["dhcp.lease_time"]
    assert (lease.reboot, lease.multiply, lease.type) == (True, 60, "xsd:int")
    assert not any(t.reboot for ts in profiles.get("huawei").settings.values() for t in ts)
    assert profiles.get("nokia").tables["dhcp.reservations"].fields["mac"].format == (
        "mac-colon-lower"
    )
    assert profiles.get("zte").tables["dhcp.reservations"].fields["mac"].format == (
        "mac-colon-upper"
    )


# --- extends ------------------------------------------------------------------------------


def test_a_vendor_profile_inherits_status_identity_and_fetch(profiles):
    base, vendor = profiles.get("tr098"), profiles.get("zyxel")
    assert vendor.status == base.status
    assert vendor.identity == base.identity
    assert vendor.fetch == base.fetch
    assert vendor.settings["dhcp.pool_start"] == base.settings["dhcp.pool_start"]
    assert vendor.origin('settings."dhcp.pool_start"') == base.source
    assert vendor.origin('settings."wifi.5g.ssid"') == vendor.source


def test_setting_names_lists_every_target_and_table(profiles):
    for profile in profiles:
        names = profile.setting_names()
        assert len(names) == len(set(names))
        expected = {t.path for ts in profile.settings.values() for t in ts}
        expected |= {t.object for t in profile.tables.values()}
        assert set(names) == expected
    names = profiles.get("tr181").setting_names()
    # secret paths too: a CPE lacking one faults 9005, which says "unsupported here"
    assert "Device.WiFi.AccessPoint.1.Security.KeyPassphrase" in names
    assert "Device.DHCPv4.Server.Pool.1.StaticAddress." in names
    assert names[0] == "Device.WiFi.SSID.1.Enable"


CHILD = """\
name = "acme"
extends = "tr181"
[match]
manufacturer = "Acme*"
"""


def test_child_keys_replace_the_base_key_by_key():
    text = CHILD + (
        '[status]\nfetch = ["Device.DeviceInfo.UpTime"]\n'
        '[status.fields.lanIp]\npaths = ["Device.IP.Interface.3.IPv4Address.1.IPAddress"]\n'
        '[settings."wifi.2g.ssid"]\npath = "Device.WiFi.SSID.7.SSID"\n'
    )
    p = parse_profile(text, "acme.toml")
    base = load_profiles().get("tr181")
    assert p.root == "Device."  # from the base
    assert p.fetch[0] == "Device.DeviceInfo.UpTime"
    assert "Device.IP.Interface." not in p.fetch  # the child's fetch list replaced the base's
    assert [n for n, _ in p.status] == [n for n, _ in base.status]
    lan = dict(p.status)["lanIp"]
    assert lan[0].paths[0].text == "Device.IP.Interface.3.IPv4Address.1.IPAddress"
    assert paths(p, "wifi.2g.ssid") == ["Device.WiFi.SSID.7.SSID"]
    assert p.settings["wifi.2g.password"] == base.settings["wifi.2g.password"]
    assert p.identity == base.identity


def test_unsupported_drops_inherited_settings_by_glob():
    text = CHILD.replace("[match]", 'unsupported = ["wifi.6g.*", "dhcp.reservations"]\n[match]')
    p = parse_profile(text, "acme.toml")
    assert not any(k.startswith("wifi.6g.") for k in p.settings)
    assert "dhcp.reservations" not in p.tables
    assert "wifi.5g.ssid" in p.settings


def test_a_vendor_may_extend_a_vendor(tmp_path):
    write(
        tmp_path,
        "c6.toml",
        'name = "archer-c6"\nextends = "tplink-tr098"\n'
        '[match]\nmanufacturer = "TP-Link*"\nmodelName = "Archer C6*"\n',
    )
    p = load_profiles(tmp_path).get("archer-c6")
    assert p.root == IGD
    assert paths(p, "wifi.2g.password") == [WLAN + "1.X_TP_PreSharedKey"]
    assert p.match == {"manufacturer": ("TP-Link*",), "modelName": ("Archer C6*",)}


def test_written_with_may_name_a_table(tmp_path):
    # a switch that a reservation row needs as much as the pool does (TR-098's
    # DHCPServerConfigurable), without any DHCP setting to go along with
    host = "InternetGatewayDevice.LANDevice.1.LANHostConfigManagement."
    write(
        tmp_path,
        "acme.toml",
        'name = "acme"\nextends = "tr098"\n[match]\nmanufacturer = "Acme*"\n'
        f'[[settings."dhcp.enable"]]\npath = "{host}DHCPServerEnable"\n'
        f'[[settings."dhcp.enable"]]\npath = "{host}DHCPServerConfigurable"\n'
        'value = "true"\nwritten_with = "dhcp.reservations"\noptional = true\n',
    )
    p = load_profiles(tmp_path).get("acme")
    [switch] = [t for t in p.settings["dhcp.enable"] if t.written_with]
    assert switch.written_with == ("dhcp.reservations",)


# --- defaults -----------------------------------------------------------------------------


def test_target_defaults(profiles):
    p = profiles.get("tr181")
    enable = p.settings["wifi.2g.enable"][0]  # the SSID switch; the radio's follow it
    # no `type` in the file: a bool setting writes xsd:boolean (what the model says)
    assert enable == Target(
        path="Device.WiFi.SSID.1.Enable",
        type="xsd:boolean",
        map=None,
        multiply=None,
        booleans=("true", "false"),
        secret=False,
        reboot=False,
    )
    assert enable.readback
    assert p.settings["wifi.2g.ssid"][0].type == "xsd:string"
    for key in ("wifi.2g.password", "wifi.5g.password", "wifi.6g.password"):
        assert p.settings[key][0].secret
    assert profiles.get("huawei").settings["wifi.2g.password"][0].secret


def test_secret_defaults_follow_the_leaf_name_vendor_prefix_or_not():
    text = CHILD + (
        '[settings."wifi.2g.password"]\npath = "Device.WiFi.AccessPoint.1.X_ACME_KeyPassphrase"\n'
        '[settings."wifi.5g.password"]\npath = "Device.WiFi.AccessPoint.2.X_ACME_WlanPassword"\n'
        '[settings."wifi.5g.ssid"]\npath = "Device.WiFi.SSID.2.X_ACME_Name"\n'
        '[settings."dhcp.dns"]\npath = "Device.DHCPv4.Server.Pool.1.DNSServers"\nsecret = true\n'
    )
    p = parse_profile(text, "acme.toml")
    assert p.settings["wifi.2g.password"][0].secret
    assert p.settings["wifi.5g.password"][0].secret
    assert not p.settings["wifi.5g.ssid"][0].secret
    assert p.settings["dhcp.dns"][0].secret  # stated


# --- select -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("manufacturer", "oui", "root", "expected"),
    [
        ("TP-Link", "50C7BF", "Device.", "tplink-tr181"),
        ("TP-Link", "F4F26D", IGD, "tplink-tr098"),
        ("TP-LINK", "AABBCC", IGD, "tplink-tr098"),  # globs ignore case; any OUI
        ("Huawei Technologies Co., Ltd", "00E0FC", IGD, "huawei"),
        ("ZTE", "CC1AFA", IGD, "zte"),
        ("Zyxel", "5067F0", IGD, "zyxel"),
        ("ZyXEL Communications Corp.", "001349", IGD, "zyxel"),
        ("Nokia", "A8D3F7", IGD, "nokia"),
        ("ALCL", "0425E0", IGD, "nokia"),  # Nokia ONTs of Alcatel-Lucent heritage
        ("Alcatel-Lucent", "0425E0", IGD, "nokia"),
        ("SimLine", "0A5E12", IGD, "tr098"),
        ("Generic", "0A5E13", "Device.", "tr181"),
        ("Huawei", "00E0FC", "Device.", "tr181"),  # no TR-181 Huawei profile: the base
    ],
)
def test_select_picks_the_vendor_profile_of_the_root(profiles, manufacturer, oui, root, expected):
    assert profiles.select(identity(manufacturer, oui), root).name == expected


def test_select_without_identity_gives_the_base(profiles):
    assert profiles.select(None, IGD).name == "tr098"


SPECIFIC = {
    "acme.toml": 'name = "acme"\nextends = "tr098"\n[match]\nmanufacturer = "Acme*"\n',
    "acme-x.toml": (
        'name = "acme-x"\nextends = "acme"\n'
        '[match]\nmanufacturer = "Acme*"\nmodelName = ["X1*", "X2*"]\n'
    ),
    "acme-x-old.toml": (
        'name = "acme-x-old"\nextends = "acme-x"\n[match]\nmanufacturer = "Acme*"\n'
        'modelName = "X1*"\nsoftwareVersion = "1.*"\n'
    ),
    "acme-hw.toml": (
        'name = "acme-hw"\nextends = "acme"\n'
        '[match]\nmanufacturer = "Acme*"\nhardwareVersion = "rev-b"\n'
    ),
}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, "acme"),
        ({"model_name": "X1-Pro"}, "acme-x"),
        ({"model_name": "x2"}, "acme-x"),
        ({"model_name": "X3"}, "acme"),
        ({"model_name": "X1-Pro", "software_version": "1.4.2"}, "acme-x-old"),
        ({"model_name": "X1-Pro", "software_version": "2.0"}, "acme-x"),
        # two keys each: acme-hw ties acme-x, and the first by name wins
        ({"model_name": "X1", "hardware_version": "REV-B"}, "acme-hw"),
        ({"model_name": None, "hardware_version": "rev-b"}, "acme-hw"),
    ],
)
def test_the_most_specific_match_wins(tmp_path, fields, expected):
    for name, text in SPECIFIC.items():
        write(tmp_path, name, text)
    profiles = load_profiles(tmp_path)
    assert profiles.select(identity("Acme Corp", **fields), IGD).name == expected


def test_a_key_whose_identity_value_is_unknown_does_not_match(tmp_path):
    for name, text in SPECIFIC.items():
        write(tmp_path, name, text)
    profiles = load_profiles(tmp_path)
    # the driver may not know ModelName: the profiles that need it are not chosen
    assert profiles.select(identity("Acme", model_name=None), IGD).name == "acme"
    assert [p.name for p in profiles.matching(identity("Acme", model_name="X1"), IGD)] == [
        "acme-x",
        "acme",
    ]


# --- errors in settings, tables, match, extends --------------------------------------------


def load_error(tmp_path: Path, text: str, name: str = "acme.toml") -> ProfileError:
    path = write(tmp_path, name, text)
    with pytest.raises(ProfileError) as caught:
        load_profiles(tmp_path)
    assert caught.value.file == str(path)
    return caught.value


@pytest.mark.parametrize(
    ("extra", "key", "fragment", "line"),
    [
        (
            '[settings."wifi.2g.sssid"]\npath = "Device.WiFi.SSID.1.SSID"\n',
            'settings."wifi.2g.sssid"',
            "did you mean 'wifi.2g.ssid'",
            5,
        ),
        (
            '[settings."wifi.2g.ssid"]\npaht = "Device.WiFi.SSID.1.SSID"\n',
            'settings."wifi.2g.ssid".paht',
            "did you mean 'path'",
            6,
        ),
        (
            '[settings."wifi.2g.ssid"]\npath = "Device.WiFi.SSID.*.SSID"\n',
            'settings."wifi.2g.ssid".path',
            "a parameter path",
            6,
        ),
        (
            '[settings."wifi.2g.enable"]\npath = "Device.WiFi.SSID.1.Enable"\ntype = "boolean"\n',
            'settings."wifi.2g.enable".type',
            "xsd:boolean",
            7,
        ),
        (
            '[settings."wifi.2g.enable"]\npath = "Device.WiFi.SSID.1.Enable"\nbooleans = ["1"]\n',
            'settings."wifi.2g.enable".booleans[1]',
            "",
            7,
        ),
        (
            '[settings."dhcp.lease_time"]\npath = "Device.DHCPv4.Server.Pool.1.LeaseTime"\n'
            "multiply = 0\n",
            'settings."dhcp.lease_time".multiply',
            "",
            7,
        ),
        (
            '[tables."dhcp.reservation"]\nobject = "Device.DHCPv4.Server.Pool.1.StaticAddress."\n'
            'fields = { mac = { param = "Chaddr" } }\n',
            'tables."dhcp.reservation"',
            "did you mean 'dhcp.reservations'",
            5,
        ),
        (
            '[tables."dhcp.reservations"]\n'
            'object = "Device.DHCPv4.Server.Pool.1.StaticAddress.1."\n'
            'fields = { mac = { param = "Chaddr" } }\n',
            'tables."dhcp.reservations".object',
            "not one of its instances",
            6,
        ),
    ],
)
def test_a_bad_setting_is_refused_with_file_line_and_key(tmp_path, extra, key, fragment, line):
    # CHILD is four lines: the extra table starts on line 5
    err = load_error(tmp_path, CHILD + extra)
    assert key in [k for k, _ in err.problems]
    assert fragment in str(err)
    assert f"{err.file}:{line}: {key}" in str(err)


@pytest.mark.parametrize(
    ("text", "key", "line"),
    [
        ('name = "acme"\nextends = "tr181"\n\n[match]\nmodelname = "X*"\n', "match.modelname", 5),
        ('name = "acme"\nextends = "tr181"\nunsupported = 3\n', "unsupported", 3),
        ('name = "acme"\nextend = "tr181"\n[match]\noui = "A"\n', "extend", 2),
    ],
)
def test_a_bad_top_level_key_is_refused_with_its_line(tmp_path, text, key, line):
    err = load_error(tmp_path, text)
    assert f"{err.file}:{line}: {key}" in str(err)


@pytest.mark.parametrize(
    ("extra", "key", "fragment"),
    [
        (
            '[settings."wifi.2g.security"]\n'
            'path = "Device.WiFi.AccessPoint.1.Security.ModeEnabled"\n'
            'map = { wpa2 = "WPA2-Personal" }\n',
            'settings."wifi.2g.security".map.wpa2',
            "not a value of wifi.2g.security",
        ),
        (
            '[settings."wifi.2g.security"]\n'
            'path = "Device.WiFi.AccessPoint.1.Security.ModeEnabled"\n',
            'settings."wifi.2g.security"',
            "`map` says how this CPE spells them",
        ),
        (
            '[settings."wifi.2g.ssid"]\npath = "Device.WiFi.SSID.1.SSID"\nmultiply = 60\n',
            'settings."wifi.2g.ssid".multiply',
            "only numbers scale",
        ),
        (
            '[settings."wifi.2g.ssid"]\npath = "Device.WiFi.SSID.1.SSID"\nbooleans = ["1", "0"]\n',
            'settings."wifi.2g.ssid".booleans',
            "xsd:boolean",
        ),
        (
            '[settings."wifi.2g.enable"]\npath = "Device.WiFi.SSID.1.Enable"\n'
            'type = "xsd:unsignedInt"\n',
            'settings."wifi.2g.enable"',
            "needs `map`",
        ),
        (
            '[settings."wifi.5g.ssid"]\npath = "Device.WiFi.SSID.1.SSID"\n',
            'settings."wifi.5g.ssid".path',
            "also written by wifi.2g.ssid",
        ),
        (
            '[settings."wifi.2g.ssid"]\n'
            'path = "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.SSID"\n',
            'settings."wifi.2g.ssid".path',
            "outside this profile's root",
        ),
        ('unsupported = ["wifi.7g.*"]\n', "unsupported[0]", "unknown setting"),
        (
            'unsupported = ["wifi.2g.*"]\n'
            '[settings."wifi.2g.ssid"]\npath = "Device.WiFi.SSID.1.SSID"\n',
            "unsupported[0]",
            "both mapped and unsupported",
        ),
        ('root = "InternetGatewayDevice."\n', "root", "differs from 'tr181'"),
        (
            '[settings."dhcp.enable"]\npath = "Device.DHCPv4.Server.Enable"\n'
            'written_with = "dhcp.*"\n',
            'settings."dhcp.enable".written_with',
            "needs `value`",
        ),
        (
            '[settings."dhcp.enable"]\npath = "Device.DHCPv4.Server.Enable"\nvalue = "true"\n'
            'written_with = "dhpc.*"\n',
            'settings."dhcp.enable".written_with',
            "unknown setting",
        ),
        # xsd:boolean is true, false, 1, 0, case and all ("TRUE" faults 9007 each session)
        (
            '[settings."dhcp.enable"]\npath = "Device.DHCPv4.Server.Enable"\n'
            'booleans = ["TRUE", "FALSE"]\n',
            'settings."dhcp.enable".booleans',
            "is no xsd:boolean",
        ),
        (
            '[settings."dhcp.enable"]\npath = "Device.DHCPv4.Server.Enable"\n'
            'map = { true = "yes", false = "no" }\n',
            'settings."dhcp.enable".map',
            "is no xsd:boolean",
        ),
        (
            '[settings."dhcp.enable"]\npath = "Device.DHCPv4.Server.Enable"\nvalue = "true"\n'
            'map = { true = "1" }\n',
            'settings."dhcp.enable".value',
            "no `map`",
        ),
        (
            '[tables."dhcp.reservations"]\nobject = "Device.DHCPv4.Server.Pool.1.StaticAddress."\n'
            '[tables."dhcp.reservations".fields]\nip = { param = "Yiaddr" }\n',
            'tables."dhcp.reservations".fields',
            "the row key 'mac'",
        ),
        # a reservation of a MAC alone reserves nothing: the address is not optional
        (
            '[tables."dhcp.reservations"]\n'
            'object = "Device.DHCPv4.Server.Pool.1.X_ACME_Lease."\n'
            '[tables."dhcp.reservations".fields]\nmac = { param = "MACAddress" }\n'
            'enable = { param = "Enable" }\n',
            'tables."dhcp.reservations".fields',
            "dhcp.reservations needs field 'ip'",
        ),
        (
            '[tables."dhcp.reservations"]\nobject = "Device.DHCPv4.Server.Pool.1.StaticAddress."\n'
            '[tables."dhcp.reservations".fields]\nmac = { param = "Chaddr" }\n'
            'mack = { param = "X" }\nip = { param = "Yiaddr", format = "mac-colon-lower" }\n',
            'tables."dhcp.reservations".fields.mack',
            "did you mean 'mac'",
        ),
    ],
)
def test_a_setting_that_cannot_work_is_refused(tmp_path, extra, key, fragment):
    # top-level keys must come before the first table: `match` goes last
    text = 'name = "acme"\nextends = "tr181"\n' + extra + '[match]\nmanufacturer = "Acme*"\n'
    err = load_error(tmp_path, text)
    assert key in [k for k, _ in err.problems], err
    assert fragment in str(err)
    assert err.line is not None


def test_a_mac_format_on_another_field_is_refused(tmp_path):
    text = CHILD + (
        '[tables."dhcp.reservations"]\nobject = "Device.DHCPv4.Server.Pool.1.StaticAddress."\n'
        '[tables."dhcp.reservations".fields]\nmac = { param = "Chaddr" }\n'
        'ip = { param = "Yiaddr", format = "mac-colon-lower" }\n'
    )
    err = load_error(tmp_path, text)
    assert [k for k, _ in err.problems] == ['tables."dhcp.reservations".fields.ip.format']
    assert err.line == 9


def test_a_profile_without_root_or_extends_is_refused(tmp_path):
    err = load_error(tmp_path, 'name = "acme"\n[match]\nmanufacturer = "Acme*"\n')
    assert [k for k, _ in err.problems] == ["root"]


def test_an_unknown_base_is_refused_with_a_hint(tmp_path):
    err = load_error(tmp_path, CHILD.replace('"tr181"', '"tr18"'))
    assert f"{err.file}:2: extends: unknown base profile 'tr18'" in str(err)
    assert "did you mean 'tr181'" in str(err)


def test_profiles_extending_each_other_are_refused_naming_both_files(tmp_path):
    a = write(tmp_path, "a.toml", 'name = "a"\nextends = "b"\n[match]\noui = "A"\n')
    b = write(tmp_path, "b.toml", 'name = "b"\n\nextends = "a"\n[match]\noui = "B"\n')
    with pytest.raises(ProfileError) as caught:
        load_profiles(tmp_path)
    text = str(caught.value)
    assert f"{a}:2: extends: profiles extend each other in a loop" in text
    assert f"a ({a}:2) -> b ({b}:3) -> a" in text


def test_a_profile_extending_itself_is_refused(tmp_path):
    err = load_error(tmp_path, CHILD.replace('"tr181"', '"acme"'))
    assert f"in a loop: acme ({err.file}:2) -> acme" in str(err)


def test_a_vendor_profile_without_match_would_be_a_second_base(tmp_path):
    err = load_error(tmp_path, 'name = "acme"\nextends = "tr181"\n')
    assert "second base profile" in str(err)
    assert "no [match]" in str(err)


def test_a_top_level_key_under_a_table_is_explained(tmp_path):
    err = load_error(tmp_path, CHILD + 'unsupported = ["wifi.6g.*"]\n')
    assert f"{err.file}:5: match.unsupported: 'unsupported' is a top-level key" in str(err)


def test_an_empty_glob_is_refused(tmp_path):
    err = load_error(tmp_path, CHILD.replace('"Acme*"', '""'))
    assert [k for k, _ in err.problems] == ["match.manufacturer"]
    assert err.line == 4


def test_parse_profile_extends_the_builtins_by_default():
    p = parse_profile(CHILD, "acme.toml")
    assert p.extends == "tr181"
    assert p.settings == load_profiles().get("tr181").settings


#: the radios of a tri-band TR-181 router (5 and 6 GHz are written only where they say so)
SIX_GHZ_RADIO = {
    "Device.WiFi.Radio.2.OperatingFrequencyBand": "5GHz",
    "Device.WiFi.Radio.3.OperatingFrequencyBand": "6GHz",
    # each band's SSID on its radio (a trailing dot, as some firmware writes references)
    "Device.WiFi.SSID.2.LowerLayers": "Device.WiFi.Radio.2",
    "Device.WiFi.SSID.3.LowerLayers": "Device.WiFi.Radio.3.",
}


def wifi_plan(profile, wifi: dict, values: dict | None = None, absent: set | None = None):
    """Everything ``wifi`` (a seed wifi object) asks of a router of ``profile`` that has
    reported nothing yet (but ``values``: a tri-band radio layout by default)."""
    from acsd.provisioning.desired import desired_state
    from acsd.provisioning.plan import plan_changes

    return plan_changes(
        profile,
        desired_state(wifi, None),
        SIX_GHZ_RADIO if values is None else values,
        absent=absent or set(),
        memory={},
        force=True,
        now=0.0,
        max_attempts=3,
    )


@pytest.mark.parametrize("name", ["tr181", "tplink-tr181"])
def test_a_router_in_wpa2_wpa3_transition_mode_stays_so_and_gets_both_passphrases(profiles, name):
    # A password asks for WPA2-PSK; a Wi-Fi 6 router ships in WPA3-Personal-Transition,
    # which serves WPA2-PSK too, and was taken down to WPA2-Personal alone. It stays, and
    # its WPA3 side gets the password (TR-181 keeps it apart: SAEPassphrase).
    from acsd.provisioning.desired import desired_state
    from acsd.provisioning.plan import plan_changes

    profile = profiles.get(name)
    five = 3 if name == "tplink-tr181" else 2
    ap = {"2g": "Device.WiFi.AccessPoint.1.Security.",
          "5g": f"Device.WiFi.AccessPoint.{five}.Security."}  # fmt: skip
    wifi = {"ssid": "Home", "password": "secret123", "ssid5G": "Home5", "password5G": "other123",
            "enabled5G": True}  # fmt: skip

    def plan(mode: str) -> dict[str, str]:
        values = {**SIX_GHZ_RADIO, **{sec + "ModeEnabled": mode for sec in ap.values()}}
        values.update({sec + "MFPConfig": "Optional" for sec in ap.values()})
        result = plan_changes(profile, desired_state(wifi, None), values, absent=set(),
                              memory={}, force=False, now=0.0, max_attempts=3)  # fmt: skip
        return written(result)

    kept = plan("WPA3-Personal-Transition")
    for band, password in (("2g", "secret123"), ("5g", "other123")):
        sec = ap[band]
        assert sec + "ModeEnabled" not in kept, kept
        assert kept[sec + "KeyPassphrase"] == kept[sec + "SAEPassphrase"] == password
    wpa2 = plan("WPA2-Personal")
    assert not [p for p in wpa2 if p.endswith("SAEPassphrase") or p.endswith("ModeEnabled")]
    # WPA3 alone keeps WPA2 clients out: what a password asks for is written
    only3 = plan("WPA3-Personal")
    assert only3[ap["2g"] + "ModeEnabled"] == "WPA2-Personal"
    assert not [p for p in only3 if p.endswith("SAEPassphrase")]
    # A raw 64-hex-digit key is WPA2's alone (SAE takes a passphrase only): left in
    # transition mode, the router kept its old SAE password working beside the new key,
    # and the job said DONE. It goes to WPA2 only.
    wifi.update(password=HEX_KEY, password5G=HEX_KEY)
    raw = plan("WPA3-Personal-Transition")
    for sec in ap.values():
        assert raw[sec + "ModeEnabled"] == "WPA2-Personal" and raw[sec + "PreSharedKey"] == HEX_KEY
        assert sec + "SAEPassphrase" not in raw


def test_band_steering_on_a_router_with_2g_alone_says_there_is_nothing_to_steer(profiles):
    # (the job said "emulated with one SSID and password on every band" though no other
    # band got anything)
    steering = {"ssid": "Home", "password": "secret123", "bandsteering": True}
    tr098 = profiles.get("tr098")

    def reason(channels: str) -> str:
        result = wifi_plan(tr098, steering, {WLAN + "2.PossibleChannels": channels})
        return {u["setting"]: u["reason"] for u in result.unsupported}["wifi.bandsteering"]

    assert "nothing to steer" in reason("1-13")
    assert "emulated with one SSID and password on every band" in reason("36,40,44,48")
    # a router that has 5 GHz, switched off in the record: not "this CPE has no 5 GHz"
    off = wifi_plan(tr098, {**steering, "enabled5G": False}, {WLAN + "2.PossibleChannels": "36"})
    [said] = [u["reason"] for u in off.unsupported if u["setting"] == "wifi.bandsteering"]
    assert "the record switches its other bands off: nothing to steer" in said


def test_band_steering_reports_nothing_for_a_band_the_operator_left_out(profiles):
    def plan(wifi):
        return wifi_plan(profiles.get("tplink-tr181"), wifi)

    steering = {"ssid": "Home", "password": "secret123", "bandsteering": True}
    # One network on every band the router has: 5 GHz gets it; the dual-band router has
    # no 6 GHz, and the operator asked nothing of it, so nothing is "unsupported".
    result = plan(steering)
    assert {(c.setting, c.value) for c in result.changes} >= {("wifi.5g.ssid", "Home")}
    assert not [u for u in result.unsupported if u["setting"].startswith("wifi.6g")]
    # Asked for by name, 6 GHz on that router is still reported.
    result = plan({**steering, "enabled6G": True, "ssid6G": "Home6"})
    assert {u["setting"] for u in result.unsupported} >= {"wifi.6g.enable", "wifi.6g.ssid"}


def test_a_band_switched_off_under_band_steering_keeps_its_name_and_password(profiles):
    # Its own SSID was written while steering stayed on (firmware such as TP-Link's wants
    # one network on both bands then), and each switch of the band off and on again wrote
    # both names in turn. Off, only its switch is written; on again, the steered network.
    wifi = {"ssid": "Home", "password": "secret123", "bandsteering": True,
            "ssid5G": "Other", "password5G": "otherpass1"}  # fmt: skip
    p = profiles.get("tplink-tr181")
    off = wifi_plan(p, {**wifi, "enabled5G": False})
    assert {c.setting for c in off.changes if c.setting.startswith("wifi.5g.")} == {
        "wifi.5g.enable"
    }
    on = {(c.setting, c.value) for c in wifi_plan(p, {**wifi, "enabled5G": True}).changes}
    assert ("wifi.5g.ssid", "Home") in on and "wifi.5g.enable" in {s for s, _ in on}
    # without steering, the band's own name is written whether it is on or off
    alone = wifi_plan(p, {**wifi, "bandsteering": False, "enabled5G": False}).changes
    assert ("wifi.5g.ssid", "Other") in {(c.setting, c.value) for c in alone}


def test_huawei_home_routers_are_not_taken_for_its_onts(profiles):
    # The WS routers (Flashman's huawei-ws5200/ws7100 models) keep TR-098's layout: the
    # passphrase in PreSharedKey.1.KeyPassphrase and 5 GHz at WLANConfiguration.2. The ONT
    # profile, matched by the manufacturer alone, wrote the passphrase where TR-098 has the
    # hex key and looked for 5 GHz at .5.
    def huawei(product_class: str) -> CpeIdentity:
        return CpeIdentity("E0191D", product_class, "S1", manufacturer="Huawei")

    for product_class in ("WS5200", "WS7100", "ws7001"):
        router = profiles.select(huawei(product_class), IGD)
        assert router.name == "huawei-ws", product_class
        assert paths(router, "wifi.2g.password")[0] == WLAN + "1.PreSharedKey.1.KeyPassphrase"
        assert WLAN + "2.SSID" in paths(router, "wifi.5g.ssid")
    ont = profiles.select(huawei("HG8245Q2"), IGD)
    assert ont.name == "huawei"
    assert paths(ont, "wifi.2g.password") == [WLAN + "1.PreSharedKey.1.PreSharedKey"]


def test_nokia_cmcc_firmware_gets_xsd_booleans_and_reads_back_upper_case_as_the_same(profiles):
    # Flashman's G-140W-C and G-1426-MA models give the SSID's switch as "TRUE"/"FALSE",
    # but GenieACS, through which Flashman writes, sends any xsd:boolean as true/false; the
    # upper case this profile once sent is no xsd:boolean (a strict router's 9007).
    from acsd.provisioning.plan import same_value, wire_value

    def nokia(product_class: str) -> CpeIdentity:
        return CpeIdentity("A8D3F7", product_class, "S1", manufacturer="Nokia")

    for product_class in ("G-140W-C", "G-1426-MA"):
        ont = profiles.select(nokia(product_class), IGD)
        assert ont.name == "nokia-cmcc", product_class
        for key in ("wifi.2g.enable", "wifi.5g.enable"):
            switch = ont.settings[key][0]
            assert switch.path.endswith(".Enable")
            assert (wire_value(switch, True), wire_value(switch, False)) == ("true", "false")
            assert same_value(switch.type, "TRUE", "true")  # (what such firmware reads back)
        # the rest is Nokia's: 5 GHz at .5, the passphrase where nokia.toml puts it
        assert paths(ont, "wifi.5g.ssid") == paths(profiles.get("nokia"), "wifi.5g.ssid")
    other = profiles.select(nokia("G-2425G-A"), IGD)
    assert other.name == "nokia"
    assert wire_value(other.settings["wifi.2g.enable"][0], True) == "true"


def test_the_archer_c6_writes_its_passphrase_to_x_tp_password(profiles):
    # Flashman's models: the C6 v3.2 takes X_TP_Password, the C5 v4 X_TP_PreSharedKey.
    def tplink(product_class: str) -> CpeIdentity:
        return CpeIdentity("F4F26D", product_class, "S1", manufacturer="TP-Link")

    c6 = profiles.select(tplink("Archer C6"), IGD)
    c5 = profiles.select(tplink("Archer C5"), IGD)
    assert (c6.name, c5.name) == ("tplink-archer-c6", "tplink-tr098")
    assert paths(c6, "wifi.2g.password") == [WLAN + "1.X_TP_Password"]
    assert paths(c6, "wifi.5g.password") == [WLAN + "2.X_TP_Password"]
    assert paths(c5, "wifi.2g.password") == [WLAN + "1.X_TP_PreSharedKey"]
    assert "wifi.bandsteering" not in c6.settings and "wifi.bandsteering" not in c5.settings


def test_an_open_6ghz_network_is_owe_where_the_access_point_lists_it(profiles):
    # 6 GHz allows only SAE or OWE: an open 6 GHz network is Enhanced Open, with the
    # management frame protection it requires, where ModesSupported lists OWE (or the
    # router reports no list); elsewhere the job lists it instead of going DONE with only
    # the SSID sent, and the router is not sent a mode it refuses (9007).
    wifi = {"ssid": "Home", "password": "secret123", "enabled6G": True, "ssid6G": "Home6",
            "password6G": ""}  # fmt: skip
    tr181 = profiles.get("tr181")
    supported = "Device.WiFi.AccessPoint.3.Security.ModesSupported"
    for listed in ({}, {supported: "WPA3-Personal, OWE"}):
        result = wifi_plan(tr181, wifi, {**SIX_GHZ_RADIO, **listed})
        assert written(result) | {
            "Device.WiFi.AccessPoint.3.Security.ModeEnabled": "OWE",
            "Device.WiFi.AccessPoint.3.Security.MFPConfig": "Required",
        } == written(result)
        assert result.unsupported == []
    result = wifi_plan(tr181, wifi, {**SIX_GHZ_RADIO, supported: "WPA3-Personal"})
    unsupported = {u["setting"]: u["reason"] for u in result.unsupported}
    assert unsupported["wifi.6g.security"] == (
        f"{supported} is 'WPA3-Personal' on this CPE: no 'OWE'"
    )
    assert ("wifi.6g.ssid", "Home6") in {(c.setting, c.value) for c in result.changes}
    assert not [c for c in result.changes if c.setting == "wifi.6g.security"]


def test_a_router_in_a_mode_that_counts_is_not_judged_by_its_list(profiles):
    # WPA3-Personal-Transition serves WPA2-PSK (`also`): nothing is written, so a list
    # without WPA2-Personal says nothing of it.
    values = {
        **SIX_GHZ_RADIO,
        "Device.WiFi.AccessPoint.1.Security.ModeEnabled": "WPA3-Personal-Transition",
        "Device.WiFi.AccessPoint.1.Security.ModesSupported": "WPA3-Personal-Transition",
    }
    plan = wifi_plan(profiles.get("tr181"), {"password": "secret123"}, values)
    assert plan.unsupported == []


# --- passwords, bands, DHCP: what each value form and router layout gets -----------------

HEX_KEY = "0123456789abcdef" * 4


def written(result) -> dict[str, str]:
    return {c.path: c.value for c in result.changes}


@pytest.mark.parametrize(
    ("name", "passphrase", "raw"),
    [
        (
            "tr181",
            "Device.WiFi.AccessPoint.1.Security.KeyPassphrase",
            "Device.WiFi.AccessPoint.1.Security.PreSharedKey",
        ),
        ("tr098", WLAN + "1.PreSharedKey.1.KeyPassphrase", WLAN + "1.PreSharedKey.1.PreSharedKey"),
        ("zte", WLAN + "1.PreSharedKey.1.KeyPassphrase", WLAN + "1.PreSharedKey.1.PreSharedKey"),
    ],
)
def test_a_raw_64_hex_key_goes_to_the_psk_and_a_passphrase_to_the_passphrase(
    profiles, name, passphrase, raw
):
    # KeyPassphrase holds 8-63 characters: the 64-hex-digit key the API accepts is the
    # PSK itself, which the models keep in PreSharedKey.
    p = profiles.get(name)
    by_phrase = written(wifi_plan(p, {"ssid": "Home", "password": "secret123"}))
    by_key = written(wifi_plan(p, {"ssid": "Home", "password": HEX_KEY}))
    assert by_phrase[passphrase] == "secret123" and raw not in by_phrase
    assert by_key[raw] == HEX_KEY and passphrase not in by_key


@pytest.mark.parametrize("name", ["tr098", "zte", "nokia"])
def test_firmware_without_the_psk_passphrase_takes_it_at_the_wlan_level(profiles, name):
    # ZTE F670L V9: PreSharedKey.1. holds the hex key alone, the passphrase is the
    # WLAN-level KeyPassphrase (TR-098 mirrors the two); written there, and only there.
    p = profiles.get(name)
    five = 2 if name == "tr098" else 5
    bands = {
        WLAN + "2.PossibleChannels": "36-64",
        WLAN + "5.PossibleChannels": "36-64",
        WLAN + "5.X_ZTE-COM_OperatingFrequencyBand": "5GHz",
    }
    wifi = {"ssid": "Home", "password": "secret123", "ssid5G": "Home5", "password5G": "other123"}
    standard = written(wifi_plan(p, wifi, bands))
    assert standard[WLAN + "1.PreSharedKey.1.KeyPassphrase"] == "secret123"
    assert standard[f"{WLAN}{five}.PreSharedKey.1.KeyPassphrase"] == "other123"
    assert not [k for k in standard if k.endswith(("1.KeyPassphrase", f"{five}.KeyPassphrase"))
                and ".PreSharedKey." not in k]  # fmt: skip
    v9 = {f"{WLAN}{i}.PreSharedKey.1.KeyPassphrase" for i in (1, five)}
    result = wifi_plan(p, wifi, bands, absent=v9)
    assert {k: v for k, v in written(result).items() if "KeyPassphrase" in k} == {
        WLAN + "1.KeyPassphrase": "secret123",
        f"{WLAN}{five}.KeyPassphrase": "other123",
    }
    assert not result.unsupported
    # firmware with neither: the job says so, naming the parameter it lacks
    result = wifi_plan(p, wifi, bands, absent=v9 | {WLAN + "1.KeyPassphrase"})
    reasons = {u["setting"]: u["reason"] for u in result.unsupported}
    assert reasons == {
        "wifi.2g.password": f"{WLAN}1.KeyPassphrase is not on this CPE "
        f"(nor is {WLAN}1.PreSharedKey.1.KeyPassphrase)"
    }
    # unreadable this session: which one the router has is not known, so nothing is written
    from acsd.provisioning.desired import desired_state
    from acsd.provisioning.plan import plan_changes

    result = plan_changes(
        p, desired_state(wifi, None), bands, absent=set(), memory={}, force=True, now=0.0,
        max_attempts=3, unreadable={WLAN + "1.PreSharedKey.1.KeyPassphrase": "9002"},
    )  # fmt: skip
    assert [u["setting"] for u in result.unread] == ["wifi.2g.password"]
    assert not [k for k in written(result) if k.startswith(WLAN + "1.") and "Key" in k]


def test_a_fallback_needs_a_parameter_before_it(tmp_path):
    write(
        tmp_path,
        "alone.toml",
        'name = "alone"\nextends = "tr181"\n[match]\nmanufacturer = "Alone*"\n'
        '[[settings."wifi.2g.password"]]\n'
        'path = "Device.WiFi.AccessPoint.1.Security.KeyPassphrase"\nform = "passphrase"\n'
        '[[settings."wifi.2g.password"]]\n'
        'path = "Device.WiFi.AccessPoint.1.Security.PreSharedKey"\nform = "hex-key"\n'
        "fallback = true\n",
    )
    with pytest.raises(ProfileError, match="a fallback stands in for a parameter listed before"):
        load_profiles(tmp_path)


def test_a_password_no_parameter_takes_is_reported_without_the_password(tmp_path):
    write(
        tmp_path,
        "phrase-only.toml",
        'name = "phrase-only"\nextends = "tr181"\n[match]\nmanufacturer = "Phrase*"\n'
        '[settings."wifi.2g.password"]\n'
        'path = "Device.WiFi.AccessPoint.1.Security.KeyPassphrase"\nform = "passphrase"\n',
    )
    p = load_profiles(tmp_path).get("phrase-only")
    result = wifi_plan(p, {"ssid": "Home", "password": HEX_KEY})
    unsupported = {u["setting"]: u["reason"] for u in result.unsupported}
    assert unsupported["wifi.2g.password"] == (
        "profile phrase-only has no parameter for a 64-hex-digit key here"
    )
    assert HEX_KEY not in repr(result)
    assert "Device.WiFi.AccessPoint.1.Security.KeyPassphrase" not in written(result)


def test_form_is_only_for_passwords(tmp_path):
    write(
        tmp_path,
        "odd.toml",
        'name = "odd"\nextends = "tr181"\n[match]\nmanufacturer = "Odd*"\n'
        '[settings."wifi.2g.ssid"]\npath = "Device.WiFi.SSID.1.SSID"\nform = "passphrase"\n',
    )
    with pytest.raises(ProfileError, match="`form` is the form of a wifi password"):
        load_profiles(tmp_path)


@pytest.mark.parametrize(
    ("also", "fragment"),
    [
        ('{ wpa9 = ["X"] }', "'wpa9' is not a value of wifi.2g.security"),
        ('{ wpa3-sae = ["WPA3-Personal-Transition"] }', "not in `map`: no wire value"),
    ],
)
def test_also_names_values_of_the_setting_that_its_map_has(tmp_path, also, fragment):
    write(
        tmp_path,
        "odd.toml",
        'name = "odd"\nextends = "tr181"\n[match]\nmanufacturer = "Odd*"\n'
        '[settings."wifi.2g.security"]\npath = "Device.WiFi.AccessPoint.1.Security.ModeEnabled"\n'
        f'map = {{ wpa2-psk = "WPA2-Personal", open = "None" }}\nalso = {also}\n',
    )
    with pytest.raises(ProfileError, match=re.escape(fragment)):
        load_profiles(tmp_path)


FIVE = {"enabled5G": True, "ssid5G": "Home5", "password5G": "secret123"}


@pytest.mark.parametrize(
    ("profile", "values", "absent", "reason"),
    [
        (
            "tr181",
            {"Device.WiFi.Radio.2.OperatingFrequencyBand": "2.4GHz"},
            set(),
            "Device.WiFi.Radio.2.OperatingFrequencyBand is '2.4GHz' on this CPE: not written here",
        ),
        ("tr181", {}, {"Device.WiFi.Radio.2.OperatingFrequencyBand"}, "is not on this CPE"),
        ("tplink-tr181", {}, {"Device.WiFi.Radio.2.OperatingFrequencyBand"}, "is not on this CPE"),
        # Two SSIDs on each radio (1-2 on the 2.4 GHz one, 3-4 on the 5 GHz one, the
        # layout tplink-tr181 maps): SSID.2 is the 2.4 GHz guest network, though Radio.2
        # is a 5 GHz radio.
        (
            "tr181",
            {
                "Device.WiFi.Radio.2.OperatingFrequencyBand": "5GHz",
                "Device.WiFi.SSID.2.LowerLayers": "Device.WiFi.Radio.1",
            },
            set(),
            "Device.WiFi.SSID.2.LowerLayers is 'Device.WiFi.Radio.1' on this CPE: not written here",
        ),
    ],
)
def test_5ghz_is_written_only_where_radio_2_is_a_5ghz_radio(
    profiles, profile, values, absent, reason
):
    # A single-band router (many LTE routers) has no Radio.2, and its SSID.2 may be its
    # guest network: 5 GHz settings, or band steering's copy of 2.4 GHz, must not rename
    # it nor set its password.
    p = profiles.get(profile)
    ssid, ap = (
        ("SSID.3.", "AccessPoint.3.")
        if profile == "tplink-tr181"
        else ("SSID.2.", "AccessPoint.2.")
    )
    for wifi in (
        {"ssid": "Home", "password": "secret123", **FIVE},
        {"ssid": "Home", "password": "secret123", "bandsteering": True},
    ):
        result = wifi_plan(p, wifi, values, absent)
        assert not [path for path in written(result) if ssid in path or ap in path]
        assert "Device.WiFi.SSID.1.SSID" in written(result)
    result = wifi_plan(p, {"ssid": "Home", "password": "secret123", **FIVE}, values, absent)
    five = {
        u["setting"]: u["reason"] for u in result.unsupported if u["setting"].startswith("wifi.5g.")
    }
    assert set(five) == {"wifi.5g.enable", "wifi.5g.ssid", "wifi.5g.password", "wifi.5g.security"}
    assert reason in five["wifi.5g.enable"]
    # A dual-band router's 5 GHz radio says so: written as before.
    dual = wifi_plan(p, {"ssid": "Home", **FIVE}, SIX_GHZ_RADIO)
    assert f"Device.WiFi.{ssid}SSID" in written(dual)


SSID3 = "Device.WiFi.SSID.3."
SIX = {"enabled6G": True, "ssid6G": "Home6", "password6G": "secret123"}


@pytest.mark.parametrize(
    ("values", "absent", "reason"),
    [
        (
            {"Device.WiFi.Radio.3.OperatingFrequencyBand": "2.4GHz"},
            set(),
            "Device.WiFi.Radio.3.OperatingFrequencyBand is '2.4GHz' on this CPE: not written here",
        ),
        ({}, {"Device.WiFi.Radio.3.OperatingFrequencyBand"}, "is not on this CPE"),
        # a tri-band router with two SSIDs on each radio: SSID.3 is the 5 GHz main one
        (
            {
                "Device.WiFi.Radio.3.OperatingFrequencyBand": "6GHz",
                "Device.WiFi.SSID.3.LowerLayers": "Device.WiFi.Radio.2",
            },
            set(),
            "Device.WiFi.SSID.3.LowerLayers is 'Device.WiFi.Radio.2' on this CPE: not written here",
        ),
    ],
)
def test_6ghz_is_written_only_where_radio_3_is_a_6ghz_radio(profiles, values, absent, reason):
    # A dual-band router's SSID.3 is often its 2.4 GHz guest network: 6 GHz settings must
    # not rename it, nor the operator's "off" turn it off.
    p = profiles.get("tr181")
    result = wifi_plan(p, {"ssid": "Home", "password": "secret123", **SIX}, values, absent)
    assert not [path for path in written(result) if path.startswith(SSID3)]
    assert not [path for path in written(result) if "AccessPoint.3." in path]
    unsupported = {u["setting"]: u["reason"] for u in result.unsupported}
    six = {k: v for k, v in unsupported.items() if k.startswith("wifi.6g.")}
    assert set(six) == {"wifi.6g.enable", "wifi.6g.ssid", "wifi.6g.password", "wifi.6g.security"}
    # once each, though the mode and MFP of 6 GHz security both test Radio.3
    assert len([u for u in result.unsupported if u["setting"].startswith("wifi.6g.")]) == 4
    assert reason in six["wifi.6g.enable"]
    off = wifi_plan(p, {"ssid": "Home", "enabled6G": False}, values, absent)
    assert not [path for path in written(off) if path.startswith(SSID3)]
    assert not [u for u in off.unsupported if u["setting"].startswith("wifi.6g.")]
    # band steering's own 6 GHz copy of the main network is acsd's idea: nothing to say
    # where the router has no such band; where it answered the band test otherwise, the
    # job says so ("one network on every band" must not hide a band left as it was)
    steer = wifi_plan(p, {"ssid": "Home", "password": "secret123", "bandsteering": True},
                      values, absent)  # fmt: skip
    assert not [path for path in written(steer) if path.startswith(SSID3)]
    said = {u["setting"]: u["reason"] for u in steer.unsupported}
    said = {k: v for k, v in said.items() if k.startswith("wifi.6g.")}
    if absent:
        assert not said
    else:
        assert set(said) == {"wifi.6g.ssid", "wifi.6g.password", "wifi.6g.security"}
        assert set(said.values()) == {reason}
    # on a tri-band router, where Radio.3 is the 6 GHz one, all of it is written
    tri = wifi_plan(p, {"ssid": "Home", "password": "secret123", **SIX})
    assert written(tri)[SSID3 + "SSID"] == "Home6"
    assert written(tri)["Device.WiFi.AccessPoint.3.Security.MFPConfig"] == "Required"


def test_mfp_follows_the_mode_and_is_not_missed_where_firmware_lacks_it(profiles):
    p = profiles.get("tr181")
    mfp = "Device.WiFi.AccessPoint.1.Security.MFPConfig"
    mode = "Device.WiFi.AccessPoint.1.Security.ModeEnabled"
    wpa2 = {"ssid": "Home", "password": "secret123"}
    assert written(wifi_plan(p, wpa2))[mfp] == "Optional"
    # an open network: MFP does not apply, and is left as it is
    assert mfp not in written(wifi_plan(p, {"ssid": "Home", "password": ""}))
    # older firmware without MFPConfig: the mode is written, the job says nothing of MFP
    old = wifi_plan(p, wpa2, absent={mfp})
    assert written(old)[mode] == "WPA2-Personal" and mfp not in written(old)
    assert not old.unsupported


def dhcp_plan(profile, dhcp: dict, values: dict, force: bool = False):
    from acsd.provisioning.desired import desired_state
    from acsd.provisioning.plan import plan_changes

    return plan_changes(
        profile,
        desired_state(None, dhcp),
        values,
        absent=set(),
        memory={},
        force=force,
        now=0.0,
        max_attempts=3,
    )


@pytest.mark.parametrize(
    ("name", "path"),
    [("tr181", "Device.DHCPv4.Server.Pool.1.DNSServers"), ("tr098", HOST + "DNSServers")],
)
def test_the_primary_dns_server_replaces_the_first_and_the_secondary_stays(profiles, name, path):
    # primaryDnsServer is the list's first entry: before, the DNS list became that one
    # server, and a router's secondary was lost
    p = profiles.get(name)
    dns = {"primaryDnsServer": "192.0.2.53"}
    assert written(dhcp_plan(p, dns, {path: "192.168.1.1"}))[path] == "192.0.2.53"
    both = dhcp_plan(p, dns, {path: "198.51.100.1, 198.51.100.2"})
    assert written(both)[path] == "192.0.2.53,198.51.100.2"
    # a changed primary replaces the old one rather than pushing it down the list
    again = dhcp_plan(p, {"primaryDnsServer": "192.0.2.54"}, {path: "192.0.2.53,198.51.100.2"})
    assert written(again)[path] == "192.0.2.54,198.51.100.2"
    assert written(dhcp_plan(p, dns, {path: "198.51.100.2,192.0.2.53"}))[path] == "192.0.2.53"
    assert written(dhcp_plan(p, dns, {path: ""}))[path] == "192.0.2.53"
    # already first: nothing to write, whatever follows it
    assert path not in written(dhcp_plan(p, dns, {path: "192.0.2.53,198.51.100.1"}))


def test_tr181_dhcp_on_turns_on_the_server_too_and_off_only_the_pool(profiles):
    p = profiles.get("tr181")
    server, pool = "Device.DHCPv4.Server.Enable", "Device.DHCPv4.Server.Pool.1.Enable"
    values = {server: "false", pool: "false"}
    assert {k: v for k, v in written(dhcp_plan(p, {"enable": True}, values)).items()} == {
        server: "true",
        pool: "true",
    }
    # the server switch would take the router's other pools (a guest LAN's) with it
    off = written(dhcp_plan(p, {"enable": False}, {server: "true", pool: "true"}))
    assert off == {pool: "false"}


def test_the_single_band_tl_wr840n_has_no_5ghz(profiles):
    wr840n = profiles.select(CpeIdentity("F4F26D", "TL-WR840N", "S1", manufacturer="TP-Link"), IGD)
    assert wr840n.name == "tplink-wr840n"
    assert paths(wr840n, "wifi.2g.password") == [WLAN + "1.X_TP_PreSharedKey"]
    assert not [k for k in wr840n.settings if k.startswith("wifi.5g.")]
    assert "wifi.bandsteering" not in wr840n.settings
    result = wifi_plan(wr840n, {"ssid": "Home", "password": "secret123", "ssid5G": "Home5"})
    assert not [path for path in written(result) if ".WLANConfiguration.2." in path]
    assert "wifi.5g.ssid" in {u["setting"] for u in result.unsupported}


def test_6ghz_waits_when_radio_3_could_not_be_read_even_to_turn_it_off(profiles):
    # Radio.3 faulted (not 9005): the CPE may or may not have a 6 GHz radio, so nothing is
    # written at SSID.3 (a guest network, perhaps) and the job waits for a session that reads
    # it, instead of calling 6 GHz unsupported or the "off" done.
    p = profiles.get("tr181")
    for wifi in ({"ssid": "Home", "password": "secret123", **SIX}, {"enabled6G": False}):
        result = wifi_plan(p, wifi, values={})
        assert not [path for path in written(result) if path.startswith(SSID3)]
        unread = {u["setting"]: u["message"] for u in result.unread}
        assert "wifi.6g.enable" in unread, result
        assert "Radio.3.OperatingFrequencyBand could not be read" in unread["wifi.6g.enable"]
        assert not [u for u in result.unsupported if u["setting"].startswith("wifi.6g.")]


def test_a_password_switched_to_the_raw_key_and_back_is_written_again(profiles):
    # passphrase A, then key K (written to PreSharedKey), then A again: the router holds K,
    # so the A acsd once wrote to KeyPassphrase must not count as held any more
    from acsd.provisioning.jobs import Outcome, RetryPolicy, new_memory, record_outcome

    p = profiles.get("tr181")
    memory = new_memory(None, bootstrap=False)
    phrase = "Device.WiFi.AccessPoint.1.Security.KeyPassphrase"
    for password, path in (("secret123", phrase), (HEX_KEY, phrase[:-13] + "PreSharedKey"),
                           ("secret123", phrase)):  # fmt: skip
        from acsd.provisioning.desired import desired_state
        from acsd.provisioning.plan import plan_changes

        result = plan_changes(p, desired_state({"password": password}, None), SIX_GHZ_RADIO,
                              absent=set(), memory=memory, force=False, now=0.0,
                              max_attempts=3)  # fmt: skip
        assert written(result).get(path) == password, (password, written(result))
        record_outcome(memory, Outcome(applied=result.changes), 0.0, RetryPolicy())
    again = plan_changes(p, desired_state({"password": "secret123"}, None), SIX_GHZ_RADIO,
                         absent=set(), memory=memory, force=False, now=0.0,
                         max_attempts=3)  # fmt: skip
    assert phrase not in written(again)  # and now it holds


@pytest.mark.parametrize(
    ("current", "wanted"),
    [
        (",198.51.100.2", "192.0.2.53,198.51.100.2"),
        ("198.51.100.2,", "192.0.2.53"),
        # firmware that separates by blanks gets its list back so, the secondary kept
        ("198.51.100.1 198.51.100.2", "192.0.2.53 198.51.100.2"),
        (" 198.51.100.1\t198.51.100.2 192.0.2.53 ", "192.0.2.53 198.51.100.2"),
    ],
)
def test_an_empty_first_dns_entry_is_the_primary_the_secondary_stays(profiles, current, wanted):
    path = "Device.DHCPv4.Server.Pool.1.DNSServers"
    result = dhcp_plan(profiles.get("tr181"), {"primaryDnsServer": "192.0.2.53"}, {path: current})
    assert written(result)[path] == wanted


def test_a_setting_of_a_group_sent_whole_takes_no_when_or_optional(tmp_path):
    write(
        tmp_path,
        "odd.toml",
        'name = "odd"\nextends = "tr181"\n[match]\nmanufacturer = "Odd*"\n'
        '[settings."lan.extra.ip"]\npath = "Device.IP.Interface.1.IPv4Address.2.IPAddress"\n'
        "optional = true\n",
    )
    with pytest.raises(ProfileError, match="its group goes whole"):
        load_profiles(tmp_path)


def test_a_raw_key_is_no_sae_password(profiles):
    # SAE has no raw PSK: band steering's 6 GHz copy of a 64-hex-digit key cannot be
    # written, and left on, the 6 GHz network kept its old password working beside the new
    # key (the job said DONE). It is switched off on a tri-band router; nothing is said on
    # a dual-band one.
    p = profiles.get("tr181")
    steer = {"ssid": "Home", "password": HEX_KEY, "bandsteering": True}
    tri = wifi_plan(p, steer)
    sae = "Device.WiFi.AccessPoint.3.Security.SAEPassphrase"
    assert sae not in written(tri)
    six = [t.path for t in p.settings["wifi.6g.enable"] if not t.optional]
    assert six and all(written(tri)[path] in ("false", "0") for path in six), written(tri)
    assert not [u for u in tri.unsupported if u["setting"].startswith("wifi.6g.")]
    dual = wifi_plan(p, steer, values={}, absent={"Device.WiFi.Radio.3.OperatingFrequencyBand"})
    assert not [u for u in dual.unsupported if u["setting"].startswith("wifi.6g.")]
    assert written(dual)["Device.WiFi.AccessPoint.1.Security.PreSharedKey"] == HEX_KEY


# --- TR-098's 5 GHz: written only where the instance is a 5 GHz one ----------------------

FIVE = {"enabled5G": True, "ssid5G": "Home5", "password5G": "secret555"}
WLAN2_CHANNELS = WLAN + "2.PossibleChannels"


@pytest.mark.parametrize("name", ["tr098", "tplink-tr098", "tplink-archer-c6"])
@pytest.mark.parametrize(
    ("values", "absent", "reason"),
    [
        # a single-band router's, or an ONT's 2.4 GHz guest network at .2
        ({WLAN2_CHANNELS: "1-13"}, set(), f"{WLAN2_CHANNELS} is '1-13' on this CPE"),
        ({WLAN2_CHANNELS: "1,2,3,4,5,6,7,8,9,10,11,12,13"}, set(), "on this CPE: not written"),
        ({WLAN2_CHANNELS: ""}, set(), f"{WLAN2_CHANNELS} is '' on this CPE"),
        ({}, {WLAN2_CHANNELS}, f"{WLAN2_CHANNELS} is not on this CPE"),
    ],
)
def test_tr098_5ghz_is_written_only_where_wlan_2_lists_5ghz_channels(
    profiles, name, values, absent, reason
):
    p = profiles.get(name)
    result = wifi_plan(p, {"ssid": "Home", "password": "secret123", **FIVE}, values, absent)
    assert not [path for path in written(result) if path.startswith(WLAN + "2.")]
    five = {u["setting"]: u["reason"] for u in result.unsupported if u["setting"][:8] == "wifi.5g."}
    assert set(five) == {"wifi.5g.enable", "wifi.5g.ssid", "wifi.5g.password", "wifi.5g.security"}
    assert all(reason in why for why in five.values()), five
    assert written(result)[WLAN + "1.SSID"] == "Home"  # 2.4 GHz goes on
    # "off" for a 5 GHz network the router does not have is nothing to report
    off = wifi_plan(p, {"ssid": "Home", "enabled5G": False}, values, absent)
    assert not [path for path in written(off) if path.startswith(WLAN + "2.")]
    assert not [u for u in off.unsupported if u["setting"].startswith("wifi.5g.")]


@pytest.mark.parametrize("name", ["tr098", "tplink-tr098", "tplink-archer-c6"])
@pytest.mark.parametrize(
    "channels",
    ["36,40,44,48,52,56,60,64,100,104,108,112,116,132,136,140", "36-64,100-140", "149-165"],
)
def test_tr098_5ghz_is_written_where_wlan_2_is_a_5ghz_radio(profiles, name, channels):
    p = profiles.get(name)
    result = wifi_plan(
        p, {"ssid": "Home", "password": "secret123", **FIVE}, {WLAN2_CHANNELS: channels}
    )
    assert written(result)[WLAN + "2.SSID"] == "Home5"
    assert written(result)[WLAN + "2.Enable"] == "true"
    assert not [u for u in result.unsupported if u["setting"].startswith("wifi.5g.")]


def test_a_bands_settings_share_one_guard_in_every_profile(profiles):
    # A vendor key replaces the base's whole, `when` included: one that leaves out the band
    # guard would write its part of the band on CPEs where the rest is "not on this CPE".
    # An optional parameter may add tests of its own (WPA3's passphrase where the router
    # is in WPA2/WPA3 transition mode), never leave the guard out.
    for profile in profiles:
        for band in ("wifi.2g.", "wifi.5g.", "wifi.6g."):
            targets = [t for k, ts in profile.settings.items() if k.startswith(band) for t in ts]
            guards = {(t.path, frozenset(t.when)) for t in targets if not t.optional}
            assert len({when for _, when in guards}) <= 1, (profile.name, band, guards)
            guard = next(iter(guards))[1] if guards else frozenset()
            for target in targets:
                assert guard <= frozenset(target.when), (profile.name, target.path)


# The vendors whose 5 GHz SSID is WLANConfiguration.5 test their own band parameter there:
# (profile, the parameter, what a 5 GHz instance reads, what a 2.4 GHz one reads).
VENDOR_BANDS = [
    ("huawei", WLAN + "5.X_HW_RFBand", "5GHz", "2.4GHz"),
    ("zte", WLAN + "5.X_ZTE-COM_OperatingFrequencyBand", "5GHz", "2.4GHz"),
    ("zyxel", WLAN + "5.X_ZYXEL_OperatingFrequencyBand", "5GHz", "2.4GHz"),
    # no band parameter known: the channels the radio may use (Standard is a mode an ACS
    # writes, "ax" on either band)
    ("nokia", WLAN + "5.PossibleChannels", "36,40,44,48", "1-13"),
]


@pytest.mark.parametrize(("name", "band", "five", "other"), VENDOR_BANDS)
def test_a_vendor_writes_5ghz_at_wlan_5_only_where_its_band_parameter_says_5ghz(
    profiles, name, band, five, other
):
    p = profiles.get(name)
    wifi = {"ssid": "Home", "password": "secret123", **FIVE}
    on = wifi_plan(p, wifi, {band: five})
    assert written(on)[WLAN + "5.SSID"] == "Home5"
    assert not [u for u in on.unsupported if u["setting"].startswith("wifi.5g.")]
    for values, absent, reason in (
        ({band: other}, set(), f"{band} is {other!r} on this CPE: not written here"),
        ({}, {band}, f"{band} is not on this CPE"),
    ):
        result = wifi_plan(p, wifi, values, absent)
        assert not [path for path in written(result) if path.startswith(WLAN + "5.")]
        five_of = {
            u["setting"]: u["reason"] for u in result.unsupported if u["setting"][:8] == "wifi.5g."
        }
        assert set(five_of) == {"wifi.5g.enable", "wifi.5g.ssid", "wifi.5g.password",
                                "wifi.5g.security"}  # fmt: skip
        assert set(five_of.values()) == {reason}, five_of


def test_every_tr098_profile_guards_its_5ghz_network(profiles):
    # TR-098 has no band parameter: no instance number is 5 GHz on every router, so every
    # TR-098 profile that writes 5 GHz tests that the instance is a 5 GHz one.
    for profile in profiles:
        if profile.root != IGD:
            continue
        for key, targets in profile.settings.items():
            if key.startswith("wifi.5g."):
                assert all(t.when for t in targets), (profile.name, key)


@pytest.mark.parametrize("channels", ["1-13", ""])
def test_band_steering_says_which_tr098_band_it_could_not_tell_is_5ghz(profiles, channels):
    # PossibleChannels is a guess at the band: where it does not show a 5 GHz channel,
    # steering's copy is not written and the job says why, rather than "one network on
    # every band" standing alone while the 5 GHz radio keeps its own SSID.
    for name, five in (("tr098", WLAN + "2."), ("nokia", WLAN + "5.")):
        steer = wifi_plan(profiles.get(name), {"ssid": "Home", "password": "secret123",
                          "bandsteering": True}, {five + "PossibleChannels": channels})  # fmt: skip
        assert not [path for path in written(steer) if path.startswith(five)]
        said = {u["setting"]: u["reason"] for u in steer.unsupported}
        assert said["wifi.5g.ssid"] == (
            f"{five}PossibleChannels is {channels!r} on this CPE: not written here"
        ), name


def test_also_and_list_head_are_not_both_on_one_setting(tmp_path):
    # (a value the CPE holds is judged by one of them: with both, `also` went unread)
    write(
        tmp_path,
        "odd.toml",
        'name = "odd"\nextends = "tr181"\n[match]\nmanufacturer = "Odd*"\n'
        '[settings."dhcp.dns"]\npath = "Device.DHCPv4.Server.Pool.1.DNSServers"\n'
        'list_head = true\nalso = { "192.0.2.53" = ["198.51.100.53"] }\n',
    )
    with pytest.raises(ProfileError, match="`also` and `list_head` exclude each other"):
        load_profiles(tmp_path)


def test_max_length_cuts_only_a_headed_list(tmp_path):
    # (a value acsd makes whole, a password or an SSID, is refused at the API, never cut)
    write(
        tmp_path,
        "odd.toml",
        'name = "odd"\nextends = "tr181"\n[match]\nmanufacturer = "Odd*"\n'
        '[settings."wifi.2g.ssid"]\npath = "Device.WiFi.SSID.1.SSID"\nmax_length = 32\n',
    )
    with pytest.raises(ProfileError, match="`max_length` cuts a `list_head` list only"):
        load_profiles(tmp_path)


def test_a_tr098_dns_list_keeps_within_64_characters(profiles):
    # TR-098 LANHostConfigManagement.DNSServers: a list of 64 characters at most. The
    # router's last entries make room for a longer primary, and the job says which.
    p = profiles.get("tr098")
    path = HOST + "DNSServers"
    own = "1.1.1.1,203.0.113.201,203.0.113.202,203.0.113.203,203.0.113.20"
    dns = {"primaryDnsServer": "198.51.100.153"}
    plan = dhcp_plan(p, dns, {path: own})
    assert written(plan)[path] == "198.51.100.153,203.0.113.201,203.0.113.202,203.0.113.203"
    assert len(written(plan)[path]) <= 64
    [note] = plan.notes
    assert note.startswith("dhcp.dns: 203.0.113.20 left out of " + path), note
    # a list that fits is kept whole; one the router holds, head first, is left as it is
    # however long (firmware that takes more than the model says)
    assert written(dhcp_plan(p, {"primaryDnsServer": "1.1.1.2"}, {path: own}))[path] == (
        "1.1.1.2" + own[len("1.1.1.1") :]
    )
    long = "198.51.100.153,203.0.113.201,203.0.113.202,203.0.113.203,203.0.113.20"
    held = dhcp_plan(p, dns, {path: long})
    assert path not in written(held) and not held.notes


def test_a_retry_set_by_a_clock_that_was_ahead_is_due_once_it_is_put_right(profiles):
    # A refused SSID was put off for 300 s by a clock a day ahead; corrected, the clock
    # read the retry as tomorrow's, and no session retried it until then.
    from acsd.provisioning.desired import desired_state
    from acsd.provisioning.plan import plan_changes, value_hash

    ssid = "Device.WiFi.SSID.1.SSID"
    now = 1_000_000.0

    def plan(next_retry: float, **extra):
        fault = {"setting": "wifi.2g.ssid", "code": 9007, "message": "Invalid value",
                 "attempts": 1, "nextRetry": next_retry, "hash": value_hash(ssid, "Home"),
                 **extra}  # fmt: skip
        return plan_changes(
            profiles.get("tr181"), desired_state({"ssid": "Home"}, None), SIX_GHZ_RADIO,
            absent=set(), memory={"faults": {ssid: fault}}, force=False, now=now,
            max_attempts=5,
        )  # fmt: skip

    held = plan(now + 200, delay=300.0)
    assert [w["setting"] for w in held.waiting] == ["wifi.2g.ssid"] and ssid not in written(held)
    ahead = plan(now + 86400 + 200, delay=300.0)
    assert not ahead.waiting and written(ahead)[ssid] == "Home"
    # remembered before the delay was: a retry is never more than a day off
    assert plan(now + 3600).waiting
    assert not plan(now + 2 * 86400).waiting
