"""The vendor trees of the simulator: per band the Wi-Fi paths the ACS profiles use, DHCP and
reservations, factory state, and each firmware's quirk (Huawei's read-only KeyPassphrase and
odd instance numbers, Nokia's lower-case MACs, ZTE/TP-Link's 1/0 booleans, Zyxel's Status 1,
TP-Link's 5 GHz SSID.3 on Radio.2)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from acsd.cwmp import rpc
from acsd.sim.cpe import Cpe
from acsd.sim.template import list_templates, load_template
from acsd.sim.tree import CwmpFault, Tree
from conftest import run_cli

IGD = "InternetGatewayDevice."
WLAN = IGD + "LANDevice.1.WLANConfiguration."
HCM = IGD + "LANDevice.1.LANHostConfigManagement."
POOL = "Device.DHCPv4.Server.Pool.1."


@dataclass(frozen=True)
class Contract:
    """What the ACS-side profiles rely on, per tree."""

    root: str
    manufacturer: str
    oui: str
    product_class: str
    # band -> TR-181 (SSID object, AccessPoint object, Radio) or TR-098 WLANConfiguration
    bands: dict[str, tuple[str, ...]]
    password: str  # relative to the AccessPoint / WLANConfiguration object
    wan_status: str  # a connection status leaf the status read-back uses


TR181_PASSWORD = "Security.KeyPassphrase"
CONTRACTS = {
    "tr181-generic": Contract(
        "Device.", "Generic", "0A5E13", "GR181",
        {
            "2.4": ("Device.WiFi.SSID.1.", "Device.WiFi.AccessPoint.1.", "Device.WiFi.Radio.1"),
            "5": ("Device.WiFi.SSID.2.", "Device.WiFi.AccessPoint.2.", "Device.WiFi.Radio.2"),
        },
        TR181_PASSWORD, "Device.DHCPv4.Client.1.DHCPStatus",
    ),
    "tr181-wifi6e": Contract(
        "Device.", "SimWave", "0A5E14", "SW6E",
        {
            "2.4": ("Device.WiFi.SSID.1.", "Device.WiFi.AccessPoint.1.", "Device.WiFi.Radio.1"),
            "5": ("Device.WiFi.SSID.2.", "Device.WiFi.AccessPoint.2.", "Device.WiFi.Radio.2"),
            "6": ("Device.WiFi.SSID.3.", "Device.WiFi.AccessPoint.3.", "Device.WiFi.Radio.3"),
        },
        TR181_PASSWORD, "Device.DHCPv4.Client.1.DHCPStatus",
    ),
    "tr181-mobile": Contract(
        "Device.", "SimCell", "0A5E11", "SC5G200",
        {
            "2.4": ("Device.WiFi.SSID.1.", "Device.WiFi.AccessPoint.1.", "Device.WiFi.Radio.1"),
            "5": ("Device.WiFi.SSID.2.", "Device.WiFi.AccessPoint.2.", "Device.WiFi.Radio.2"),
        },
        TR181_PASSWORD, "Device.Cellular.Interface.1.Status",
    ),
    "tplink-tr181": Contract(
        "Device.", "TP-Link", "50C7BF", "EX220",
        {
            "2.4": ("Device.WiFi.SSID.1.", "Device.WiFi.AccessPoint.1.", "Device.WiFi.Radio.1"),
            "5": ("Device.WiFi.SSID.3.", "Device.WiFi.AccessPoint.3.", "Device.WiFi.Radio.2"),
        },
        TR181_PASSWORD, "Device.DHCPv4.Client.1.DHCPStatus",
    ),
    "tr098-dsl": Contract(
        IGD, "SimLine", "0A5E12", "SLV200", {"2.4": (WLAN + "1.",), "5": (WLAN + "2.",)},
        "KeyPassphrase",
        IGD + "WANDevice.1.WANConnectionDevice.1.WANPPPConnection.1.ConnectionStatus",
    ),
    # a TR-098 ONT of no known vendor (the tr098 profile): .2 is a 2.4 GHz guest SSID
    "tr098-ont": Contract(
        IGD, "SimFibre", "0A5E15", "SFO100", {"2.4": (WLAN + "1.",), "5": (WLAN + "5.",)},
        "KeyPassphrase",
        IGD + "WANDevice.1.WANConnectionDevice.1.WANPPPConnection.1.ConnectionStatus",
    ),
    "tplink-tr098": Contract(
        IGD, "TP-Link", "F4F26D", "Archer C5", {"2.4": (WLAN + "1.",), "5": (WLAN + "2.",)},
        "X_TP_PreSharedKey",
        IGD + "WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.ConnectionStatus",
    ),
    "huawei-hg8245": Contract(
        IGD, "Huawei Technologies Co., Ltd", "00E0FC", "HG8245Q2",
        {"2.4": (WLAN + "1.",), "5": (WLAN + "5.",)},
        "PreSharedKey.1.PreSharedKey",
        IGD + "WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.ConnectionStatus",
    ),
    "zte-f670l": Contract(
        IGD, "ZTE", "CC1AFA", "F670L", {"2.4": (WLAN + "1.",), "5": (WLAN + "5.",)},
        "PreSharedKey.1.KeyPassphrase",
        IGD + "WANDevice.1.WANConnectionDevice.1.WANPPPConnection.1.ConnectionStatus",
    ),
    "zyxel-vmg8825": Contract(
        IGD, "Zyxel", "5067F0", "VMG8825-T50", {"2.4": (WLAN + "1.",), "5": (WLAN + "5.",)},
        "PreSharedKey.1.KeyPassphrase",
        IGD + "WANDevice.1.WANConnectionDevice.1.WANPPPConnection.1.ConnectionStatus",
    ),
    "nokia-g240w": Contract(
        IGD, "Nokia", "A8D3F7", "G-240W-F", {"2.4": (WLAN + "1.",), "5": (WLAN + "5.",)},
        "PreSharedKey.1.KeyPassphrase",
        IGD + "WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.ConnectionStatus",
    ),
}  # fmt: skip
NAMES = sorted(CONTRACTS)

DHCP_TR098 = [
    "DHCPServerEnable", "MinAddress", "MaxAddress", "DHCPLeaseTime", "DNSServers", "SubnetMask",
    "IPRouters",
]  # fmt: skip
DHCP_TR181 = [
    "Enable", "MinAddress", "MaxAddress", "LeaseTime", "DNSServers", "SubnetMask", "IPRouters",
    "Interface",
]  # fmt: skip


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def router(profile: str, index: int = 1, **kwargs) -> Cpe:
    return Cpe(
        load_template(profile),
        index,
        f"V{index:06d}",
        acs_url="http://127.0.0.1:7547/",
        cr_url="",
        clock=Clock(),
        **kwargs,
    )


def gpv(t: Tree, name: str) -> str:
    [value] = t.get_values([name])
    return value.value


def spv(t: Tree, *pairs: tuple[str, str], key: str = "") -> int:
    return t.set_values([rpc.ParameterValue(n, v) for n, v in pairs], key)


def wifi_leaves(c: Contract, band: str) -> dict[str, str]:
    """enable/ssid/password/mode -> full path for one band."""
    objs = c.bands[band]
    if c.root == "Device.":
        ssid, ap, _ = objs
        return {
            "enable": ssid + "Enable",
            "ssid": ssid + "SSID",
            "password": ap + c.password,
            "mode": ap + "Security.ModeEnabled",
        }
    w = objs[0]
    return {
        "enable": w + "Enable",
        "ssid": w + "SSID",
        "password": w + c.password,
        "mode": w + "BeaconType",
    }


def dhcp_leaves(root: str) -> list[str]:
    if root == "Device.":
        return [POOL + leaf for leaf in DHCP_TR181]
    return [HCM + leaf for leaf in DHCP_TR098]


def static_table(root: str) -> str:
    return POOL + "StaticAddress." if root == "Device." else HCM + "DHCPStaticAddress."


# --- every tree ------------------------------------------------------------------------------


def test_every_shipped_tree_has_a_contract() -> None:
    assert {name for name, _ in list_templates()} == set(CONTRACTS)


@pytest.mark.parametrize("profile", NAMES)
def test_identity_device_info_and_management_server(profile: str) -> None:
    c = CONTRACTS[profile]
    cpe = router(profile)
    t = cpe.tree
    assert t.root == c.root
    di = c.root + "DeviceInfo."
    for leaf in (
        "Manufacturer", "ManufacturerOUI", "ProductClass", "ModelName", "SerialNumber",
        "HardwareVersion", "SoftwareVersion", "UpTime", "ProvisioningCode",
    ):  # fmt: skip
        assert di + leaf in t, leaf
    inform = cpe.begin_session()
    assert (inform.device_id.manufacturer, inform.device_id.oui) == (c.manufacturer, c.oui)
    assert inform.device_id.product_class == c.product_class
    assert inform.device_id.serial_number == "V000001"
    ms = c.root + "ManagementServer."
    for leaf in (
        "URL", "Username", "Password", "PeriodicInformEnable", "PeriodicInformInterval",
        "ParameterKey", "ConnectionRequestURL", "ConnectionRequestUsername",
        "ConnectionRequestPassword", "CWMPRetryMinimumWaitInterval",
        "CWMPRetryIntervalMultiplier",
    ):  # fmt: skip
        assert ms + leaf in t, leaf
    assert gpv(t, ms + "URL") == "http://127.0.0.1:7547/"
    assert gpv(t, c.wan_status) in ("Connected", "Bound", "Up")


@pytest.mark.parametrize("profile", NAMES)
def test_wifi_per_band_paths_and_band(profile: str) -> None:
    c = CONTRACTS[profile]
    t = router(profile).tree
    for band in ("2.4", "5"):
        leaves = wifi_leaves(c, band)
        for path in leaves.values():
            assert path in t and t.leaf(path).writable, path
        if c.root == "Device.":
            ssid, ap, radio = c.bands[band]
            assert t.get(ap + "SSIDReference") == ssid[:-1]
            assert t.get(ssid + "LowerLayers") == radio
            assert t.get(radio + ".OperatingFrequencyBand") == f"{band}GHz"
            assert t.get(leaves["mode"]) in t.get(ap + "Security.ModesSupported").split(",")
        else:
            w = c.bands[band][0]
            for leaf in ("BeaconType", "IEEE11iEncryptionModes", "IEEE11iAuthenticationMode"):
                assert t.leaf(w + leaf).writable, leaf
            channel = int(t.get(w + "Channel"))
            assert channel <= 14 if band == "2.4" else channel >= 36
            assert t.get(w + "Standard") == ("n" if band == "2.4" else "a")


def test_the_wifi_6e_router_has_a_wpa3_only_6ghz_network_on_radio_3() -> None:
    # What the tr181 profile writes 6 GHz at, and only where Radio.3 says 6GHz.
    t = router("tr181-wifi6e").tree
    ssid, ap, radio = CONTRACTS["tr181-wifi6e"].bands["6"]
    assert t.get(radio + ".OperatingFrequencyBand") == "6GHz"
    assert t.get(ssid + "LowerLayers") == radio and t.get(ap + "SSIDReference") == ssid[:-1]
    # 6 GHz allows SAE (or OWE) only, with management frame protection required
    assert t.get(ap + "Security.ModesSupported").split(",") == ["WPA3-Personal", "OWE"]
    assert (t.get(ap + "Security.ModeEnabled"), t.get(ap + "Security.MFPConfig")) == (
        "WPA3-Personal",
        "Required",
    )
    assert len(t.get(ap + "Security.SAEPassphrase")) >= 8
    assert gpv(t, ap + "Security.SAEPassphrase") == ""  # secured: reads back empty
    assert ap + "Security.KeyPassphrase" not in t  # no WPA2 on 6 GHz


@pytest.mark.parametrize("profile", NAMES)
def test_wifi_settings_are_applied_and_the_password_reads_back_empty(profile: str) -> None:
    c = CONTRACTS[profile]
    t = router(profile).tree
    for band in ("2.4", "5"):
        leaves = wifi_leaves(c, band)
        assert len(t.get(leaves["password"])) >= 8  # a factory passphrase is held
        assert gpv(t, leaves["password"]) == ""
        status = spv(
            t,
            (leaves["ssid"], f"home-{band}"),
            (leaves["password"], f"secret-{band}-pass"),
            (leaves["enable"], "true"),
            key=f"wifi-{band}",
        )
        assert status == 0
        assert gpv(t, leaves["ssid"]) == f"home-{band}"
        assert gpv(t, leaves["password"]) == ""
        assert t.get(leaves["password"]) == f"secret-{band}-pass"
        assert gpv(t, leaves["enable"]) in ("true", "1")
        assert gpv(t, c.root + "ManagementServer.ParameterKey") == f"wifi-{band}"


@pytest.mark.parametrize("profile", NAMES)
def test_dhcp_server_and_empty_reservation_table(profile: str) -> None:
    c = CONTRACTS[profile]
    t = router(profile).tree
    for path in dhcp_leaves(c.root):
        assert path in t and t.leaf(path).writable, path
    lease = next(p for p in dhcp_leaves(c.root) if p.endswith("LeaseTime"))
    assert t.leaf(lease).type == "int" and int(t.get(lease)) > 0
    table = static_table(c.root)
    assert table in t.objects and t.instances(table) == []  # "starts empty"
    assert gpv(t, table[:-1] + "NumberOfEntries") == "0"
    n = t.add_object(table, "r1")
    spv(
        t,
        (f"{table}{n}.Chaddr", "02:00:5e:00:00:07"),
        (f"{table}{n}.Yiaddr", "192.168.1.77"),
        (f"{table}{n}.Enable", "true"),
    )
    names = {p.name for p in t.get_values([table])}
    assert {f"{table}{n}.{leaf}" for leaf in ("Enable", "Chaddr", "Yiaddr")} <= names
    assert gpv(t, table[:-1] + "NumberOfEntries") == "1"


@pytest.mark.parametrize("profile", NAMES)
def test_factory_wifi_differs_per_router(profile: str) -> None:
    c = CONTRACTS[profile]
    one, two = router(profile, 1).tree, router(profile, 2).tree
    for band in ("2.4", "5"):
        leaves = wifi_leaves(c, band)
        assert one.get(leaves["ssid"]) != two.get(leaves["ssid"])
        assert one.get(leaves["password"]) != two.get(leaves["password"])
    ssids = {one.get(wifi_leaves(c, b)["ssid"]) for b in ("2.4", "5")}
    assert len(ssids) == 2  # each band has its own factory name


@pytest.mark.parametrize(
    ("profile", "ssid"),
    [
        ("huawei-hg8245", "HUAWEI-0008"),
        ("tplink-tr098", "TP-Link_0008"),
        ("zte-f670l", "ZTE_2.4G_0008"),
        ("zyxel-vmg8825", "Zyxel_0008"),
        ("nokia-g240w", "NOKIA-0008"),
        ("tr181-generic", "Generic-0008"),
    ],
)
def test_factory_ssid_looks_like_the_vendors(profile: str, ssid: str) -> None:
    c = CONTRACTS[profile]
    assert router(profile).tree.get(wifi_leaves(c, "2.4")["ssid"]) == ssid


def test_secrets_of_the_new_trees_read_back_empty_in_get_parameter_values() -> None:
    for profile in NAMES:
        t = router(profile).tree
        held = [p for p in t.values if t.leaf(p).secured and t.get(p)]
        assert held, profile
        assert all(v.value == "" for v in t.get_values(held)), profile


# --- Huawei HG8245Q2 -------------------------------------------------------------------------


def test_huawei_key_passphrase_is_read_only_9008_and_nothing_is_applied() -> None:
    t = router("huawei-hg8245").tree
    w1 = WLAN + "1."
    before = dict(t.values)
    with pytest.raises(CwmpFault) as info:
        spv(t, (w1 + "SSID", "mine"), (w1 + "PreSharedKey.1.KeyPassphrase", "longenough1"))
    fault = info.value.to_rpc()
    assert fault.code == 9003
    assert [(f.name, f.code) for f in fault.spv_faults] == [
        (w1 + "PreSharedKey.1.KeyPassphrase", 9008)
    ]
    assert t.values == before
    # the firmware does not say so: GetParameterNames calls it writable, as the data model does
    [info_] = t.get_names(w1 + "PreSharedKey.1.KeyPassphrase", False)
    assert info_.writable is True
    # the standard KeyPassphrase is absent; PreSharedKey.1.PreSharedKey takes the passphrase
    with pytest.raises(CwmpFault) as info:
        spv(t, (w1 + "KeyPassphrase", "longenough1"))
    assert info.value.spv_faults[0].code == 9005
    assert spv(t, (w1 + "PreSharedKey.1.PreSharedKey", "longenough1")) == 0
    assert t.get(w1 + "PreSharedKey.1.PreSharedKey") == "longenough1"
    # the 5 GHz one (instance 5) behaves the same
    with pytest.raises(CwmpFault):
        spv(t, (WLAN + "5.PreSharedKey.1.KeyPassphrase", "longenough1"))


def test_huawei_has_eight_ssids_and_only_1_and_5_are_on() -> None:
    t = router("huawei-hg8245").tree
    enabled = [i for i in range(1, 9) if t.get(f"{WLAN}{i}.Enable") == "true"]
    assert enabled == [1, 5]
    assert t.get(IGD + "LANDevice.1.LANWLANConfigurationNumberOfEntries") == "8"
    assert f"{WLAN}9.Enable" not in t


def test_huawei_reservations_get_odd_instance_numbers_and_the_table_fills_up() -> None:
    t = router("huawei-hg8245").tree
    table = HCM + "DHCPStaticAddress."
    numbers = [t.add_object(table, "") for _ in range(3)]
    assert numbers == [3, 5, 7]
    t.delete_object(f"{table}5.", "")
    assert t.add_object(table, "") == 9  # never reused, still odd
    assert t.get(table[:-1] + "NumberOfEntries") == "3"
    for _ in range(5):
        t.add_object(table, "")
    assert len(t.instances(table)) == 8
    with pytest.raises(CwmpFault) as info:
        t.add_object(table, "")
    assert info.value.code == 9004
    # the numbering survives --state
    again = Tree.restore(t.template, t.snapshot())
    t.delete_object(f"{table}3.", "")
    again.delete_object(f"{table}3.", "")
    assert again.add_object(table, "") == t.add_object(table, "")


# --- Nokia G-240W-F --------------------------------------------------------------------------


def test_nokia_stores_reservation_macs_in_lower_case_with_colons() -> None:
    cpe = router("nokia-g240w")
    t = cpe.tree
    table = HCM + "DHCPStaticAddress."
    n = t.add_object(table, "")
    spv(t, (f"{table}{n}.Chaddr", "02-00-5E-AB-CD-EF"), (f"{table}{n}.Yiaddr", "192.168.1.80"))
    assert gpv(t, f"{table}{n}.Chaddr") == "02:00:5e:ab:cd:ef"
    spv(t, (f"{table}{n}.Chaddr", "02:00:5E:AB:CD:0F"))
    assert t.get(f"{table}{n}.Chaddr") == "02:00:5e:ab:cd:0f"
    cpe.set_local(f"{table}{n}.Chaddr", "0200.5EAB.CD11")  # typed on the web UI
    assert gpv(t, f"{table}{n}.Chaddr") == "02:00:5e:ab:cd:11"
    # other routers keep what they are sent
    other = router("tr098-dsl").tree
    m = other.add_object(table, "")
    spv(other, (f"{table}{m}.Chaddr", "02:00:5E:AB:CD:EF"))
    assert gpv(other, f"{table}{m}.Chaddr") == "02:00:5E:AB:CD:EF"


# --- ZTE F670L and TP-Link Archer C5 (TR-098): booleans as 1/0 -----------------------------


@pytest.mark.parametrize("profile", ["zte-f670l", "tplink-tr098"])
def test_booleans_are_reported_as_1_and_0_and_both_forms_are_accepted(profile: str) -> None:
    cpe = router(profile)
    t = cpe.tree
    enable = WLAN + "1.Enable"
    assert gpv(t, enable) == "1" and t.get(enable) == "true"
    assert gpv(t, HCM + "DHCPServerEnable") == "1"
    spv(t, (enable, "false"))
    assert gpv(t, enable) == "0" and t.get(enable) == "false"
    spv(t, (enable, "1"))
    assert gpv(t, enable) == "1" and t.get(enable) == "true"
    with pytest.raises(CwmpFault) as info:
        spv(t, (enable, "yes"))
    assert info.value.spv_faults[0].code == 9007
    inform = cpe.begin_session()
    params = {p.name: p.value for p in inform.parameters}
    assert params[IGD + "ManagementServer.AliasBasedAddressing"] == "0"
    # non-boolean values are untouched
    assert gpv(t, HCM + "DHCPLeaseTime") in ("86400", "7200")


def test_zte_read_only_parameters_fault_9008() -> None:
    t = router("zte-f670l").tree
    for path in (IGD + "DeviceInfo.SerialNumber", IGD + "DeviceInfo.ManufacturerOUI"):
        with pytest.raises(CwmpFault) as info:
            spv(t, (path, "X"))
        assert [(f.name, f.code) for f in info.value.spv_faults] == [(path, 9008)]
    assert t.get(IGD + "DeviceInfo.SerialNumber") == "V000001"


def test_tplink_tr098_password_is_a_vendor_leaf_and_it_has_no_band_steering_leaf() -> None:
    t = router("tplink-tr098").tree
    for i in (1, 2):
        assert f"{WLAN}{i}.KeyPassphrase" not in t
        assert f"{WLAN}{i}.PreSharedKey.1.KeyPassphrase" not in t
        assert t.leaf(f"{WLAN}{i}.X_TP_PreSharedKey").secured
    # no band steering parameter of TP-Link's TR-098 firmware is known (tplink-tr098.toml)
    assert not [path for path in t.flat() if "BandSteering" in path]


# --- Zyxel VMG8825-T50 -----------------------------------------------------------------------


def test_zyxel_lease_time_change_answers_status_1_until_a_reboot() -> None:
    cpe = router("zyxel-vmg8825")
    lease = HCM + "DHCPLeaseTime"
    same = cpe.handle(rpc.SetParameterValues([rpc.ParameterValue(lease, "86400", "xsd:int")]))
    assert isinstance(same, rpc.SetParameterValuesResponse) and same.status == 0
    other = cpe.handle(rpc.SetParameterValues([rpc.ParameterValue(HCM + "MinAddress", "1.2.3.4")]))
    assert isinstance(other, rpc.SetParameterValuesResponse) and other.status == 0
    assert not cpe.pending_reboot
    changed = cpe.handle(
        rpc.SetParameterValues(
            [
                rpc.ParameterValue(lease, "3600", "xsd:int"),
                rpc.ParameterValue(WLAN + "1.SSID", "zy"),
            ],
            "k",
        )
    )
    assert isinstance(changed, rpc.SetParameterValuesResponse) and changed.status == 1
    assert cpe.tree.get(lease) == "3600" and cpe.tree.get(WLAN + "1.SSID") == "zy"
    assert cpe.pending_reboot
    cpe.reboot()
    assert not cpe.pending_reboot
    # other trees apply lease changes at once
    plain = router("tr098-dsl")
    answer = plain.handle(rpc.SetParameterValues([rpc.ParameterValue(lease, "3600", "xsd:int")]))
    assert isinstance(answer, rpc.SetParameterValuesResponse) and answer.status == 0


# --- TP-Link EX220 (TR-181) ------------------------------------------------------------------


def test_tplink_tr181_5ghz_is_ssid_3_on_radio_2_via_lower_layers() -> None:
    t = router("tplink-tr181").tree
    by_band: dict[str, list[int]] = {}
    for s in range(1, 5):
        radio = t.get(f"Device.WiFi.SSID.{s}.LowerLayers")
        band = t.get(radio + ".OperatingFrequencyBand")
        by_band.setdefault(band, []).append(s)
    assert by_band == {"2.4GHz": [1, 2], "5GHz": [3, 4]}
    enabled = [s for s in range(1, 5) if t.get(f"Device.WiFi.SSID.{s}.Enable") == "true"]
    assert enabled == [1, 3]  # SSID.2/.4 are the disabled guest networks
    assert t.get("Device.WiFi.AccessPoint.3.SSIDReference") == "Device.WiFi.SSID.3"
    steering = "Device.WiFi.X_TP_BandSteering.Enable"
    assert t.leaf(steering).type == "boolean" and t.leaf(steering).writable
    spv(t, (steering, "true"))
    assert gpv(t, steering) == "true"


def test_tr181_generic_bands_are_on_matching_indexes() -> None:
    t = router("tr181-generic").tree
    assert "Device.WiFi.SSID.3.SSID" not in t
    assert "Device.WiFi.X_TP_BandSteering.Enable" not in t
    for n, band in ((1, "2.4GHz"), (2, "5GHz")):
        assert t.get(f"Device.WiFi.SSID.{n}.LowerLayers") == f"Device.WiFi.Radio.{n}"
        assert t.get(f"Device.WiFi.Radio.{n}.OperatingFrequencyBand") == band
        assert t.get(f"Device.WiFi.AccessPoint.{n}.SSIDReference") == f"Device.WiFi.SSID.{n}"


# --- against the daemon ----------------------------------------------------------------------


def test_every_tree_completes_its_boot_session_against_the_daemon(daemon, tmp_path) -> None:
    report = tmp_path / "report.json"
    proc = run_cli(
        "sim", "--acs", daemon.cwmp_url, "--once", "--count", str(len(NAMES)),
        "--profile", ",".join(NAMES), "--report", str(report),
        bounded=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    routers = json.loads(report.read_text())["routers"]
    assert sorted(r["profile"] for r in routers) == NAMES
    for r in routers:
        assert (r["sessions"], r["ok"]) == (1, 1), r
        status = daemon.device_json(r["serial"])["status"]
        assert status["online"] is True, r["serial"]
        assert status["wanIp"].startswith("100.64."), (r["serial"], status)
        assert status["lanIp"].startswith("192.168."), (r["serial"], status)
        assert status["gateway"].startswith("100.64."), (r["serial"], status)
