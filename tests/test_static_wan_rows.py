"""TR-181's static WAN: the address and default route a DHCP client made are the router's
(IPAddress is writable only while AddressingType is Static, and the entries vanish with the
client), so acsd adds entries of its own beside them, replaces them when the line changes and
deletes them when the line is turned off, never touching the client's. Here: the plan, the
simulated router's behaviour that the end-to-end tests rely on, and the profile keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from acsd.cwmp import rpc
from acsd.provisioning.desired import Desired
from acsd.provisioning.plan import STATIC_LINE, Plan, plan_changes
from acsd.provisioning.profiles import ProfileError, load_profiles
from acsd.sim.template import load_template
from acsd.sim.tree import CwmpFault, Tree

ADDR = "Device.IP.Interface.2.IPv4Address."
ROUTE = "Device.Routing.Router.1.IPv4Forwarding."
LINE = {
    "wan.static.enable": True,
    "wan.static.ip": "203.0.113.10",
    "wan.static.mask": "255.255.255.248",
    "wan.static.gateway": "203.0.113.9",
}
# A router on DHCP: its lease's address and default route, and one static route of its
# owner's to another network.
DHCP_BOUND = {
    "Device.DHCPv4.Client.1.Enable": "1",
    ADDR + "1.Enable": "1",
    ADDR + "1.IPAddress": "100.64.0.6",
    ADDR + "1.SubnetMask": "255.255.255.252",
    ADDR + "1.AddressingType": "DHCP",
    ROUTE + "1.Enable": "1",
    ROUTE + "1.StaticRoute": "0",
    ROUTE + "1.DestIPAddress": "",
    ROUTE + "1.DestSubnetMask": "",
    ROUTE + "1.GatewayIPAddress": "100.64.0.5",
    ROUTE + "1.Interface": "Device.IP.Interface.2",
    ROUTE + "2.Enable": "1",
    ROUTE + "2.StaticRoute": "1",
    ROUTE + "2.DestIPAddress": "10.9.0.0",
    ROUTE + "2.DestSubnetMask": "255.255.0.0",
    ROUTE + "2.GatewayIPAddress": "192.168.1.254",
    ROUTE + "2.Interface": "Device.IP.Interface.1",
}


@pytest.fixture(scope="module")
def tr181():
    return load_profiles().get("tr181")


def plan(
    profile,
    settings: dict,
    values: dict,
    absent: frozenset[str] = frozenset(),
    *,
    tables: dict | None = None,
    unreadable: dict[str, str] | None = None,
    memory: dict | None = None,
) -> Plan:
    return plan_changes(
        profile,
        Desired(settings=dict(settings), tables=dict(tables or {})),
        values,
        absent=set(absent),
        unreadable=unreadable,
        memory=memory or {},
        force=False,
        now=0.0,
        max_attempts=3,
    )


def static_rows(line: dict, address: int = 3, route: int = 4) -> dict[str, str]:
    """What the router holds once acsd added its entries for ``line``."""
    return {
        ADDR + f"{address}.Enable": "true",
        ADDR + f"{address}.IPAddress": line["wan.static.ip"],
        ADDR + f"{address}.SubnetMask": line["wan.static.mask"],
        ADDR + f"{address}.AddressingType": "Static",
        ROUTE + f"{route}.Enable": "true",
        ROUTE + f"{route}.StaticRoute": "true",
        ROUTE + f"{route}.DestIPAddress": "",
        ROUTE + f"{route}.DestSubnetMask": "",
        ROUTE + f"{route}.GatewayIPAddress": line["wan.static.gateway"],
        ROUTE + f"{route}.Interface": "Device.IP.Interface.2",
    }


def test_a_line_adds_an_address_and_a_default_route_beside_the_dhcp_clients(tr181):
    result = plan(tr181, LINE, DHCP_BOUND)
    assert [(a.table, a.object, a.row) for a in result.adds] == [
        ("wan.static.address", ADDR, {"ip": "203.0.113.10", "mask": "255.255.255.248"}),
        ("wan.static.route", ROUTE, {"gateway": "203.0.113.9"}),
    ]
    # The client goes off in the same SetParameterValues as the new entries' fields; its
    # own entries, and the owner's route to 10.9/16, are not acsd's to change or delete.
    assert [(c.path, c.value) for c in result.changes] == [
        ("Device.DHCPv4.Client.1.Enable", "false")
    ]
    assert result.deletes == [] and result.unsupported == []


def test_the_rows_fields_include_what_the_profile_fixes(tr181):
    from acsd.provisioning.plan import row_changes

    spec = tr181.tables["wan.static.route"]
    changes = row_changes("wan.static.route", spec, 7, {"gateway": "203.0.113.9"})
    assert {(c.path, c.value, c.type) for c in changes} == {
        (ROUTE + "7.GatewayIPAddress", "203.0.113.9", "xsd:string"),
        (ROUTE + "7.Enable", "true", "xsd:boolean"),
        (ROUTE + "7.Interface", "Device.IP.Interface.2", "xsd:string"),
        (ROUTE + "7.DestIPAddress", "", "xsd:string"),
        (ROUTE + "7.DestSubnetMask", "", "xsd:string"),
    }


def test_a_router_holding_the_line_is_asked_nothing(tr181):
    held = {**DHCP_BOUND, "Device.DHCPv4.Client.1.Enable": "0", **static_rows(LINE)}
    # the client's entries went with it on a real router; left here, they change nothing
    result = plan(tr181, LINE, held)
    assert result.empty, (result.adds, result.changes, result.deletes)


def test_a_new_line_replaces_acsds_entries_and_only_those(tr181):
    old = {**LINE, "wan.static.ip": "203.0.113.18", "wan.static.gateway": "203.0.113.17"}
    values = {**DHCP_BOUND, "Device.DHCPv4.Client.1.Enable": "0", **static_rows(old)}
    result = plan(tr181, LINE, values)
    assert sorted(result.deletes) == [ADDR + "3.", ROUTE + "4."]
    assert [a.row for a in result.adds] == [
        {"ip": "203.0.113.10", "mask": "255.255.255.248"},
        {"gateway": "203.0.113.9"},
    ]


def test_a_changed_mask_is_set_on_the_entry_in_place(tr181):
    values = {**DHCP_BOUND, "Device.DHCPv4.Client.1.Enable": "0", **static_rows(LINE)}
    values[ADDR + "3.SubnetMask"] = "255.255.255.0"
    values[ROUTE + "4.Enable"] = "0"
    # as firmware spells them: a reference with its trailing dot, a lower-case enumeration,
    # no destination as 0.0.0.0 (none of them is a change, or a row of someone else's)
    values[ROUTE + "4.Interface"] = "Device.IP.Interface.2."
    values[ROUTE + "4.DestIPAddress"] = values[ROUTE + "4.DestSubnetMask"] = "0.0.0.0"
    values[ADDR + "3.AddressingType"] = "static"
    result = plan(tr181, LINE, values)
    assert not result.adds and not result.deletes
    assert sorted((c.path, c.value) for c in result.changes) == [
        (ADDR + "3.SubnetMask", "255.255.255.248"),
        (ROUTE + "4.Enable", "true"),
    ]


def test_routes_and_dns_servers_of_other_interfaces_or_ipv6_are_not_acsds(tr181):
    # a backup line's static default route and DNS server, on IP.Interface.3
    backup = {
        ROUTE + "9.Enable": "1",
        ROUTE + "9.StaticRoute": "1",
        ROUTE + "9.DestIPAddress": "",
        ROUTE + "9.DestSubnetMask": "",
        ROUTE + "9.GatewayIPAddress": "198.51.100.1",
        ROUTE + "9.Interface": "Device.IP.Interface.3",
        "Device.DNS.Client.Server.9.Enable": "1",
        "Device.DNS.Client.Server.9.DNSServer": "198.51.100.53",
        "Device.DNS.Client.Server.9.Interface": "Device.IP.Interface.3",
        "Device.DNS.Client.Server.9.Type": "Static",
        # and the owner's own IPv6 resolver on the WAN interface
        "Device.DNS.Client.Server.8.Enable": "1",
        "Device.DNS.Client.Server.8.DNSServer": "2001:db8::53",
        "Device.DNS.Client.Server.8.Interface": "Device.IP.Interface.2",
        "Device.DNS.Client.Server.8.Type": "Static",
    }
    values = {**DHCP_BOUND, "Device.DHCPv4.Client.1.Enable": "0", **static_rows(LINE), **backup}
    result = plan(tr181, {**LINE, "wan.static.dns": "192.0.2.53"}, values)
    assert result.deletes == []
    assert [a.table for a in result.adds] == ["wan.static.dns_servers"]


def test_an_old_entry_the_router_would_not_delete_is_named_and_holds_no_new_line(tr181):
    # The router refused to delete the address of the line before last (9001, its retry
    # an hour away). The job names it by its address, and the line the operator asks
    # for now still replaces the last one: the old entry left beside it cuts nothing off,
    # where holding the whole line for it would keep the router on the old one.
    from acsd.provisioning.plan import value_hash

    last = {**LINE, "wan.static.ip": "203.0.113.18", "wan.static.gateway": "203.0.113.17"}
    stale = {
        ADDR + "5.Enable": "true",
        ADDR + "5.IPAddress": "203.0.113.26",
        ADDR + "5.SubnetMask": "255.255.255.248",
        ADDR + "5.AddressingType": "Static",
    }
    values = {**DHCP_BOUND, "Device.DHCPv4.Client.1.Enable": "0", **static_rows(last), **stale}
    fault = {
        "setting": "wan.static.address[203.0.113.26]",
        "code": 9001,
        "message": "Request denied",
        "attempts": 1,
        "nextRetry": 3600.0,
        "hash": value_hash(ADDR + "5.", ""),
    }
    result = plan_changes(
        tr181,
        Desired(settings=dict(LINE)),
        values,
        absent=set(),
        memory={"faults": {ADDR + "5.": fault}},
        force=False,
        now=0.0,
        max_attempts=3,
    )
    [waiting] = result.waiting
    assert (waiting["setting"], waiting["parameter"]) == (
        "wan.static.address[203.0.113.26]",
        ADDR + "5.",
    )
    assert [a.row for a in result.adds] == [
        {"ip": "203.0.113.10", "mask": "255.255.255.248"},
        {"gateway": "203.0.113.9"},
    ]
    assert sorted(result.deletes) == [ADDR + "3.", ROUTE + "4."]
    assert result.deleting[ADDR + "3."] == "wan.static.address[203.0.113.18]"
    assert result.deleting[ROUTE + "4."] == "wan.static.route[203.0.113.17]"


#: the memory of a router acsd put LINE on (acsd.provisioning.line_off)
LINE_SET = {STATIC_LINE: {"account": "a1", "ip": "203.0.113.10", "gateway": "203.0.113.9"}}


def test_turning_the_line_off_deletes_acsds_entries_and_restarts_the_client(tr181):
    values = {**DHCP_BOUND, "Device.DHCPv4.Client.1.Enable": "0", **static_rows(LINE)}
    result = plan(tr181, {"wan.static.enable": False}, values, memory=LINE_SET)
    assert sorted(result.deletes) == [ADDR + "3.", ROUTE + "4."]
    assert not result.adds
    assert [(c.path, c.value) for c in result.changes] == [
        ("Device.DHCPv4.Client.1.Enable", "true")
    ]
    assert result.owned == {}  # (``only`` tells these rows apart: no ownedRows for them)


def test_turning_the_line_off_deletes_only_the_entries_of_acsds_line(tr181):
    # A static address and default route that are not the line acsd set (the customer's,
    # the installer's): they stay, with acsd's line remembered or without it.
    theirs = {**LINE, "wan.static.ip": "198.51.100.10", "wan.static.gateway": "198.51.100.9"}
    values = {**DHCP_BOUND, **static_rows(LINE), **static_rows(theirs, 5, 6)}
    result = plan(tr181, {"wan.static.enable": False}, values, memory=LINE_SET)
    assert sorted(result.deletes) == [ADDR + "3.", ROUTE + "4."]
    assert plan(tr181, {"wan.static.enable": False}, values).deletes == []


def test_a_router_without_the_address_table_is_sent_nothing_of_the_line(tr181):
    result = plan(tr181, LINE, DHCP_BOUND, absent=frozenset({ADDR}))
    assert result.empty
    reasons = {u["setting"]: u["reason"] for u in result.unsupported}
    assert set(reasons) == set(LINE)
    assert all(
        r == f"{ADDR} is not on this CPE: no wan.static.* setting sent" for r in reasons.values()
    )


DNS = "Device.DNS.Client.Server."
DHCP_DNS = {
    DNS + "1.Enable": "1",
    DNS + "1.DNSServer": "192.0.2.53",
    DNS + "1.Interface": "Device.IP.Interface.2",
    DNS + "1.Type": "DHCPv4",
}


def test_the_lines_dns_servers_are_static_entries_one_each(tr181):
    line = {**LINE, "wan.static.dns": "198.51.100.153, 203.0.113.153"}
    result = plan(tr181, line, {**DHCP_BOUND, **DHCP_DNS})
    assert [(a.table, a.row) for a in result.adds][2:] == [
        ("wan.static.dns_servers", {"server": "198.51.100.153"}),
        ("wan.static.dns_servers", {"server": "203.0.113.153"}),
    ]
    assert result.deletes == [] and result.unsupported == []
    # One of them already there as a static entry: only the other is added.
    held = {
        DNS + "5.Enable": "1",
        DNS + "5.DNSServer": "203.0.113.153",
        DNS + "5.Interface": "Device.IP.Interface.2",
        DNS + "5.Type": "Static",
    }
    result = plan(tr181, line, {**DHCP_BOUND, **DHCP_DNS, **held})
    assert [a.row["server"] for a in result.adds if a.table == "wan.static.dns_servers"] == [
        "198.51.100.153"
    ]


def test_a_line_whose_address_table_the_router_cannot_read_waits(tr181):
    # Unread is not absent: nothing of the line is sent, and it is no "unsupported" (the
    # job stays undone, so the next session tries again).
    result = plan(tr181, LINE, DHCP_BOUND, unreadable={ADDR: "fault 9002"})
    assert result.empty and result.unsupported == []
    reason = f"{ADDR} could not be read (fault 9002): no wan.static.* setting sent"
    assert {r["setting"]: r["message"] for r in result.unread} == dict.fromkeys(LINE, reason)
    assert result.refused == []


def test_a_line_turned_off_where_the_address_table_cannot_be_read_waits(tr181):
    # "Off" deletes acsd's entries; a table that faulted may still hold them, so the job
    # is not done until a session reads it.
    off = {"wan.static.enable": False}
    result = plan(tr181, off, DHCP_BOUND, unreadable={ADDR: "fault 9002"})
    assert result.empty
    assert [r["setting"] for r in result.unread] == ["wan.static.address"]
    assert result.unread[0]["message"] == f"{ADDR} could not be read (fault 9002)"


def test_no_reservations_wanted_where_the_table_cannot_be_read_waits(tr181):
    table = "Device.DHCPv4.Server.Pool.1.StaticAddress."
    none = {"dhcp.reservations": []}
    result = plan(tr181, {}, {}, frozenset({table}), tables=none)
    assert result.empty and result.unread == [] and result.unsupported == []  # none there
    result = plan(tr181, {}, {}, tables=none, unreadable={table: "fault 9002"})
    assert result.empty
    assert [(r["setting"], r["message"]) for r in result.unread] == [
        ("dhcp.reservations", f"{table} could not be read (fault 9002)")
    ]


def test_a_router_without_a_dns_table_still_gets_the_line(tr181):
    line = {**LINE, "wan.static.dns": "198.51.100.153"}
    result = plan(tr181, line, DHCP_BOUND, absent=frozenset({DNS}))
    assert [a.table for a in result.adds] == ["wan.static.address", "wan.static.route"]
    assert result.unsupported == [
        {"setting": "wan.static.dns_servers", "reason": f"{DNS} is not on this CPE"}
    ]


def test_entries_that_cannot_be_told_apart_stop_the_line(tr181):
    # Firmware that does not report AddressingType: adding an address each session, or
    # deleting the one DHCP made, would both be wrong. Nothing of the line is sent.
    values = {k: v for k, v in DHCP_BOUND.items() if not k.endswith("AddressingType")}
    result = plan(tr181, LINE, values)
    assert result.empty
    reason = (
        f"{ADDR}1.AddressingType is not on this CPE: its own entries and acsd's cannot be "
        "told apart: no wan.static.* setting sent"
    )
    assert {u["setting"]: u["reason"] for u in result.unsupported} == dict.fromkeys(LINE, reason)
    # The same for DNS entries without Type: the line goes, its DNS servers do not.
    dns = {k: v for k, v in DHCP_DNS.items() if not k.endswith(".Type")}
    result = plan(tr181, {**LINE, "wan.static.dns": "198.51.100.153"}, {**DHCP_BOUND, **dns})
    assert [a.table for a in result.adds] == ["wan.static.address", "wan.static.route"]
    assert [u["setting"] for u in result.unsupported] == ["wan.static.dns_servers"]


def test_tr098_keeps_its_fixed_paths(tr181):
    tr098 = load_profiles().get("tr098")
    line = {**LINE, "wan.static.dns": "198.51.100.153,203.0.113.153"}
    result = plan(tr098, line, {})
    assert not result.adds and not result.unsupported
    assert {c.setting for c in result.changes} == set(line)
    dns = {
        c.path.rsplit(".", 1)[1]: c.value for c in result.changes if c.setting == "wan.static.dns"
    }
    # the servers, and the switch that has the connection query them
    assert dns == {"DNSServers": "198.51.100.153,203.0.113.153", "DNSEnabled": "true"}


# --- the simulated router ---------------------------------------------------------------


def router() -> Tree:
    from acsd.sim.identity import router_values

    ident = router_values("tr181-generic", "000000", 1, "T1", "http://127.0.0.1:1/", "")
    return Tree.from_template(load_template("tr181-generic"), ident)


def test_the_simulated_router_refuses_writes_to_its_dhcp_address():
    tree = router()
    with pytest.raises(CwmpFault) as caught:
        tree.set_values([rpc.ParameterValue(ADDR + "1.IPAddress", "203.0.113.10")], "k")
    assert [(f.name, f.code) for f in caught.value.spv_faults] == [(ADDR + "1.IPAddress", 9008)]


def test_the_simulated_dhcp_client_takes_its_lease_along_and_brings_it_back():
    tree = router()
    before = tree.flat()
    number = tree.add_object(ADDR, "k")
    tree.set_values([rpc.ParameterValue(ADDR + f"{number}.IPAddress", "203.0.113.10")], "k")
    tree.set_values([rpc.ParameterValue("Device.DHCPv4.Client.1.Enable", "false")], "k")
    off = tree.flat()
    assert [p for p in off if p.startswith(ADDR) and p.endswith(".IPAddress")] == [
        ADDR + f"{number}.IPAddress"
    ]
    assert not [p for p in off if p.startswith(ROUTE)]  # its only route was the lease's
    assert not [p for p in off if p.startswith("Device.DNS.Client.Server.")]
    assert off["Device.DHCPv4.Client.1.IPAddress"] == ""
    assert off["Device.DHCPv4.Client.1.Status"] == "Disabled"
    assert off["Device.IP.Interface.2.IPv4AddressNumberOfEntries"] == "1"

    # A router saved and restored (acsd sim --state) still has the lease to come back to.
    tree = Tree.restore(tree.template, tree.snapshot())
    tree.set_values([rpc.ParameterValue("Device.DHCPv4.Client.1.Enable", "true")], "k")
    on = tree.flat()
    leased = (ADDR + "1.", ROUTE, "Device.DNS.Client.Server.", "Device.DHCPv4.Client.1.")
    back = {path: value for path, value in on.items() if path.startswith(leased)}
    assert back == {path: value for path, value in before.items() if path.startswith(leased)}
    assert on["Device.IP.Interface.2.IPv4AddressNumberOfEntries"] == "2"
    assert on[ADDR + f"{number}.IPAddress"] == "203.0.113.10"


# --- profile keys -------------------------------------------------------------------------

BASE = """\
name = "acme"
extends = "tr181"
[match]
manufacturer = "Acme*"
"""


def profile_error(tmp_path: Path, text: str) -> ProfileError:
    (tmp_path / "acme.toml").write_text(BASE + text)
    with pytest.raises(ProfileError) as caught:
        load_profiles(tmp_path)
    return caught.value


def test_a_row_field_no_setting_gives_needs_a_value(tmp_path):
    err = profile_error(
        tmp_path,
        '[tables."wan.static.route"]\nobject = "Device.Routing.Router.1.IPv4Forwarding."\n'
        'only = { StaticRoute = "true" }\n[tables."wan.static.route".fields]\n'
        'gateway = { param = "GatewayIPAddress" }\n'
        'interface = { param = "Interface" }\n',
    )
    assert err.problems == [
        (
            'tables."wan.static.route".fields.interface',
            "interface needs a `value`: no setting gives it",
        )
    ]


def test_a_value_for_what_the_row_gives_is_refused(tmp_path):
    err = profile_error(
        tmp_path,
        '[tables."wan.static.address"]\nobject = "Device.IP.Interface.2.IPv4Address."\n'
        'only = { AddressingType = "Static" }\n[tables."wan.static.address".fields]\n'
        'ip = { param = "IPAddress", value = "x" }\n'
        'mask = { param = "SubnetMask" }\n',
    )
    assert err.problems == [
        ('tables."wan.static.address".fields.ip.value', "ip comes from the row, not the profile")
    ]


def test_a_row_table_needs_every_field_its_settings_give(tmp_path):
    err = profile_error(
        tmp_path,
        '[tables."wan.static.address"]\nobject = "Device.IP.Interface.2.IPv4Address."\n'
        'only = { AddressingType = "Static" }\n[tables."wan.static.address".fields]\n'
        'ip = { param = "IPAddress" }\n',
    )
    assert err.problems == [
        (
            'tables."wan.static.address".fields',
            "wan.static.address needs field 'mask' (wan.static.mask)",
        )
    ]


def test_a_row_table_without_only_is_refused(tmp_path):
    # it would take the DHCP client's route for its own, and delete the owner's
    err = profile_error(
        tmp_path,
        '[tables."wan.static.route"]\nobject = "Device.Routing.Router.1.IPv4Forwarding."\n'
        '[tables."wan.static.route".fields]\ngateway = { param = "GatewayIPAddress" }\n',
    )
    assert err.problems == [
        (
            'tables."wan.static.route".only',
            "wan.static.route needs `only`: what tells acsd's rows apart",
        )
    ]


def test_the_reported_dns_servers_a_line_keeps():
    from acsd.provisioning.internet import reported_dns

    assert reported_dns({"dns": "192.0.2.53", "dns2": "198.51.100.53"}) == [
        "192.0.2.53",
        "198.51.100.53",
    ]
    # the router's own LAN address (its DNS proxy), link-local, loopback, twice the same
    assert reported_dns({"dns": "192.168.1.1", "dns2": "169.254.1.1", "lanIp": "192.168.1.1"}) == []
    assert reported_dns({"dns": "127.0.0.1", "dns2": "2001:db8::53"}) == []
    assert reported_dns({"dns": "192.0.2.53", "dns2": "192.0.2.53"}) == ["192.0.2.53"]
    assert reported_dns(None) == []


# --- a read the router could not answer in full ------------------------------------------


def planned_line(skipped: list[str], values: dict[str, str], memory: dict | None = None):
    from acsd.provisioning.driver import ProvisioningDriver

    driver = ProvisioningDriver(store=None, profiles=load_profiles())  # type: ignore[arg-type]
    driver.profile = driver.profiles.get("tr181")
    driver.desired = Desired(settings=dict(LINE))
    driver.memory = dict(memory or {})
    driver.values = {name: [value, "xsd:string"] for name, value in values.items()}
    driver.fetch.skipped = list(skipped)
    return driver._plan().plan


def test_a_line_waits_while_a_fault_hides_the_routers_dns_servers():
    # The router faulted (9002) on its DNS client table: the servers its DHCP client got
    # are unknown, and the line (which turns that client off) would leave it without DNS.
    plan = planned_line([DNS], DHCP_BOUND)
    assert plan.adds == [] and [c for c in plan.changes if c.setting.startswith("wan.")] == []
    assert plan.refused == []  # not refused: the next session may read them
    [held] = plan.pending
    assert held["setting"] == "wan.static.dns"
    assert held["message"] == (
        f"the router's DNS servers could not be read (it faulted on {DNS}): "
        "the static line is not sent"
    )


def test_a_fault_elsewhere_or_known_dns_servers_do_not_hold_the_line():
    cellular = "Device.Cellular.Interface."
    for skipped, values, memory in [
        ([cellular], DHCP_BOUND, None),  # nothing DNS is read there
        ([DNS], {**DHCP_BOUND, "Device.DHCPv4.Client.1.DNSServers": "192.0.2.53"}, None),
        ([DNS], DHCP_BOUND, {"lineDns": ["192.0.2.53"]}),  # kept when the line was pushed
    ]:
        plan = planned_line(skipped, values, memory)
        assert plan.refused == [] and plan.pending == []
        assert [a.table for a in plan.adds][:2] == ["wan.static.address", "wan.static.route"]


def test_the_acs_host_a_router_would_need_dns_for():
    from acsd.provisioning.internet import acs_host_name

    assert acs_host_name("https://acs.example.net:7547/cwmp") == "acs.example.net"
    assert acs_host_name(" http://ACS.example.net ") == "acs.example.net"
    # an address needs no resolver; no URL (not read) or a broken one is no evidence
    for url in ("http://192.0.2.10:7547/", "http://[2001:db8::10]:7547/", "", None, "http://[x/"):
        assert acs_host_name(url) is None, url


def test_a_reservation_switched_off_is_left_out_of_a_table_without_enable(tmp_path: Path):
    # A vendor's reservation table with no Enable leaf: written, a reservation the
    # operator switched off would be as live as the others (and the job said nothing).
    (tmp_path / "noenable.toml").write_text(
        'name = "noenable"\nextends = "tr181"\nmatch = { manufacturer = "NoEnable" }\n'
        '[tables."dhcp.reservations"]\nobject = "Device.DHCPv4.Server.Pool.1.StaticAddress."\n'
        'key = "mac"\n[tables."dhcp.reservations".fields]\n'
        'mac = { param = "Chaddr", format = "mac-colon-upper" }\nip = { param = "Yiaddr" }\n'
    )
    profile = load_profiles(tmp_path).get("noenable")
    table = "Device.DHCPv4.Server.Pool.1.StaticAddress."
    rows = [
        {"ip": "192.0.2.10", "enable": True, "mac": "02:00:5e:10:00:01"},
        {"ip": "192.0.2.11", "enable": False, "mac": "02:00:5e:10:00:02"},
    ]
    values = {
        "Device.DHCPv4.Server.Pool.1.Enable": "1",
        table + "1.Chaddr": "02:00:5E:10:00:02",  # made by acsd while it was on
        table + "1.Yiaddr": "192.0.2.11",
    }
    made = plan_changes(
        profile,
        Desired(tables={"dhcp.reservations": rows}),
        values,
        absent=set(),
        memory={"ownedRows": {"dhcp.reservations": ["02005e100001", "02005e100002"]}},
        force=False,
        now=0.0,
        max_attempts=3,
    )
    assert made.deletes == [table + "1."]
    assert [add.object for add in made.adds] == [table]
    assert all("192.0.2.11" not in change.value for change in made.changes)
