"""The simulator's parameter trees: CWMP tree operations, and every template checked against
the Broadband Forum data models (paths, types, access, secrets, enumerations)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest
from lxml import etree

from acsd.cwmp import rpc
from acsd.sim.cpe import Cpe
from acsd.sim.template import list_templates, load_template
from acsd.sim.tree import CwmpFault, Tree

DATAMODELS = Path(__file__).resolve().parents[2] / "shared" / "datamodels"
MODEL_FILES = {
    "Device.": "tr-181-2-17-0-cwmp-full.xml",
    "InternetGatewayDevice.": "tr-098-1-8-0-full.xml",
}
CONTRACT = ["tr181-mobile", "tr098-dsl", "tplink-tr181"]
# every tree in sim/trees, so a new file is checked against its data model without a test edit
PROFILES = [name for name, _ in list_templates()]
SCALARS = {
    "string", "boolean", "int", "unsignedInt", "long", "unsignedLong", "dateTime", "base64",
    "hexBinary",
}  # fmt: skip


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def router(profile: str = "tr181-mobile", index: int = 1, clock: Clock | None = None) -> Cpe:
    return Cpe(
        load_template(profile),
        index,
        f"T{index:06d}",
        acs_url="http://127.0.0.1:7547/",
        cr_url=f"http://127.0.0.1:9/cr/T{index:06d}",
        clock=clock or Clock(),
    )


def tree(profile: str = "tr181-mobile", index: int = 1) -> Tree:
    return router(profile, index).tree


# --- the BBF data models ---------------------------------------------------------------------


@cache
def data_model(root: str) -> dict[str, dict]:
    """Every object and parameter of the model: generic path ({i}) -> facts."""
    doc = etree.parse(str(DATAMODELS / MODEL_FILES[root])).getroot()
    types: dict[str, tuple[str | None, str | None]] = {}
    for dt in doc.iter("{*}dataType"):
        prim = next(
            (etree.QName(c).localname for c in dt if etree.QName(c).localname in SCALARS), None
        )
        types[dt.get("name")] = (dt.get("base"), prim)

    def resolve(name: str | None) -> str | None:
        base, prim = types.get(name, (None, None))
        while prim is None and base:
            base, prim = types.get(base, (None, None))
        return prim

    model = next(doc.iter("{*}model"))
    out: dict[str, dict] = {}
    for obj in model.findall("{*}object"):
        name = obj.get("name") or obj.get("base")
        out[name] = {"object": True, "access": obj.get("access")}
        for p in obj.findall("{*}parameter"):
            syntax = p.find("{*}syntax")
            facts = {"access": p.get("access"), "forced": p.get("forcedInform") == "true"}
            facts["secured"] = syntax.get("secured") == "true" or syntax.get("hidden") == "true"
            facts["list"] = syntax.find("{*}list") is not None
            facts["enum"] = [e.get("value") for e in syntax.iter("{*}enumeration")]
            for c in syntax:
                local = etree.QName(c).localname
                if local in SCALARS:
                    facts["type"] = local
                elif local == "dataType":
                    facts["type"] = resolve(c.get("ref"))
            out[name + (p.get("name") or p.get("base"))] = facts
    return out


def generic(path: str) -> str:
    return re.sub(r"\.\d+(?=\.)", ".{i}", path)


def template_leaves(profile: str) -> list[tuple[str, str, object]]:
    t = load_template(profile)
    leaves = [(p, t.defaults[p], t.leaves[p]) for p in t.leaves]
    for tpath, table in t.tables.items():
        leaves += [(f"{tpath}1.{rel}", v, leaf) for rel, (v, leaf) in table.child.items()]
    return leaves


def test_there_are_the_contract_profiles() -> None:
    vendors = ["tr181-generic", "tplink-tr098", "huawei-hg8245", "zte-f670l", "zyxel-vmg8825"]
    assert {*CONTRACT, *vendors, "nokia-g240w"} <= set(PROFILES)


@pytest.mark.parametrize("profile", PROFILES)
def test_every_standard_path_exists_in_the_bbf_data_model(profile: str) -> None:
    t = load_template(profile)
    dm = data_model(t.root)
    missing = []
    for path, _, _ in template_leaves(profile):
        if ".X_" in path:
            continue  # vendor extension
        if generic(path) not in dm:
            missing.append(path)
    for table in t.tables:
        if generic(table + "1.") not in dm:
            missing.append(table)
    for obj in t.objects:
        # "Device.WiFi.Radio." is the table whose rows the model calls Radio.{i}.
        known = generic(obj) in dm or generic(obj + "1.") in dm
        if ".X_" not in obj and not known:
            missing.append(obj)
    assert missing == []


@pytest.mark.parametrize("profile", PROFILES)
def test_types_access_and_secrets_match_the_data_model(profile: str) -> None:
    dm = data_model(load_template(profile).root)
    wrong = []
    for path, value, leaf in template_leaves(profile):
        facts = dm.get(generic(path))
        if facts is None:
            continue
        expected_type = "string" if facts["list"] else facts["type"]
        if leaf.type != expected_type:
            wrong.append(f"{path}: type {leaf.type} != {expected_type}")
        if leaf.writable != (facts["access"] != "readOnly"):
            wrong.append(f"{path}: writable {leaf.writable} but access {facts['access']}")
        if facts["secured"] and not leaf.secured:
            wrong.append(f"{path}: secured in the data model, readable here")
        if facts["enum"] and value and "{" not in value:
            values = value.split(",") if facts["list"] else [value]
            wrong += [
                f"{path}: {v!r} not an enumerated value" for v in values if v not in facts["enum"]
            ]
    assert wrong == []


@pytest.mark.parametrize("profile", PROFILES)
def test_inform_carries_the_forced_inform_parameters(profile: str) -> None:
    t = load_template(profile)
    dm = data_model(t.root)
    forced = [p for p in t.leaves if dm.get(generic(p), {}).get("forced")]
    assert forced and set(forced) <= set(t.inform)
    inform = router(profile).begin_session()
    assert [p.name for p in inform.parameters][: len(t.inform)] == list(t.inform)


@pytest.mark.parametrize("profile", PROFILES)
def test_routers_are_distinct_and_deterministic(profile: str) -> None:
    a, b, a_again = router(profile, 1), router(profile, 2), router(profile, 1)
    assert a.tree.values == a_again.tree.values
    differing = {p for p in a.tree.values if a.tree.values[p] != b.tree.values[p]}
    serial = load_template(profile).device_id["serial_number"]
    assert serial in differing and len(differing) > 5
    assert not any("{" in v for v in a.tree.values.values())


# --- GetParameterValues ----------------------------------------------------------------------


def test_gpv_partial_path_returns_every_parameter_below() -> None:
    t = tree()
    got = t.get_values(["Device.DHCPv4.Server.Pool.1."])
    names = [p.name for p in got]
    assert "Device.DHCPv4.Server.Pool.1.MinAddress" in names
    assert all(n.startswith("Device.DHCPv4.Server.Pool.1.") for n in names)
    lease = next(p for p in got if p.name.endswith(".LeaseTime"))
    assert (lease.value, lease.type) == ("86400", "xsd:int")


def test_gpv_unknown_name_fails_the_whole_call_with_9005() -> None:
    t = tree()
    with pytest.raises(CwmpFault) as info:
        t.get_values(["Device.DeviceInfo.SoftwareVersion", "Device.DeviceInfo.NoSuchThing"])
    assert info.value.code == 9005
    with pytest.raises(CwmpFault):
        t.get_values(["Device.NoSuchObject."])


def test_secured_parameters_read_back_empty_but_are_held() -> None:
    t = tree()
    key = "Device.WiFi.AccessPoint.1.Security.KeyPassphrase"
    held = t.get(key)
    assert len(held) >= 8
    assert t.get_values([key])[0].value == ""
    t.set_values([rpc.ParameterValue(key, "correct horse battery", "xsd:string")], "k1")
    assert t.get_values([key])[0].value == ""
    assert t.get(key) == "correct horse battery"
    cr = "Device.ManagementServer.ConnectionRequestPassword"
    t.set_values([rpc.ParameterValue(cr, "s3cret")], "k2")
    assert t.get_values([cr])[0].value == "" and t.get(cr) == "s3cret"


def test_uptime_is_computed_from_the_boot_time() -> None:
    clock = Clock()
    cpe = router(clock=clock)
    clock.now += 42
    assert cpe.tree.get_values(["Device.DeviceInfo.UpTime"])[0].value == "42"
    cpe.reboot()
    clock.now += 3
    assert cpe.tree.get("Device.DeviceInfo.UpTime") == "3"


# --- SetParameterValues -----------------------------------------------------------------------


def test_spv_stores_values_and_the_parameter_key() -> None:
    t = tree()
    status = t.set_values(
        [
            rpc.ParameterValue("Device.WiFi.SSID.1.SSID", "home", "xsd:string"),
            rpc.ParameterValue("Device.DHCPv4.Server.Pool.1.LeaseTime", "3600", "xsd:int"),
            rpc.ParameterValue("Device.WiFi.SSID.2.Enable", "0", "xsd:boolean"),
        ],
        "rev-7",
    )
    assert status == 0
    assert t.get("Device.WiFi.SSID.1.SSID") == "home"
    assert t.get("Device.DHCPv4.Server.Pool.1.LeaseTime") == "3600"
    assert t.get("Device.ManagementServer.ParameterKey") == "rev-7"


def test_spv_is_atomic_with_one_fault_per_bad_parameter() -> None:
    t = tree()
    before = dict(t.values)
    bad = [
        rpc.ParameterValue("Device.WiFi.SSID.1.SSID", "fine"),
        rpc.ParameterValue("Device.WiFi.SSID.9.SSID", "x"),  # unknown
        rpc.ParameterValue("Device.DeviceInfo.SerialNumber", "x"),  # read-only
        rpc.ParameterValue("Device.WiFi.Radio.1.Enable", "yes", "xsd:boolean"),  # not a boolean
        rpc.ParameterValue("Device.WiFi.Radio.1.Channel", "-1", "xsd:unsignedInt"),  # < 0
        rpc.ParameterValue("Device.DHCPv4.Server.Pool.1.LeaseTime", "abc", "xsd:int"),
    ]
    with pytest.raises(CwmpFault) as info:
        t.set_values(bad, "never")
    fault = info.value.to_rpc()
    assert fault.code == 9003
    assert [(f.name, f.code) for f in fault.spv_faults] == [
        ("Device.WiFi.SSID.9.SSID", 9005),
        ("Device.DeviceInfo.SerialNumber", 9008),
        ("Device.WiFi.Radio.1.Enable", 9007),
        ("Device.WiFi.Radio.1.Channel", 9007),
        ("Device.DHCPv4.Server.Pool.1.LeaseTime", 9007),
    ]
    assert t.values == before


def test_spv_refuses_a_security_mode_the_access_point_does_not_list() -> None:
    # TR-181: ModeEnabled is an enumerationRef to ModesSupported. A Wi-Fi 6E router's
    # 6 GHz access point lists WPA3-Personal and OWE only: WPA2 or None there is refused.
    t = tree("tr181-wifi6e")
    sec = "Device.WiFi.AccessPoint.{}.Security.ModeEnabled"
    for mode in ("WPA2-Personal", "None", "WPA3-Personal-Transition"):
        with pytest.raises(CwmpFault) as info:
            t.set_values([rpc.ParameterValue(sec.format(3), mode)], "")
        assert [(f.name, f.code) for f in info.value.to_rpc().spv_faults] == [(sec.format(3), 9007)]
    assert t.set_values([rpc.ParameterValue(sec.format(3), "OWE")], "") == 0
    assert t.set_values([rpc.ParameterValue(sec.format(1), "None")], "") == 0
    assert t.get(sec.format(3)) == "OWE" and t.get(sec.format(1)) == "None"


@pytest.mark.parametrize("value", ["1", "0", "true", "false"])
def test_spv_accepts_the_four_boolean_literals(value: str) -> None:
    t = tree()
    t.set_values([rpc.ParameterValue("Device.WiFi.SSID.1.Enable", value, "xsd:boolean")], "")
    assert t.get("Device.WiFi.SSID.1.Enable") == value


def test_spv_on_linked_tr098_passphrase_changes_both_names() -> None:
    t = tree("tr098-dsl")
    w = "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1."
    t.set_values([rpc.ParameterValue(w + "PreSharedKey.1.KeyPassphrase", "newpassphrase")], "")
    assert t.get(w + "KeyPassphrase") == "newpassphrase"


# --- AddObject / DeleteObject ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("profile", "table"),
    [
        ("tr181-mobile", "Device.DHCPv4.Server.Pool.1.StaticAddress."),
        ("tplink-tr181", "Device.DHCPv4.Server.Pool.1.StaticAddress."),
        (
            "tr098-dsl",
            "InternetGatewayDevice.LANDevice.1.LANHostConfigManagement.DHCPStaticAddress.",
        ),
    ],
)
def test_add_and_delete_static_leases(profile: str, table: str) -> None:
    t = tree(profile)
    counter = table[:-1] + "NumberOfEntries"
    first = t.add_object(table, "add-1")
    second = t.add_object(table, "add-2")
    assert (first, second) == (1, 2)
    assert t.get(counter) == "2"
    assert t.get(t.root + "ManagementServer.ParameterKey") == "add-2"
    assert t.get(f"{table}{first}.Enable") == "false"
    t.set_values(
        [
            rpc.ParameterValue(f"{table}{first}.Chaddr", "02:00:00:00:00:01"),
            rpc.ParameterValue(f"{table}{first}.Yiaddr", "192.168.1.50"),
            rpc.ParameterValue(f"{table}{first}.Enable", "true", "xsd:boolean"),
        ],
        "set",
    )
    names = [p.name for p in t.get_values([table])]
    assert f"{table}{first}.Chaddr" in names and f"{table}{second}.Yiaddr" in names
    t.delete_object(f"{table}{first}.", "del-1")
    assert t.get(counter) == "1"
    assert f"{table}{first}.Chaddr" not in t
    assert t.get(t.root + "ManagementServer.ParameterKey") == "del-1"
    with pytest.raises(CwmpFault) as info:
        t.delete_object(f"{table}{first}.", "again")
    assert info.value.code == 9005
    assert t.add_object(table, "") == 3  # numbers are not reused at once


def test_add_object_on_something_that_is_not_a_table_is_9005() -> None:
    t = tree()
    for path in ["Device.DeviceInfo.", "Device.WiFi.Radio.", "Device.Nope.", "Device.WiFi.SSID.1."]:
        with pytest.raises(CwmpFault) as info:
            t.add_object(path, "")
        assert info.value.code == 9005
    with pytest.raises(CwmpFault):
        t.delete_object("Device.WiFi.Radio.1.", "")  # exists, but is not deletable


def test_template_instances_of_a_table_can_be_deleted() -> None:
    t = tree()
    t.delete_object("Device.DNS.Client.Server.4.", "")
    assert t.get("Device.DNS.Client.ServerNumberOfEntries") == "3"
    assert t.add_object("Device.DNS.Client.Server.", "") == 5


# --- GetParameterNames ------------------------------------------------------------------------


def names(infos: list[rpc.ParameterInfo]) -> list[str]:
    return [i.name for i in infos]


def test_gpn_empty_path_next_level_gives_the_root() -> None:
    assert names(tree().get_names("", True)) == ["Device."]
    assert names(tree("tr098-dsl").get_names("", True)) == ["InternetGatewayDevice."]


def test_gpn_next_level_true_lists_direct_children_only() -> None:
    t = tree()
    got = {i.name: i.writable for i in t.get_names("Device.DHCPv4.Server.Pool.1.", True)}
    assert got["Device.DHCPv4.Server.Pool.1.MinAddress"] is True
    assert got["Device.DHCPv4.Server.Pool.1.Status"] is False
    assert got["Device.DHCPv4.Server.Pool.1.StaticAddress."] is True  # AddObject allowed
    assert all(n[len("Device.DHCPv4.Server.Pool.1.") :].count(".") <= 1 for n in got)
    assert "Device.DHCPv4.Server.Pool.1." not in got
    wifi = {i.name: i.writable for i in t.get_names("Device.WiFi.", True)}
    assert wifi["Device.WiFi.Radio."] is False and "Device.WiFi.Radio.1." not in wifi


def test_gpn_next_level_false_lists_the_whole_subtree_with_the_object() -> None:
    t = tree()
    got = names(t.get_names("Device.WiFi.AccessPoint.1.", False))
    assert got[0] == "Device.WiFi.AccessPoint.1."
    assert "Device.WiFi.AccessPoint.1.Security." in got
    assert "Device.WiFi.AccessPoint.1.Security.KeyPassphrase" in got
    assert got.index("Device.WiFi.AccessPoint.1.Security.") < got.index(
        "Device.WiFi.AccessPoint.1.Security.KeyPassphrase"
    )
    everything = names(t.get_names("", False))
    assert everything[0] == "Device." and len(everything) > len(t.values)
    assert "Device.ManagementServer.InformParameter." in everything  # empty table still shown


def test_gpn_instances_are_writable_when_deletable() -> None:
    t = tree()
    n = t.add_object("Device.DHCPv4.Server.Pool.1.StaticAddress.", "")
    got = {
        i.name: i.writable for i in t.get_names("Device.DHCPv4.Server.Pool.1.StaticAddress.", True)
    }
    assert got == {f"Device.DHCPv4.Server.Pool.1.StaticAddress.{n}.": True}


def test_gpn_on_a_parameter() -> None:
    t = tree()
    info = t.get_names("Device.DeviceInfo.SerialNumber", False)
    assert [(i.name, i.writable) for i in info] == [("Device.DeviceInfo.SerialNumber", False)]
    with pytest.raises(CwmpFault) as fault:
        t.get_names("Device.DeviceInfo.SerialNumber", True)
    assert fault.value.code == 9003
    with pytest.raises(CwmpFault) as fault:
        t.get_names("Device.Nope.", True)
    assert fault.value.code == 9005


# --- attributes -------------------------------------------------------------------------------


def test_notification_attributes_are_kept_per_parameter() -> None:
    t = tree()
    rssi = "Device.Cellular.Interface.1.RSSI"
    t.set_attributes([rpc.SetParameterAttributesStruct(rssi, True, 2)])
    t.set_attributes(
        [rpc.SetParameterAttributesStruct("Device.WiFi.SSID.1.", True, 1, True, ["Subscriber"])]
    )
    got = {
        a.name: (a.notification, a.access_list)
        for a in t.get_attributes([rssi, "Device.WiFi.SSID.1."])
    }
    assert got[rssi] == (2, [])
    assert got["Device.WiFi.SSID.1.SSID"] == (1, ["Subscriber"])
    assert t.get_attributes(["Device.DeviceInfo.SerialNumber"])[0].notification == 0
    with pytest.raises(CwmpFault) as info:
        t.set_attributes([rpc.SetParameterAttributesStruct("Device.DeviceInfo.UpTime", True, 2)])
    assert info.value.code == 9009
    with pytest.raises(CwmpFault) as info:
        t.set_attributes([rpc.SetParameterAttributesStruct("Device.Nope", True, 1)])
    assert info.value.code == 9005


def test_snapshot_and_restore_keep_added_instances_and_attributes() -> None:
    t = tree()
    n = t.add_object("Device.DHCPv4.Server.Pool.1.StaticAddress.", "k")
    t.set_values(
        [
            rpc.ParameterValue(
                f"Device.DHCPv4.Server.Pool.1.StaticAddress.{n}.Yiaddr", "192.168.0.9"
            )
        ],
        "k",
    )
    t.set_attributes([rpc.SetParameterAttributesStruct("Device.WiFi.SSID.1.SSID", True, 1)])
    t.delete_object("Device.DNS.Client.Server.4.", "k")
    again = Tree.restore(t.template, t.snapshot())
    assert again.values == t.values
    assert again.get_attributes(["Device.WiFi.SSID.1.SSID"])[0].notification == 1
    assert again.leaf(f"Device.DHCPv4.Server.Pool.1.StaticAddress.{n}.Enable").type == "boolean"
    assert "Device.DNS.Client.Server.4." not in again.objects
